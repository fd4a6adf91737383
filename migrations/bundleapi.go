// The Satellite side of the migrations API: GET /api/migrations/bundle and
// GET|PUT /api/migrations/published, with their client.

package migrations

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/migrations/bundle"
)

// Routes under /api/migrations that are not connector names (the engine
// refuses connectors named so).
const (
	RouteBundle    = "bundle"
	RoutePublished = "published"
)

// SatelliteController may be implemented by a Controller to serve the
// client bundle and the published Satellite schema.
type SatelliteController interface {
	// Bundle is every recorded migration's client bundle entry, in order.
	Bundle(ctx context.Context) ([]bundle.Migration, error)
	// Published is the migration whose schema Satellites are served.
	Published(ctx context.Context) (PublishedStatus, error)
	// Publish serves Satellites the schema of migration name from now on.
	Publish(ctx context.Context, name string) (PublishedStatus, error)
}

// PublishedStatus answers GET /api/migrations/published.
type PublishedStatus struct {
	// Name is the published migration, "" when none is.
	Name string `json:"name"`
	// Tables are the qualified tables Satellites are served.
	Tables []string `json:"tables"`
	// Override is true when SATELLITE_TABLES decides the tables instead.
	Override bool `json:"override,omitempty"`
}

// bundleDoc is the body of GET /api/migrations/bundle, the shape of the
// migrations.json that `electric migrate build` writes.
type bundleDoc struct {
	Migrations []bundle.Migration `json:"migrations"`
}

// serveSatellite answers the Satellite routes; false when rest is none.
func (h *Handler) serveSatellite(w http.ResponseWriter, r *http.Request, rest string) bool {
	if rest != RouteBundle && rest != RoutePublished {
		return false
	}
	sc, ok := h.Ctrl.(SatelliteController)
	if !ok {
		http.Error(w, "Not found", http.StatusNotFound)
		return true
	}
	switch {
	case rest == RouteBundle && r.Method == http.MethodGet:
		ms, err := sc.Bundle(r.Context())
		if err != nil {
			conflict(w, err)
			return true
		}
		writeJSON(w, http.StatusOK, bundleDoc{Migrations: ms})
	case rest == RoutePublished && r.Method == http.MethodGet:
		p, err := sc.Published(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return true
		}
		writeJSON(w, http.StatusOK, p)
	case rest == RoutePublished && r.Method == http.MethodPut:
		var body struct {
			Vsn string `json:"vsn"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil || !ValidName(body.Vsn) {
			http.Error(w, "Bad request: want {\"vsn\": \"<migration name>\"}", http.StatusBadRequest)
			return true
		}
		p, err := sc.Publish(r.Context(), body.Vsn)
		if err != nil {
			conflict(w, err)
			return true
		}
		writeJSON(w, http.StatusOK, p)
	default:
		http.Error(w, "Method not allowed", http.StatusMethodNotAllowed)
	}
	return true
}

// conflict answers a refusal of the Satellite routes: 409 with one line.
func conflict(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusConflict)
	fmt.Fprintf(w, "%v\n", err)
}

// Bundle fetches the client bundle from the engine (GET
// /api/migrations/bundle).
func (c *Client) Bundle(ctx context.Context) ([]bundle.Migration, error) {
	var doc bundleDoc
	if err := c.getJSON(ctx, "/api/migrations/"+RouteBundle, &doc); err != nil {
		return nil, err
	}
	for _, m := range doc.Migrations {
		if !bundleNameRE(m.Name) {
			return nil, fmt.Errorf("the engine's bundle names a migration %q the client refuses", m.Name)
		}
	}
	return doc.Migrations, nil
}

// bundleNameRE is the 0.4.3 client's rule for a migration name.
func bundleNameRE(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// Published asks which migration's schema Satellites are served.
func (c *Client) Published(ctx context.Context) (PublishedStatus, error) {
	var p PublishedStatus
	err := c.getJSON(ctx, "/api/migrations/"+RoutePublished, &p)
	return p, err
}

// Publish asks the engine to serve Satellites the schema of migration name.
func (c *Client) Publish(ctx context.Context, name string) (PublishedStatus, error) {
	var p PublishedStatus
	body, _ := json.Marshal(map[string]string{"vsn": name})
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, strings.TrimRight(c.BaseURL, "/")+"/api/migrations/"+RoutePublished, bytes.NewReader(body))
	if err != nil {
		return p, err
	}
	req.Header.Set("Content-Type", "application/json")
	status.Authorize(req, c.Token)
	resp, err := c.http().Do(req)
	if err != nil {
		return p, fmt.Errorf("asking the engine at %s (is 'electric serve' running?): %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if err := status.Refusal(resp); err != nil {
		return p, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return p, errors.New(strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&p); err != nil {
		return p, fmt.Errorf("reading the engine's answer: %w", err)
	}
	return p, nil
}
