package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/engine"
	"github.com/electric-sql/electric-go/engine/config"
	"github.com/electric-sql/electric-go/internal/pgcluster"
	"github.com/electric-sql/electric-go/internal/pgtest"
	"github.com/electric-sql/electric-go/internal/testkit"
	"github.com/electric-sql/electric-go/internal/validate"
	"github.com/electric-sql/electric-go/migrations"
)

// cluster is a test setup: N Postgres and one engine in-process.
type cluster struct {
	t      testing.TB
	pgs    map[string]*pgtest.Cluster
	names  []string
	cfg    config.Config
	cancel context.CancelFunc
	done   chan error
	logBuf *testkit.SyncBuffer
	env    map[string]string
	child  *exec.Cmd      // the engine as a child process (startChild)
	eng    *engine.Engine // the engine started in-process (start)
}

// initSQL is the seed's e2e init script (spec §4.1), minus what the engine
// now does itself (publication, slot, replica identity).
const initSQL = `
CREATE TABLE public.entries (id UUID PRIMARY KEY, content VARCHAR(64) NOT NULL, content_b VARCHAR(64));
CREATE TABLE public.entries_default (id UUID PRIMARY KEY, content VARCHAR(64) NOT NULL, content_b VARCHAR(64));
ALTER TABLE public.entries_default REPLICA IDENTITY DEFAULT;
CREATE TABLE public.owned_entries (id UUID PRIMARY KEY, electric_user_id VARCHAR(255) NOT NULL, content VARCHAR(64) NOT NULL);
` + migrations.TableDDL

// newCluster starts n Postgres named postgres_1..n, each initialised with
// sql, without the engine.
func newCluster(t testing.TB, n int, sql string) *cluster {
	t.Helper()
	c := &cluster{t: t, pgs: map[string]*pgtest.Cluster{}}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("postgres_%d", i)
		pg := pgtest.Start(t)
		if sql != "" {
			pg.Exec(sql)
		}
		c.pgs[name] = pg
		c.names = append(c.names, name)
	}
	return c
}

// env is the engine's configuration for state under dir; the ports are
// chosen once per cluster so that a restarted engine is where the
// subscriptions expect it.
func (c *cluster) envFor(dir string) map[string]string {
	t := c.t
	if c.env == nil {
		var conns []string
		for _, n := range c.names {
			conns = append(conns, n+"="+c.pgs[n].URI())
		}
		ports, err := pgcluster.FreePorts(3)
		if err != nil {
			t.Fatal(err)
		}
		c.env = map[string]string{
			"CONNECTORS":                strings.Join(conns, ";"),
			"ELECTRIC_HOST":             "127.0.0.1",
			"POSTGRES_REPLICATION_PORT": fmt.Sprint(ports[0]),
			"STATUS_PORT":               fmt.Sprint(ports[1]),
			"WEBSOCKET_PORT":            fmt.Sprint(ports[2]),
			"LOG_LEVEL":                 "info",
		}
	}
	env := map[string]string{
		"OFFSET_STORAGE_FILE": filepath.Join(dir, "state"),
		"MIGRATIONS_DIR":      filepath.Join(dir, "migrations"),
	}
	for k, v := range c.env {
		env[k] = v
	}
	return env
}

// start runs the engine in-process with state under dir.
func (c *cluster) start(dir string) {
	t := c.t
	t.Helper()
	env := c.envFor(dir)
	cfg, errs := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	c.cfg = cfg
	if c.logBuf == nil {
		c.logBuf = newLogBuffer()
	}
	log := slog.New(slog.NewTextHandler(c.logBuf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e, err := engine.New(cfg, log)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	c.eng = e
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.done = make(chan error, 1)
	go func() { c.done <- e.Run(ctx) }()
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			t.Logf("engine log:\n%s", c.logBuf.Tail(20000))
		}
	})
	c.waitReady()
}

func (c *cluster) stop() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	select {
	case err := <-c.done:
		if err != nil {
			c.t.Errorf("engine stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		c.t.Errorf("engine did not stop within 30s")
	}
	c.cancel = nil
}

func (c *cluster) statusURL() string { return fmt.Sprintf("http://127.0.0.1:%d", c.cfg.StatusPort) }

// waitReady polls /api/status until every connector is ready.
func (c *cluster) waitReady() {
	c.t.Helper()
	want := map[string]any{}
	for _, n := range c.names {
		want[n] = true
	}
	var last string
	c.eventually(60*time.Second, func() bool {
		resp, err := http.Get(c.statusURL() + "/api/status")
		if err != nil {
			last = err.Error()
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		last = string(b)
		var st struct {
			Connectors map[string]any `json:"connectors"`
			Vaxine     bool           `json:"vaxine"`
		}
		if json.Unmarshal(b, &st) != nil || !st.Vaxine {
			return false
		}
		for n := range want {
			if st.Connectors[n] != true {
				return false
			}
		}
		return true
	}, func() string { return "engine not ready: " + last })
}

// eventually fails the test with msg() unless cond holds within d; msg is
// only called then.
func (c *cluster) eventually(d time.Duration, cond func() bool, msg func() string) {
	c.t.Helper()
	if !testkit.Until(d, cond) {
		c.t.Fatalf("after %v: %s", d, msg())
	}
}

func (c *cluster) exec(name, sql string, args ...any) {
	c.t.Helper()
	c.pgs[name].Exec(sql, args...)
}

// query returns the rows of sql on one Postgres as strings, one per row.
func (c *cluster) query(name, sql string) []string {
	c.t.Helper()
	return c.pgs[name].Rows(c.t, sql)
}

// waitRows waits until sql returns exactly want on the named Postgres.
func (c *cluster) waitRows(name, sql string, want ...string) {
	c.t.Helper()
	var got []string
	c.eventually(30*time.Second, func() bool {
		got = c.query(name, sql)
		return strings.Join(got, "\n") == strings.Join(want, "\n")
	}, func() string { return fmt.Sprintf("%s on %s: got %q, want %q", sql, name, got, want) })
}

// newLogBuffer is the engine's log: kept for the failure report and the
// checks, and shown live on stderr when ENGINE_LOG is set.
func newLogBuffer() *testkit.SyncBuffer {
	b := &testkit.SyncBuffer{}
	if os.Getenv("ENGINE_LOG") != "" {
		b.Tee = os.Stderr
	}
	return b
}

// waitAll waits until sql returns exactly want on every Postgres.
func (c *cluster) waitAll(sql string, want ...string) {
	c.t.Helper()
	for _, n := range c.names {
		c.waitRows(n, sql, want...)
	}
}

// setSubscription enables or disables the engine's subscription on one
// Postgres, as the seed's scenarios did (the subscription is named after the
// connector).
func (c *cluster) setSubscription(name string, enabled bool) {
	c.t.Helper()
	verb := "DISABLE"
	if enabled {
		verb = "ENABLE"
	}
	c.exec(name, fmt.Sprintf("ALTER SUBSCRIPTION %s %s", pgx.Identifier{name}.Sanitize(), verb))
	if !enabled {
		// DISABLE returns before the apply worker exits: wait for it to go,
		// so nothing the test writes next is applied before it re-enables.
		c.eventually(30*time.Second, func() bool {
			return len(c.query(name, "SELECT 1 FROM pg_stat_subscription WHERE subname = '"+name+"' AND pid IS NOT NULL")) == 0
		}, func() string { return "apply worker of " + name + " still running after DISABLE" })
	}
}

// logHead is the engine's txlog head, read from the status API.
func (c *cluster) logHead() uint64 {
	c.t.Helper()
	resp, err := http.Get(c.statusURL() + "/api/log")
	if err != nil {
		c.t.Fatalf("GET /api/log: %v", err)
	}
	defer resp.Body.Close()
	var l struct {
		Head uint64 `json:"head"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		c.t.Fatalf("GET /api/log: %v", err)
	}
	return l.Head
}

// waitLogHead waits until the log holds at least n entries.
func (c *cluster) waitLogHead(n uint64) {
	c.t.Helper()
	var h uint64
	c.eventually(30*time.Second, func() bool { h = c.logHead(); return h >= n },
		func() string { return fmt.Sprintf("log head %d, want >= %d", h, n) })
}

// checkNoApplyErrors fails the test when a subscription's apply worker
// reported an error (pg_stat_subscription_stats) or the server log has any
// ERROR, FATAL or PANIC line, except those matching one of allowed (a crash
// test expects the subscriber to lose its publisher).
func (c *cluster) checkNoApplyErrors(allowed ...string) {
	c.t.Helper()
	for _, n := range c.names {
		if len(allowed) == 0 {
			for _, r := range c.query(n, "SELECT subname, apply_error_count, sync_error_count FROM pg_stat_subscription_stats") {
				if !strings.HasSuffix(r, "|0|0") {
					c.t.Errorf("%s: subscription errors (subname|apply|sync): %s", n, r)
				}
			}
		}
		b, err := os.ReadFile(c.pgs[n].LogFile)
		if err != nil {
			c.t.Errorf("%s: reading the server log: %v", n, err)
			continue
		}
	lines:
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, "ERROR:") && !strings.Contains(line, "FATAL:") && !strings.Contains(line, "PANIC:") {
				continue
			}
			for _, a := range allowed {
				if strings.Contains(line, a) {
					continue lines
				}
			}
			c.t.Errorf("%s: error in the server log: %s", n, line)
		}
	}
}

// dump is an ordered text dump of a table on one Postgres, one line per row.
func (c *cluster) dump(name, table string) []string {
	c.t.Helper()
	return c.query(name, "SELECT t::text FROM "+table+" t ORDER BY 1")
}

// assertSame fails with the differing rows when table differs between the
// Postgres.
func (c *cluster) assertSame(table string) {
	c.t.Helper()
	first := c.dump(c.names[0], table)
	for _, n := range c.names[1:] {
		if d := validate.Diff(first, c.dump(n, table)); d != "" {
			c.t.Errorf("%s differs between %s and %s:\n%s", table, c.names[0], n, d)
		}
	}
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}

// checkEngineLog fails the test on any ERROR the engine logged, as the
// seed's e2e suite failed on any "error" in Electric's log.
func (c *cluster) checkEngineLog() {
	c.t.Helper()
	if c.logBuf == nil {
		return
	}
	for _, line := range strings.Split(c.logBuf.String(), "\n") {
		if strings.Contains(line, "level=ERROR") {
			c.t.Errorf("engine logged an error: %s", line)
		}
	}
}
