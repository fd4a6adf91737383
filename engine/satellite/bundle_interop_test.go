package satellite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/internal/satinterop"
	"github.com/electric-sql/electric-go/internal/testkit"
	"github.com/electric-sql/electric-go/migrations"
)

// Migration 1: a table, and one with every type the round trip covers.
const migItems = `CREATE TABLE public.items (id uuid PRIMARY KEY, content text NOT NULL DEFAULT '');
CREATE TABLE public.typed (id uuid PRIMARY KEY, t text, v varchar(20), i2 int2, i4 int4, i8 int8, f8 float8,
  n numeric, b bool, d date, ts timestamp, tz timestamptz, j json, jb jsonb);`

// Migration 2: an added column.
const migNote = `ALTER TABLE public.items ADD COLUMN note text;`

// typedCols are the columns of public.typed after id.
var typedCols = []string{"t", "v", "i2", "i4", "i8", "f8", "n", "b", "d", "ts", "tz", "j", "jb"}

// The engine builds the client bundle from the migrations it applied, and
// the Satellite schema advances only by publish (issue 15 points 2 and 5):
// a client on the first bundle works while the first schema is published,
// keeps working when the second migration is applied, is restarted on the
// second bundle, and gets the new column's values once the second schema is
// published; two clients and two Postgres converge on every type.
func TestInteropBundleAndPublish(t *testing.T) {
	pe := startEngineWith(t, migrations.TableDDL, map[string]string{"SATELLITE_TABLES": ""})
	ctx := context.Background()
	cl := &migrations.Client{BaseURL: fmt.Sprintf("http://127.0.0.1:%d", pe.statusPort)}
	migDir := pe.migrationsDir
	apply := func(name, sql string) {
		t.Helper()
		p := migrations.Path(migDir, name, "")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(sql), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{"postgres_1", "postgres_2"} {
			if err := cl.ApplyWhenReady(ctx, c, name, 60*time.Second); err != nil {
				t.Fatalf("apply %s on %s: %v", name, c, err)
			}
		}
	}
	publish := func(name string) {
		t.Helper()
		if p, err := cl.Publish(ctx, name); err != nil || p.Name != name {
			t.Fatalf("publish %s: %+v %v", name, p, err)
		}
	}

	if _, err := cl.Bundle(ctx); err == nil || !strings.Contains(err.Error(), "no migration has a recorded schema") {
		t.Fatalf("bundle before any migration: %v", err)
	}
	apply("1700000001_items", migItems)
	b1, err := cl.Bundle(ctx)
	if err != nil || len(b1) != 1 {
		t.Fatalf("first bundle: %+v %v", b1, err)
	}
	if _, err := cl.Publish(ctx, "1700000009_nope"); err == nil {
		t.Fatal("published a migration the engine never applied")
	}
	publish("1700000001_items")

	dir := t.TempDir()
	a := satinterop.Start(t, "A", filepath.Join(dir, "a.db"))
	a.OpenBundle(pe.wsPort, "alice", b1)
	const itemsPG = "SELECT id::text, content, coalesce(note, '<none>') FROM items ORDER BY id"
	pe.pgs["postgres_1"].Exec(fmt.Sprintf("INSERT INTO items (id, content) VALUES ('%s', 'from pg1')", uid(1)))
	a.EventuallyRows("SELECT id, content FROM items ORDER BY id", fmt.Sprintf(`[{"content":"from pg1","id":"%s"}]`, uid(1)))
	a.Exec("INSERT INTO items (id, content) VALUES (?, 'from A')", uid(2))
	pe.waitRows("SELECT id::text, content FROM items ORDER BY id", uid(1)+"|from pg1\n"+uid(2)+"|from A", "postgres_1", "postgres_2")

	// The second migration: the bundle grows, its first entry is unchanged,
	// and the client on the first bundle keeps working (it is not sent the
	// new column).
	apply("1700000002_note", migNote)
	b2, err := cl.Bundle(ctx)
	if err != nil || len(b2) != 2 || !reflect.DeepEqual(b2[0], b1[0]) || b2[1].Name != "1700000002_note" {
		t.Fatalf("second bundle: %+v %v", b2, err)
	}
	pe.pgs["postgres_2"].Exec(fmt.Sprintf("INSERT INTO items (id, content, note) VALUES ('%s', 'from pg2', 'note 3')", uid(3)))
	pe.pgs["postgres_1"].Exec(fmt.Sprintf("UPDATE items SET note = 'note 1' WHERE id = '%s'", uid(1)))
	a.EventuallyRows("SELECT id, content FROM items ORDER BY id", fmt.Sprintf(
		`[{"content":"from pg1","id":"%s"},{"content":"from A","id":"%s"},{"content":"from pg2","id":"%s"}]`, uid(1), uid(2), uid(3)))
	a.Exec("UPDATE items SET content = 'edited by A' WHERE id = ?", uid(2))
	pe.waitRows(itemsPG, uid(1)+"|from pg1|note 1\n"+uid(2)+"|edited by A|<none>\n"+uid(3)+"|from pg2|note 3", "postgres_1", "postgres_2")
	a.WaitAcked()

	// Restarted on the second bundle: it has the column, still unserved.
	a.Exit()
	a = satinterop.Start(t, "A2", filepath.Join(dir, "a.db"))
	a.OpenBundle(pe.wsPort, "alice", b2)
	a.Exec("INSERT INTO items (id, content) VALUES (?, 'A on bundle 2')", uid(4))
	pe.waitRows("SELECT count(*) FROM items", "4", "postgres_1", "postgres_2")
	a.EventuallyRows("SELECT count(*) AS n, count(note) AS notes FROM items", `[{"n":4,"notes":0}]`)

	// Published: the client gets the values of the column it gained, for
	// rows it already holds, with no new write.
	publish("1700000002_note")
	a.EventuallyRows("SELECT id, content, note FROM items ORDER BY id", fmt.Sprintf(
		`[{"content":"from pg1","id":"%s","note":"note 1"},{"content":"edited by A","id":"%s","note":null},{"content":"from pg2","id":"%s","note":"note 3"},{"content":"A on bundle 2","id":"%s","note":null}]`,
		uid(1), uid(2), uid(3), uid(4)))
	a.Exec("UPDATE items SET note = 'note from A' WHERE id = ?", uid(4))
	pe.waitRows("SELECT coalesce(note, '<none>') FROM items WHERE id = '"+uid(4)+"'", "note from A", "postgres_1", "postgres_2")

	// Every type, both ways, with a second client on the full bundle.
	b := satinterop.Start(t, "B", filepath.Join(dir, "b.db"))
	b.OpenBundle(pe.wsPort, "bob", b2)
	pe.pgs["postgres_1"].Exec(fmt.Sprintf(`INSERT INTO typed VALUES
	  ('%s', 'text é ''q'' \', 'varchar', -32768, 2147483647, 9007199254740993, 0.1, 12345678901234567890.123456789,
	   true, '2024-02-29', '2024-02-29 12:34:56.789012', '2024-02-29 12:34:56.789012+02', '{"a": [1, 2.5, "x"]}', '{"b": {"c": null}}'),
	  ('%s', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`, uid(100), uid(101)))
	a.Exec(`INSERT INTO typed (id, t, v, i2, i4, i8, f8, n, b, d, ts, tz, j, jb) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		uid(102), "from A", "vA", 32767, -2147483648, "-9223372036854775808", 1.5e300, "-0.000000000000000001",
		"f", "1999-12-31", "1999-12-31 23:59:59", "1999-12-31 23:59:59+00", `[1, {"x": "y"}]`, `{"k": [true, null]}`)
	b.Exec(`INSERT INTO typed (id, i8, n) VALUES (?, ?, ?)`, uid(103), "9223372036854775807", "0")
	sel := "SELECT id::text, " + strings.Join(typedCols, "::text, ") + "::text FROM typed ORDER BY id"
	var want string
	testkit.EventuallyWithin(t, 60*time.Second, "typed rows on both Postgres", func() bool {
		want = pe.rows("postgres_1", sel)
		return strings.Count(want, "\n") == 3 && want == pe.rows("postgres_2", sel)
	})
	// The values the clients hold are Postgres' text forms (numbers for
	// the numeric SQLite columns), unchanged: int8 beyond 2^53 included.
	clientSel := "SELECT id, " + strings.Join(typedCols, ", ") + " FROM typed ORDER BY id"
	for _, c := range []*satinterop.Client{a, b} {
		testkit.EventuallyWithin(t, 60*time.Second, c.Name+" holds the typed rows as Postgres", func() bool {
			return sameTyped(t, c.Query(clientSel), want)
		})
	}
	pg100 := pe.rows("postgres_1", "SELECT i8::text, n::text, f8::text FROM typed WHERE id = '"+uid(100)+"'")
	if pg100 != "9007199254740993|12345678901234567890.123456789|0.1" {
		t.Fatalf("Postgres row from Postgres: %s", pg100)
	}
	pg102 := pe.rows("postgres_2", "SELECT i8::text, n::text, b::text, f8::text FROM typed WHERE id = '"+uid(102)+"'")
	if pg102 != "-9223372036854775808|-0.000000000000000001|false|1.5e+300" {
		t.Fatalf("client row in Postgres: %s", pg102)
	}
}

// sameTyped reports whether the client's typed rows hold the values of
// Postgres' rows (pgRows: "id|t|…" lines, "<NULL>" for NULL): text equal,
// numbers equal to the text's number, timestamptz the same instant.
func sameTyped(t *testing.T, rows []map[string]any, pgRows string) bool {
	lines := strings.Split(pgRows, "\n")
	if len(rows) != len(lines) {
		return false
	}
	for i, line := range lines {
		vals := strings.Split(line, "|") // no value of the test holds '|'
		cols := append([]string{"id"}, typedCols...)
		if len(vals) != len(cols) {
			return false
		}
		for j, c := range cols {
			pv, cv := vals[j], rows[i][c]
			switch x := cv.(type) {
			case nil:
				if pv != "<NULL>" {
					return false
				}
			case float64:
				var f float64
				if err := json.Unmarshal([]byte(pv), &f); err != nil || f != x {
					return false
				}
			case string:
				if x == pv {
					continue
				}
				if c == "tz" && sameInstant(x, pv) {
					continue
				}
				if c == "b" && (x == "f" || x == "false") == (pv == "false") && (x == "t" || x == "true") == (pv == "true") {
					continue
				}
				t.Logf("row %d column %s: client %q, Postgres %q", i, c, x, pv)
				return false
			default:
				return false
			}
		}
	}
	return true
}

func sameInstant(a, b string) bool {
	const layout = "2006-01-02 15:04:05.999999-07"
	ta, err1 := time.Parse(layout, a)
	tb, err2 := time.Parse(layout, b)
	return err1 == nil && err2 == nil && ta.Equal(tb)
}
