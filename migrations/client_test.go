package migrations_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/migrations"
)

// TestRefusalTerms: the seed's terms (and the statuses without one) are
// parsed into the package's errors, in one place, for callers to check with
// errors.Is.
func TestRefusalTerms(t *testing.T) {
	for _, tc := range []struct {
		status int
		term   string
		want   error // nil: no error of the package
	}{
		{403, "{:error, :already_migrated}", migrations.ErrAlreadyMigrated},
		{403, "{:error, :already_migrated_bad_md5}", migrations.ErrHashMismatch},
		{403, "{:error,:already_migrated_bad_md5}", migrations.ErrHashMismatch},
		{403, "{:error, :bad_migration_stms}", migrations.ErrBadStatements},
		{403, "{:error, :bad_migration_file}", migrations.ErrBadFile},
		{403, "{:invalid_state, :init}", migrations.ErrNotReady},
		{403, "{:invalid_state, :migrating}", migrations.ErrNotReady},
		{403, " :vsn_not_found ", migrations.ErrNotFound},
		{404, "Not found", migrations.ErrUnknownOrigin},
		{400, "Bad request", migrations.ErrInvalidName},
		{403, "{:error, :migration_failed}", nil},
		{403, "{:error, :already_migrated, :extra}", nil},
		{403, "{:error, :already_migrated", nil},
		{403, "already_migrated", nil},
		{403, ":", nil},
		{403, "{:error, :bad-atom}", nil},
		{403, "", nil},
		{500, "Internal Server Error", nil},
	} {
		err := &migrations.APIError{Status: tc.status, Term: tc.term}
		got := err.Unwrap()
		if got != tc.want {
			t.Errorf("%d %q: unwraps to %v, want %v", tc.status, tc.term, got, tc.want)
		}
		if tc.want != nil && !errors.Is(fmt.Errorf("wrapped: %w", err), tc.want) {
			t.Errorf("%d %q: errors.Is(…, %v) is false", tc.status, tc.term, tc.want)
		}
	}
}

// refuser is a Controller whose Migrate fails with err.
type refuser struct{ err error }

func (r refuser) Origins() []string { return []string{"a"} }
func (r refuser) Latest(context.Context, string) (*migrations.Applied, error) {
	return nil, nil
}
func (r refuser) Applied(context.Context, string) ([]migrations.Applied, error) {
	return nil, nil
}
func (r refuser) Migrate(context.Context, string, migrations.Migration) error { return r.err }

// TestRefusalsRoundTrip: what the engine's controller refuses with reaches
// the client as the same error, through the seed's wire answer.
func TestRefusalsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := migrations.Path(dir, "1_x", "")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("SELECT 1"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		migrate   error
		origin    string
		vsn       string
		want      error
		wantMatch bool // errors.Is(err, want); else: no error of the package
	}{
		{"ok", nil, "a", "1_x", nil, true},
		{"already", fmt.Errorf("1_x: %w", migrations.ErrAlreadyMigrated), "a", "1_x", migrations.ErrAlreadyMigrated, true},
		{"mismatch", fmt.Errorf("1_x: %w: recorded A, file B", migrations.ErrHashMismatch), "a", "1_x", migrations.ErrHashMismatch, true},
		{"statements", fmt.Errorf("%w in 1_x: syntax", migrations.ErrBadStatements), "a", "1_x", migrations.ErrBadStatements, true},
		{"not ready", fmt.Errorf("%w: a migration is already running", migrations.ErrNotReady), "a", "1_x", migrations.ErrNotReady, true},
		{"no file", nil, "a", "2_missing", migrations.ErrNotFound, true},
		{"no connector", nil, "b", "1_x", migrations.ErrUnknownOrigin, true},
		{"other", errors.New("disk full"), "a", "1_x", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(&migrations.Handler{Dir: dir, Ctrl: refuser{tc.migrate}})
			defer srv.Close()
			err := (&migrations.Client{BaseURL: srv.URL}).Apply(context.Background(), tc.origin, tc.vsn)
			switch {
			case tc.want == nil && tc.wantMatch:
				if err != nil {
					t.Fatalf("Apply = %v, want success", err)
				}
			case tc.want != nil:
				if !errors.Is(err, tc.want) {
					t.Fatalf("Apply = %v, want errors.Is %v", err, tc.want)
				}
			default:
				var ae *migrations.APIError
				if !errors.As(err, &ae) || ae.Unwrap() != nil || ae.Error() == "" {
					t.Fatalf("Apply = %#v, want an APIError of no known kind", err)
				}
			}
		})
	}
}

// engineStub answers PUT /api/migrations/:origin with the given answers in
// turn (the last one repeats) and counts the calls.
func engineStub(t *testing.T, answers ...string) (*migrations.Client, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1)) - 1
		a := answers[min(n, len(answers)-1)]
		if a == "ok" {
			io.WriteString(w, "ok")
			return
		}
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, a+"\nwhy\n")
	}))
	t.Cleanup(srv.Close)
	return &migrations.Client{BaseURL: srv.URL, RetryEvery: time.Millisecond}, &calls
}

// ApplyWhenReady tries again only while the connector is not ready, and only
// as long as it may wait.
func TestApplyWhenReady(t *testing.T) {
	const notReady = "{:invalid_state, :init}"
	for _, tc := range []struct {
		name      string
		answers   []string
		wait      time.Duration
		want      error // nil: success
		wantCalls int32 // 0: any
	}{
		{"ready at once", []string{"ok"}, time.Minute, nil, 1},
		{"ready after two", []string{notReady, notReady, "ok"}, time.Minute, nil, 3},
		{"other refusal is final", []string{"{:error, :already_migrated}", "ok"}, time.Minute, migrations.ErrAlreadyMigrated, 1},
		{"never ready", []string{notReady}, 20 * time.Millisecond, migrations.ErrNotReady, 0},
		{"no wait", []string{notReady, "ok"}, 0, migrations.ErrNotReady, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, calls := engineStub(t, tc.answers...)
			err := cl.ApplyWhenReady(context.Background(), "a", "1_x", tc.wait)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("ApplyWhenReady = %v, want %v", err, tc.want)
			}
			if n := calls.Load(); tc.wantCalls != 0 && n != tc.wantCalls {
				t.Errorf("%d calls, want %d", n, tc.wantCalls)
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		// The engine answers "not ready" and the caller gives up meanwhile:
		// no further try, the last answer is returned.
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		cl := &migrations.Client{BaseURL: "http://engine", RetryEvery: time.Hour, HTTP: &http.Client{
			Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				calls++
				cancel()
				return &http.Response{StatusCode: http.StatusForbidden, Body: io.NopCloser(strings.NewReader(notReady + "\nstarting\n")), Request: r}, nil
			}),
		}}
		if err := cl.ApplyWhenReady(ctx, "a", "1_x", time.Hour); !errors.Is(err, migrations.ErrNotReady) || calls != 1 {
			t.Fatalf("ApplyWhenReady after cancel = %v after %d tries, want the first answer", err, calls)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCompare(t *testing.T) {
	local := []migrations.Migration{{Name: "1_a", Hash: "AAAA"}, {Name: "2_b", Hash: "BBBB"}}
	for _, tc := range []struct {
		name       string
		connectors []string
		applied    map[string][]migrations.Applied
		want       []map[string]migrations.State // per local migration
	}{
		{"no engine", nil, nil, []map[string]migrations.State{{}, {}}},
		{"pending everywhere", []string{"x", "y"}, map[string][]migrations.Applied{"x": nil, "y": {{Version: "1", Hash: "initial"}}},
			[]map[string]migrations.State{{"x": "pending", "y": "pending"}, {"x": "pending", "y": "pending"}}},
		{"applied, changed, unknown", []string{"x", "y", "z"}, map[string][]migrations.Applied{
			"x": {{Version: "1_a", Hash: "AAAA"}, {Version: "2_b", Hash: "BBBB"}},
			"y": {{Version: "1_a", Hash: "OLD"}},
		}, []map[string]migrations.State{
			{"x": "applied", "y": "hash mismatch", "z": "unknown"},
			{"x": "applied", "y": "pending", "z": "unknown"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := migrations.Compare(local, tc.connectors, tc.applied)
			if len(rows) != len(local) {
				t.Fatalf("%d rows, want %d", len(rows), len(local))
			}
			for i, r := range rows {
				if r.Name != local[i].Name || r.Hash != local[i].Hash || !reflect.DeepEqual(r.Connectors, tc.want[i]) {
					t.Errorf("row %d = %+v, want %s %s %v", i, r, local[i].Name, local[i].Hash, tc.want[i])
				}
			}
		})
	}
}

func TestTargets(t *testing.T) {
	serve := func(body string) *migrations.Client {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) }))
		t.Cleanup(srv.Close)
		return &migrations.Client{BaseURL: srv.URL}
	}
	ctx := context.Background()
	if got, err := serve(`{"connectors":{"b":{},"a":{}}}`).Targets(ctx, nil); err != nil || !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("every connector: %v %v", got, err)
	}
	if got, err := serve(`{}`).Targets(ctx, []string{"c"}); err != nil || !reflect.DeepEqual(got, []string{"c"}) {
		t.Errorf("named: %v %v", got, err)
	}
	if _, err := serve(`{"connectors":{}}`).Targets(ctx, nil); !errors.Is(err, migrations.ErrNoConnectors) {
		t.Errorf("none: %v, want ErrNoConnectors", err)
	}
}

func TestOverview(t *testing.T) {
	local := []migrations.Migration{{Name: "1_a", Hash: "AAAA"}}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/status", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"connectors":{"y":{},"x":{}}}`)
	})
	mux.HandleFunc("/api/migrations/x", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `[{"vsn":"1_a","hash":"AAAA","applied_at":"2024-01-01T00:00:00Z"}]`)
	})
	mux.HandleFunc("/api/migrations/y", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "reading electric.migrations: down", http.StatusServiceUnavailable)
	})
	srv := httptest.NewServer(mux)
	ov := (&migrations.Client{BaseURL: srv.URL}).Overview(context.Background(), local)
	want := migrations.Overview{Connectors: []string{"x", "y"}, Rows: []migrations.Row{
		{Name: "1_a", Hash: "AAAA", Connectors: map[string]migrations.State{"x": migrations.StateApplied, "y": migrations.StateUnknown}},
	}}
	if !reflect.DeepEqual(ov, want) {
		t.Errorf("Overview = %+v, want %+v", ov, want)
	}
	srv.Close()
	ov = (&migrations.Client{BaseURL: srv.URL}).Overview(context.Background(), local)
	if ov.EngineErr == nil || len(ov.Connectors) != 0 || len(ov.Rows) != 1 || len(ov.Rows[0].Connectors) != 0 {
		t.Errorf("Overview without an engine = %+v, want the error and rows without connectors", ov)
	}
}
