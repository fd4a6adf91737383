package pgsource

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/electric-sql/electric-go/internal/pgtest"
	"github.com/electric-sql/electric-go/internal/testkit"
)

func publishedTables(t *testing.T, pg *pgtest.Cluster) []string {
	return pg.Rows(t, `SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = 'all_tables' ORDER BY 1`)
}

// The publication lists every replicated table and no electric.* one; a FOR
// ALL TABLES publication of an older version is converted at start; tables
// created later, in any schema, are published (by the event trigger in
// their creating transaction, or by the periodic sync when the trigger is
// off) and their rows streamed.
func TestPublicationLeavesElectricOut(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	pg.Exec(`CREATE SCHEMA electric; CREATE TABLE electric.migrations (id serial PRIMARY KEY, version text);
CREATE TABLE public.items (id int PRIMARY KEY);
CREATE UNLOGGED TABLE public.scratch (id int PRIMARY KEY);
CREATE PUBLICATION all_tables FOR ALL TABLES`)
	sink := newRecSink()
	r := startSource(t, pg, "pg1", sink, sink)

	if got := pg.Rows(t, `SELECT puballtables::text FROM pg_publication WHERE pubname = 'all_tables'`); !reflect.DeepEqual(got, []string{"false"}) {
		t.Fatalf("puballtables = %v after start, want the FOR ALL TABLES publication converted", got)
	}
	if got, want := publishedTables(t, pg), []string{"public.items"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("published tables %v, want %v", got, want)
	}
	if !strings.Contains(r.logs.String(), "converted publication") {
		t.Errorf("the conversion was not logged")
	}

	// Created later, written in the creating transaction: still streamed.
	pg.Exec(`CREATE SCHEMA later; CREATE TABLE later.t (id int PRIMARY KEY, v text); INSERT INTO later.t VALUES (1, 'a');
CREATE TABLE electric.later (id int PRIMARY KEY); INSERT INTO electric.later VALUES (1)`)
	testkit.Eventually(t, "the new table's insert", func() bool { return len(sink.txs()) == 1 })
	for _, op := range sink.txs()[0].Tx.Ops {
		if op.Table != "later.t" {
			t.Errorf("unexpected op %s", fmtOp(op))
		}
	}
	if got := publishedTables(t, pg); slices.Contains(got, "electric.later") || !slices.Contains(got, "later.t") {
		t.Errorf("published tables %v: want later.t and no electric table", got)
	}

	// Without the event trigger, the sync adds the table.
	pg.Exec(`ALTER EVENT TRIGGER electric_publish_new_tables DISABLE; CREATE TABLE public.quiet (id int PRIMARY KEY)`)
	testkit.Eventually(t, "public.quiet published", func() bool { return slices.Contains(publishedTables(t, pg), "public.quiet") })
	pg.Exec(`INSERT INTO public.quiet VALUES (7)`)
	testkit.Eventually(t, "the insert into public.quiet", func() bool { return len(sink.txs()) == 2 })
	if op := sink.txs()[1].Tx.Ops[0]; op.Table != "public.quiet" {
		t.Errorf("unexpected op %s", fmtOp(op))
	}

	// A table moved into the electric schema leaves the publication.
	pg.Exec(`ALTER TABLE public.quiet SET SCHEMA electric`)
	testkit.Eventually(t, "electric.quiet unpublished", func() bool {
		for _, n := range publishedTables(t, pg) {
			if strings.HasPrefix(n, "electric.") {
				return false
			}
		}
		return true
	})
}
