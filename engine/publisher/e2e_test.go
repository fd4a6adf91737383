package publisher_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/publisher"
	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/internal/pgtest"
	"github.com/electric-sql/electric-go/internal/testkit"
)

// applyErrors returns the lines of the server log that report a failing
// apply worker or an error.
func applyErrors(t testing.TB, pg *pgtest.Cluster) []string {
	t.Helper()
	b, err := os.ReadFile(pg.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "ERROR") || strings.Contains(l, "FATAL") || strings.Contains(l, "PANIC") {
			bad = append(bad, l)
		}
	}
	return bad
}

// subscriptionRunning checks pg_stat_subscription: the apply worker of
// subscription name is alive.
func subscriptionRunning(t testing.TB, pg *pgtest.Cluster, name string) bool {
	t.Helper()
	var n int
	queryRow(t, pg, fmt.Sprintf(`SELECT count(*) FROM pg_stat_subscription WHERE subname = '%s' AND pid IS NOT NULL AND relid IS NULL`, name), &n)
	return n == 1
}

// originLSN is the replication origin position of the subscription.
func originLSN(t testing.TB, pg *pgtest.Cluster, name string) uint64 {
	t.Helper()
	var lsn pglogrepl.LSN
	queryRow(t, pg, fmt.Sprintf(`SELECT coalesce(os.remote_lsn, '0/0')
FROM pg_subscription s LEFT JOIN pg_replication_origin_status os ON os.external_id = 'pg_' || s.oid
WHERE s.subname = '%s'`, name), &lsn)
	return uint64(lsn)
}

func TestEntriesApplyPerConnectorSchema(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pg := pgtest.Start(t)
	// REPLICA IDENTITY FULL, as the engine sets on every replicated table:
	// deletes still find the row by its primary key.
	pg.Exec(`CREATE TABLE items (id int PRIMARY KEY, v text, extra text); ALTER TABLE items REPLICA IDENTITY FULL`)
	pg.Exec(`CREATE SCHEMA "odd ""schema"""; CREATE TABLE "odd ""schema"""."We ird" (id text PRIMARY KEY, "Val ue" numeric(10,2), g int GENERATED ALWAYS AS (1) STORED);
CREATE TABLE nopk (a int);
CREATE TABLE pair (a int, b text, c text, PRIMARY KEY (a, b))`)
	e.startConnector("a", pg)

	// A table the subscriber lacks is skipped; a column it lacks is
	// dropped; a column the image lacks is NULL.
	e.log.append("b",
		upsert("public.items", "id=1", "v=one", "extra=x", "gone=zzz"),
		upsert("public.missing", "id=1", "v=nowhere"),
		upsert(`odd "schema".We ird`, "id=k'1", "Val ue=1.5", "g=77"),
	)
	e.log.append("b", upsert("public.missing", "id=2"))
	e.log.append("b", upsert("public.nopk", "a=1"))
	e.log.append("b", upsert("public.items", "id=2", "v=two"), upsert("public.items", "id=3", "v=three", "extra=NULL"))
	waitDump(t, pg, "items", "id=1,v=one,extra=x\nid=2,v=two,extra=NULL\nid=3,v=three,extra=NULL")
	waitDump(t, pg, `"odd ""schema"""."We ird"`, "id=k'1,Val ue=1.50,g=1")

	// Deletes apply by key; an update replaces the row.
	last := e.log.append("b", del("public.items", "id=1", "v=one", "extra=x"), upsert("public.items", "id=2", "v=TWO", "extra=y"))
	waitDump(t, pg, "items", "id=2,v=TWO,extra=y\nid=3,v=three,extra=NULL")

	// A composite key; a delete whose image is empty is addressed by the
	// change's key.
	pairKey := func(a, b string) string { return merge.EncodeKey([]merge.Value{{Text: a}, {Text: b}}) }
	e.log.append("b",
		txlog.RowChange{Table: "public.pair", Key: pairKey("1", "x"), Row: row("a=1", "b=x", "c=keep")},
		txlog.RowChange{Table: "public.pair", Key: pairKey("1", "y"), Row: row("a=1", "b=y", "c=drop")})
	last = e.log.append("b", txlog.RowChange{Table: "public.pair", Key: pairKey("1", "y"), Deleted: true})
	waitDump(t, pg, "pair", "a=1,b=x,c=keep")
	testkit.WaitFor(t, "origin at the last entry", func() (bool, string) {
		got := originLSN(t, pg, "a")
		return got == txlog.LSN(last), fmt.Sprintf("origin %X, want %X", got, txlog.LSN(last))
	})
	// An entry with nothing for this subscriber still advances the
	// position it confirms.
	skip := e.log.append("b", upsert("public.missing", "id=3"))
	testkit.WaitFor(t, "flushed position past a skipped entry", func() (bool, string) {
		for _, c := range e.srv.Status().Connectors {
			if c.Connector == "a" {
				return c.FlushedOffset == skip && c.SentOffset == skip, fmt.Sprintf("%+v", c)
			}
		}
		return false, "no status"
	})
	if !subscriptionRunning(t, pg, "a") {
		t.Fatal("apply worker not running")
	}
	if bad := applyErrors(t, pg); len(bad) > 0 {
		t.Fatalf("postgres reported errors:\n%s", strings.Join(bad, "\n"))
	}
}

func TestUpsertTriggerTurnsConflictIntoUpdate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE items (id int PRIMARY KEY, v text, w text)`)
	e.startConnector("a", pg)
	// A local row with the same key as the incoming one: a stock apply
	// worker would stop on the unique violation.
	pg.Exec(`INSERT INTO items VALUES (1, 'local', 'local-w'), (2, 'untouched', NULL)`)
	e.log.append("b", upsert("public.items", "id=1", "v=merged", "w=NULL"))
	e.log.append("b", upsert("public.items", "id=3", "v=new", "w=n"))
	waitDump(t, pg, "items", "id=1,v=merged,w=NULL\nid=2,v=untouched,w=NULL\nid=3,v=new,w=n")
	// Local inserts are untouched by the replica trigger: a duplicate
	// still fails locally.
	conn := connect(t, pg)
	defer conn.Close(context.Background())
	_, err := conn.Exec(context.Background(), `INSERT INTO items VALUES (3, 'dup', NULL)`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		t.Fatalf("local duplicate insert: got %v, want a unique violation", err)
	}
	e.log.append("b", upsert("public.items", "id=3", "v=again", "w=NULL"))
	waitDump(t, pg, "items", "id=1,v=merged,w=NULL\nid=2,v=untouched,w=NULL\nid=3,v=again,w=NULL")
	if !subscriptionRunning(t, pg, "a") {
		t.Fatal("apply worker not running")
	}
	// Only the local duplicate may have logged an error.
	for _, l := range applyErrors(t, pg) {
		if !strings.Contains(l, "duplicate key") && !strings.Contains(l, "INSERT INTO items VALUES (3, 'dup', NULL)") {
			t.Fatalf("postgres reported: %s", l)
		}
	}
}

// TestReconnectResumesExactly counts every insert the subscriber applies
// with an ALWAYS trigger: after reconnects (subscription disabled and
// enabled, Postgres restarted) each entry is applied exactly once.
func TestReconnectResumesExactly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE items (id int PRIMARY KEY, v text);
CREATE TABLE applied (n serial PRIMARY KEY, id int, v text);
CREATE FUNCTION count_applied() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.applied (id, v) VALUES (NEW.id, NEW.v); RETURN NEW; END $$;
CREATE TRIGGER a_count BEFORE INSERT ON items FOR EACH ROW WHEN (pg_trigger_depth() < 1) EXECUTE FUNCTION count_applied();
ALTER TABLE items ENABLE ALWAYS TRIGGER a_count`)
	e.startConnector("a", pg)
	n := 0
	feed := func(k int) uint64 {
		var last uint64
		for i := 0; i < k; i++ {
			n++
			last = e.log.append("b", upsert("public.items", fmt.Sprintf("id=%d", n), fmt.Sprintf("v=%d", n)))
		}
		return last
	}
	wantApplied := func() string {
		var lines []string
		for i := 1; i <= n; i++ {
			lines = append(lines, fmt.Sprintf("id=%d,v=%d", i, i))
		}
		return strings.Join(lines, "\n")
	}
	check := func(last uint64) {
		t.Helper()
		testkit.WaitFor(t, "every entry applied", func() (bool, string) {
			got := dump(t, pg, "(SELECT id, v FROM applied ORDER BY n) AS a")
			return got == wantApplied(), got
		})
		testkit.WaitFor(t, "origin at the last entry", func() (bool, string) {
			got := originLSN(t, pg, "a")
			return got == txlog.LSN(last), fmt.Sprintf("origin %X, want %X", got, txlog.LSN(last))
		})
	}
	check(feed(50))

	pg.Exec(`ALTER SUBSCRIPTION a DISABLE`)
	testkit.WaitFor(t, "apply worker gone", func() (bool, string) { return !subscriptionRunning(t, pg, "a"), "" })
	last := feed(20) // written while the subscriber is away
	pg.Exec(`ALTER SUBSCRIPTION a ENABLE`)
	check(last)
	startOf := func() uint64 {
		for _, c := range e.srv.Status().Connectors {
			if c.Connector == "a" {
				return c.StartOffset
			}
		}
		return 0
	}
	if got := startOf(); got != 50 {
		t.Fatalf("stream restarted after offset %d, want 50", got)
	}

	if err := pg.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	last = feed(30)
	check(last)
	if got := startOf(); got != 70 {
		t.Fatalf("stream restarted after offset %d, want 70", got)
	}

	// The publisher restarts (an engine restart): the apply worker
	// reconnects and resumes.
	e.restartServer()
	last = feed(10)
	check(last)
	if got := startOf(); got != 100 {
		t.Fatalf("stream restarted after offset %d, want 100", got)
	}
}

func TestLaterTableIsPickedUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE items (id int PRIMARY KEY)`)
	c := e.startConnector("a", pg)
	// Qualified: the test user is named electric, and "$user" comes first
	// in the default search_path now that the electric schema exists.
	pg.Exec(`CREATE TABLE public.later (id int PRIMARY KEY, v text)`)
	testkit.WaitFor(t, "later subscribed", func() (bool, string) {
		v := c.View()
		return v != nil && v.Subscribed["public.later"], fmt.Sprintf("%+v", v)
	})
	var trg int
	queryRow(t, pg, `SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.later'::regclass AND tgname = 'electric_upsert' AND tgenabled = 'R'`, &trg)
	if trg != 1 {
		t.Fatalf("upsert triggers on the later table: %d", trg)
	}
	pg.Exec(`INSERT INTO public.later VALUES (1, 'local')`)
	e.log.append("b", upsert("public.later", "id=1", "v=merged"), upsert("public.later", "id=2", "v=two"))
	waitDump(t, pg, "public.later", "id=1,v=merged\nid=2,v=two")

	// A column added later is sent once the schema is re-read.
	pg.Exec(`ALTER TABLE public.later ADD COLUMN w text`)
	testkit.WaitFor(t, "column w known", func() (bool, string) {
		v := c.View()
		for _, tb := range v.Tables {
			if tb.QualifiedName() == "public.later" {
				_, ok := tb.Column("w")
				return ok, ""
			}
		}
		return false, ""
	})
	e.log.append("b", upsert("public.later", "id=2", "v=two", "w=dub"))
	waitDump(t, pg, "public.later", "id=1,v=merged,w=NULL\nid=2,v=two,w=dub")
	if bad := applyErrors(t, pg); len(bad) > 0 {
		t.Fatalf("postgres reported errors:\n%s", strings.Join(bad, "\n"))
	}
}

// TestEchoCarriesOrigin reads the subscriber's own WAL: what the
// subscription applied comes with an Origin message named pg_<subscription
// oid> whose LSN is txlog.LSN of the entry.
func TestEchoCarriesOrigin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE items (id int PRIMARY KEY, v text);
CREATE PUBLICATION echo FOR ALL TABLES`)
	pg.Exec(`SELECT pg_create_logical_replication_slot('echo', 'pgoutput')`)
	c := e.startConnector("a", pg)
	off1 := e.log.append("b", upsert("public.items", "id=1", "v=one"))
	off2 := e.log.append("b", upsert("public.items", "id=2", "v=two"), del("public.items", "id=1"))
	waitDump(t, pg, "items", "id=2,v=two")
	pg.Exec(`INSERT INTO public.items VALUES (3, 'local')`)

	type tx struct {
		origin string
		lsn    uint64
		ops    []string
	}
	// Decoding reads only flushed WAL, and the test clusters commit
	// asynchronously: poll.
	peek := func() []tx {
		conn := connect(t, pg)
		defer conn.Close(context.Background())
		rows, err := conn.Query(context.Background(),
			`SELECT data FROM pg_logical_slot_peek_binary_changes('echo', NULL, NULL, 'proto_version', '1', 'publication_names', 'echo')`)
		if err != nil {
			t.Fatal(err)
		}
		var txs []tx
		for rows.Next() {
			var data []byte
			if err := rows.Scan(&data); err != nil {
				t.Fatal(err)
			}
			m, err := pglogrepl.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			switch m := m.(type) {
			case *pglogrepl.BeginMessage:
				txs = append(txs, tx{})
			case *pglogrepl.OriginMessage:
				txs[len(txs)-1].origin = m.Name
				txs[len(txs)-1].lsn = uint64(m.CommitLSN)
			case *pglogrepl.InsertMessage:
				txs[len(txs)-1].ops = append(txs[len(txs)-1].ops, "I"+string(m.Tuple.Columns[0].Data))
			case *pglogrepl.DeleteMessage:
				txs[len(txs)-1].ops = append(txs[len(txs)-1].ops, "D"+string(m.OldTuple.Columns[0].Data))
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return txs
	}
	origin := fmt.Sprintf("pg_%d", c.SubscriptionOID())
	want := []tx{
		{origin, txlog.LSN(off1), []string{"I1"}},
		{origin, txlog.LSN(off2), []string{"I2", "D1"}},
		{"", 0, []string{"I3"}},
	}
	testkit.WaitFor(t, "the subscriber's WAL", func() (bool, string) {
		got := fmt.Sprint(peek())
		return got == fmt.Sprint(want), fmt.Sprintf("got %s, want %v", got, want)
	})
}

func TestRefusalsAndErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE items (id int PRIMARY KEY)`)
	e.startConnector("a", pg)
	ctx := context.Background()
	addr := e.srv.Addr().String()
	base := "postgres://x@" + addr + "/electric?sslmode=disable"

	// A plain connection is refused with a reason.
	_, err := pgconn.Connect(ctx, base+"&application_name=a")
	if err == nil || !strings.Contains(err.Error(), "replication=database") {
		t.Fatalf("plain connection: %v", err)
	}
	// An unknown role is refused as a wrong password is: 28P01.
	_, err = pgconn.Connect(ctx, connURL(addr, "nobody", publisher.ConnectorPassword(testMaster, "nobody"))+"&sslmode=disable")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		t.Fatalf("unknown connector: %v", err)
	}
	// SSL is refused with 'N', then the startup proceeds (sslmode=prefer).
	conn, err := pgconn.Connect(ctx, connURL(addr, "a", publisher.ConnectorPassword(testMaster, "a"))+"&sslmode=prefer")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if v := conn.ParameterStatus("server_version"); v != "electric-0.0.1" {
		t.Fatalf("server_version %q", v)
	}
	// An unknown query gets an error, and the connection stays usable.
	_, err = conn.Exec(ctx, "SELECT 1").ReadAll()
	if !errors.As(err, &pgErr) || pgErr.Code != "0A000" || !strings.Contains(pgErr.Message, "does not support") {
		t.Fatalf("unknown query: %v", err)
	}
	sys, err := pglogrepl.IdentifySystem(ctx, conn)
	if err != nil || sys.DBName != "electric" || sys.Timeline != 1 {
		t.Fatalf("IDENTIFY_SYSTEM: %+v, %v", sys, err)
	}
	// The extended protocol is refused, and Sync recovers.
	rr := conn.ExecParams(ctx, "SELECT $1", [][]byte{[]byte("1")}, nil, nil, nil).Read()
	if !errors.As(rr.Err, &pgErr) || !strings.Contains(pgErr.Message, "simple query protocol") {
		t.Fatalf("extended protocol: %v", rr.Err)
	}
	if _, err := pglogrepl.IdentifySystem(ctx, conn); err != nil {
		t.Fatalf("after extended protocol: %v", err)
	}
	// Slot creation is refused.
	_, err = pglogrepl.CreateReplicationSlot(ctx, conn, "s", "pgoutput", pglogrepl.CreateReplicationSlotOptions{})
	if !errors.As(err, &pgErr) || pgErr.Code != "0A000" {
		t.Fatalf("CREATE_REPLICATION_SLOT: %v", err)
	}

	// A raw client sending garbage after startup gets an ErrorResponse
	// before the connection closes.
	raw, err := pgconn.Connect(ctx, connURL(addr, "a", publisher.ConnectorPassword(testMaster, "a"))+"&sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	hj, err := raw.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	nc, fe := hj.Conn, hj.Frontend
	defer nc.Close()
	nc.Write([]byte{'?', 0, 0, 0, 4})
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := fe.Receive()
	if err != nil {
		t.Fatalf("garbage message: no answer: %v", err)
	}
	if er, ok := m.(*pgproto3.ErrorResponse); !ok || er.Code != "08P01" {
		t.Fatalf("garbage message answered with %#v", m)
	}

	// The subscription streams already: a second stream is refused.
	testkit.WaitFor(t, "the subscription streaming", func() (bool, string) {
		for _, s := range e.srv.Status().Sessions {
			if s.Connector == "a" && s.State == "streaming" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", e.srv.Status())
	})
	err = pglogrepl.StartReplication(ctx, conn, "a", 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names 'all_tables'"}})
	if !errors.As(err, &pgErr) || pgErr.Code != "55006" {
		t.Fatalf("second stream: %v", err)
	}
	pg.Exec(`ALTER SUBSCRIPTION a DISABLE`)
	testkit.WaitFor(t, "the subscription stopped", func() (bool, string) {
		for _, c := range e.srv.Status().Connectors {
			if c.Connector == "a" {
				return !c.Streaming, fmt.Sprintf("%+v", c)
			}
		}
		return false, "no status"
	})

	// Streaming: copy-both, keepalives, CopyDone back to query mode.
	if err := pglogrepl.StartReplication(ctx, conn, "a", 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names 'all_tables'"}}); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	msg, err := conn.ReceiveMessage(rctx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	cd, ok := msg.(*pgproto3.CopyData)
	if !ok || cd.Data[0] != 'k' {
		t.Fatalf("first message in copy-both: %#v", msg)
	}
	if _, err := pglogrepl.SendStandbyCopyDone(ctx, conn); err != nil {
		t.Fatalf("CopyDone: %v", err)
	}
	if _, err := pglogrepl.IdentifySystem(ctx, conn); err != nil {
		t.Fatalf("after CopyDone: %v", err)
	}

	// Resuming beyond the end of the log is refused.
	err = pglogrepl.StartReplication(ctx, conn, "a", pglogrepl.LSN(txlog.LSN(1000)), pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names 'all_tables'"}})
	if !errors.As(err, &pgErr) || pgErr.Code != "55000" || !strings.Contains(pgErr.Message, "log ends at 0") {
		t.Fatalf("resume beyond the log: %v", err)
	}

	// DROP SUBSCRIPTION connects to drop the (virtual) slot: it succeeds.
	pg.Exec(`DROP SUBSCRIPTION a`)
}

// TestTwoSubscribersEachGetTheirSchema: one publisher, two Postgres with
// different schemas; each applies the same entries as far as it has the
// tables and columns.
func TestTwoSubscribersEachGetTheirSchema(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pa, pb := pgtest.Start(t), pgtest.Start(t)
	pa.Exec(`CREATE TABLE items (id int PRIMARY KEY, v text, w text); CREATE TABLE only_a (id int PRIMARY KEY)`)
	pb.Exec(`CREATE TABLE items (id int PRIMARY KEY, v text)`)
	e.startConnector("a", pa)
	e.startConnector("b", pb)
	e.log.append("a", upsert("public.items", "id=1", "v=one", "w=wa"), upsert("public.only_a", "id=7"))
	e.log.append("b", upsert("public.items", "id=2", "v=two"))
	waitDump(t, pa, "items", "id=1,v=one,w=wa\nid=2,v=two,w=NULL")
	waitDump(t, pa, "only_a", "id=7")
	waitDump(t, pb, "items", "id=1,v=one\nid=2,v=two")
	for name, pg := range map[string]*pgtest.Cluster{"a": pa, "b": pb} {
		if !subscriptionRunning(t, pg, name) {
			t.Fatalf("apply worker of %s not running", name)
		}
		if bad := applyErrors(t, pg); len(bad) > 0 {
			t.Fatalf("%s reported errors:\n%s", name, strings.Join(bad, "\n"))
		}
	}
}

// TestBackfillOfLaterTableAndColumn: entries written before the subscriber
// had a table or a column reach it once it has them, from the merged rows.
func TestBackfillOfLaterTableAndColumn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE items (id int PRIMARY KEY, v text)`)
	e.startConnector("a", pg)
	e.log.append("b", upsert("public.items", "id=1", "v=one", "w=w1"), upsert("public.later", "id=1", "v=l1"))
	e.log.append("b", upsert("public.later", "id=2", "v=l2"), upsert("public.items", "id=2", "v=two", "w=w2"))
	e.log.append("b", del("public.later", "id=2", "v=l2"), upsert("public.later", "id=3", "v=l3"))
	waitDump(t, pg, "items", "id=1,v=one\nid=2,v=two")

	pg.Exec(`CREATE TABLE public.later (id int PRIMARY KEY, v text); ALTER TABLE public.items ADD COLUMN w text`)
	waitDump(t, pg, "public.later", "id=1,v=l1\nid=3,v=l3")
	waitDump(t, pg, "public.items", "id=1,v=one,w=w1\nid=2,v=two,w=w2")
	// The stream goes on after the backfill.
	e.log.append("b", upsert("public.later", "id=4", "v=l4"))
	waitDump(t, pg, "public.later", "id=1,v=l1\nid=3,v=l3\nid=4,v=l4")
	if bad := applyErrors(t, pg); len(bad) > 0 {
		t.Fatalf("postgres reported errors:\n%s", strings.Join(bad, "\n"))
	}
}
