package bundle_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/electric-sql/electric-go/migrations/bundle"
)

const notNull = true

func col(num int, name, typ string, pk int, nn ...bool) bundle.Column {
	return bundle.Column{Num: num, Name: name, Type: typ, PrimaryKey: pk, NotNull: pk > 0 || len(nn) > 0 && nn[0]}
}

func table(name string, cols ...bundle.Column) bundle.Table {
	return bundle.Table{Schema: "public", Name: name, Columns: cols}
}

func schema(ts ...bundle.Table) bundle.Schema { return bundle.Schema{Tables: ts} }

func TestBodyRefuses(t *testing.T) {
	items := table("items", col(1, "id", "uuid", 1), col(2, "v", "text", 0))
	other := items
	other.Schema = "other"
	cases := []struct {
		name       string
		prev, next bundle.Schema
		want       string
	}{
		{"no primary key", schema(), schema(table("t", col(1, "v", "text", 0))), "no primary key"},
		{"upper-case name", schema(), schema(table("Items", col(1, "id", "uuid", 1))), `table name "Items"`},
		{"quote in a column", schema(), schema(table("t", col(1, "id", "uuid", 1), col(2, `a"b`, "text", 0))), `column name "a\"b"`},
		{"client prefix", schema(), schema(table("_electric_x", col(1, "id", "uuid", 1))), "prefixes _electric"},
		{"sqlite prefix", schema(), schema(table("t", col(1, "sqlite_x", "uuid", 1))), "prefixes _electric"},
		{"too long", schema(), schema(table(strings.Repeat("a", 64), col(1, "id", "uuid", 1))), "at most 63"},
		{"same name in two schemas", schema(), schema(items, other), "unique across schemas"},
		{"type change", schema(items), schema(table("items", col(1, "id", "uuid", 1), col(2, "v", "integer", 0))), "type changed from text to integer"},
		{"key column added", schema(items), schema(table("items", col(1, "id", "uuid", 1), col(2, "v", "text", 0), col(3, "k", "text", 2))), "primary key change"},
		{"key column dropped", schema(table("items", col(1, "id", "uuid", 1), col(2, "v", "text", 2))), schema(table("items", col(1, "id", "uuid", 1))), "primary key change"},
		{"key moved", schema(items), schema(table("items", col(1, "id", "uuid", 1), col(2, "v", "text", 2))), "primary key change"},
		{"columns out of order", schema(), schema(table("t", col(2, "id", "uuid", 1), col(1, "v", "text", 0))), "ascending"},
		{"duplicate column", schema(), schema(table("t", col(1, "id", "uuid", 1), col(2, "id", "text", 0))), "appears twice"},
		{"key gap", schema(), schema(table("t", col(1, "id", "uuid", 2))), "not 1..1"},
		{"no type", schema(), schema(table("t", col(1, "id", " ", 1))), "no type"},
		{"bad previous schema", schema(table("t", col(1, "v", "text", 0))), schema(), "previous schema"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, err := bundle.Body(c.prev, c.next)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Body = %q, %v; want an error containing %q", body, err, c.want)
			}
		})
	}
	_, err := bundle.Body(schema(), schema(table("t", col(1, "v", "text", 0))))
	if !errors.Is(err, bundle.ErrUnsupported) {
		t.Errorf("no primary key: %v does not wrap ErrUnsupported", err)
	}
}

func TestBodyNothingToDo(t *testing.T) {
	v1 := schema(table("items", col(1, "id", "uuid", 1), col(2, "v", "character varying(3)", 0, notNull)),
		bundle.Table{Schema: "electric", Name: "migrations", Columns: []bundle.Column{{Num: 1, Name: "name", Type: "text"}}})
	// A type change SQLite does not see, a NOT NULL dropped: same client schema.
	v2 := schema(table("items", col(1, "id", "uuid", 1), col(2, "v", "character varying(10)", 0)))
	for _, step := range [][2]bundle.Schema{{v1, v1}, {v1, v2}, {schema(), schema()}} {
		body, err := bundle.Body(step[0], step[1])
		if err != nil || len(body) != 0 {
			t.Errorf("Body = %q, %v; want nothing", body, err)
		}
	}
	m := bundle.NewMigration("1_empty", "empty", nil)
	if m.SatelliteBody == nil || m.Check() != nil {
		t.Errorf("empty migration %+v: %v", m, m.Check())
	}
}

func TestBodyDeterministic(t *testing.T) {
	next := schema(table("b", col(1, "id", "uuid", 1)), table("a", col(1, "id", "uuid", 1)), table("c", col(1, "id", "uuid", 1)))
	first, err := bundle.Body(schema(), next)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first[0], `CREATE TABLE "a"`) {
		t.Errorf("tables not in name order: %s", first[0])
	}
	for i := 0; i < 20; i++ {
		again, _ := bundle.Body(schema(), next)
		if strings.Join(again, "\n") != strings.Join(first, "\n") {
			t.Fatal("Body is not deterministic")
		}
	}
}

func TestWrite(t *testing.T) {
	body, err := bundle.Body(schema(), schema(table("items", col(1, "id", "uuid", 1), col(2, "v", "text", 0))))
	if err != nil {
		t.Fatal(err)
	}
	ms := []bundle.Migration{bundle.NewMigration("1669232573_init", "init <a> & b", body), bundle.NewMigration("1669232574_none", "none", nil)}
	dir := filepath.Join(t.TempDir(), "dist", "electric")
	if err := bundle.Write(dir, ms); err != nil {
		t.Fatal(err)
	}
	j1, _ := os.ReadFile(filepath.Join(dir, "migrations.json"))
	js1, _ := os.ReadFile(filepath.Join(dir, "index.js"))
	if err := bundle.Write(dir, ms); err != nil {
		t.Fatal(err)
	}
	j2, _ := os.ReadFile(filepath.Join(dir, "migrations.json"))
	js2, _ := os.ReadFile(filepath.Join(dir, "index.js"))
	if string(j1) != string(j2) || string(js1) != string(js2) {
		t.Error("Write is not deterministic")
	}
	if !strings.HasPrefix(string(j1), "{\n  \"migrations\": [\n    {\n      \"encoding\": \"escaped\",\n      \"name\": \"1669232573_init\",\n      \"title\": \"init <a> & b\",") {
		t.Errorf("migrations.json:\n%s", j1)
	}
	if !strings.Contains(string(js1), "\nexport default {\n  \"migrations\": [") || !strings.Contains(string(j1), `"satellite_body": []`) {
		t.Errorf("index.js:\n%s", js1)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("left behind: %v", entries)
	}
	bad := []bundle.Migration{{Encoding: "escaped", Name: "x-y", Sha256: ms[0].Sha256}}
	if err := bundle.Write(dir, bad); err == nil {
		t.Error("a name the client refuses was written")
	}
	if err := bundle.Write(dir, []bundle.Migration{ms[0], ms[0]}); err == nil {
		t.Error("a duplicate migration was written")
	}
}
