package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/migrations"
)

// The seed's migrations/ scenarios (spec §10.2) on stock Postgres 15: every
// Postgres starts with only electric.migrations and its ('1', 'initial') row.

const (
	migInit      = "1669232573_init"
	migAddColumn = "1669232634_add_column"
)

// The seed's m_sanity_check migrations, with text ids so tests can name rows.
const (
	migInitSQL = `CREATE SCHEMA IF NOT EXISTS public;
CREATE TABLE public.items (id TEXT PRIMARY KEY, content VARCHAR(64) DEFAULT '' NOT NULL, content_b VARCHAR(64) DEFAULT '');
ALTER TABLE public.items REPLICA IDENTITY FULL;
`
	migAddColumnSQL = `ALTER TABLE public.items ADD COLUMN added_column TEXT;
`
)

// writeMigration writes MIGRATIONS_DIR/<name>/postgres.sql under dir (the
// harness's MIGRATIONS_DIR is <dir>/migrations).
func writeMigration(t *testing.T, dir, name, sql string) {
	t.Helper()
	p := filepath.Join(dir, "migrations", name, "postgres.sql")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(sql), 0o644); err != nil {
		t.Fatal(err)
	}
}

// migPut is PUT /api/migrations/<origin> {"vsn": vsn}: status and body.
func (c *cluster) migPut(origin, vsn string) (int, string) {
	c.t.Helper()
	body, _ := json.Marshal(map[string]string{"vsn": vsn})
	req, err := http.NewRequest(http.MethodPut, c.statusURL()+"/api/migrations/"+origin, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		c.t.Fatalf("PUT /api/migrations/%s: %v", origin, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// migrate applies vsn to origin and requires 200 ok.
func (c *cluster) migrate(origin, vsn string) {
	c.t.Helper()
	if code, body := c.migPut(origin, vsn); code != http.StatusOK || body != "ok" {
		c.t.Fatalf("PUT %s {vsn: %s} = %d %q, want 200 ok", origin, vsn, code, body)
	}
}

// migGet is GET path on the status port, decoded as JSON.
func (c *cluster) migGet(path string, v any) {
	c.t.Helper()
	resp, err := http.Get(c.statusURL() + path)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		c.t.Fatalf("GET %s = %d (%s) %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		c.t.Fatalf("GET %s: %v in %s", path, err, b)
	}
}

// connectorStatus is the connector's entry of /api/status (true, false or
// "migration").
func (c *cluster) connectorStatus(name string) any {
	c.t.Helper()
	var st struct {
		Connectors map[string]any `json:"connectors"`
	}
	c.migGetAny("/api/status", &st)
	return st.Connectors[name]
}

// migGetAny is migGet without the content-type check (/api/status has none).
func (c *cluster) migGetAny(path string, v any) {
	c.t.Helper()
	resp, err := http.Get(c.statusURL() + path)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
}

// subscriptionEnabled reads pg_subscription.subenabled of the connector.
func (c *cluster) subscriptionEnabled(name string) string {
	c.t.Helper()
	got := c.query(name, "SELECT subenabled FROM pg_subscription WHERE subname = '"+name+"'")
	return strings.Join(got, ",")
}

// logOrder requires the engine log to hold the lines in this order, after
// position from; it returns the position after the last one.
func (c *cluster) logOrder(from int, lines ...string) int {
	c.t.Helper()
	var log string
	c.eventually(10*time.Second, func() bool {
		log = c.logBuf.String()
		pos := from
		for _, l := range lines {
			i := strings.Index(log[pos:], l)
			if i < 0 {
				return false
			}
			pos += i + len(l)
		}
		return true
	}, func() string { return fmt.Sprintf("engine log lacks, in order, %q:\n%s", lines, log[from:]) })
	pos := from
	for _, l := range lines {
		pos += strings.Index(log[pos:], l) + len(l)
	}
	return pos
}

func (c *cluster) logLen() int { return len(c.logBuf.String()) }

// migrations/simple_test.lux, plus the error cases of the API.
func TestMigrationsSimple(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, migrations.TableDDL)
	dir := t.TempDir()
	writeMigration(t, dir, migInit, migInitSQL)
	c.start(dir)

	var all []map[string]string
	c.migGet("/api/migrations", &all)
	if len(all) != 2 {
		t.Fatalf("GET /api/migrations = %v, want one element per connector", all)
	}
	for i, n := range c.names {
		if all[i]["origin"] != n || all[i]["vsn"] != "1" || all[i]["hash"] != "initial" || all[i]["applied_at"] == "" {
			t.Errorf("GET /api/migrations[%d] = %v, want origin %s vsn 1 hash initial", i, all[i], n)
		}
		var one map[string]string
		c.migGet("/api/migrations/"+n, &one)
		if fmt.Sprint(one) != fmt.Sprint(all[i]) {
			t.Errorf("GET /api/migrations/%s = %v, want %v", n, one, all[i])
		}
	}

	hash := migrations.Hash([]byte(migInitSQL))
	for _, n := range c.names {
		from := c.logLen()
		c.migrate(n, migInit)
		c.logOrder(from, "migration: prepare to migrate to vsn", "about to stop postgresql replication and subscriptions",
			"about to apply migration", "successfully migrated to version", "Successfully initialized origin "+n)
		var one map[string]string
		c.migGet("/api/migrations/"+n, &one)
		if one["vsn"] != migInit || one["hash"] != hash || len(one["hash"]) != 32 {
			t.Errorf("after migrating %s: %v, want vsn %s with hash %s", n, one, migInit, hash)
		}
		if got := c.subscriptionEnabled(n); got != "true" {
			t.Errorf("subscription of %s after the migration: enabled = %s", n, got)
		}
	}

	// The new table replicates both ways.
	c.exec("postgres_1", "INSERT INTO public.items (id, content) VALUES ('a', 'from 1')")
	c.waitRows("postgres_2", "SELECT id, content FROM public.items", "a|from 1")
	c.exec("postgres_2", "INSERT INTO public.items (id, content) VALUES ('b', 'from 2')")
	c.waitRows("postgres_1", "SELECT id, content FROM public.items ORDER BY id", "a|from 1", "b|from 2")

	// Refusals that stop nothing.
	refusals := c.logLen()
	from := refusals
	if code, body := c.migPut("postgres_1", migInit); code != http.StatusForbidden || !strings.Contains(body, ":already_migrated") || strings.Contains(body, "bad_md5") {
		t.Errorf("re-applying: %d %q, want 403 :already_migrated", code, body)
	}
	c.logOrder(from, "migration: prepare to migrate to vsn", "failed to migrate to version")
	for i := 0; i < 2; i++ {
		if code, body := c.migPut("postgres_1", "3"); code != http.StatusForbidden || !strings.Contains(body, ":vsn_not_found") {
			t.Errorf("unknown vsn: %d %q, want 403 :vsn_not_found", code, body)
		}
		from = c.logOrder(from, "failed to migrate to version", "bad migration")
	}
	if strings.Contains(c.logBuf.String()[refusals:], "about to stop postgresql replication") {
		t.Errorf("a refusal stopped replication")
	}
	if got := c.subscriptionEnabled("postgres_1"); got != "true" {
		t.Errorf("subscription after refusals: enabled = %s", got)
	}
	if code, body := c.migPut("postgres_1", "bad vsn!"); code != http.StatusBadRequest {
		t.Errorf("invalid vsn: %d %q, want 400", code, body)
	}
	if code, _ := c.migPut("nope", migInit); code != http.StatusNotFound {
		t.Errorf("unknown connector: %d, want 404", code)
	}

	// The same name with another file.
	writeMigration(t, dir, migInit, migInitSQL+"-- edited\n")
	if code, body := c.migPut("postgres_2", migInit); code != http.StatusForbidden || !strings.Contains(body, ":already_migrated_bad_md5") {
		t.Errorf("edited migration: %d %q, want 403 :already_migrated_bad_md5", code, body)
	}

	// A failing statement: nothing applied, replication resumes.
	const bad = "1669232700_bad"
	writeMigration(t, dir, bad, "CREATE TABLE public.bad (id TEXT PRIMARY KEY);\nINSERT INTO public.items (id, content) VALUES ('seed', 'x');\nSELECT no_such_column FROM public.items;\n")
	from = c.logLen()
	if code, body := c.migPut("postgres_1", bad); code != http.StatusForbidden || !strings.Contains(body, "{:error, :bad_migration_stms}") {
		t.Errorf("failing statement: %d %q, want 403 {:error, :bad_migration_stms}", code, body)
	}
	c.logOrder(from, "migration: prepare to migrate to vsn", "about to apply migration", "failed to migrate to version", "bad migration")
	if got := c.query("postgres_1", "SELECT to_regclass('public.bad') IS NULL, (SELECT count(*) FROM electric.migrations WHERE version = '"+bad+"'), (SELECT count(*) FROM public.items WHERE id = 'seed')"); strings.Join(got, "") != "true|0|0" {
		t.Errorf("after a failed migration: table gone, record, seed row = %v, want true|0|0", got)
	}
	if got := c.subscriptionEnabled("postgres_1"); got != "true" {
		t.Errorf("subscription after a failed migration: enabled = %s", got)
	}
	c.exec("postgres_2", "UPDATE public.items SET content = 'after the failure' WHERE id = 'a'")
	c.waitRows("postgres_1", "SELECT id, content FROM public.items ORDER BY id", "a|after the failure", "b|from 2")
	c.exec("postgres_1", "UPDATE public.items SET content = 'back' WHERE id = 'b'")
	c.waitRows("postgres_2", "SELECT id, content FROM public.items ORDER BY id", "a|after the failure", "b|back")
	if v := c.connectorStatus("postgres_1"); v != true {
		t.Errorf("status of postgres_1 after a failed migration: %v", v)
	}

	// A connector that is not ready refuses, and nothing is applied.
	const later = "1669232800_later"
	writeMigration(t, dir, later, "CREATE TABLE public.later (id TEXT PRIMARY KEY);\n")
	ctx := t.Context()
	if err := c.pgs["postgres_2"].Stop(ctx); err != nil {
		t.Fatal(err)
	}
	c.eventually(30*time.Second, func() bool { return c.connectorStatus("postgres_2") != true },
		func() string { return "postgres_2 still ready after its Postgres stopped" })
	if code, body := c.migPut("postgres_2", later); code != http.StatusForbidden || !strings.Contains(body, "{:invalid_state, :init}") {
		t.Errorf("connector down: %d %q, want 403 {:invalid_state, :init}", code, body)
	}
	c.migGet("/api/migrations", &[]any{})
	var down any
	c.migGet("/api/migrations/postgres_2", &down)
	if down != "unknown" {
		t.Errorf("GET /api/migrations/postgres_2 with its Postgres down = %v, want \"unknown\"", down)
	}
	if err := c.pgs["postgres_2"].Start(ctx); err != nil {
		t.Fatal(err)
	}
	c.waitReady()
	if got := c.query("postgres_2", "SELECT to_regclass('public.later') IS NULL"); strings.Join(got, "") != "true" {
		t.Errorf("a refused migration created public.later")
	}
	// Right after the restart the subscription side may still find out that
	// its old connection is gone (it polls every second) and go back to
	// init: ready is a snapshot, so retry while the engine says not ready.
	var code int
	var body string
	c.eventually(30*time.Second, func() bool {
		code, body = c.migPut("postgres_2", later)
		return !strings.Contains(body, "{:invalid_state, :init}")
	}, func() string { return "postgres_2 never ready again: " + body })
	if code != http.StatusOK {
		t.Errorf("PUT postgres_2 %s after the restart = %d %q, want 200", later, code, body)
	}
}

// migrations/bidirectional.lux: a column added on one side only while both
// replicate, then on the other; both end with the same rows.
func TestMigrationsBidirectional(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, migrations.TableDDL)
	dir := t.TempDir()
	writeMigration(t, dir, migInit, migInitSQL)
	writeMigration(t, dir, migAddColumn, migAddColumnSQL)
	c.start(dir)
	c.migrate("postgres_1", migInit)
	c.migrate("postgres_2", migInit)

	c.exec("postgres_1", "INSERT INTO public.items (id, content) VALUES ('1', 'hello')")
	c.exec("postgres_1", "INSERT INTO public.items (id, content) VALUES ('2', 'untouched')")
	c.waitRows("postgres_2", "SELECT id, content FROM public.items ORDER BY id", "1|hello", "2|untouched")

	c.migrate("postgres_1", migAddColumn)
	c.exec("postgres_1", "UPDATE public.items SET content = 'updated on 1', added_column = 'extra' WHERE id = '1'")
	c.waitRows("postgres_2", "SELECT id, content FROM public.items ORDER BY id", "1|updated on 1", "2|untouched")
	c.exec("postgres_1", "UPDATE public.items SET added_column = 'only the new column' WHERE id = '2'")

	// pg_2, still on the old schema, writes; pg_1 keeps its added_column.
	c.exec("postgres_2", "UPDATE public.items SET content = 'updated on 2' WHERE id = '1'")
	c.exec("postgres_2", "INSERT INTO public.items (id, content) VALUES ('3', 'from old schema')")
	c.waitRows("postgres_1", "SELECT id, content, coalesce(added_column, '-') FROM public.items ORDER BY id",
		"1|updated on 2|extra", "2|untouched|only the new column", "3|from old schema|-")

	c.migrate("postgres_2", migAddColumn)
	sel := "SELECT id, content, content_b, coalesce(added_column, '-') FROM public.items ORDER BY id"
	want := []string{"1|updated on 2||extra", "2|untouched||only the new column", "3|from old schema||-"}
	c.waitRows("postgres_1", sel, want...)
	c.waitRows("postgres_2", sel, want...)

	// Both directions carry the new column now.
	c.exec("postgres_2", "UPDATE public.items SET added_column = 'from 2' WHERE id = '3'")
	c.waitRows("postgres_1", "SELECT added_column FROM public.items WHERE id = '3'", "from 2")
	c.exec("postgres_1", "UPDATE public.items SET added_column = 'from 1' WHERE id = '2'")
	c.waitRows("postgres_2", "SELECT added_column FROM public.items WHERE id = '2'", "from 1")
	c.assertMigSame(sel)
}

// A table created on one side only is backfilled into the other when it is
// migrated, and writes made on the other connector during a migration arrive
// after it, each once.
func TestMigrationsBackfillAndConcurrentWrites(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, migrations.TableDDL)
	dir := t.TempDir()
	writeMigration(t, dir, migInit, migInitSQL)
	// A migration may seed rows; they are ordinary writes of that Postgres.
	const other = "1669232900_other_items"
	writeMigration(t, dir, other, `CREATE TABLE public.other_items (id TEXT PRIMARY KEY, content TEXT NOT NULL, n INTEGER);
INSERT INTO public.other_items (id, content, n) VALUES ('seed', 'seeded by the migration', 0);
`)
	c.start(dir)
	c.migrate("postgres_1", migInit)
	c.migrate("postgres_2", migInit)

	c.migrate("postgres_1", other)
	c.exec("postgres_1", "INSERT INTO public.other_items (id, content, n) SELECT 'row'||g, 'made before pg_2 had the table', g FROM generate_series(1, 300) g")
	c.exec("postgres_1", "UPDATE public.other_items SET content = 'changed' WHERE id = 'row7'")

	// While pg_2 migrates, pg_1 keeps writing.
	writer := c.pgs["postgres_1"].Connect()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	written := 0
	var writeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx := context.Background()
		// Paced and bounded: the point is writes during the migration,
		// not load.
		for written < 500 {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			if _, err := writer.Exec(ctx, "INSERT INTO public.items (id, content) VALUES ($1, 'during')", fmt.Sprintf("during-%04d", written)); err != nil {
				writeErr = err
				return
			}
			if _, err := writer.Exec(ctx, "UPDATE public.other_items SET n = n + 1000 WHERE id = 'row1'"); err != nil {
				writeErr = err
				return
			}
			written++
		}
	}()
	c.migrate("postgres_2", other)
	close(stop)
	wg.Wait()
	if writeErr != nil {
		t.Fatalf("writing on postgres_1 during the migration: %v", writeErr)
	}
	if written == 0 {
		t.Fatalf("no write happened during the migration")
	}

	sel := "SELECT id, content, n FROM public.other_items ORDER BY id"
	c.waitRows("postgres_2", "SELECT count(*) FROM public.other_items", "301")
	c.waitRows("postgres_2", "SELECT count(*) FROM public.items WHERE content = 'during'", fmt.Sprint(written))
	// pg_1's increments race the echoes of its own earlier ones (each
	// entry comes back with the row's merged image), so the final n is not
	// 1+1000*written; both must agree on it.
	c.assertMigSame("SELECT content, n FROM public.other_items WHERE id = 'row1'")
	c.assertMigSame(sel)
	c.assertMigSame("SELECT id, content FROM public.items ORDER BY id")

	// The new table replicates both ways afterwards, through the trigger.
	c.exec("postgres_2", "INSERT INTO public.other_items (id, content, n) VALUES ('row7', 'conflict from 2', -1) ON CONFLICT (id) DO UPDATE SET content = EXCLUDED.content, n = EXCLUDED.n")
	c.waitRows("postgres_1", "SELECT content, n FROM public.other_items WHERE id = 'row7'", "conflict from 2|-1")
	c.exec("postgres_2", "DELETE FROM public.other_items WHERE id = 'seed'")
	c.waitRows("postgres_1", "SELECT count(*) FROM public.other_items WHERE id = 'seed'", "0")
	c.assertMigSame(sel)
	if log := c.logBuf.String(); strings.Contains(log, "level=ERROR") {
		t.Errorf("the engine logged errors")
	}
}

// assertMigSame waits until every Postgres returns the same rows for sql.
func (c *cluster) assertMigSame(sql string) {
	c.t.Helper()
	var got [][]string
	c.eventually(30*time.Second, func() bool {
		got = got[:0]
		for _, n := range c.names {
			got = append(got, c.query(n, sql))
		}
		for _, g := range got[1:] {
			if strings.Join(g, "\n") != strings.Join(got[0], "\n") {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("%s differs between %v: %q", sql, c.names, got) })
}
