package migrations_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/migrations"
)

// fakeController records migrations instead of applying them.
type fakeController struct {
	mu      sync.Mutex
	applied []string
	refuse  error
}

func (f *fakeController) Origins() []string { return []string{"db_a"} }
func (f *fakeController) Latest(context.Context, string) (*migrations.Applied, error) {
	return nil, nil
}
func (f *fakeController) Applied(context.Context, string) ([]migrations.Applied, error) {
	return nil, nil
}
func (f *fakeController) Migrate(_ context.Context, _ string, m migrations.Migration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse != nil {
		return f.refuse
	}
	f.applied = append(f.applied, m.Name)
	return nil
}

// guardedEngine is the status server with the migrations API, as the engine
// mounts it, requiring token.
func guardedEngine(t *testing.T, token string) (*httptest.Server, *fakeController) {
	t.Helper()
	dir := t.TempDir()
	p := migrations.Path(dir, "1669232573_init", "")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("CREATE TABLE public.items (id text PRIMARY KEY);"), 0o644)
	ctrl := &fakeController{}
	s, err := status.New(status.Options{Provider: emptyProvider{}, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	h := &migrations.Handler{Dir: dir, Ctrl: ctrl}
	s.Handle("/api/migrations", h)
	s.Handle("/api/migrations/", h)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv, ctrl
}

type emptyProvider struct{}

func (emptyProvider) Status(context.Context) (status.Status, error) {
	return status.Status{Connectors: map[string]status.ConnectorState{"db_a": status.StateReady}, LogHealthy: true}, nil
}
func (emptyProvider) Connectors(context.Context) ([]status.Connector, error) { return nil, nil }
func (emptyProvider) Log(context.Context) (status.Log, error)                { return status.Log{}, nil }
func (emptyProvider) Sessions(context.Context) ([]status.Session, error)     { return nil, nil }

// The client sends its token; an auth refusal is ErrRefused, never mistaken
// for a refusal of the migration (both are 403s on the wire).
func TestClientToken(t *testing.T) {
	const token = "migrations-client-token-0123"
	srv, ctrl := guardedEngine(t, token)
	ctx := context.Background()

	for name, cl := range map[string]*migrations.Client{
		"no token":    {BaseURL: srv.URL},
		"wrong token": {BaseURL: srv.URL, Token: "not-the-token-not-the-token"},
	} {
		err := cl.Apply(ctx, "db_a", "1669232573_init")
		var ae *migrations.APIError
		if !errors.Is(err, status.ErrRefused) || errors.As(err, &ae) {
			t.Errorf("%s: Apply = %v, want ErrRefused and no APIError", name, err)
		}
		if _, err := cl.Statuses(ctx); !errors.Is(err, status.ErrRefused) {
			t.Errorf("%s: Statuses = %v, want ErrRefused", name, err)
		}
		// /api/status stays open: apply can still list the connectors.
		if cs, err := cl.Connectors(ctx); err != nil || len(cs) != 1 {
			t.Errorf("%s: Connectors = %v %v", name, cs, err)
		}
	}
	if len(ctrl.applied) != 0 {
		t.Fatalf("refused requests applied %v", ctrl.applied)
	}

	cl := &migrations.Client{BaseURL: srv.URL, Token: token}
	if err := cl.Apply(ctx, "db_a", "1669232573_init"); err != nil {
		t.Fatalf("Apply with the token: %v", err)
	}
	if _, err := cl.Statuses(ctx); err != nil {
		t.Fatalf("Statuses with the token: %v", err)
	}
	// A refusal of the migration itself is still an APIError.
	ctrl.mu.Lock()
	ctrl.refuse = migrations.ErrAlreadyMigrated
	ctrl.mu.Unlock()
	err := cl.Apply(ctx, "db_a", "1669232573_init")
	if !errors.Is(err, migrations.ErrAlreadyMigrated) || errors.Is(err, status.ErrRefused) {
		t.Fatalf("refused migration: %v, want ErrAlreadyMigrated", err)
	}
	if len(ctrl.applied) != 1 {
		t.Fatalf("applied %v, want the one authenticated migration", ctrl.applied)
	}
}
