package migrations

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/internal/fuzzseed"
	"github.com/electric-sql/electric-go/migrations/bundle"
)

// recController answers from memory and records what the handler asks.
type recController struct {
	migrated []Migration
	asked    []string // origins passed to Latest, Applied or Migrate
	book     *Book    // the Satellite side
}

func (c *recController) Bundle(context.Context) ([]bundle.Migration, error) { return c.book.Bundle() }
func (c *recController) Published(context.Context) (PublishedStatus, error) {
	p := PublishedStatus{Tables: []string{}}
	if r := c.book.Published(); r != nil {
		p.Name = r.Name
	}
	return p, nil
}
func (c *recController) Publish(ctx context.Context, name string) (PublishedStatus, error) {
	if err := c.book.Publish(name, 7, time.Unix(1669232600, 0)); err != nil {
		return PublishedStatus{}, err
	}
	return c.Published(ctx)
}

func (c *recController) Origins() []string { return []string{"postgres_1", "db_b"} }
func (c *recController) Latest(_ context.Context, o string) (*Applied, error) {
	c.asked = append(c.asked, o)
	if o == "db_b" {
		return nil, nil
	}
	return &Applied{Version: "1669232573_init", Hash: "ABC", AppliedAt: time.Unix(1669232600, 0)}, nil
}
func (c *recController) Applied(_ context.Context, o string) ([]Applied, error) {
	c.asked = append(c.asked, o)
	return nil, nil
}
func (c *recController) Migrate(_ context.Context, o string, m Migration) error {
	c.asked = append(c.asked, o)
	c.migrated = append(c.migrated, m)
	if m.Name == "1669232574_again" {
		return ErrAlreadyMigrated
	}
	return nil
}

// FuzzMigrationsAPI sends any method, path and body to the migrations API
// (names, connector names and bodies are what a client controls). The
// handler never panics; it answers only with the API's codes; it asks the
// controller only about configured connectors, and migrates only a valid
// name loaded from inside the migrations directory; a 200 to a GET is JSON.
func FuzzMigrationsAPI(f *testing.F) {
	seed := func(name, method, path, body string) fuzzseed.Seed {
		return fuzzseed.Seed{Name: name, Args: []any{method, path, body}}
	}
	fuzzseed.Sync(f, []fuzzseed.Seed{
		seed("statuses", "GET", "/api/migrations", ""),
		seed("status-one", "GET", "/api/migrations/postgres_1", ""),
		seed("applied-all", "GET", "/api/migrations/db_b?all", ""),
		seed("apply", "PUT", "/api/migrations/postgres_1", `{"vsn":"1669232573_init"}`),
		seed("apply-again", "PUT", "/api/migrations/db_b", `{"vsn":"1669232574_again"}`),
		seed("apply-missing", "PUT", "/api/migrations/postgres_1", `{"vsn":"3"}`),
		seed("bad-vsn", "PUT", "/api/migrations/postgres_1", `{"vsn":"a b"}`),
		seed("traversal-vsn", "PUT", "/api/migrations/postgres_1", `{"vsn":"../../etc/passwd"}`),
		seed("traversal-origin", "GET", "/api/migrations/..%2F..%2Fetc", ""),
		seed("unknown-origin", "PUT", "/api/migrations/nope", `{"vsn":"1669232573_init"}`),
		seed("post", "POST", "/api/migrations/postgres_1", `{}`),
		seed("not-json", "PUT", "/api/migrations/postgres_1", `{"vsn":`),
		seed("bundle", "GET", "/api/migrations/bundle", ""),
		seed("published", "GET", "/api/migrations/published", ""),
		seed("publish", "PUT", "/api/migrations/published", `{"vsn":"1669232573_init"}`),
		seed("publish-unknown", "PUT", "/api/migrations/published", `{"vsn":"1669232574_again"}`),
		seed("publish-bad", "PUT", "/api/migrations/published/", `{"vsn":"../x"}`),
	})
	dir := f.TempDir()
	for _, name := range []string{"1669232573_init", "1669232574_again"} {
		p := Path(dir, name, "")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("CREATE TABLE public.items (id text PRIMARY KEY);"), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, method, target, body string) {
		req, err := http.NewRequest(method, "http://engine"+target, strings.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		ctrl := &recController{book: &Book{}}
		ctrl.book.Add("1669232573_init", "init", "postgres_1", bundle.Schema{Tables: []bundle.Table{{Schema: "public", Name: "items",
			Columns: []bundle.Column{{Num: 1, Name: "id", Type: "text", NotNull: true, PrimaryKey: 1}}}}}, time.Unix(1669232600, 0))
		rec := httptest.NewRecorder()
		(&Handler{Dir: dir, Ctrl: ctrl}).ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusForbidden, http.StatusServiceUnavailable,
			http.StatusConflict, http.StatusMethodNotAllowed:
		default:
			t.Fatalf("%s %s answered %d", method, target, rec.Code)
		}
		for _, o := range ctrl.asked {
			if o != "postgres_1" && o != "db_b" {
				t.Fatalf("controller asked about connector %q", o)
			}
		}
		for _, m := range ctrl.migrated {
			rel, err := filepath.Rel(dir, m.Path)
			if !ValidName(m.Name) || err != nil || strings.HasPrefix(rel, "..") || m.Hash != Hash([]byte(m.SQL)) {
				t.Fatalf("migrated %+v (dir %s)", m, dir)
			}
		}
		if p := ctrl.book.Published(); p != nil && p.Name != "1669232573_init" {
			t.Fatalf("published %q, which was never recorded", p.Name)
		}
		if method == http.MethodGet && rec.Code == http.StatusOK && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("GET %s answered 200 with %q", target, rec.Body.String())
		}
		if rec.Code == http.StatusForbidden && !strings.HasPrefix(rec.Body.String(), ":") && !strings.HasPrefix(rec.Body.String(), "{:") {
			t.Fatalf("403 without the seed's term: %q", rec.Body.String())
		}
	})
}
