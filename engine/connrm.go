package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/engine/connector"
	"github.com/electric-sql/electric-go/engine/connreg"
	"github.com/electric-sql/electric-go/engine/pgsource"
	"github.com/electric-sql/electric-go/engine/sequencer"
	"github.com/electric-sql/electric-go/engine/status"
)

// Errors of RemoveConnector that callers act on.
var (
	// ErrConnectorConfigured: the connector is in CONNECTORS. It is set up
	// again at every start while it is there, so it must leave the
	// configuration first (then a restart), and only then be removed.
	ErrConnectorConfigured = errors.New("connector is in CONNECTORS")
	// ErrUnknownConnector: the engine's state has no such connector.
	ErrUnknownConnector = errors.New("no such connector in the engine's state")
)

// removeTimeout bounds one removal's work on the connector's Postgres.
const removeTimeout = 2 * time.Minute

// RemoveConnector removes a connector that is no longer in CONNECTORS: on
// its Postgres its subscription, upsert triggers, slot, publication and
// event triggers (unless forget: that Postgres is gone for good), then
// what the engine keeps for it (its registry entry, stored position and
// snapshot progress, withheld rows). A removal cut short by an error can be
// run again: what is gone is skipped. The audit history (conflicts and
// rejections naming it) stays.
func (e *Engine) RemoveConnector(ctx context.Context, name string, forget bool) (status.ConnectorRemoval, error) {
	res := status.ConnectorRemoval{Connector: name, Dropped: []string{}, State: []string{}, Forgotten: forget}
	if _, ok := e.byName[name]; ok {
		return res, fmt.Errorf("%w: %s is still replicated; take it out of CONNECTORS and restart the engine, then run electric connectors remove %s",
			ErrConnectorConfigured, name, name)
	}
	e.removeMu.Lock()
	defer e.removeMu.Unlock()
	entry, known := e.registry.Get(name)
	pos, err := e.txlog.Position(name)
	if err != nil {
		return res, err
	}
	if !known && len(pos) == 0 {
		return res, fmt.Errorf("%w: %s", ErrUnknownConnector, name)
	}
	if !forget {
		if !known {
			return res, fmt.Errorf("the engine has a position for %s but not its connection (state written before connectors were recorded): drop its subscription, slot and publication on that Postgres yourself, then run electric connectors remove %s --forget", name, name)
		}
		ctx, cancel := context.WithTimeout(ctx, removeTimeout)
		defer cancel()
		dropped, err := e.teardownRemote(ctx, entry)
		res.Dropped = append(res.Dropped, dropped...)
		if err != nil {
			e.log.Warn("connector removal failed", "connector", name, "dropped", strings.Join(dropped, ", "), "err", err)
			return res, fmt.Errorf("removing connector %s from its Postgres: %w (run the removal again once fixed; --forget if that Postgres is gone for good)", name, err)
		}
	}
	// The engine's own state last, so a removal that failed on Postgres
	// still knows how to reach it.
	for _, src := range []struct{ source, what string }{{name, "position"}, {snapshotSource(name), "snapshot progress"}} {
		p, err := e.txlog.Position(src.source)
		if err != nil {
			return res, err
		}
		if len(p) == 0 {
			continue
		}
		if err := e.clearPosition(ctx, src.source); err != nil {
			return res, fmt.Errorf("removing the %s of connector %s: %w", src.what, name, err)
		}
		res.State = append(res.State, src.what)
	}
	n, err := e.withheld.Forget(name)
	if err != nil {
		return res, fmt.Errorf("removing the withheld rows of connector %s: %w", name, err)
	}
	if n > 0 {
		res.State = append(res.State, fmt.Sprintf("%d withheld rows", n))
	}
	if known {
		if err := e.registry.Remove(name); err != nil {
			return res, err
		}
		res.State = append(res.State, "registry")
	}
	e.orphans.remove(name)
	e.log.Info("connector removed", "connector", name, "dropped", strings.Join(res.Dropped, ", "), "state", strings.Join(res.State, ", "), "forget", forget)
	e.events.Publish(status.Event{Kind: status.KindConnector, Connector: name, Message: "removed"})
	return res, nil
}

// snapshotSource is the source name the existing-rows reader of connector
// name stores its progress under (connector names hold no ':').
func snapshotSource(name string) string { return "snapshot:" + name }

// teardownRemote drops the connector's objects on its Postgres. When a
// configured connector uses the same database (a connector renamed), only
// the subscription of the removed name goes: the rest is the other one's.
func (e *Engine) teardownRemote(ctx context.Context, en connreg.Entry) ([]string, error) {
	conn, err := pgx.Connect(ctx, en.URI)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close(context.Background())
	sharedWith := ""
	for _, c := range e.cfg.Connectors {
		if sameDatabase(c.URI, en.URI) {
			sharedWith = c.Name
		}
	}
	if sharedWith != "" {
		dropped, err := connector.TeardownSubscription(ctx, conn, en.Name)
		if err == nil {
			e.log.Info("connector removal: the database is also connector "+sharedWith+"'s: its triggers, slot and publication stay", "connector", en.Name)
		}
		return dropped, err
	}
	dropped, err := connector.Teardown(ctx, conn, en.Name)
	if err != nil {
		return dropped, err
	}
	more, err := pgsource.Teardown(ctx, conn, en.Slot, en.Publication)
	return append(dropped, more...), err
}

// sameDatabase reports whether two connection URIs name the same database
// of the same server.
func sameDatabase(a, b string) bool {
	ca, err1 := pgx.ParseConfig(a)
	cb, err2 := pgx.ParseConfig(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	return ca.Host == cb.Host && ca.Port == cb.Port && ca.Database == cb.Database
}

// clearPosition stores an empty position for source through the log's
// single writer: the connector starts afresh if it is ever added again.
func (e *Engine) clearPosition(ctx context.Context, source string) error {
	done := make(chan error, 1)
	if err := e.seq.Enqueue(ctx, sequencer.Item{Source: source, Position: []byte{},
		Done: func(_ uint64, err error) { done <- err }}); err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// removeHandler serves DELETE /api/connectors/{name}[?forget=true].
func (e *Engine) removeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		forget := false
		switch v := r.URL.Query().Get("forget"); v {
		case "", "false", "0":
		case "true", "1":
			forget = true
		default:
			writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("forget: want true or false, got %q", v))
			return
		}
		if !validConnectorName(name) {
			writeJSONError(w, http.StatusBadRequest, "connector name: letters, digits, _ and - only, at most 63 bytes")
			return
		}
		res, err := e.RemoveConnector(r.Context(), name, forget)
		code := http.StatusOK
		switch {
		case errors.Is(err, ErrConnectorConfigured):
			code = http.StatusConflict
		case errors.Is(err, ErrUnknownConnector):
			code = http.StatusNotFound
		case err != nil:
			code = http.StatusBadGateway
		}
		if err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			json.NewEncoder(w).Encode(struct {
				Error string `json:"error"`
				status.ConnectorRemoval
			}{err.Error(), res})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(res)
	})
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// validConnectorName bounds a name from the network as CONNECTORS does.
func validConnectorName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
