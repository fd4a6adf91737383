package pgsource

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/internal/pgtest"
	"github.com/electric-sql/electric-go/internal/testkit"
)

func TestChangesBecomeOps(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE public.items (id int PRIMARY KEY, a text, b text, n int)`)
	sink := newRecSink()
	r := startSource(t, pg, "pg1", sink, sink)

	pg.Exec(`INSERT INTO items VALUES (1, 'x', '', NULL)`)
	pg.Exec(`UPDATE items SET b = 'y' WHERE id = 1`)
	pg.Exec(`UPDATE items SET a = NULL, n = 7 WHERE id = 1`)
	pg.Exec(`DELETE FROM items WHERE id = 1`)
	pg.Exec(`INSERT INTO items VALUES (2, 'z', 'w', 1)`)
	pg.Exec(`TRUNCATE items`)
	testkit.Eventually(t, "6 transactions", func() bool { return len(sink.txs()) == 6 })

	want := []merge.Op{
		{Kind: merge.OpInsert, Table: "public.items", Key: "1", Columns: map[string]merge.Value{"id": val("1"), "a": val("x"), "b": val(""), "n": null}},
		{Kind: merge.OpUpdate, Table: "public.items", Key: "1", Columns: map[string]merge.Value{"b": val("y")},
			Old: map[string]merge.Value{"id": val("1"), "a": val("x"), "b": val(""), "n": null}},
		{Kind: merge.OpUpdate, Table: "public.items", Key: "1", Columns: map[string]merge.Value{"a": null, "n": val("7")},
			Old: map[string]merge.Value{"id": val("1"), "a": val("x"), "b": val("y"), "n": null}},
		{Kind: merge.OpDelete, Table: "public.items", Key: "1",
			Old: map[string]merge.Value{"id": val("1"), "a": null, "b": val("y"), "n": val("7")}},
		{Kind: merge.OpInsert, Table: "public.items", Key: "2", Columns: map[string]merge.Value{"id": val("2"), "a": val("z"), "b": val("w"), "n": val("1")}},
		{Kind: merge.OpTruncate, Table: "public.items"},
	}
	txs := sink.txs()
	var prevTime uint64
	for i, it := range txs {
		if len(it.Tx.Ops) != 1 {
			t.Errorf("tx %d: %d ops, want 1", i, len(it.Tx.Ops))
			continue
		}
		if got := it.Tx.Ops[0]; !reflect.DeepEqual(got, want[i]) {
			t.Errorf("tx %d:\n got %s\nwant %s", i, fmtOp(got), fmtOp(want[i]))
		}
		if it.Source != "pg1" || it.Tx.Origin != "pg1" {
			t.Errorf("tx %d: source %q origin %q, want pg1", i, it.Source, it.Tx.Origin)
		}
		if it.ContextOffset != 0 {
			t.Errorf("tx %d: context offset %d without any echo", i, it.ContextOffset)
		}
		now := uint64(time.Now().UnixMicro())
		if it.Tx.CommitTime < prevTime || it.Tx.CommitTime > now || now-it.Tx.CommitTime > uint64(time.Hour.Microseconds()) {
			t.Errorf("tx %d: commit time %d not a recent µs timestamp after %d", i, it.Tx.CommitTime, prevTime)
		}
		prevTime = it.Tx.CommitTime
		pos, err := DecodePosition(it.Position)
		if err != nil || pos.LSN == 0 {
			t.Errorf("tx %d: position %x: %v", i, it.Position, err)
		}
	}

	// Every transaction was durable: the slot is confirmed up to the last.
	last, _ := DecodePosition(txs[len(txs)-1].Position)
	testkit.Eventually(t, "slot confirmed", func() bool { return slotConfirmed(t, pg) >= last.LSN })
	st := r.src.Status()
	if !st.Ready() || st.Txs < 6 || st.ConfirmedLSN < last.LSN || st.ReceivedLSN < last.LSN || st.LastTxTime.IsZero() {
		t.Errorf("status after 6 transactions: %+v", st)
	}
	testkit.Eventually(t, "slot stats", func() bool { return r.src.Status().WALRetainedBytes >= 0 })
}

func slotConfirmed(t testing.TB, pg *pgtest.Cluster) pglogrepl.LSN {
	t.Helper()
	conn := pg.Connect()
	var s string
	if err := conn.QueryRow(context.Background(), `SELECT coalesce((SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'all_changes'), '0/0')`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
	lsn, err := pglogrepl.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return lsn
}

// currentLSN is the WAL insert position: with pgtest's asynchronous commit,
// pg_current_wal_lsn (the write position) can still be before the last
// commit.
func currentLSN(t testing.TB, pg *pgtest.Cluster) pglogrepl.LSN {
	t.Helper()
	conn := pg.Connect()
	defer conn.Close(context.Background())
	var s string
	if err := conn.QueryRow(context.Background(), `SELECT pg_current_wal_insert_lsn()::text`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	lsn, err := pglogrepl.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return lsn
}

func TestMultiTableTransactionIsOneTx(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE public.a (id text PRIMARY KEY, v text); CREATE TABLE public.b (k1 int, k2 text, v text, PRIMARY KEY (k2, k1))`)
	sink := newRecSink()
	startSource(t, pg, "pg1", sink, sink)
	pg.Exec(`BEGIN; INSERT INTO a VALUES ('x', '1'); INSERT INTO b VALUES (5, 'q', 'v'); UPDATE a SET v = '2' WHERE id = 'x'; COMMIT`)
	testkit.Eventually(t, "1 transaction", func() bool { return len(sink.txs()) == 1 })
	ops := sink.txs()[0].Tx.Ops
	if len(ops) != 3 {
		t.Fatalf("got %d ops, want 3", len(ops))
	}
	if ops[0].Table != "public.a" || ops[1].Table != "public.b" || ops[2].Kind != merge.OpUpdate {
		t.Errorf("ops: %s | %s | %s", fmtOp(ops[0]), fmtOp(ops[1]), fmtOp(ops[2]))
	}
	// Composite key in primary key order (k2, k1).
	if want := merge.EncodeKey([]merge.Value{val("q"), val("5")}); ops[1].Key != want {
		t.Errorf("composite key %q, want %q", ops[1].Key, want)
	}
}

func TestUnchangedToastIsNotWritten(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	// EXTERNAL storage: no compression, so a 20 kB value is stored out of
	// line and comes back as 'u' when unchanged.
	pg.Exec(`CREATE TABLE public.docs (id int PRIMARY KEY, title text, body text); ALTER TABLE docs ALTER body SET STORAGE EXTERNAL`)
	sink := newRecSink()
	startSource(t, pg, "pg1", sink, sink)
	buf := make([]byte, 10000)
	rand.Read(buf)
	big := hex.EncodeToString(buf)
	pg.Exec(`INSERT INTO docs VALUES (1, 't', $1)`, big)
	pg.Exec(`UPDATE docs SET title = 'u' WHERE id = 1`)
	pg.Exec(`UPDATE docs SET id = 2 WHERE id = 1`)
	testkit.Eventually(t, "3 transactions", func() bool { return len(sink.txs()) == 3 })
	txs := sink.txs()
	if got := txs[0].Tx.Ops[0].Columns["body"]; got != val(big) {
		t.Errorf("insert body: %d bytes, want %d", len(got.Text), len(big))
	}
	up := txs[1].Tx.Ops[0]
	if !reflect.DeepEqual(up.Columns, map[string]merge.Value{"title": val("u")}) {
		t.Errorf("update columns %v, want only title", up.Columns)
	}
	if up.Old["body"] != val(big) {
		t.Errorf("update old body missing (%d bytes)", len(up.Old["body"].Text))
	}
	// A key change is a delete of the old key and an insert of the new one
	// with every column, the unchanged TOAST value included.
	ops := txs[2].Tx.Ops
	if len(ops) != 2 || ops[0].Kind != merge.OpDelete || ops[0].Key != "1" || ops[1].Kind != merge.OpInsert || ops[1].Key != "2" {
		t.Fatalf("key change ops: %v", ops)
	}
	if !reflect.DeepEqual(ops[1].Columns, map[string]merge.Value{"id": val("2"), "title": val("u"), "body": val(big)}) {
		t.Errorf("key change insert columns: %d", len(ops[1].Columns))
	}
}

func TestTableWithoutPrimaryKeyIsSkipped(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE public.nopk (a int, b text); CREATE TABLE public.ok (id serial PRIMARY KEY, v text)`)
	sink := newRecSink()
	r := startSource(t, pg, "pg1", sink, sink)
	pg.Exec(`INSERT INTO nopk VALUES (1, 'x')`)
	// The all-tables publication would make this fail without an identity.
	pg.Exec(`UPDATE nopk SET b = 'y'`)
	pg.Exec(`INSERT INTO ok (v) VALUES ('v')`)
	testkit.Eventually(t, "1 transaction", func() bool { return len(sink.txs()) == 1 })
	if ops := sink.txs()[0].Tx.Ops; len(ops) != 1 || ops[0].Table != "public.ok" {
		t.Errorf("ops %v, want only public.ok", ops)
	}
	logs := r.logs.String()
	if !strings.Contains(logs, "table has no primary key") || !strings.Contains(logs, "public.nopk") {
		t.Errorf("no clear warning about public.nopk in the log:\n%s", logs)
	}
	if !strings.Contains(logs, "sequence or identity") {
		t.Errorf("no warning about the serial key of public.ok")
	}
	if _, ok := r.src.Status().SkippedTables["public.nopk"]; !ok {
		t.Errorf("status does not list public.nopk as skipped: %v", r.src.Status().SkippedTables)
	}
	// A table created later without a key is found and skipped too.
	pg.Exec(`CREATE TABLE public.later (x int); INSERT INTO later VALUES (1); INSERT INTO ok (v) VALUES ('w')`)
	testkit.Eventually(t, "2 transactions", func() bool { return len(sink.txs()) == 2 })
	if ops := sink.txs()[1].Tx.Ops; len(ops) != 1 || ops[0].Table != "public.ok" {
		t.Errorf("ops %v, want only public.ok", ops)
	}
	testkit.Eventually(t, "warning about public.later", func() bool { return strings.Contains(r.logs.String(), "public.later") })

	// Once it has a key, the table is replicated.
	pg.Exec(`ALTER TABLE nopk ADD PRIMARY KEY (a); INSERT INTO nopk VALUES (2, 'z')`)
	testkit.Eventually(t, "3 transactions", func() bool { return len(sink.txs()) == 3 })
	if ops := sink.txs()[2].Tx.Ops; len(ops) != 1 || ops[0].Table != "public.nopk" || ops[0].Key != "2" {
		t.Errorf("ops %v, want the insert into public.nopk", ops)
	}
	if _, ok := r.src.Status().SkippedTables["public.nopk"]; ok {
		t.Errorf("public.nopk still listed as skipped")
	}
}

func TestNewTableAndColumnAreIntrospected(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	sink := newRecSink()
	r := startSource(t, pg, "pg1", sink, sink)
	pg.Exec(`CREATE TABLE public.t1 (id int PRIMARY KEY, v text); INSERT INTO t1 VALUES (1, 'a')`)
	pg.Exec(`ALTER TABLE t1 ADD COLUMN w text; UPDATE t1 SET w = 'b'`)
	testkit.Eventually(t, "2 transactions", func() bool { return len(sink.txs()) == 2 })
	// The ADD COLUMN's own op (every existing row has NULL) comes first.
	ops := sink.txs()[1].Tx.Ops
	up := ops[len(ops)-1]
	if !reflect.DeepEqual(up.Columns, map[string]merge.Value{"w": val("b")}) {
		t.Errorf("update after ADD COLUMN: %s (replica identity FULL set on the new table?)", fmtOp(up))
	}
	if !strings.Contains(r.logs.String(), "REPLICA IDENTITY FULL") {
		t.Errorf("setting REPLICA IDENTITY FULL on the new table was not logged")
	}
}

// echoSession applies a transaction as if our subscription did: it runs
// under the replication origin pg_<oid of the subscription>.
func echoTx(t *testing.T, pg *pgtest.Cluster, subOID uint32, originLSN pglogrepl.LSN, sql string) {
	t.Helper()
	conn := pg.Connect()
	defer conn.Close(context.Background())
	ctx := context.Background()
	if _, err := conn.Exec(ctx, fmt.Sprintf(`SELECT pg_replication_origin_session_setup('pg_%d')`, subOID)); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_replication_origin_xact_setup($1::text::pg_lsn, now())`, originLSN.String()); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_replication_origin_session_reset()`); err != nil {
		t.Fatal(err)
	}
}

func createSubscription(t *testing.T, pg *pgtest.Cluster, name string) uint32 {
	t.Helper()
	pg.Exec(fmt.Sprintf(`CREATE SUBSCRIPTION %q CONNECTION 'host=127.0.0.1 port=1 dbname=none' PUBLICATION all_tables
		WITH (connect = false, enabled = false, create_slot = false, slot_name = NONE)`, name))
	conn := pg.Connect()
	defer conn.Close(context.Background())
	var oid uint32
	if err := conn.QueryRow(context.Background(), `SELECT oid FROM pg_subscription WHERE subname = $1`, name).Scan(&oid); err != nil {
		t.Fatal(err)
	}
	return oid
}

func TestEchoesAreDroppedAndSetTheContext(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE public.items (id int PRIMARY KEY, v text)`)
	sink := newRecSink()
	// The subscription appears after the source started: found lazily.
	startSource(t, pg, "pg1", sink, sink)
	pg.Exec(`INSERT INTO items VALUES (1, 'local')`)
	testkit.Eventually(t, "first local tx", func() bool { return len(sink.txs()) == 1 })

	sub := createSubscription(t, pg, "pg1")
	other := createSubscription(t, pg, "someone_else")
	echoTx(t, pg, sub, pglogrepl.LSN(txlog.LSN(41)), `INSERT INTO items VALUES (2, 'echo')`)
	echoTx(t, pg, sub, pglogrepl.LSN(txlog.LSN(42)), `UPDATE items SET v = 'echo2' WHERE id = 2`)
	// Another subscription's writes are ordinary writes.
	echoTx(t, pg, other, pglogrepl.LSN(12345), `INSERT INTO items VALUES (3, 'other')`)
	pg.Exec(`INSERT INTO items VALUES (4, 'local')`)
	testkit.Eventually(t, "3 transactions with ops", func() bool { return len(sink.txs()) == 3 })

	txs := sink.txs()
	if k := txs[1].Tx.Ops[0].Key; k != "3" {
		t.Errorf("second merged tx has key %q, want 3 (the other origin's write)", k)
	}
	if k := txs[2].Tx.Ops[0].Key; k != "4" {
		t.Errorf("third merged tx has key %q, want 4", k)
	}
	for _, it := range txs[1:] {
		if it.ContextOffset != 42 {
			t.Errorf("tx %q after the echo has context offset %d, want 42", it.Tx.Ops[0].Key, it.ContextOffset)
		}
		pos, _ := DecodePosition(it.Position)
		if pos.Echo != 42 {
			t.Errorf("stored position %+v does not keep the echo offset", pos)
		}
	}
	// The echoes became position-only items.
	var posOnly int
	for _, it := range sink.all() {
		if len(it.Tx.Ops) == 0 {
			posOnly++
		}
	}
	if posOnly != 2 {
		t.Errorf("%d position-only items, want 2 (one per echo)", posOnly)
	}
}

func TestEchoContextSurvivesRestart(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE public.items (id int PRIMARY KEY, v text)`)
	sub := createSubscription(t, pg, "pg1")
	sink := newRecSink()
	r := startSource(t, pg, "pg1", sink, sink)
	echoTx(t, pg, sub, pglogrepl.LSN(txlog.LSN(7)), `INSERT INTO items VALUES (1, 'echo')`)
	testkit.Eventually(t, "echo stored", func() bool { return len(sink.all()) == 1 })
	r.stop(t)
	pg.Exec(`INSERT INTO items VALUES (2, 'local')`)
	startSource(t, pg, "pg1", sink, sink)
	testkit.Eventually(t, "local tx", func() bool { return len(sink.txs()) == 1 })
	if c := sink.txs()[0].ContextOffset; c != 7 {
		t.Errorf("context offset after restart %d, want 7", c)
	}
}

func TestElectricSchemaIsNeverReplicated(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	pg.Exec(`CREATE SCHEMA electric; CREATE TABLE electric.migrations (id serial PRIMARY KEY, version text)`)
	// Qualified: with an electric schema, the electric user's search_path
	// ("$user", public) would create the table there.
	pg.Exec(`CREATE TABLE public.items (id int PRIMARY KEY)`)
	sink := newRecSink()
	r := startSource(t, pg, "pg1", sink, sink)
	pg.Exec(`INSERT INTO electric.migrations (version) VALUES ('1')`)
	pg.Exec(`BEGIN; INSERT INTO electric.migrations (version) VALUES ('2'); INSERT INTO public.items VALUES (1); COMMIT`)
	testkit.Eventually(t, "1 transaction", func() bool { return len(sink.txs()) == 1 })
	for _, op := range sink.txs()[0].Tx.Ops {
		if strings.HasPrefix(op.Table, "electric.") {
			t.Errorf("electric op replicated: %s", fmtOp(op))
		}
	}
	if n := len(sink.all()); n != 1 {
		t.Errorf("%d items, want 1: the electric-only transaction must be dropped", n)
	}
	// WAL of dropped transactions does not stay retained: the slot moves
	// past it without any item.
	for i := 0; i < 20; i++ {
		pg.Exec(`INSERT INTO electric.migrations (version) SELECT g::text FROM generate_series(1, 100) g`)
	}
	target := currentLSN(t, pg)
	testkit.Eventually(t, "slot to pass the electric writes", func() bool { return slotConfirmed(t, pg) >= target })
	if n := len(sink.all()); n != 1 {
		t.Errorf("%d items after electric-only writes, want 1", n)
	}
	_ = r
}

func TestConfirmWaitsForDurability(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE public.items (id int PRIMARY KEY)`)
	sink := newRecSink()
	startSource(t, pg, "pg1", sink, sink)
	pg.Exec(`INSERT INTO items VALUES (0)`)
	testkit.Eventually(t, "first tx", func() bool { return len(sink.txs()) == 1 })
	first, _ := DecodePosition(sink.txs()[0].Position)
	testkit.Eventually(t, "first confirmed", func() bool { return slotConfirmed(t, pg) >= first.LSN })

	sink.mu.Lock()
	sink.hold = true
	sink.mu.Unlock()
	for i := 1; i <= 5; i++ {
		pg.Exec(`INSERT INTO items VALUES ($1)`, i)
	}
	testkit.Eventually(t, "5 held items", func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return len(sink.held) == 5
	})
	// Keepalives and status updates go on, but nothing held is confirmed.
	held := currentLSN(t, pg)
	time.Sleep(1500 * time.Millisecond)
	if c := slotConfirmed(t, pg); c >= held || c > first.LSN+1024*1024 {
		t.Fatalf("slot confirmed %s although items up to %s are not durable", c, held)
	}
	sink.release()
	target := currentLSN(t, pg)
	testkit.Eventually(t, "held items confirmed", func() bool { return slotConfirmed(t, pg) >= target })
}

func TestSlotAdvancesWithoutRelevantChanges(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	pg.Exec(`CREATE DATABASE other`)
	sink := newRecSink()
	startSource(t, pg, "pg1", sink, sink)
	// WAL of another database is decoded by nobody's slot here: only
	// keepalives tell the connector that Postgres moved on.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, strings.TrimSuffix(pg.URI(), "/electric")+"/other")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE filler (id int PRIMARY KEY, v text); INSERT INTO filler SELECT g, md5(g::text) FROM generate_series(1, 20000) g`); err != nil {
		t.Fatal(err)
	}
	target := currentLSN(t, pg)
	testkit.Eventually(t, "slot to pass the other database's WAL", func() bool { return slotConfirmed(t, pg) >= target })
	if n := len(sink.all()); n != 0 {
		t.Errorf("%d items from another database's writes", n)
	}
}
