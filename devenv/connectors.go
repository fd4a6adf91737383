package devenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/electric-sql/electric-go/engine/status"
)

// connectorsStep waits (up to EngineTimeout) for every connector to be
// ready and says what each did with the rows its tables already held: a
// connector still reading them (state snapshot) is a warning with its
// progress, not an error: the engine goes on reading in the background.
func (e *Env) connectorsStep(ctx context.Context) error {
	return e.prog.step("connectors", func() (string, error) {
		deadline := time.Now().Add(e.opts.EngineTimeout)
		for {
			cs, err := e.fetchConnectors(ctx)
			if err == nil && len(cs) > 0 && allReady(cs) {
				return describeConnectors(cs), nil
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				if err != nil {
					return "", warning{"not ready yet: " + err.Error()}
				}
				return "", warning{describeConnectors(cs) + " (electric dashboard shows the progress)"}
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	})
}

func allReady(cs []status.Connector) bool {
	for _, c := range cs {
		if c.State != status.StateReady {
			return false
		}
	}
	return true
}

// describeConnectors is one clause per connector, e.g. "db_a ready, 1000
// existing rows read" or "db_b snapshot: 12000 rows, 1/3 tables, 4s".
func describeConnectors(cs []status.Connector) string {
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	var parts []string
	for _, c := range cs {
		s := c.Name + " " + string(c.State)
		switch sn := c.Snapshot; {
		case sn != nil && sn.Active:
			s += fmt.Sprintf(": reading existing rows, %d rows, %d/%d tables, %.0fs", sn.Rows, sn.Tables, sn.TablesTotal, sn.ElapsedSeconds)
		case sn != nil && sn.Done:
			s += fmt.Sprintf(", %d existing rows read", sn.Rows)
		case c.NotReadyReason != "":
			s += ": " + c.NotReadyReason
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func (e *Env) fetchConnectors(ctx context.Context) ([]status.Connector, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	url := strings.TrimSuffix(e.StatusURL(), "/api/status") + "/api/connectors"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	client, err := e.httpClient()
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var body status.ConnectorsResponse
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(&body); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return body.Connectors, nil
}
