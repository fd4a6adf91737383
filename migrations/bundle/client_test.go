package bundle_test

import (
	"context"
	"fmt"
	"math/rand"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/internal/satinterop"
	"github.com/electric-sql/electric-go/migrations/bundle"
)

func uid(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// Postgres after two migrations: items created, then a column renamed and
// two added.
const itemsV1 = `CREATE TABLE public.items (id uuid PRIMARY KEY, content text NOT NULL DEFAULT '', n integer);`
const itemsV2 = itemsV1 + `
ALTER TABLE public.items RENAME COLUMN content TO title;
ALTER TABLE public.items ADD COLUMN done boolean NOT NULL DEFAULT false, ADD COLUMN price double precision;
`

// The bundle built from the recorded schemas is accepted by the real 0.4.3
// client: its migrations run, the tables have the renamed and added
// columns, and writes flow both ways with the values' text unchanged.
func TestClientUsesBundle(t *testing.T) {
	ee := startEngine(t, itemsV2, "public.items")
	v2 := readSchema(t, ee.pgs[0])
	v1 := bundle.Schema{Tables: []bundle.Table{{Schema: "public", Name: "items", Columns: []bundle.Column{
		{Num: 1, Name: "id", Type: "uuid", NotNull: true, PrimaryKey: 1}, {Num: 2, Name: "content", Type: "text", NotNull: true},
		{Num: 3, Name: "n", Type: "integer"}}}}}
	ms := build(t, v1, v2)
	if len(ms[1].SatelliteBody) == 0 {
		t.Fatalf("no body for the second migration; recorded schema %+v", v2)
	}
	a := satinterop.Start(t, "A", filepath.Join(t.TempDir(), "a.db"))
	a.OpenBundle(ee.wsPort, "alice", ms)
	if g, w := a.RowsJSON("SELECT name, type, pk FROM pragma_table_info('items') ORDER BY cid"),
		`[{"name":"id","pk":1,"type":"TEXT"},{"name":"title","pk":0,"type":"TEXT"},{"name":"n","pk":0,"type":"INT"},{"name":"done","pk":0,"type":"TEXT"},{"name":"price","pk":0,"type":"REAL"}]`; g != w {
		t.Fatalf("client table:\n got %s\nwant %s", g, w)
	}
	if g := a.RowsJSON("SELECT name FROM _electric_migrations ORDER BY id"); g != `[{"name":"1666288242_init"},{"name":"1000000000_step"},{"name":"1000000001_step"}]` {
		t.Errorf("applied migrations: %s", g)
	}

	a.Exec("INSERT INTO items (id, title, n, done, price) VALUES (?, 'from A', 7, 'f', 0.1)", uid(1))
	const items = "SELECT id::text, title, n, done, price FROM items ORDER BY id"
	ee.waitRows(items, uid(1)+"|from A|7|false|0.1")
	ee.pgs[1].Exec(fmt.Sprintf("UPDATE items SET title = 'from pg2', done = true, price = 1e300 WHERE id = '%s'", uid(1)))
	ee.pgs[0].Exec(fmt.Sprintf("INSERT INTO items (id, title, n) VALUES ('%s', 'pg1', 2147483647)", uid(2)))
	a.EventuallyRows("SELECT id, title, n, done, price FROM items ORDER BY id",
		fmt.Sprintf(`[{"done":"t","id":"%s","n":7,"price":1e+300,"title":"from pg2"},{"done":"f","id":"%s","n":2147483647,"price":null,"title":"pg1"}]`, uid(1), uid(2)))
	a.Exec("DELETE FROM items WHERE id = ?", uid(1))
	ee.waitRows(items, uid(2)+"|pg1|2147483647|false|<NULL>")
}

// Point 3 of issue 15: Postgres deletes and re-creates hot rows while two
// clients update them. 0.4.3 turns a remote delete of a row it updated
// without ack yet into an insert of only the updated columns; the bundle
// must keep that from crashing the client (NOT NULL) or leaving a keyless
// row. A third client, whose guard trigger the test removes, shows the race
// was hit.
func TestClientMergeGuard(t *testing.T) {
	const ddl = `CREATE TABLE public.hot (id uuid PRIMARY KEY, a text NOT NULL DEFAULT '', b text NOT NULL DEFAULT '', n integer NOT NULL DEFAULT 0);`
	ee := startEngine(t, ddl, "public.hot")
	ms := build(t, readSchema(t, ee.pgs[0]))
	// The control's bundle: no guard, and no NOT NULL on the key (with it
	// the control would crash at the first hit, as a client with the
	// Electric CLI's NOT NULL columns does).
	var unguarded []string
	for _, s := range ms[0].SatelliteBody {
		if !strings.Contains(s, "guard_main_hot") {
			unguarded = append(unguarded, strings.ReplaceAll(s, `"id" TEXT NOT NULL`, `"id" TEXT`))
		}
	}
	dir := t.TempDir()
	var clients []*satinterop.Client
	for _, n := range []string{"A", "B", "C"} {
		c := satinterop.Start(t, n, filepath.Join(dir, n+".db"))
		if n == "C" {
			c.OpenBundle(ee.wsPort, "user"+n, []bundle.Migration{bundle.NewMigration(ms[0].Name, "unguarded", unguarded)})
		} else {
			c.OpenBundle(ee.wsPort, "user"+n, ms)
		}
		clients = append(clients, c)
	}
	control := clients[2]

	const hot = 8
	for k := 0; k < hot; k++ {
		ee.pgs[0].Exec(fmt.Sprintf("INSERT INTO hot (id, a, b) VALUES ('%s', 'seed', 'seed')", uid(k)))
	}
	for _, c := range clients {
		c.EventuallyRows("SELECT count(*) AS n FROM hot", fmt.Sprintf(`[{"n":%d}]`, hot))
	}

	// Postgres side: each of the two deletes and re-creates random hot rows.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i := range ee.pgs {
		conn := ee.pgs[i].Connect()
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(i)))
			for j := 0; ctx.Err() == nil; j++ {
				id := uid(r.Intn(hot))
				var err error
				if j%2 == 0 {
					_, err = conn.Exec(ctx, "DELETE FROM hot WHERE id = $1", id)
				} else {
					_, err = conn.Exec(ctx, "INSERT INTO hot (id, a, b) VALUES ($1, $2, $2) ON CONFLICT (id) DO UPDATE SET a = excluded.a",
						id, fmt.Sprintf("pg%d-%d", i+1, j))
				}
				if err != nil && ctx.Err() == nil {
					errs <- fmt.Errorf("pg%d: %w", i+1, err)
					return
				}
				time.Sleep(time.Duration(20+r.Intn(60)) * time.Millisecond)
			}
		}(i)
	}
	// Client side: updates of one column each (the merge keeps only those).
	r := rand.New(rand.NewSource(99))
	for j := 0; j < 80; j++ {
		for ci, c := range clients {
			col := []string{"b", "n"}[r.Intn(2)]
			val := any(fmt.Sprintf("c%d-%d", ci, j))
			if col == "n" {
				val = j
			}
			c.Exec(fmt.Sprintf("UPDATE hot SET %s = ? WHERE id = ?", col), val, uid(r.Intn(hot)))
		}
		time.Sleep(15 * time.Millisecond)
	}
	stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// 0.4.3 enqueues one transaction per snapshot and otherwise polls every
	// 2 s: a write that changes nothing triggers a snapshot, so the backlog
	// drains in seconds.
	for _, c := range clients {
		for end := time.Now().Add(2 * time.Minute); fmt.Sprint(c.Meta()["pending"]) != "0"; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("%s: local writes not acked: %v", c.Name, c.Meta())
			}
			c.Exec("UPDATE hot SET n = n WHERE id IS NULL AND 0")
		}
	}
	const pgRows = "SELECT id::text, a, b, n FROM hot ORDER BY id"
	var want string
	ok := false
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if want = ee.rows(0, pgRows); want == ee.rows(1, pgRows) {
			ok = true
			break
		}
	}
	if !ok {
		t.Fatalf("the two Postgres differ:\npg1 %s\npg2 %s", ee.rows(0, pgRows), ee.rows(1, pgRows))
	}
	n := len(ee.pgs[0].Rows(t, pgRows))
	for _, c := range clients[:2] {
		if g := c.RowsJSON("SELECT count(*) AS n FROM hot WHERE id IS NULL"); g != `[{"n":0}]` {
			t.Errorf("%s holds keyless rows: %s", c.Name, g)
		}
		c.EventuallyRows("SELECT count(*) AS n FROM hot WHERE id IS NOT NULL", fmt.Sprintf(`[{"n":%d}]`, n))
	}
	keyless := control.RowsJSON("SELECT count(*) AS n FROM hot WHERE id IS NULL")
	t.Logf("Postgres rows: %d; keyless rows in the client without guard: %s", n, keyless)
	if keyless == `[{"n":0}]` {
		t.Error("the client without guard holds no keyless row: the test did not hit the client's merge")
	}
}
