package connector

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/publisher"
	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/engine/scram"
	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/internal/pgtest"
	"github.com/electric-sql/electric-go/internal/testkit"
)

func TestFunctionName(t *testing.T) {
	a := FunctionName(&schema.Table{Schema: "a_b", Name: "c"})
	b := FunctionName(&schema.Table{Schema: "a", Name: "b_c"})
	if a == b {
		t.Fatalf("names collide: %s", a)
	}
	if a != FunctionName(&schema.Table{Schema: "a_b", Name: "c"}) {
		t.Fatal("name not deterministic")
	}
	long := &schema.Table{Schema: "public", Name: strings.Repeat("é", 40)}
	n := FunctionName(long)
	if len(n) > 63 || !strings.HasPrefix(n, "upsert_public_é") {
		t.Fatalf("long name %q (%d bytes)", n, len(n))
	}
	if !strings.HasPrefix(n, "upsert_public_") || strings.ContainsRune(n, '\uFFFD') {
		t.Fatalf("long name cut inside a character: %q", n)
	}
}

func TestFunctionBody(t *testing.T) {
	tb := &schema.Table{Schema: "s", Name: "t", PrimaryKey: []string{"a", "b"},
		Columns: []schema.Column{{Name: "a"}, {Name: "b"}, {Name: `we"ird`}}}
	want := `
BEGIN
  INSERT INTO "s"."t" ("a", "b", "we""ird") VALUES (NEW."a", NEW."b", NEW."we""ird")
  ON CONFLICT ("a", "b") DO UPDATE SET "we""ird" = EXCLUDED."we""ird";
  RETURN NULL;
END
`
	if got := functionBody(tb); got != want {
		t.Fatalf("body:\n%s\nwant:\n%s", got, want)
	}
	keyOnly := &schema.Table{Schema: "s", Name: "k", PrimaryKey: []string{"a"}, Columns: []schema.Column{{Name: "a"}}}
	if got := functionBody(keyOnly); !strings.Contains(got, `ON CONFLICT ("a") DO NOTHING;`) {
		t.Fatalf("key-only body: %s", got)
	}
	bad := &schema.Table{Schema: "s", Name: "x", PrimaryKey: []string{"a"}, Columns: []schema.Column{{Name: "a"}, {Name: "$electric_upsert$"}}}
	if _, err := triggerSQL(bad); err == nil {
		t.Fatal("a body containing the dollar tag was accepted")
	}
}

func TestConninfo(t *testing.T) {
	c, err := New(Options{Name: "it's", URI: "postgres://x", ElectricHost: "elec tric", PublisherPort: 5433, Password: "p w"})
	if err != nil {
		t.Fatal(err)
	}
	got := c.conninfo("db", false)
	want := `host='elec tric' port=5433 dbname=db user='it\'s' password='p w' application_name='it\'s'`
	if got != want {
		t.Fatalf("conninfo %s, want %s", got, want)
	}
	if got := c.conninfo("db", true); strings.Contains(got, "p w") {
		t.Fatalf("masked conninfo shows the password: %s", got)
	}
	for _, o := range []Options{
		{URI: "u", ElectricHost: "h", PublisherPort: 1, Password: "p"},
		{Name: "a", ElectricHost: "h", PublisherPort: 1, Password: "p"},
		{Name: "a", URI: "u", PublisherPort: 1, Password: "p"},
		{Name: "a", URI: "u", ElectricHost: "h", PublisherPort: 70000, Password: "p"},
		{Name: "a", URI: "u", ElectricHost: "h", PublisherPort: 1},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

// testMaster is the master secret the tests' connector passwords derive from.
var testMaster = []byte("connector-test-master-secret")

// emptyFeed is a log with no entries.
type emptyFeed struct{}

func (emptyFeed) Next(ctx context.Context) (*txlog.Entry, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (emptyFeed) Close() {}

// registry is the engine's connector map, swapped between runs.
type registry struct {
	mu    sync.Mutex
	conns map[string]*Connector
}

func (r *registry) set(c *Connector) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conns[c.Name()] = c
}

// gatedFeed holds one entry until gate is closed, then has no more.
type gatedFeed struct {
	after uint64
	entry *txlog.Entry
	gate  <-chan struct{}
	sent  bool
}

func (f *gatedFeed) Next(ctx context.Context) (*txlog.Entry, error) {
	if !f.sent && f.entry.Offset > f.after {
		select {
		case <-f.gate:
			f.sent = true
			return f.entry, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	<-ctx.Done()
	return nil, ctx.Err()
}
func (*gatedFeed) Close() {}

// startPublisher serves the connectors of reg on ln, with an empty log.
func startPublisher(t *testing.T, ln net.Listener, reg *registry) {
	t.Helper()
	startPublisherFeed(t, ln, reg, func(uint64) publisher.Reader { return emptyFeed{} })
}

// startPublisherFeed serves the connectors of reg on ln from feed.
func startPublisherFeed(t *testing.T, ln net.Listener, reg *registry, feed publisher.Feed) {
	t.Helper()
	srv, err := publisher.New(publisher.Options{
		Listener: ln,
		Feed:     feed,
		Credentials: func(role string) (scram.Verifier, bool) {
			reg.mu.Lock()
			_, ok := reg.conns[role]
			reg.mu.Unlock()
			if !ok {
				return scram.Verifier{}, false
			}
			v, err := scram.NewVerifier(publisher.ConnectorPassword(testMaster, role))
			return v, err == nil
		},
		Connectors: func(name string) (*publisher.View, bool) {
			reg.mu.Lock()
			c, ok := reg.conns[name]
			reg.mu.Unlock()
			if !ok {
				return nil, false
			}
			return c.View(), true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func count(t *testing.T, pg *pgtest.Cluster, sql string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.URI())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// run starts c and returns a function that stops it.
func run(c *Connector) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	return func() { cancel(); <-done }
}

// TestSetupIsIdempotentAndRetries: the connector waits (retrying) until
// the publisher is up, installs one trigger per replicated table, and a
// second run over the same database changes nothing but a moved port.
func TestSetupIsIdempotentAndRetries(t *testing.T) {
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE items (id int PRIMARY KEY, v text, g int GENERATED ALWAYS AS (id * 2) STORED);
CREATE TABLE nopk (a int);
CREATE TABLE pair (a int, b text, PRIMARY KEY (a, b))`)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	opts := Options{Name: "a", URI: pg.URI(), ElectricHost: "127.0.0.1", PublisherPort: port, PollInterval: 100 * time.Millisecond, Password: publisher.ConnectorPassword(testMaster, "a")}
	c1, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	conns := &registry{conns: map[string]*Connector{"a": c1}}
	// The listener accepts nothing yet: REFRESH cannot reach a publisher.
	ln.Close()
	stop := run(c1)
	testkit.WaitFor(t, "a refresh error", func() (bool, string) {
		st := c1.Status()
		return st.State == StateError && strings.Contains(st.LastError, "refreshing subscription"), fmt.Sprintf("%+v", st)
	})
	ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	startPublisher(t, ln, conns)
	testkit.WaitFor(t, "ready", func() (bool, string) { st := c1.Status(); return st.State == StateReady, fmt.Sprintf("%+v", st) })
	st1 := c1.Status()
	if st1.Tables != 2 || st1.Subscribed != 2 || st1.SubscriptionOID == 0 {
		t.Fatalf("status %+v", st1)
	}
	v := c1.View()
	for _, tb := range v.Tables {
		if _, ok := tb.Column("g"); ok {
			t.Fatalf("generated column listed: %+v", tb)
		}
	}
	if !v.Refreshed || !v.Subscribed["public.items"] || !v.Subscribed["public.pair"] || v.Subscribed["public.nopk"] {
		t.Fatalf("view %+v", v)
	}
	const triggers = `SELECT count(*) FROM pg_trigger WHERE tgname = 'electric_upsert' AND tgenabled = 'R'`
	const functions = `SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'electric' AND p.proname LIKE 'upsert_%'`
	if n := count(t, pg, triggers); n != 2 {
		t.Fatalf("%d replica triggers, want 2", n)
	}
	stop()

	// Again, as after an engine restart.
	c2, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	conns.set(c2)
	stop = run(c2)
	testkit.WaitFor(t, "ready again", func() (bool, string) { st := c2.Status(); return st.State == StateReady, fmt.Sprintf("%+v", st) })
	if st := c2.Status(); st.SubscriptionOID != st1.SubscriptionOID || st.Subscribed != 2 {
		t.Fatalf("second run: %+v, first %+v", st, st1)
	}
	if n := count(t, pg, triggers); n != 2 {
		t.Fatalf("%d replica triggers after a restart, want 2", n)
	}
	if n := count(t, pg, functions); n != 2 {
		t.Fatalf("%d trigger functions after a restart, want 2", n)
	}
	if n := count(t, pg, `SELECT count(*) FROM pg_subscription`); n != 1 {
		t.Fatalf("%d subscriptions", n)
	}

	// A column change replaces the function, whose body names the column.
	pg.Exec(`ALTER TABLE public.items ADD COLUMN w text`)
	testkit.WaitFor(t, "trigger function updated", func() (bool, string) {
		return count(t, pg, `SELECT count(*) FROM pg_proc WHERE proname LIKE 'upsert_public_items_%' AND prosrc LIKE '%EXCLUDED."w"%'`) == 1, ""
	})
	// A trigger someone disabled is re-enabled on the next setup.
	stop()
	pg.Exec(`ALTER TABLE public.items DISABLE TRIGGER electric_upsert`)
	c3, _ := New(opts)
	conns.set(c3)
	stop = run(c3)
	defer stop()
	testkit.WaitFor(t, "trigger re-enabled", func() (bool, string) { return count(t, pg, triggers) == 2, "" })
}

// TestDisabledSubscriptionIsLeftAlone: an operator (or the seed's conflict
// scenarios) may disable the subscription. The connector must neither fail
// on it (REFRESH is refused on a disabled subscription) nor re-enable it, nor
// refresh for a mere replica identity change; a table created meanwhile is
// picked up once the subscription is enabled again.
func TestDisabledSubscriptionIsLeftAlone(t *testing.T) {
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE items (id int PRIMARY KEY, v text)`)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Name: "a", URI: pg.URI(), ElectricHost: "127.0.0.1", PublisherPort: ln.Addr().(*net.TCPAddr).Port, PollInterval: 50 * time.Millisecond, Password: publisher.ConnectorPassword(testMaster, "a")})
	if err != nil {
		t.Fatal(err)
	}
	startPublisher(t, ln, &registry{conns: map[string]*Connector{"a": c}})
	stop := run(c)
	defer stop()
	testkit.WaitFor(t, "ready", func() (bool, string) { st := c.Status(); return st.State == StateReady, fmt.Sprintf("%+v", st) })
	refreshed := c.Status().LastRefresh

	pg.Exec(`ALTER TABLE items REPLICA IDENTITY FULL`)
	pg.Exec(`ALTER SUBSCRIPTION a DISABLE`)
	pg.Exec(`CREATE TABLE public.later (id int PRIMARY KEY)`)
	// Many polls happen meanwhile; none may fail or touch the subscription.
	time.Sleep(time.Second)
	if st := c.Status(); st.State != StateReady || !st.LastRefresh.Equal(refreshed) {
		t.Fatalf("status with the subscription disabled: %+v", st)
	}
	if n := count(t, pg, `SELECT count(*) FROM pg_subscription WHERE subenabled`); n != 0 {
		t.Fatal("the connector re-enabled a subscription someone disabled")
	}
	pg.Exec(`ALTER SUBSCRIPTION a ENABLE`)
	testkit.WaitFor(t, "the later table subscribed", func() (bool, string) {
		v := c.View()
		return v != nil && v.Subscribed["public.later"], fmt.Sprintf("%+v", c.Status())
	})
}

// TestPauseResume: Pause returns only once the apply worker is gone (here
// it is held applying a transaction, on a lock), and Resume in the caller's
// transaction enables the subscription only if that transaction commits.
func TestPauseResume(t *testing.T) {
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE items (id int PRIMARY KEY, v text)`)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Name: "a", URI: pg.URI(), ElectricHost: "127.0.0.1", PublisherPort: ln.Addr().(*net.TCPAddr).Port, PollInterval: 50 * time.Millisecond, Password: publisher.ConnectorPassword(testMaster, "a")})
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	entry := &txlog.Entry{Offset: 1, Origin: "other", Eff: 1, CommitTime: 1, Changes: []txlog.RowChange{
		{Table: "public.items", Key: "1", Row: map[string]merge.Value{"id": {Text: "1"}, "v": {Text: "x"}}},
	}}
	startPublisherFeed(t, ln, &registry{conns: map[string]*Connector{c.Name(): c}},
		func(after uint64) publisher.Reader { return &gatedFeed{after: after, entry: entry, gate: gate} })
	stop := run(c)
	defer stop()
	testkit.WaitFor(t, "ready", func() (bool, string) { st := c.Status(); return st.Ready(), fmt.Sprintf("%+v", st) })
	const workers = `SELECT count(*) FROM pg_stat_subscription WHERE pid IS NOT NULL`
	const enabled = `SELECT count(*) FROM pg_subscription WHERE subenabled`
	testkit.WaitFor(t, "the apply worker", func() (bool, string) { return count(t, pg, workers) == 1, "" })

	// The worker blocks applying the entry until the lock is released.
	ctx := context.Background()
	locker := pg.Connect()
	lockTx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lockTx.Rollback(ctx)
	if _, err := lockTx.Exec(ctx, `LOCK TABLE items IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	close(gate)
	testkit.WaitFor(t, "the apply worker waiting on the lock", func() (bool, string) {
		return count(t, pg, `SELECT count(*) FROM pg_locks l JOIN pg_stat_subscription s ON s.pid = l.pid WHERE NOT l.granted`) == 1, ""
	})

	conn := pg.Connect()
	paused := make(chan error, 1)
	go func() { paused <- c.Pause(ctx, conn) }()
	testkit.WaitFor(t, "the subscription disabled", func() (bool, string) { return count(t, pg, enabled) == 0, "" })
	select {
	case err := <-paused:
		t.Fatalf("Pause returned (%v) while the apply worker was still running", err)
	case <-time.After(time.Second):
	}
	if err := lockTx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-paused; err != nil {
		t.Fatal(err)
	}
	if n := count(t, pg, workers); n != 0 {
		t.Fatalf("%d apply workers running after Pause", n)
	}

	rolledBack := errors.New("rolled back")
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := c.Resume(ctx, tx); err != nil {
			return err
		}
		return rolledBack
	})
	if !errors.Is(err, rolledBack) {
		t.Fatalf("resume in a transaction: %v", err)
	}
	if n := count(t, pg, enabled); n != 0 {
		t.Fatal("subscription enabled by a transaction that rolled back")
	}
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return c.Resume(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
	if n := count(t, pg, enabled); n != 1 {
		t.Fatal("subscription not enabled after Resume committed")
	}
	testkit.WaitFor(t, "the apply worker back and the entry applied", func() (bool, string) {
		return count(t, pg, workers) == 1 && count(t, pg, `SELECT count(*) FROM items WHERE id = 1 AND v = 'x'`) == 1, ""
	})
	if st := c.Status(); !st.Ready() {
		t.Fatalf("status after pause and resume: %+v", st)
	}
}

// TestExistingSubscriptionGetsCredentials: a subscription created before
// the publisher required a password (its connection string has none) is
// given the connector's credentials at start, and then authenticates.
func TestExistingSubscriptionGetsCredentials(t *testing.T) {
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE items (id int PRIMARY KEY, v text)`)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	pg.Exec(fmt.Sprintf(`CREATE SUBSCRIPTION a CONNECTION 'host=127.0.0.1 port=%d dbname=postgres application_name=a' PUBLICATION all_tables WITH (connect = false)`, port))
	pw := publisher.ConnectorPassword(testMaster, "a")
	c, err := New(Options{Name: "a", URI: pg.URI(), ElectricHost: "127.0.0.1", PublisherPort: port, PollInterval: 50 * time.Millisecond, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	startPublisher(t, ln, &registry{conns: map[string]*Connector{"a": c}})
	stop := run(c)
	defer stop()
	testkit.WaitFor(t, "ready", func() (bool, string) { st := c.Status(); return st.Ready(), fmt.Sprintf("%+v", st) })
	if n := count(t, pg, fmt.Sprintf(`SELECT count(*) FROM pg_subscription WHERE subname = 'a' AND subconninfo LIKE '%% user=a password=%s %%'`, pw)); n != 1 {
		t.Fatal("the subscription's connection string was not given the credentials")
	}
	testkit.WaitFor(t, "the apply worker", func() (bool, string) {
		return count(t, pg, `SELECT count(*) FROM pg_stat_subscription WHERE pid IS NOT NULL`) == 1, ""
	})
}
