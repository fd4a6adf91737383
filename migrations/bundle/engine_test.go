package bundle_test

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
	"github.com/electric-sql/electric-go/migrations/bundle"
)

// engineEnv is two Postgres with the same schema and the whole engine.
type engineEnv struct {
	t      *testing.T
	pgs    [2]*pgtest.Cluster
	wsPort int
}

func freePort(t *testing.T) int {
	p, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startEngine creates ddl on two Postgres and runs the engine streaming
// satelliteTables to Satellites.
func startEngine(t *testing.T, ddl, satelliteTables string) *engineEnv {
	t.Helper()
	satinterop.Dir(t)
	ee := &engineEnv{t: t}
	var conns []string
	for i := range ee.pgs {
		pg := pgtest.Start(t)
		pg.Exec(ddl + migrations.TableDDL)
		ee.pgs[i] = pg
		conns = append(conns, fmt.Sprintf("pg%d=%s", i+1, pg.URI()))
	}
	ee.wsPort = freePort(t)
	statusPort := freePort(t)
	dir := t.TempDir()
	env := map[string]string{
		"CONNECTORS":                strings.Join(conns, ";"),
		"ELECTRIC_HOST":             "127.0.0.1",
		"POSTGRES_REPLICATION_PORT": fmt.Sprint(freePort(t)),
		"STATUS_PORT":               fmt.Sprint(statusPort),
		"WEBSOCKET_PORT":            fmt.Sprint(ee.wsPort),
		"SATELLITE_TABLES":          satelliteTables,
		"OFFSET_STORAGE_FILE":       filepath.Join(dir, "state"),
		"MIGRATIONS_DIR":            filepath.Join(dir, "migrations"),
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
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/status", statusPort))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var st struct {
			Connectors map[string]bool `json:"connectors"`
		}
		return json.Unmarshal(b, &st) == nil && st.Connectors["pg1"] && st.Connectors["pg2"]
	})
	return ee
}

// readSchema reads the public tables of pg as the engine records them.
func readSchema(t *testing.T, pg *pgtest.Cluster) bundle.Schema {
	t.Helper()
	conn := pg.Connect()
	rows, err := conn.Query(context.Background(), `
SELECT n.nspname, c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       coalesce((SELECT k.ord FROM unnest(i.indkey) WITH ORDINALITY k(att, ord) WHERE k.att = a.attnum), 0)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var s bundle.Schema
	for rows.Next() {
		var schemaName, tbl string
		var c bundle.Column
		var num int16
		var pk int64
		if err := rows.Scan(&schemaName, &tbl, &num, &c.Name, &c.Type, &c.NotNull, &pk); err != nil {
			t.Fatal(err)
		}
		c.Num, c.PrimaryKey = int(num), int(pk)
		if n := len(s.Tables); n == 0 || s.Tables[n-1].Name != tbl {
			s.Tables = append(s.Tables, bundle.Table{Schema: schemaName, Name: tbl})
		}
		s.Tables[len(s.Tables)-1].Columns = append(s.Tables[len(s.Tables)-1].Columns, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

// rows returns sql's rows on pg, each as "a|b|<NULL>".
func (ee *engineEnv) rows(i int, sql string) string {
	return strings.Join(ee.pgs[i].Rows(ee.t, sql), "\n")
}

func (ee *engineEnv) waitRows(sql, want string) {
	ee.t.Helper()
	for i := range ee.pgs {
		var got string
		if !testkit.Until(60*time.Second, func() bool { got = ee.rows(i, sql); return got == want }) {
			ee.t.Fatalf("%s on pg%d:\n got %q\nwant %q", sql, i+1, got, want)
		}
	}
}
