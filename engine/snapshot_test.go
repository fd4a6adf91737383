package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/internal/validate"
)

// waitSame waits until table has n rows and the same rows on every Postgres.
func (c *cluster) waitSame(table string, n int) {
	c.t.Helper()
	var why string
	c.eventually(60*time.Second, func() bool {
		first := c.dump(c.names[0], table)
		if len(first) != n {
			why = fmt.Sprintf("%s has %d rows on %s, want %d", table, len(first), c.names[0], n)
			return false
		}
		for _, name := range c.names[1:] {
			if d := validate.Diff(first, c.dump(name, table)); d != "" {
				why = fmt.Sprintf("%s differs between %s and %s:\n%s", table, c.names[0], name, d)
				return false
			}
		}
		return true
	}, func() string { return why })
}

// connectors reads /api/connectors.
func (c *cluster) connectors() []status.Connector {
	c.t.Helper()
	resp, err := http.Get(c.statusURL() + "/api/connectors")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out status.ConnectorsResponse
	if json.NewDecoder(resp.Body).Decode(&out) != nil {
		return nil
	}
	return out.Connectors
}

const preSQL = `CREATE TABLE pre (id uuid PRIMARY KEY, v text);
CREATE TABLE same (id int PRIMARY KEY, v text);
CREATE TABLE conflict (id int PRIMARY KEY, v text, w text);`

// The case: rows that existed before replication reach every
// replica; identical rows on both merge into one; conflicting ones end
// identical; a table created with rows and given a key later is read too.
func TestExistingRowsReachEveryReplica(t *testing.T) {
	c := newCluster(t, 2, preSQL)
	c.exec("postgres_1", `INSERT INTO pre SELECT gen_random_uuid(), 'row ' || g FROM generate_series(1, 1000) g`)
	for _, n := range c.names {
		c.exec(n, `INSERT INTO same SELECT g, 'same ' || g FROM generate_series(1, 100) g`)
	}
	c.exec("postgres_1", `INSERT INTO conflict VALUES (1, 'from 1', NULL), (2, 'only 1', 'x')`)
	c.exec("postgres_2", `INSERT INTO conflict VALUES (1, 'from 2', 'w2'), (3, 'only 2', NULL)`)
	c.start(t.TempDir()) // ready only once every snapshot is done

	c.waitSame("pre", 1000)
	c.waitSame("same", 100)
	c.waitSame("conflict", 3)
	for _, cn := range c.connectors() {
		if cn.State != status.StateReady || cn.Snapshot == nil || !cn.Snapshot.Done || cn.Snapshot.TablesTotal != 3 {
			t.Errorf("connector %s: state %s, snapshot %+v", cn.Name, cn.State, cn.Snapshot)
		}
	}
	// An update of a pre-existing row replicates as an update.
	c.exec("postgres_1", `UPDATE pre SET v = 'changed' WHERE id = (SELECT id FROM pre ORDER BY id LIMIT 1)`)
	c.waitRows("postgres_2", `SELECT count(*) FROM pre WHERE v = 'changed'`, "1")
	c.waitSame("pre", 1000)

	// A table made with rows and no key, then given one.
	c.exec("postgres_2", `CREATE TABLE later (id int PRIMARY KEY, v text)`)
	c.exec("postgres_1", `CREATE TABLE later AS SELECT g AS id, 'v' || g AS v FROM generate_series(1, 50) g`)
	c.exec("postgres_1", `ALTER TABLE later ADD PRIMARY KEY (id)`)
	c.waitSame("later", 50)
	c.checkNoApplyErrors()
}

// Rows updated and deleted on the source while its snapshot runs end as the
// source has them, everywhere.
func TestWritesDuringSnapshot(t *testing.T) {
	c := newCluster(t, 2, `CREATE TABLE big (id int PRIMARY KEY, v text, n int NOT NULL DEFAULT 0);`)
	c.exec("postgres_1", `INSERT INTO big SELECT g, repeat('x', 200), 0 FROM generate_series(1, 40000) g`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var writes atomic.Int64
	done := make(chan error, 1)
	go func() {
		conn := c.pgs["postgres_1"].Connect()
		for i := 0; ctx.Err() == nil; i++ {
			id := 1 + (i*7919)%40000
			var err error
			if i%3 == 0 {
				_, err = conn.Exec(ctx, `DELETE FROM big WHERE id = $1`, id)
			} else {
				_, err = conn.Exec(ctx, `UPDATE big SET n = n + 1, v = 'w' || $2::int WHERE id = $1`, id, i)
			}
			if err != nil && ctx.Err() == nil {
				done <- err
				return
			}
			writes.Add(1)
		}
		done <- nil
	}()
	c.start(t.TempDir())
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("writer: %v", err)
	}
	if writes.Load() < 10 {
		t.Fatalf("only %d writes during the snapshot", writes.Load())
	}
	n := len(c.dump("postgres_1", "big"))
	c.waitSame("big", n)
	t.Logf("%d writes while the snapshot ran; %d rows left", writes.Load(), n)
}

// kill -9 of the engine in the middle of a snapshot: the restart resumes
// after the last durable chunk and the replicas end identical.
func TestKill9DuringSnapshot(t *testing.T) {
	c := newCluster(t, 2, `CREATE TABLE big (id int PRIMARY KEY, v text);`)
	const rows = 60000
	c.exec("postgres_1", fmt.Sprintf(`INSERT INTO big SELECT g, repeat('y', 100) || g FROM generate_series(1, %d) g`, rows))
	dir := t.TempDir()
	c.spawnChild(dir)
	var seen uint64
	c.eventually(60*time.Second, func() bool {
		for _, cn := range c.connectors() {
			// Rows counts chunks handed to the log; beyond the few in
			// flight, earlier ones are durable.
			if cn.Name == "postgres_1" && cn.Snapshot != nil && cn.Snapshot.Active && cn.Snapshot.Rows > 24000 {
				seen = cn.Snapshot.Rows
				return cn.State == status.StateSnapshot
			}
		}
		return false
	}, func() string { return "postgres_1 never showed a snapshot in progress" })
	c.killChild()
	if seen >= rows {
		t.Fatalf("snapshot finished (%d rows) before the kill", seen)
	}
	c.startChild(dir)
	c.waitSame("big", rows)
	if !strings.Contains(c.logBuf.String(), "snapshot: resuming table") {
		t.Errorf("the restart did not resume the table (no \"snapshot: resuming table\" in the log)")
	}
	c.checkNoApplyErrors("terminating logical replication worker", "could not connect to the publisher", "could not receive data",
		"pg_namespace_nspname_index") // CREATE SCHEMA IF NOT EXISTS electric racing at the first start
}
