package pgsource

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/internal/pgtest"
)

// backfillTx runs sql in one transaction of a session marked with the
// engine's backfill origin, as the engine's backfill does.
func backfillTx(t *testing.T, pg *pgtest.Cluster, sql string) {
	t.Helper()
	conn := pg.Connect()
	defer conn.Close(context.Background())
	ctx := context.Background()
	for _, q := range []string{
		`SELECT pg_replication_origin_create('` + BackfillOrigin + `') WHERE NOT EXISTS (SELECT 1 FROM pg_replication_origin WHERE roname = '` + BackfillOrigin + `')`,
		`SELECT pg_replication_origin_session_setup('` + BackfillOrigin + `')`,
		"BEGIN", sql, "COMMIT",
		`SELECT pg_replication_origin_session_reset()`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// The engine's backfill writes are dropped: no item (not even a
// position-only one), no change of the causal context, and the slot moves
// past them.
func TestBackfillOriginIsIgnored(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE public.items (id int PRIMARY KEY, v text)`)
	sink := newRecSink()
	startSource(t, pg, "pg1", sink, sink)
	pg.Exec(`INSERT INTO public.items VALUES (1, 'local')`)
	waitFor(t, "first local tx", func() bool { return len(sink.txs()) == 1 })

	backfillTx(t, pg, `INSERT INTO public.items VALUES (2, 'backfilled') ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v`)
	backfillTx(t, pg, `INSERT INTO public.items VALUES (1, 'backfilled') ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v`)
	pg.Exec(`INSERT INTO public.items VALUES (3, 'local')`)
	waitFor(t, "second local tx", func() bool { return len(sink.txs()) == 2 })
	if n := len(sink.all()); n != 2 {
		t.Errorf("%d items, want 2: backfill transactions must not reach the log", n)
	}
	it := sink.txs()[1]
	if len(it.Tx.Ops) != 1 || it.Tx.Ops[0].Key != "3" || it.ContextOffset != 0 {
		t.Errorf("tx after the backfill: %d ops, first key %q, context %d; want only key 3, context 0", len(it.Tx.Ops), it.Tx.Ops[0].Key, it.ContextOffset)
	}

	// Many backfill transactions: the slot passes them without any item.
	for i := 0; i < 10; i++ {
		backfillTx(t, pg, fmt.Sprintf(`INSERT INTO public.items SELECT g, 'bulk' FROM generate_series(%d, %d) g ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v`, 100*i+10, 100*i+109))
	}
	target := currentLSN(t, pg)
	waitFor(t, "slot to pass the backfill", func() bool { return slotConfirmed(t, pg) >= target })
	if n := len(sink.all()); n != 2 {
		t.Errorf("%d items after 10 backfill transactions, want 2", n)
	}
}

// A migration's transaction (spec §4.6) holds DDL, its electric.migrations
// row and possibly seed data. The seed dropped it whole; here the
// electric.migrations row is dropped and the data rows are this connector's
// writes like any other: seed rows reach the other replicas (and Satellites)
// through the merge, and a table created in the same transaction is
// introspected when its first change arrives.
func TestMigrationTransaction(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	pg.Exec(`CREATE SCHEMA electric; CREATE TABLE electric.migrations (id serial PRIMARY KEY, version text, hash text)`)
	pg.Exec(`CREATE TABLE public.items (id int PRIMARY KEY, v text)`)
	pg.Exec(`INSERT INTO public.items VALUES (1, 'before')`)
	sink := newRecSink()
	startSource(t, pg, "pg1", sink, sink)

	pg.Exec(`BEGIN;
CREATE TABLE public.things (id text PRIMARY KEY, v text);
INSERT INTO public.things VALUES ('seed', 'seeded');
ALTER TABLE public.items ADD COLUMN extra text;
UPDATE public.items SET extra = 'filled' WHERE id = 1;
INSERT INTO electric.migrations (version, hash) VALUES ('1_m', 'ABC');
COMMIT`)
	// A pure DDL migration has nothing to merge.
	pg.Exec(`BEGIN; CREATE TABLE public.empty (id int PRIMARY KEY); INSERT INTO electric.migrations (version, hash) VALUES ('2_m', 'DEF'); COMMIT`)
	pg.Exec(`INSERT INTO public.items VALUES (2, 'after', 'x')`)
	waitFor(t, "2 transactions", func() bool { return len(sink.txs()) == 2 })
	if n := len(sink.all()); n != 2 {
		t.Errorf("%d items, want 2 (the DDL-only migration leaves none)", n)
	}
	ops := sink.txs()[0].Tx.Ops
	want := []merge.Op{
		{Kind: merge.OpInsert, Table: "public.things", Key: "seed", Columns: map[string]merge.Value{"id": val("seed"), "v": val("seeded")}},
		{Kind: merge.OpUpdate, Table: "public.items", Key: "1", Columns: map[string]merge.Value{"extra": val("filled")}},
	}
	if len(ops) != len(want) {
		t.Fatalf("migration transaction became %d ops, want %d: %v", len(ops), len(want), ops)
	}
	for i := range want {
		got := ops[i]
		if got.Kind != want[i].Kind || got.Table != want[i].Table || got.Key != want[i].Key || !reflect.DeepEqual(got.Columns, want[i].Columns) {
			t.Errorf("op %d:\n got %s\nwant %s", i, fmtOp(got), fmtOp(want[i]))
		}
	}
	if k := sink.txs()[1].Tx.Ops[0]; k.Key != "2" || k.Columns["extra"].Text != "x" {
		t.Errorf("write after the migration: %s", fmtOp(k))
	}
}
