package bundle_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/electric-sql/electric-go/internal/satinterop"
	"github.com/electric-sql/electric-go/migrations/bundle"
)

type probe struct {
	SQL  string `json:"sql"`
	Args []any  `json:"args,omitempty"`
	All  bool   `json:"all,omitempty"`
}

type result struct {
	Rows    []map[string]any `json:"rows"`
	Changes int              `json:"changes"`
	Error   string           `json:"error"`
}

// runSQLite applies ms to a fresh SQLite database as the 0.4.3 client does
// (testdata/sqlite.mjs, the client's better-sqlite3), then runs the probes.
func runSQLite(t *testing.T, ms []bundle.Migration, probes ...probe) []result {
	t.Helper()
	dir := satinterop.Dir(t)
	in, _ := json.Marshal(map[string]any{"migrations": ms, "probes": probes})
	script, err := filepath.Abs("testdata/sqlite.mjs")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", script)
	cmd.Env = append(os.Environ(), "SATINTEROP_DIR="+dir)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sqlite.mjs: %v\n%s", err, stderr.String())
	}
	var r struct {
		OK        bool     `json:"ok"`
		Error     string   `json:"error"`
		Migration string   `json:"migration"`
		Results   []result `json:"results"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("sqlite.mjs: %v: %s", err, out)
	}
	if !r.OK {
		t.Fatalf("SQLite refused migration %s: %s", r.Migration, r.Error)
	}
	return r.Results
}

func rowsJSON(r result) string {
	if r.Error != "" {
		return "error: " + r.Error
	}
	b, _ := json.Marshal(r.Rows)
	return string(b)
}

// build makes one migration per schema step, from the empty schema.
func build(t *testing.T, steps ...bundle.Schema) []bundle.Migration {
	t.Helper()
	var ms []bundle.Migration
	prev := bundle.Schema{}
	for i, s := range steps {
		body, err := bundle.Body(prev, s)
		if err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
		name := "100000000" + string(rune('0'+i)) + "_step"
		ms = append(ms, bundle.NewMigration(name, "step", body))
		prev = s
	}
	return ms
}

func columnsOf(table string) probe {
	return probe{SQL: "SELECT name, type, \"notnull\", pk FROM pragma_table_info('" + table + "') ORDER BY cid", All: true}
}

func oplogProbe() probe {
	return probe{SQL: "SELECT tablename, optype, primaryKey, newRow, oldRow FROM _electric_oplog ORDER BY rowid", All: true}
}

func TestSQLiteSchemaSteps(t *testing.T) {
	v1 := schema(table("items", col(1, "id", "uuid", 1), col(2, "content", "character varying(64)", 0, notNull),
		col(3, "n", "integer", 0)))
	v2 := schema(table("items", col(1, "id", "uuid", 1), col(2, "body", "character varying(64)", 0, notNull),
		col(3, "n", "integer", 0), col(4, "price", "double precision", 0)),
		table("tags", col(1, "item", "uuid", 1), col(2, "tag", "text", 2)))
	// A swap of two names, a dropped column and a dropped table.
	v3 := schema(table("items", col(1, "id", "uuid", 1), col(3, "price", "integer", 0), col(4, "n", "double precision", 0)))
	got := runSQLite(t, build(t, v1, v2, v3),
		columnsOf("items"),
		probe{SQL: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_electric%' ESCAPE '\\' ORDER BY name", All: true},
		probe{SQL: "SELECT * FROM _electric_trigger_settings ORDER BY tablename", All: true},
		probe{SQL: "INSERT INTO items (id, price, n) VALUES ('a', 2, 1.5)"},
		probe{SQL: "UPDATE items SET n = 2.5 WHERE id = 'a'"},
		probe{SQL: "DELETE FROM items WHERE id = 'a'"},
		oplogProbe(),
	)
	want := []string{
		`[{"name":"id","notnull":1,"pk":1,"type":"TEXT"},{"name":"price","notnull":0,"pk":0,"type":"INT"},{"name":"n","notnull":0,"pk":0,"type":"REAL"}]`,
		`[{"name":"items"}]`,
		`[{"flag":1,"tablename":"main.items"}]`,
	}
	for i, w := range want {
		if g := rowsJSON(got[i]); g != w {
			t.Errorf("probe %d:\n got %s\nwant %s", i, g, w)
		}
	}
	for i := 3; i < 6; i++ {
		if got[i].Error != "" || got[i].Changes != 1 {
			t.Errorf("probe %d: %+v", i, got[i])
		}
	}
	wantOplog := `[{"newRow":"{\"id\":\"a\",\"price\":2,\"n\":1.5}","oldRow":null,"optype":"INSERT","primaryKey":"{\"id\":\"a\"}","tablename":"items"},` +
		`{"newRow":"{\"id\":\"a\",\"price\":2,\"n\":2.5}","oldRow":"{\"id\":\"a\",\"price\":2,\"n\":1.5}","optype":"UPDATE","primaryKey":"{\"id\":\"a\"}","tablename":"items"},` +
		`{"newRow":null,"oldRow":"{\"id\":\"a\",\"price\":2,\"n\":2.5}","optype":"DELETE","primaryKey":"{\"id\":\"a\"}","tablename":"items"}]`
	if g := rowsJSON(got[6]); g != wantOplog {
		t.Errorf("oplog:\n got %s\nwant %s", g, wantOplog)
	}
}

// The client's merge of a remote delete with an unacked local update inserts
// only the updated columns while the trigger flag is off (client notes, U):
// the guard drops that row; with the flag on (an app write) a keyless insert
// still fails, and a key cannot be changed.
func TestSQLiteKeyGuard(t *testing.T) {
	v1 := schema(table("items", col(1, "id", "uuid", 1), col(2, "content", "text", 0, notNull), col(3, "n", "integer", 0)),
		table("pairs", col(1, "a", "integer", 1), col(2, "b", "text", 2), col(3, "v", "text", 0, notNull)))
	off := func(tbl string) probe {
		return probe{SQL: "UPDATE _electric_trigger_settings SET flag = 0 WHERE tablename = 'main." + tbl + "'"}
	}
	got := runSQLite(t, build(t, v1),
		off("items"), off("pairs"),
		// What _applyTransaction runs for the merged partial row.
		probe{SQL: "INSERT INTO items (n) VALUES (5) ON CONFLICT DO UPDATE SET n = excluded.n"},
		probe{SQL: "INSERT INTO pairs (a, v) VALUES (1, 'x') ON CONFLICT DO UPDATE SET v = excluded.v"},
		// A keyed partial upsert must not trip a NOT NULL on content.
		probe{SQL: "INSERT INTO items (id, n) VALUES ('k', 7) ON CONFLICT DO UPDATE SET n = excluded.n"},
		probe{SQL: "SELECT * FROM items", All: true},
		probe{SQL: "SELECT count(*) AS n FROM pairs", All: true},
		probe{SQL: "SELECT count(*) AS n FROM _electric_oplog", All: true},
		probe{SQL: "UPDATE _electric_trigger_settings SET flag = 1"},
		probe{SQL: "INSERT INTO items (content) VALUES ('app')"},
		probe{SQL: "UPDATE items SET id = 'other' WHERE id = 'k'"},
	)
	for i := 0; i < 5; i++ {
		if got[i].Error != "" {
			t.Fatalf("probe %d: %s", i, got[i].Error)
		}
	}
	if got[2].Changes != 0 || got[3].Changes != 0 {
		t.Errorf("keyless inserts were not dropped: %+v %+v", got[2], got[3])
	}
	if g, w := rowsJSON(got[5]), `[{"content":null,"id":"k","n":7}]`; g != w {
		t.Errorf("items: got %s, want %s", g, w)
	}
	if g := rowsJSON(got[6]); g != `[{"n":0}]` {
		t.Errorf("pairs: %s", g)
	}
	if g := rowsJSON(got[7]); g != `[{"n":0}]` {
		t.Errorf("server rows entered the oplog: %s", g)
	}
	if !strings.Contains(got[9].Error, "NOT NULL") {
		t.Errorf("an app insert without key: %+v, want a NOT NULL error", got[9])
	}
	if !strings.Contains(got[10].Error, "primary key") {
		t.Errorf("a key change: %+v, want it refused", got[10])
	}
}

// Every Postgres type maps to a declared type whose affinity keeps the text
// the engine sends (int8 beyond 2^53, numeric digits, booleans, json).
func TestSQLiteValuesKeepTheirText(t *testing.T) {
	v1 := schema(table("vals", col(1, "id", "uuid", 1), col(2, "i8", "bigint", 0), col(3, "num", "numeric(30,10)", 0),
		col(4, "b", "boolean", 0), col(5, "ts", "timestamp with time zone", 0), col(6, "j", "jsonb", 0),
		col(7, "f", "double precision", 0), col(8, "i4", "integer", 0)))
	got := runSQLite(t, build(t, v1),
		probe{SQL: "INSERT INTO vals VALUES (?, ?, ?, ?, ?, ?, ?, ?)", Args: []any{"u", "9007199254740993", "12345678901234567890.1234567890",
			"t", "2024-01-02 03:04:05.123456+00", `{"a": [1, 2]}`, "0.30000000000000004", "42"}},
		probe{SQL: "SELECT newRow FROM _electric_oplog", All: true},
	)
	want := `[{"newRow":"{\"id\":\"u\",\"i8\":\"9007199254740993\",\"num\":\"12345678901234567890.1234567890\",\"b\":\"t\",` +
		`\"ts\":\"2024-01-02 03:04:05.123456+00\",\"j\":\"{\\\"a\\\": [1, 2]}\",\"f\":0.30000000000000004,\"i4\":42}"}]`
	if g := rowsJSON(got[1]); g != want {
		t.Errorf("oplog row:\n got %s\nwant %s", g, want)
	}
}
