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

	"github.com/electric-sql/electric-go/engine/status"
)

// More errors the engine reports through the API.
var (
	ErrUnknownOrigin = errors.New("unknown connector")
	ErrNotReady      = errors.New("connector is not ready")
	ErrBadFile       = errors.New("bad migration file")
)

// refusals pairs each error the API reports by a 403 with the seed's term for
// it (clients of the seed match on the term) and what it means to a person.
// The handler writes the term from here and the client parses it back into
// the error (parseTerm), so both sides agree by construction.
var refusals = []struct {
	err  error
	term string
	why  string
}{
	{ErrAlreadyMigrated, "{:error, :already_migrated}", "already applied"},
	{ErrHashMismatch, "{:error, :already_migrated_bad_md5}", "already applied, but the file changed since (hash mismatch)"},
	{ErrBadStatements, "{:error, :bad_migration_stms}", "a statement failed; nothing was applied"},
	{ErrNotReady, "{:invalid_state, :init}", "the connector is not ready (starting, down, or migrating)"},
	{ErrNotFound, ":vsn_not_found", "the engine has no such migration in its MIGRATIONS_DIR"},
	{ErrBadFile, "{:error, :bad_migration_file}", ""},
}

// termMigrationFailed answers any other failure of a migration.
const termMigrationFailed = "{:error, :migration_failed}"

// termOf is the term the handler answers err with.
func termOf(err error) string {
	for _, r := range refusals {
		if errors.Is(err, r.err) {
			return r.term
		}
	}
	return termMigrationFailed
}

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
	if h.serveSatellite(w, r, rest) {
		return
	}
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
			forbidden(w, termOf(ErrNotFound), err)
			return
		}
		forbidden(w, termOf(ErrBadFile), err)
		return
	}
	if err := h.Ctrl.Migrate(r.Context(), origin, m); err != nil {
		forbidden(w, termOf(err), err)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "ok")
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
	// Token is sent as the bearer token (STATUS_API_TOKEN); empty: none.
	Token string
	// RetryEvery is the pause between two tries of ApplyWhenReady; 500ms
	// when zero.
	RetryEvery time.Duration
}

// ErrNoConnectors: the engine runs without any connector to apply to.
var ErrNoConnectors = errors.New("the engine has no connectors (CONNECTORS is empty)")

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
	status.Authorize(req, c.Token)
	resp, err := c.http().Do(req)
	if err != nil {
		return fmt.Errorf("asking the engine at %s (is 'electric serve' running?): %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if err := status.Refusal(resp); err != nil {
		return err
	}
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

// APIError is a refusal of the engine, with the seed's term. It unwraps to
// the package's error for the refusal (ErrAlreadyMigrated, ErrHashMismatch,
// ErrBadStatements, ErrNotReady, ErrNotFound, ErrBadFile, ErrUnknownOrigin,
// ErrInvalidName), so callers decide with errors.Is, never on the term.
type APIError struct {
	Status  int
	Term    string // e.g. "{:error, :already_migrated}"
	Message string
}

// Unwrap is the error the refusal stands for, nil when the engine gave no
// term or status this package knows.
func (e *APIError) Unwrap() error {
	if err := parseTerm(e.Term); err != nil {
		return err
	}
	switch e.Status {
	case http.StatusNotFound:
		return ErrUnknownOrigin
	case http.StatusBadRequest:
		return ErrInvalidName
	}
	return nil
}

func (e *APIError) Error() string {
	var why string
	switch err := e.Unwrap(); {
	case err == nil:
	case errors.Is(err, ErrUnknownOrigin):
		why = "the engine has no such connector"
	case errors.Is(err, ErrInvalidName):
		why = "invalid migration name"
	default:
		for _, r := range refusals {
			if r.err == err {
				why = r.why
			}
		}
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

// parseTerm reads the seed's Elixir-style refusal term: an atom (":a") or a
// tuple of atoms ("{:a, :b}"). It is the one place a term is interpreted:
// it returns the error the term stands for, or nil for a term it does not
// know (including {:error, :migration_failed}, a failure with no meaning of
// its own). Every {:invalid_state, …} means the connector is not ready.
func parseTerm(term string) error {
	atoms, ok := termAtoms(term)
	switch {
	case !ok:
		return nil
	case len(atoms) >= 1 && atoms[0] == "invalid_state":
		return ErrNotReady
	}
	want := strings.Join(atoms, ",")
	for _, r := range refusals {
		if a, ok := termAtoms(r.term); ok && strings.Join(a, ",") == want {
			return r.err
		}
	}
	return nil
}

// termAtoms splits ":a" or "{:a, :b, …}" into its atoms' names.
func termAtoms(term string) ([]string, bool) {
	term = strings.TrimSpace(term)
	if inner, ok := strings.CutPrefix(term, "{"); ok {
		inner, ok = strings.CutSuffix(inner, "}")
		if !ok {
			return nil, false
		}
		var atoms []string
		for _, part := range strings.Split(inner, ",") {
			a, ok := atom(strings.TrimSpace(part))
			if !ok {
				return nil, false
			}
			atoms = append(atoms, a)
		}
		return atoms, true
	}
	a, ok := atom(term)
	if !ok {
		return nil, false
	}
	return []string{a}, true
}

// atom returns the name of ":name" (letters, digits and underscores).
func atom(s string) (string, bool) {
	name, ok := strings.CutPrefix(s, ":")
	if !ok || name == "" {
		return "", false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return "", false
		}
	}
	return name, true
}

// Apply asks the engine to apply migration vsn on one connector.
func (c *Client) Apply(ctx context.Context, origin, vsn string) error {
	body, _ := json.Marshal(map[string]string{"vsn": vsn})
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, strings.TrimRight(c.BaseURL, "/")+"/api/migrations/"+url.PathEscape(origin), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	status.Authorize(req, c.Token)
	resp, err := c.http().Do(req)
	if err != nil {
		return fmt.Errorf("asking the engine at %s (is 'electric serve' running?): %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	// An auth refusal is no refusal of the migration (those are 403s too):
	// it carries the status API's refusal header.
	if err := status.Refusal(resp); err != nil {
		return err
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	term, msg, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return &APIError{Status: resp.StatusCode, Term: term, Message: strings.TrimSpace(msg)}
}

// ApplyWhenReady is Apply, tried again while the engine answers that the
// connector is not ready (ErrNotReady), for at most wait: right after
// 'electric serve' or 'electric dev up' starts, connectors are still setting
// up. Any other answer, or ctx ending, returns at once.
func (c *Client) ApplyWhenReady(ctx context.Context, origin, vsn string, wait time.Duration) error {
	every := c.RetryEvery
	if every <= 0 {
		every = 500 * time.Millisecond
	}
	deadline := time.Now().Add(wait)
	for {
		err := c.Apply(ctx, origin, vsn)
		if !errors.Is(err, ErrNotReady) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(every):
		}
	}
}

// Targets is the connectors to apply to: named when it is not empty, else
// every connector of the engine (ErrNoConnectors when it has none).
func (c *Client) Targets(ctx context.Context, named []string) ([]string, error) {
	if len(named) > 0 {
		return named, nil
	}
	all, err := c.Connectors(ctx)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, ErrNoConnectors
	}
	return all, nil
}
