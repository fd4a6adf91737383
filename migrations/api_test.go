package migrations_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/internal/pgtest"
	"github.com/electric-sql/electric-go/migrations"
)

// directController applies migrations straight to Postgres, without the
// engine's pause and resume: enough to test the HTTP contract.
type directController struct {
	conns map[string]*pgx.Conn
	order []string
}

func (c *directController) Origins() []string { return c.order }
func (c *directController) Latest(ctx context.Context, o string) (*migrations.Applied, error) {
	l, err := migrations.AppliedList(ctx, c.conns[o])
	if err != nil || len(l) == 0 {
		return nil, err
	}
	return &l[0], nil
}
func (c *directController) Applied(ctx context.Context, o string) ([]migrations.Applied, error) {
	return migrations.AppliedList(ctx, c.conns[o])
}
func (c *directController) Migrate(ctx context.Context, o string, m migrations.Migration) error {
	return migrations.Apply(ctx, c.conns[o], m)
}

func TestAPI(t *testing.T) {
	pg := pgtest.Start(t)
	pg.Exec(migrations.TableDDL)
	dir := t.TempDir()
	p := migrations.Path(dir, "1669232573_init", "")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("CREATE TABLE public.items (id text PRIMARY KEY);"), 0o644)
	ctrl := &directController{conns: map[string]*pgx.Conn{"postgres_1": pg.Connect()}, order: []string{"postgres_1"}}
	srv := httptest.NewServer(&migrations.Handler{Dir: dir, Ctrl: ctrl})
	defer srv.Close()
	ctx := context.Background()
	cl := &migrations.Client{BaseURL: srv.URL}

	st, err := cl.Statuses(ctx)
	if err != nil || len(st) != 1 || st[0] == nil || st[0].Vsn != "1" || st[0].Hash != "initial" || st[0].Origin != "postgres_1" {
		t.Fatalf("statuses %+v %v", st, err)
	}
	if err := cl.Apply(ctx, "postgres_1", "1669232573_init"); err != nil {
		t.Fatal(err)
	}
	st, _ = cl.Statuses(ctx)
	if st[0].Vsn != "1669232573_init" || len(st[0].Hash) != 32 {
		t.Fatalf("after apply %+v", st[0])
	}
	var apiErr *migrations.APIError
	if err := cl.Apply(ctx, "postgres_1", "1669232573_init"); !errors.As(err, &apiErr) || apiErr.Status != 403 || !strings.Contains(apiErr.Term, ":already_migrated") {
		t.Fatalf("re-apply: %v", err)
	}
	if err := cl.Apply(ctx, "postgres_1", "3"); !errors.As(err, &apiErr) || apiErr.Term != ":vsn_not_found" {
		t.Fatalf("missing vsn: %v", err)
	}
	if err := cl.Apply(ctx, "nope", "3"); !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Fatalf("unknown origin: %v", err)
	}
	resp, err := http.Post(srv.URL+"/api/migrations/postgres_1", "application/json", strings.NewReader(`{}`))
	if err != nil || resp.StatusCode != 404 {
		t.Fatalf("POST: %v %v", resp, err)
	}
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/api/migrations/postgres_1", strings.NewReader(`{"vsn":"a b"}`))
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("bad vsn: %v %v", resp, err)
	}
	resp, err = http.Get(srv.URL + "/api/migrations/postgres_1")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET one: %v %v", resp, err)
	}

	// The ?all extension: every applied row, newest first.
	all, err := cl.Applied(ctx, "postgres_1")
	if err != nil || len(all) != 2 || all[0].Version != "1669232573_init" || all[1].Version != "1" || all[1].Hash != "initial" {
		t.Fatalf("applied list %+v %v", all, err)
	}
}

func TestClientWithoutEngine(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	cl := &migrations.Client{BaseURL: base}
	ctx := context.Background()
	for name, err := range map[string]error{
		"Apply":      cl.Apply(ctx, "a", "1_x"),
		"Connectors": func() error { _, err := cl.Connectors(ctx); return err }(),
		"Statuses":   func() error { _, err := cl.Statuses(ctx); return err }(),
		"Applied":    func() error { _, err := cl.Applied(ctx, "a"); return err }(),
	} {
		if err == nil || !strings.Contains(err.Error(), "is 'electric serve' running?") {
			t.Errorf("%s without an engine: %v", name, err)
		}
	}
}

func TestAPIErrorExplains(t *testing.T) {
	for _, c := range []struct {
		err  migrations.APIError
		want string
	}{
		{migrations.APIError{Status: 403, Term: "{:error, :already_migrated}", Message: "x: already migrated"}, "already applied (x: already migrated)"},
		{migrations.APIError{Status: 403, Term: "{:error, :already_migrated_bad_md5}"}, "already applied, but the file changed since (hash mismatch)"},
		{migrations.APIError{Status: 403, Term: ":vsn_not_found"}, "the engine has no such migration in its MIGRATIONS_DIR"},
		{migrations.APIError{Status: 403, Term: "{:error, :bad_migration_stms}", Message: "syntax"}, "a statement failed; nothing was applied (syntax)"},
		{migrations.APIError{Status: 403, Term: "{:invalid_state, :init}"}, "the connector is not ready (starting, down, or migrating)"},
		{migrations.APIError{Status: 404, Term: "Not found"}, "the engine has no such connector"},
		{migrations.APIError{Status: 403, Term: "{:error, :migration_failed}", Message: "boom"}, "boom"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("%s: %q, want %q", c.err.Term, got, c.want)
		}
	}
}
