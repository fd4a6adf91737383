package migrations_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/migrations"
	"github.com/electric-sql/electric-go/migrations/bundle"
)

func itemsSchema(extra ...bundle.Column) bundle.Schema {
	cols := []bundle.Column{
		{Num: 1, Name: "id", Type: "uuid", NotNull: true, PrimaryKey: 1},
		{Num: 2, Name: "content", Type: "text"},
	}
	return bundle.Schema{Tables: []bundle.Table{{Schema: "public", Name: "items", Columns: append(cols, extra...)}}}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestSchemaOfKeepsKeyedTablesByAttnum(t *testing.T) {
	got := migrations.SchemaOf([]schema.Table{
		{Schema: "public", Name: "items", PrimaryKey: []string{"b", "a"}, Columns: []schema.Column{
			{Name: "a", TypeName: "integer", NotNull: true, Num: 1},
			{Name: "c", TypeName: "character varying(3)", Num: 3},
			{Name: "b", TypeName: "text", NotNull: true, Num: 4},
		}},
		{Schema: "public", Name: "nokey", Columns: []schema.Column{{Name: "x", TypeName: "text", Num: 1}}},
	})
	want := bundle.Schema{Tables: []bundle.Table{{Schema: "public", Name: "items", Columns: []bundle.Column{
		{Num: 1, Name: "a", Type: "integer", NotNull: true, PrimaryKey: 2},
		{Num: 3, Name: "c", Type: "character varying(3)"},
		{Num: 4, Name: "b", Type: "text", NotNull: true, PrimaryKey: 1},
	}}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestBookRecordsEachMigrationOnce(t *testing.T) {
	b := &migrations.Book{}
	if _, err := b.Bundle(); !errors.Is(err, migrations.ErrNothingRecorded) {
		t.Fatalf("empty book: %v", err)
	}
	s1 := itemsSchema()
	s2 := itemsSchema(bundle.Column{Num: 3, Name: "done", Type: "boolean"})
	if added, _ := b.Add("1_items", "items", "db_a", s1, t0); !added {
		t.Fatal("first record not added")
	}
	if added, _ := b.Add("2_done", "done", "db_a", s2, t0); !added {
		t.Fatal("second record not added")
	}
	want1, _ := bundle.Body(bundle.Schema{}, s1)
	want2, _ := bundle.Body(s1, s2)
	ms, err := b.Bundle()
	if err != nil || len(ms) != 2 || ms[0].Name != "1_items" || ms[1].Name != "2_done" ||
		!reflect.DeepEqual(ms[0].SatelliteBody, want1) || !reflect.DeepEqual(ms[1].SatelliteBody, want2) {
		t.Fatalf("bundle %+v %v", ms, err)
	}
	// Another connector applying the same migration changes nothing, and
	// says when its schema differs.
	if added, differs := b.Add("1_items", "items", "db_b", s1, t0); added || differs {
		t.Fatalf("same schema again: added %v differs %v", added, differs)
	}
	if added, differs := b.Add("2_done", "done", "db_b", s1, t0); added || !differs {
		t.Fatalf("other schema: added %v differs %v", added, differs)
	}
	// Stored and loaded, the entries are byte for byte the same.
	b2, err := migrations.LoadBook(b.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	ms2, _ := b2.Bundle()
	if !reflect.DeepEqual(ms, ms2) {
		t.Fatalf("after load %+v", ms2)
	}
	if _, err := migrations.LoadBook([]byte("{")); err == nil {
		t.Fatal("a corrupt book loaded")
	}
}

func TestBookStopsAtWhatTheClientCannotFollow(t *testing.T) {
	b := &migrations.Book{}
	b.Add("1_items", "items", "db_a", itemsSchema(), t0)
	retyped := itemsSchema()
	retyped.Tables[0].Columns[1].Type = "integer" // a type change
	b.Add("2_retype", "retype", "db_a", retyped, t0)
	b.Add("3_more", "more", "db_a", itemsSchema(bundle.Column{Num: 3, Name: "x", Type: "text"}), t0)
	_, err := b.Bundle()
	if !errors.Is(err, migrations.ErrClientCannotFollow) || !strings.Contains(err.Error(), "2_retype") {
		t.Fatalf("bundle: %v", err)
	}
	if r := b.Find("3_more"); r.Error == "" || !strings.Contains(r.Error, "2_retype") {
		t.Fatalf("a migration after it: %+v", r)
	}
	for _, n := range []string{"2_retype", "3_more"} {
		if err := b.Publish(n, 1, t0); !errors.Is(err, migrations.ErrClientCannotFollow) {
			t.Fatalf("publish %s: %v", n, err)
		}
	}
	if err := b.Publish("1_items", 1, t0); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("9_unknown", 1, t0); !errors.Is(err, migrations.ErrNotRecorded) {
		t.Fatalf("publish unknown: %v", err)
	}
}

func TestBookPublishes(t *testing.T) {
	b := &migrations.Book{}
	s1 := itemsSchema()
	s2 := itemsSchema(bundle.Column{Num: 3, Name: "done", Type: "boolean"})
	other := bundle.Table{Schema: "public", Name: "other", Columns: []bundle.Column{{Num: 1, Name: "id", Type: "text", PrimaryKey: 1}}}
	s3 := s2
	s3.Tables = append(append([]bundle.Table(nil), s2.Tables...), other)
	b.Add("1_items", "", "db_a", s1, t0)
	b.Add("2_done", "", "db_a", s2, t0)
	b.Add("3_other", "", "db_a", s3, t0)
	if b.Published() != nil {
		t.Fatal("published before any publish")
	}
	b.Publish("1_items", 10, t0)
	b.Publish("3_other", 20, t0)
	b.Publish("3_other", 30, t0) // again: no new publish
	if len(b.Publishes) != 2 {
		t.Fatalf("publishes %+v", b.Publishes)
	}
	if p := b.Published(); p == nil || p.Name != "3_other" {
		t.Fatalf("published %+v", p)
	}
	cases := []struct {
		after uint64
		want  []string
	}{
		{5, []string{"public.items", "public.other"}},  // before any publish: everything is gained
		{10, []string{"public.items", "public.other"}}, // may have left before the publish at 10
		{11, []string{"public.items", "public.other"}}, // had 1_items: gains done and other
		{21, nil}, // had 3_other already
	}
	for _, c := range cases {
		if got := migrations.Gained(b.PublishedBefore(c.after), b.Published().Schema); !reflect.DeepEqual(got, c.want) {
			t.Errorf("after %d: gained %v, want %v", c.after, got, c.want)
		}
	}
	if got := migrations.Gained(s2, s1); got != nil {
		t.Errorf("fewer columns gain nothing: %v", got)
	}
}

func TestTitle(t *testing.T) {
	if got := migrations.Title(migrations.Migration{Name: "1_x", SQL: "-- Electric migration 1_x\n-- title: Add items\n"}); got != "Add items" {
		t.Errorf("title %q", got)
	}
	if got := migrations.Title(migrations.Migration{Name: "1_x", SQL: "CREATE TABLE a();"}); got != "1_x" {
		t.Errorf("no title line: %q", got)
	}
}

// satController serves the Satellite routes from a Book.
type satController struct {
	directController
	book *migrations.Book
}

func (c *satController) Bundle(context.Context) ([]bundle.Migration, error) { return c.book.Bundle() }
func (c *satController) Published(context.Context) (migrations.PublishedStatus, error) {
	p := migrations.PublishedStatus{Tables: []string{}}
	if r := c.book.Published(); r != nil {
		p.Name = r.Name
		for _, t := range r.Schema.Tables {
			p.Tables = append(p.Tables, t.Schema+"."+t.Name)
		}
	}
	return p, nil
}
func (c *satController) Publish(ctx context.Context, name string) (migrations.PublishedStatus, error) {
	if err := c.book.Publish(name, 1, t0); err != nil {
		return migrations.PublishedStatus{}, err
	}
	return c.Published(ctx)
}

func TestSatelliteRoutes(t *testing.T) {
	ctrl := &satController{book: &migrations.Book{}}
	srv := httptest.NewServer(&migrations.Handler{Ctrl: ctrl})
	defer srv.Close()
	ctx := context.Background()
	cl := &migrations.Client{BaseURL: srv.URL}

	if _, err := cl.Bundle(ctx); err == nil || !strings.Contains(err.Error(), "409") || !strings.Contains(err.Error(), "no migration has a recorded schema") {
		t.Fatalf("empty bundle: %v", err)
	}
	ctrl.book.Add("1669232573_items", "items", "db_a", itemsSchema(), t0)
	ms, err := cl.Bundle(ctx)
	if err != nil || len(ms) != 1 || ms[0].Name != "1669232573_items" || ms[0].Encoding != "escaped" || len(ms[0].Sha256) != 64 {
		t.Fatalf("bundle %+v %v", ms, err)
	}
	dir := t.TempDir()
	if err := bundle.Write(dir, ms); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "migrations.json")); err != nil || !strings.Contains(string(b), `"1669232573_items"`) {
		t.Fatalf("migrations.json %s %v", b, err)
	}
	if p, err := cl.Published(ctx); err != nil || p.Name != "" {
		t.Fatalf("published before publish: %+v %v", p, err)
	}
	if _, err := cl.Publish(ctx, "2_nope"); err == nil || !strings.Contains(err.Error(), "no recorded schema") {
		t.Fatalf("publish unknown: %v", err)
	}
	if p, err := cl.Publish(ctx, "1669232573_items"); err != nil || p.Name != "1669232573_items" || !reflect.DeepEqual(p.Tables, []string{"public.items"}) {
		t.Fatalf("publish: %+v %v", p, err)
	}
	for _, bad := range []string{`{"vsn":"a b"}`, `{`, `{"vsn":""}`} {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/api/migrations/published", strings.NewReader(bad))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("PUT %s: %v %v", bad, resp, err)
		}
		resp.Body.Close()
	}
	resp, err := http.Post(srv.URL+"/api/migrations/bundle", "application/json", strings.NewReader(`{}`))
	if err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST bundle: %v %v", resp, err)
	}
	resp.Body.Close()

	// A controller without the Satellite side: the routes do not exist.
	plain := httptest.NewServer(&migrations.Handler{Ctrl: &directController{}})
	defer plain.Close()
	if _, err := (&migrations.Client{BaseURL: plain.URL}).Bundle(ctx); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("no satellite controller: %v", err)
	}
}
