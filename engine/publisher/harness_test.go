package publisher_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/engine/connector"
	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/publisher"
	"github.com/electric-sql/electric-go/engine/scram"
	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/engine/txlog/pebblelog"
	"github.com/electric-sql/electric-go/internal/pgtest"
	"github.com/electric-sql/electric-go/internal/testkit"
)

// testLog appends entries to a real txlog.
type testLog struct {
	t   testing.TB
	mu  sync.Mutex
	log txlog.Log
}

func newTestLog(t testing.TB) *testLog {
	l, err := pebblelog.Open(t.TempDir(), pebblelog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{t: t, log: l}
}

func (l *testLog) append(origin string, changes ...txlog.RowChange) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := uint64(time.Now().UnixMicro())
	e := &txlog.Entry{Offset: l.log.Head() + 1, Origin: origin, Eff: now, CommitTime: now, Changes: changes}
	b := &txlog.Batch{}
	b.Append(e)
	l.setRows(b, origin, now, changes)
	if err := l.log.Commit(b); err != nil {
		l.t.Fatalf("appending to the log: %v", err)
	}
	return e.Offset
}

// appendAll commits one entry per element of each in a single batch.
func (l *testLog) appendAll(origin string, each [][]txlog.RowChange) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := uint64(time.Now().UnixMicro())
	b := &txlog.Batch{}
	off := l.log.Head()
	for _, ch := range each {
		off++
		b.Append(&txlog.Entry{Offset: off, Origin: origin, Eff: now, CommitTime: now, Changes: ch})
	}
	for _, ch := range each {
		l.setRows(b, origin, now, ch)
	}
	if err := l.log.Commit(b); err != nil {
		l.t.Fatalf("appending to the log: %v", err)
	}
	return off
}

// setRows records simple row states for the changes: the latest image per
// column, live unless deleted (what Backfill reads).
func (l *testLog) setRows(b *txlog.Batch, origin string, eff uint64, changes []txlog.RowChange) {
	rows := map[[2]string]*merge.Row{}
	for _, ch := range changes {
		k := [2]string{ch.Table, ch.Key}
		r, ok := rows[k]
		if !ok {
			prev, err := l.log.Row(ch.Table, ch.Key)
			if err != nil {
				l.t.Fatal(err)
			}
			r = &merge.Row{Cells: map[string]merge.Cell{}}
			if prev != nil {
				for c, v := range prev.Cells {
					r.Cells[c] = v
				}
			}
			rows[k] = r
		}
		if ch.Deleted {
			r.Tags = nil
			continue
		}
		for c, v := range ch.Row {
			r.Cells[c] = merge.Cell{Value: v, Eff: eff, Origin: origin}
		}
		r.Tags = []merge.Tag{{Origin: origin, Eff: eff}}
	}
	for k, r := range rows {
		b.SetRow(k[0], k[1], r)
	}
}

func (l *testLog) NewReader(after uint64) publisher.Reader { return l.log.NewReader(after) }

// row builds a merged row image from "col=value" pairs; "col=NULL" is NULL.
func row(pairs ...string) map[string]merge.Value {
	m := map[string]merge.Value{}
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		if v == "NULL" {
			m[k] = merge.Value{Null: true}
		} else {
			m[k] = merge.Value{Text: v}
		}
	}
	return m
}

func upsert(table string, pairs ...string) txlog.RowChange {
	r := row(pairs...)
	return txlog.RowChange{Table: table, Key: r["id"].Text, Row: r}
}

func del(table string, pairs ...string) txlog.RowChange {
	r := row(pairs...)
	return txlog.RowChange{Table: table, Key: r["id"].Text, Deleted: true, Row: r}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testkit.LogTo(t), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// env is one publisher with connectors on real Postgres clusters.
type env struct {
	t       testing.TB
	ctx     context.Context
	log     *testLog
	srv     *publisher.Server
	srvStop func()
	mu      sync.Mutex
	conns   map[string]*connector.Connector
	pgs     map[string]*pgtest.Cluster
	stops   map[string]context.CancelFunc
	creds   map[string]scram.Verifier // of the started connectors
	tls     *tls.Config               // offered to subscribers when set (before startServer)
	sslmode string                    // of the connectors' subscriptions
	wg      sync.WaitGroup
}

// testMaster is the master secret the connectors' passwords derive from.
var testMaster = []byte("publisher-test-master-secret")

func newEnv(t testing.TB, opts ...func(*env)) *env {
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{t: t, ctx: ctx, log: newTestLog(t), conns: map[string]*connector.Connector{}, pgs: map[string]*pgtest.Cluster{}, stops: map[string]context.CancelFunc{}, creds: map[string]scram.Verifier{}}
	for _, o := range opts {
		o(e)
	}
	e.startServer("127.0.0.1:0")
	t.Cleanup(func() {
		cancel()
		e.wg.Wait()
		e.stopServer()
		if err := e.log.log.Close(); err != nil {
			t.Errorf("closing the log: %v", err)
		}
	})
	return e
}

func (e *env) startServer(addr string) {
	e.t.Helper()
	srv, err := publisher.New(publisher.Options{
		Addr:              addr,
		Logger:            testLogger(e.t),
		Feed:              func(after uint64) publisher.Reader { return e.log.NewReader(after) },
		Connectors:        e.view,
		Credentials:       e.credentials,
		TLS:               e.tls,
		Head:              func() uint64 { return e.log.log.Head() },
		Rows:              e.log.log.Rows,
		KeepaliveInterval: time.Second,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	e.mu.Lock()
	e.srv = srv
	e.mu.Unlock()
	e.srvStop = func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("publisher: %v", err)
		}
	}
}

func (e *env) stopServer() {
	if e.srvStop != nil {
		e.srvStop()
		e.srvStop = nil
	}
}

// restartServer stops the publisher and starts a new one on the same
// address, as an engine restart does.
func (e *env) restartServer() {
	addr := e.srv.Addr().String()
	e.stopServer()
	e.startServer(addr)
}

func (e *env) view(name string) (*publisher.View, bool) {
	e.mu.Lock()
	c, ok := e.conns[name]
	e.mu.Unlock()
	if !ok {
		return nil, false
	}
	return c.View(), true
}

func (e *env) credentials(role string) (scram.Verifier, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.creds[role]
	return v, ok
}

func (e *env) port() int {
	var p int
	fmt.Sscanf(e.srv.Addr().String()[strings.LastIndex(e.srv.Addr().String(), ":")+1:], "%d", &p)
	return p
}

// startConnector starts a connector on pg and waits until it is ready.
func (e *env) startConnector(name string, pg *pgtest.Cluster) *connector.Connector {
	e.t.Helper()
	c, err := connector.New(connector.Options{
		Name: name, URI: pg.URI(), ElectricHost: "127.0.0.1", PublisherPort: e.port(),
		Password: publisher.ConnectorPassword(testMaster, name), SSLMode: e.sslmode,
		PollInterval: 200 * time.Millisecond, Logger: testLogger(e.t),
		OnTablesChanged: func(tables []string) {
			e.mu.Lock()
			srv := e.srv
			e.mu.Unlock()
			if err := srv.Backfill(name, tables); err != nil {
				e.t.Errorf("backfill: %v", err)
			}
		},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	v, err := scram.NewVerifier(publisher.ConnectorPassword(testMaster, name))
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	e.mu.Lock()
	e.creds[name] = v
	e.conns[name] = c
	e.pgs[name] = pg
	e.stops[name] = cancel
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		c.Run(ctx)
	}()
	testkit.WaitFor(e.t, "connector "+name+" ready", func() (bool, string) {
		st := c.Status()
		return st.State == "ready", fmt.Sprintf("%+v", st)
	})
	return c
}

// connect opens a connection the caller closes: polling loops must not pile
// up connections until the test ends.
func connect(t testing.TB, pg *pgtest.Cluster) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.URI())
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	return conn
}

// queryRow scans one row, closing its connection.
func queryRow(t testing.TB, pg *pgtest.Cluster, sql string, dest ...any) {
	t.Helper()
	conn := connect(t, pg)
	defer conn.Close(context.Background())
	if err := conn.QueryRow(context.Background(), sql).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// dump returns the rows of a table as "col=val,…" lines ordered by id.
func dump(t testing.TB, pg *pgtest.Cluster, table string) string {
	t.Helper()
	conn := connect(t, pg)
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), fmt.Sprintf("SELECT * FROM %s ORDER BY 1", table), pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatalf("dumping %s: %v", table, err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		vals := rows.RawValues() // text format under the simple protocol
		var parts []string
		for i, f := range rows.FieldDescriptions() {
			v := "NULL"
			if vals[i] != nil {
				v = string(vals[i])
			}
			parts = append(parts, f.Name+"="+v)
		}
		lines = append(lines, strings.Join(parts, ","))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func waitDump(t testing.TB, pg *pgtest.Cluster, table, want string) {
	t.Helper()
	testkit.WaitFor(t, table+" contents", func() (bool, string) {
		got := dump(t, pg, table)
		return got == want, got
	})
}
