package satellite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine"
	"github.com/electric-sql/electric-go/engine/config"
	"github.com/electric-sql/electric-go/internal/pgcluster"
	"github.com/electric-sql/electric-go/internal/pgtest"
	"github.com/electric-sql/electric-go/internal/satinterop"
	"github.com/electric-sql/electric-go/internal/testkit"
	"github.com/electric-sql/electric-go/migrations"
)

// The seed's e2e schema for Satellites (m_sanity_check and
// m_null_default_support), plus a table with the ownership column.
const pgSchema = `
CREATE TABLE public.items (id UUID PRIMARY KEY, content VARCHAR(64) NOT NULL DEFAULT '', content_b VARCHAR(64) DEFAULT '');
CREATE TABLE public.nulls (id UUID PRIMARY KEY, content VARCHAR(64) NOT NULL, content_text_null VARCHAR(64),
  content_text_null_default VARCHAR(64) DEFAULT '', intvalue_null INTEGER, intvalue_null_default INTEGER DEFAULT 10);
CREATE TABLE public.owned (id UUID PRIMARY KEY, value TEXT, electric_user_id VARCHAR(255));
CREATE TABLE public.checked (id UUID PRIMARY KEY, n INTEGER, s SMALLINT, v VARCHAR(3), t TEXT NOT NULL DEFAULT '');
` + migrations.TableDDL

// The same tables as the client's SQLite has them.
var clientTables = []satinterop.Table{
	{Name: "items", Columns: []satinterop.Column{{Name: "id", Type: "TEXT", PK: true},
		{Name: "content", Type: "TEXT NOT NULL DEFAULT ''"}, {Name: "content_b", Type: "TEXT DEFAULT ''"}}},
	{Name: "nulls", Columns: []satinterop.Column{{Name: "id", Type: "TEXT", PK: true}, {Name: "content", Type: "TEXT NOT NULL"},
		{Name: "content_text_null", Type: "TEXT"}, {Name: "content_text_null_default", Type: "TEXT DEFAULT ''"},
		{Name: "intvalue_null", Type: "INTEGER"}, {Name: "intvalue_null_default", Type: "INTEGER DEFAULT 10"}}},
	{Name: "owned", Columns: []satinterop.Column{{Name: "id", Type: "TEXT", PK: true}, {Name: "value", Type: "TEXT"},
		{Name: "electric_user_id", Type: "TEXT"}}},
}

// pgEnv is two Postgres and the whole engine in-process.
type pgEnv struct {
	t                  *testing.T
	pgs                map[string]*pgtest.Cluster
	wsPort, statusPort int
	migrationsDir      string // the engine's MIGRATIONS_DIR
}

func freePort(t *testing.T) int {
	p, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startEngine starts the engine; setup runs on it before Run.
func startEngine(t *testing.T, setup ...func(*engine.Engine)) *pgEnv {
	t.Helper()
	return startEngineWith(t, pgSchema, map[string]string{"SATELLITE_TABLES": "public.items,public.nulls,public.owned,public.checked"}, setup...)
}

// startEngineWith starts two Postgres with schemaSQL and the engine, its
// configuration changed by env ("" removes a variable).
// setup runs on the engine before Run.
func startEngineWith(t *testing.T, schemaSQL string, override map[string]string, setup ...func(*engine.Engine)) *pgEnv {
	t.Helper()
	satinterop.Dir(t)
	pe := &pgEnv{t: t, pgs: map[string]*pgtest.Cluster{}}
	var conns []string
	for _, n := range []string{"postgres_1", "postgres_2"} {
		pg := pgtest.Start(t)
		pg.Exec(schemaSQL)
		pe.pgs[n] = pg
		conns = append(conns, n+"="+pg.URI())
	}
	pe.wsPort, pe.statusPort = freePort(t), freePort(t)
	dir := t.TempDir()
	env := map[string]string{
		"CONNECTORS":                strings.Join(conns, ";"),
		"ELECTRIC_HOST":             "127.0.0.1",
		"POSTGRES_REPLICATION_PORT": fmt.Sprint(freePort(t)),
		"STATUS_PORT":               fmt.Sprint(pe.statusPort),
		"WEBSOCKET_PORT":            fmt.Sprint(pe.wsPort),
		"OFFSET_STORAGE_FILE":       filepath.Join(dir, "state"),
		"MIGRATIONS_DIR":            filepath.Join(dir, "migrations"),
	}
	pe.migrationsDir = env["MIGRATIONS_DIR"]
	for k, v := range override {
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	cfg, errs := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	logs := &testkit.SyncBuffer{}
	e, err := engine.New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	for _, fn := range setup {
		fn(e)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("engine stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("engine did not stop within 30s")
		}
		if t.Failed() {
			t.Logf("engine log:\n%s", logs.Tail(20000))
		}
	})
	testkit.EventuallyWithin(t, 60*time.Second, "engine ready", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/status", pe.statusPort))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var st struct {
			Connectors map[string]bool `json:"connectors"`
		}
		return json.Unmarshal(b, &st) == nil && st.Connectors["postgres_1"] && st.Connectors["postgres_2"]
	})
	return pe
}

// rows returns the rows of sql, each as "a|b|<NULL>".
func (pe *pgEnv) rows(name, sql string) string {
	pe.t.Helper()
	return strings.Join(pe.pgs[name].Rows(pe.t, sql), "\n")
}

// waitRows waits until sql gives want on every named Postgres.
func (pe *pgEnv) waitRows(sql, want string, names ...string) {
	pe.t.Helper()
	for _, n := range names {
		var got string
		if !testkit.Until(60*time.Second, func() bool { got = pe.rows(n, sql); return got == want }) {
			pe.t.Fatalf("%s on %s:\n got %q\nwant %q", sql, n, got, want)
		}
	}
}

func uid(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// Two Postgres, the engine and two published 0.4.3 clients (issue 5 item
// 5): inserts, updates and deletes both ways, NULL versus empty string and
// defaults (seed satellite_null_test), the ownership filter, and a client
// restart that resumes.
func TestInteropPostgres(t *testing.T) {
	pe := startEngine(t)
	dir := t.TempDir()
	a := satinterop.Start(t, "A", filepath.Join(dir, "a.db"))
	b := satinterop.Start(t, "B", filepath.Join(dir, "b.db"))
	a.Open(pe.wsPort, "alice", clientTables...)
	b.Open(pe.wsPort, "bob", clientTables...)
	both := []*satinterop.Client{a, b}
	clientsSee := func(sql, want string) {
		t.Helper()
		for _, c := range both {
			c.EventuallyRows(sql, want)
		}
	}
	const items = "SELECT id::text, content, content_b FROM items ORDER BY id"
	const itemsJS = "SELECT id, content, content_b FROM items ORDER BY id"

	// Postgres insert → both clients.
	pe.pgs["postgres_1"].Exec(fmt.Sprintf("INSERT INTO items (id, content) VALUES ('%s', 'from pg1')", uid(1)))
	clientsSee(itemsJS, fmt.Sprintf(`[{"content":"from pg1","content_b":"","id":"%s"}]`, uid(1)))

	// Client insert → both Postgres and the other client.
	a.Exec("INSERT INTO items (id, content, content_b) VALUES (?, ?, NULL)", uid(2), "from A")
	pe.waitRows(items, uid(1)+"|from pg1|\n"+uid(2)+"|from A|<NULL>", "postgres_1", "postgres_2")
	b.EventuallyRows(itemsJS, fmt.Sprintf(`[{"content":"from pg1","content_b":"","id":"%s"},{"content":"from A","content_b":null,"id":"%s"}]`, uid(1), uid(2)))

	// Updates both ways.
	b.Exec("UPDATE items SET content = 'edited by B' WHERE id = ?", uid(1))
	pe.waitRows(items, uid(1)+"|edited by B|\n"+uid(2)+"|from A|<NULL>", "postgres_1", "postgres_2")
	pe.pgs["postgres_2"].Exec(fmt.Sprintf("UPDATE items SET content_b = 'b from pg2' WHERE id = '%s'", uid(2)))
	clientsSee(itemsJS, fmt.Sprintf(`[{"content":"edited by B","content_b":"","id":"%s"},{"content":"from A","content_b":"b from pg2","id":"%s"}]`, uid(1), uid(2)))
	pe.waitRows(items, uid(1)+"|edited by B|\n"+uid(2)+"|from A|b from pg2", "postgres_1")

	// Deletes both ways.
	a.Exec("DELETE FROM items WHERE id = ?", uid(1))
	pe.waitRows(items, uid(2)+"|from A|b from pg2", "postgres_1", "postgres_2")
	b.EventuallyRows(itemsJS, fmt.Sprintf(`[{"content":"from A","content_b":"b from pg2","id":"%s"}]`, uid(2)))
	pe.pgs["postgres_1"].Exec(fmt.Sprintf("DELETE FROM items WHERE id = '%s'", uid(2)))
	clientsSee(itemsJS, `[]`)
	pe.waitRows(items, "", "postgres_2")

	// NULL versus '' and defaults.
	const nulls = "SELECT id::text, content, content_text_null, content_text_null_default, intvalue_null, intvalue_null_default FROM nulls ORDER BY id"
	pe.pgs["postgres_1"].Exec(fmt.Sprintf("INSERT INTO nulls (id, content) VALUES ('%s', 'c')", uid(10)))
	clientsSee("SELECT * FROM nulls", fmt.Sprintf(`[{"content":"c","content_text_null":null,"content_text_null_default":"","id":"%s","intvalue_null":null,"intvalue_null_default":10}]`, uid(10)))
	a.Exec("INSERT INTO nulls (id, content, content_text_null, content_text_null_default, intvalue_null, intvalue_null_default) VALUES (?, 'x', NULL, '', NULL, 10)", uid(11))
	b.Exec("INSERT INTO nulls (id, content, content_text_null, content_text_null_default) VALUES (?, '', '', NULL)", uid(12))
	pe.waitRows(nulls, uid(10)+"|c|<NULL>||<NULL>|10\n"+uid(11)+"|x|<NULL>||<NULL>|10\n"+uid(12)+"|||<NULL>|<NULL>|10",
		"postgres_1", "postgres_2")

	// Ownership: each user gets its own rows and the unowned ones.
	pe.pgs["postgres_2"].Exec(fmt.Sprintf(`INSERT INTO owned VALUES ('%s', 'a', 'alice'), ('%s', 'b', 'bob'), ('%s', 'n', NULL)`, uid(20), uid(21), uid(22)))
	a.EventuallyRows("SELECT id FROM owned ORDER BY id", fmt.Sprintf(`[{"id":"%s"},{"id":"%s"}]`, uid(20), uid(22)))
	b.EventuallyRows("SELECT id FROM owned ORDER BY id", fmt.Sprintf(`[{"id":"%s"},{"id":"%s"}]`, uid(21), uid(22)))
	b.Exec("INSERT INTO owned VALUES (?, 'fake', 'alice')", uid(23))
	b.Exec("INSERT INTO owned VALUES (?, 'mine', 'bob')", uid(24))
	pe.waitRows("SELECT id::text, value, electric_user_id FROM owned ORDER BY id",
		uid(20)+"|a|alice\n"+uid(21)+"|b|bob\n"+uid(22)+"|n|<NULL>\n"+uid(24)+"|mine|bob", "postgres_1")
	b.WaitAcked()

	// A restarted client resumes where it was.
	a.Exit()
	pe.pgs["postgres_1"].Exec(fmt.Sprintf("INSERT INTO items (id, content) VALUES ('%s', 'while A was down')", uid(3)))
	a = satinterop.Start(t, "A2", filepath.Join(dir, "a.db"))
	a.Open(pe.wsPort, "alice", clientTables...)
	a.EventuallyRows(itemsJS, fmt.Sprintf(`[{"content":"while A was down","content_b":"","id":"%s"}]`, uid(3)))
	a.Exec("INSERT INTO items (id, content) VALUES (?, 'after restart')", uid(4))
	pe.waitRows(items, uid(3)+"|while A was down|\n"+uid(4)+"|after restart|", "postgres_1", "postgres_2")
	b.EventuallyRows(itemsJS, fmt.Sprintf(`[{"content":"while A was down","content_b":"","id":"%s"},{"content":"after restart","content_b":"","id":"%s"}]`, uid(3), uid(4)))
}
