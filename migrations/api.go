package migrations

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// More errors the engine reports through the API.
var (
	ErrUnknownOrigin = errors.New("unknown connector")
	ErrNotReady      = errors.New("connector is not ready")
)

// Controller is the engine side of the migrations API: it pauses a
// connector's replication, applies the migration and resumes.
type Controller interface {
	// Origins lists the connector names in configuration order.
	Origins() []string
	// Latest is the newest row of the connector's electric.migrations, nil
	// when not known yet.
	Latest(ctx context.Context, origin string) (*Applied, error)
	// Applied is the connector's whole electric.migrations, newest first.
	Applied(ctx context.Context, origin string) ([]Applied, error)
	// Migrate applies m to the connector's Postgres.
	Migrate(ctx context.Context, origin string, m Migration) error
}

// RefusalLogger may be implemented by a Controller to hear of the refusals
// the handler decides alone (no such migration file), which never reach
// Migrate: the engine logs them as the seed did.
type RefusalLogger interface {
	Refused(origin, vsn string, err error)
}

// Status is one connector's answer of GET /api/migrations, in the seed's shape.
type Status struct {
	AppliedAt string `json:"applied_at"`
	Hash      string `json:"hash"`
	Origin    string `json:"origin"`
	Vsn       string `json:"vsn"`
}

// Handler serves the seed's migrations API under /api/migrations.
type Handler struct {
	Dir, Suffix string
	Ctrl        Controller
}

func (h *Handler) status(ctx context.Context, origin string) any {
	a, err := h.Ctrl.Latest(ctx, origin)
	if err != nil || a == nil {
		return "unknown"
	}
	return Status{AppliedAt: a.AppliedAt.UTC().Format(time.RFC3339Nano), Hash: a.Hash, Origin: origin, Vsn: a.Version}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, "/api/migrations"), "/")
	switch {
	case rest == "" && r.Method == http.MethodGet:
		var out []any
		for _, o := range h.Ctrl.Origins() {
			out = append(out, h.status(r.Context(), o))
		}
		writeJSON(w, http.StatusOK, out)
	case rest != "" && !strings.Contains(rest, "/") && r.Method == http.MethodGet:
		if !h.known(rest) {
			http.Error(w, "Not found", http.StatusNotFound)
			return
		}
		if _, all := r.URL.Query()["all"]; all {
			// Our extension (the CLI's list): every applied migration.
			list, err := h.Ctrl.Applied(r.Context(), rest)
			if err != nil {
				http.Error(w, "reading electric.migrations: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			if list == nil {
				list = []Applied{}
			}
			writeJSON(w, http.StatusOK, list)
			return
		}
		writeJSON(w, http.StatusOK, h.status(r.Context(), rest))
	case rest != "" && !strings.Contains(rest, "/") && r.Method == http.MethodPut:
		h.put(w, r, rest)
	default:
		http.Error(w, "Not found", http.StatusNotFound)
	}
}

func (h *Handler) known(origin string) bool {
	for _, o := range h.Ctrl.Origins() {
		if o == origin {
			return true
		}
	}
	return false
}

func (h *Handler) dir() string {
	if h.Dir == "" {
		return DefaultDir
	}
	return h.Dir
}

func (h *Handler) put(w http.ResponseWriter, r *http.Request, origin string) {
	var body struct {
		Vsn string `json:"vsn"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil || !ValidName(body.Vsn) {
		http.Error(w, "Bad request", http.StatusBadRequest)
		return
	}
	if !h.known(origin) {
		http.Error(w, "Not found", http.StatusNotFound)
		return
	}
	m, err := Load(h.dir(), body.Vsn, h.Suffix)
	if err != nil {
		if rl, ok := h.Ctrl.(RefusalLogger); ok {
			rl.Refused(origin, body.Vsn, err)
		}
		if errors.Is(err, ErrNotFound) {
			forbidden(w, ":vsn_not_found", err)
			return
		}
		forbidden(w, "{:error, :bad_migration_file}", err)
		return
	}
	switch err := h.Ctrl.Migrate(r.Context(), origin, m); {
	case err == nil:
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "ok")
	case errors.Is(err, ErrAlreadyMigrated):
		forbidden(w, "{:error, :already_migrated}", err)
	case errors.Is(err, ErrHashMismatch):
		forbidden(w, "{:error, :already_migrated_bad_md5}", err)
	case errors.Is(err, ErrBadStatements):
		forbidden(w, "{:error, :bad_migration_stms}", err)
	case errors.Is(err, ErrNotReady):
		forbidden(w, "{:invalid_state, :init}", err)
	default:
		forbidden(w, "{:error, :migration_failed}", err)
	}
}

// forbidden answers 403 with the seed's Elixir-style term first (clients match
// on it) and the human explanation on the next line.
func forbidden(w http.ResponseWriter, term string, err error) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusForbidden)
	fmt.Fprintf(w, "%s\n%v\n", term, err)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// Client talks to a running engine's migrations API.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:5050
	HTTP    *http.Client
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 5 * time.Minute}
}

// getJSON GETs path from the engine and decodes its JSON answer into v.
func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return fmt.Errorf("asking the engine at %s (is 'electric serve' running?): %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("engine answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("reading the engine's answer to %s: %w", path, err)
	}
	return nil
}

// Statuses returns every connector's newest applied migration; a connector
// whose state is unknown has a nil entry.
func (c *Client) Statuses(ctx context.Context) ([]*Status, error) {
	var raw []json.RawMessage
	if err := c.getJSON(ctx, "/api/migrations", &raw); err != nil {
		return nil, err
	}
	out := make([]*Status, len(raw))
	for i, r := range raw {
		var s Status
		if json.Unmarshal(r, &s) == nil && s.Origin != "" {
			out[i] = &s
		}
	}
	return out, nil
}

// Applied returns every migration the connector has applied, newest first
// (GET /api/migrations/:origin?all, an extension of the seed's API).
func (c *Client) Applied(ctx context.Context, origin string) ([]Applied, error) {
	var out []Applied
	if err := c.getJSON(ctx, "/api/migrations/"+url.PathEscape(origin)+"?all", &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Connectors returns the engine's connector names, sorted, from
// /api/status: unlike /api/migrations it names a connector whose migration
// state is not known (an empty electric.migrations).
func (c *Client) Connectors(ctx context.Context) ([]string, error) {
	var st struct {
		Connectors map[string]json.RawMessage `json:"connectors"`
	}
	if err := c.getJSON(ctx, "/api/status", &st); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(st.Connectors))
	for n := range st.Connectors {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// APIError is a refusal of the engine, with the seed's term.
type APIError struct {
	Status  int
	Term    string // e.g. "{:error, :already_migrated}"
	Message string
}

func (e *APIError) Error() string {
	var why string
	switch {
	case strings.Contains(e.Term, ":already_migrated_bad_md5"):
		why = "already applied, but the file changed since (hash mismatch)"
	case strings.Contains(e.Term, ":already_migrated"):
		why = "already applied"
	case strings.Contains(e.Term, ":vsn_not_found"):
		why = "the engine has no such migration in its MIGRATIONS_DIR"
	case strings.Contains(e.Term, ":bad_migration_stms"):
		why = "a statement failed; nothing was applied"
	case strings.Contains(e.Term, ":invalid_state"):
		why = "the connector is not ready (starting, down, or migrating)"
	case e.Status == http.StatusNotFound:
		why = "the engine has no such connector"
	case e.Status == http.StatusBadRequest:
		why = "invalid migration name"
	}
	switch {
	case why != "" && e.Message != "":
		return why + " (" + e.Message + ")"
	case why != "":
		return why
	case e.Message != "":
		return e.Message
	}
	return e.Term
}

// Apply asks the engine to apply migration vsn on one connector.
func (c *Client) Apply(ctx context.Context, origin, vsn string) error {
	body, _ := json.Marshal(map[string]string{"vsn": vsn})
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, strings.TrimRight(c.BaseURL, "/")+"/api/migrations/"+url.PathEscape(origin), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http().Do(req)
	if err != nil {
		return fmt.Errorf("asking the engine at %s (is 'electric serve' running?): %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	term, msg, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return &APIError{Status: resp.StatusCode, Term: term, Message: strings.TrimSpace(msg)}
}
