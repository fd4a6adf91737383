package engine_test

import (
	"fmt"
	"testing"
)

// The seed's single_dc scenarios (spec §10.2) on stock Postgres 15.

const (
	idA = "00000000-0000-0000-0000-00000000000a"
	idB = "00000000-0000-0000-0000-00000000000b"
)

const selEntries = "SELECT id::text, content, content_b FROM public.entries ORDER BY id"

func TestStatusReady(t *testing.T) {
	c := newCluster(t, 2, initSQL)
	c.start(t.TempDir())
}

func TestOneDirection(t *testing.T) {
	c := newCluster(t, 2, initSQL)
	c.start(t.TempDir())
	for _, table := range []string{"entries", "entries_default"} {
		id := "00000000-0000-0000-0000-000000000001"
		sel := "SELECT id::text, content, content_b FROM public." + table + " ORDER BY id"
		c.exec("postgres_1", "INSERT INTO public."+table+" (id, content) VALUES ($1, 'hello')", id)
		c.waitRows("postgres_2", sel, id+"|hello|<NULL>")
		c.exec("postgres_1", "UPDATE public."+table+" SET content = 'other' WHERE id = $1", id)
		c.waitRows("postgres_2", sel, id+"|other|<NULL>")
		c.exec("postgres_1", "DELETE FROM public."+table+" WHERE id = $1", id)
		c.waitRows("postgres_2", sel)
	}
}

// bidirectional.lux: inserts both ways, an update from pg_1, a delete from
// pg_2; every step visible on both sides.
func TestBidirectional(t *testing.T) {
	c := newCluster(t, 2, initSQL)
	c.start(t.TempDir())
	pingPong(c, "postgres_1", "postgres_2")
	c.exec("postgres_1", "UPDATE public.entries SET content_b = 'bye from pg_1' WHERE id = $1", idA)
	c.waitAll(selEntries, idA+"|hello from pg_1|bye from pg_1", idB+"|hello from pg_2|<NULL>")
	c.exec("postgres_2", "DELETE FROM public.entries WHERE id = $1", idA)
	c.waitAll(selEntries, idB+"|hello from pg_2|<NULL>")
	c.exec("postgres_2", "DELETE FROM public.entries WHERE id = $1", idB)
	c.waitAll(selEntries)
}

// bidirectional_reversed.lux: the same ping-pong starting from pg_2.
func TestBidirectionalReversed(t *testing.T) {
	c := newCluster(t, 2, initSQL)
	c.start(t.TempDir())
	pingPong(c, "postgres_2", "postgres_1")
}

// pingPong inserts idA on first, waits for it on second, then idB on second.
func pingPong(c *cluster, first, second string) {
	c.t.Helper()
	c.exec(first, "INSERT INTO public.entries (id, content) VALUES ($1, $2)", idA, "hello from pg_"+first[len(first)-1:])
	rowA := idA + "|hello from pg_" + first[len(first)-1:] + "|<NULL>"
	c.waitRows(second, selEntries, rowA)
	c.exec(second, "INSERT INTO public.entries (id, content) VALUES ($1, $2)", idB, "hello from pg_"+second[len(second)-1:])
	rowB := idB + "|hello from pg_" + second[len(second)-1:] + "|<NULL>"
	c.waitAll(selEntries, rowA, rowB)
}

// insert_conflict.lux: with pg_2's subscription disabled, the same id is
// inserted on pg_1 then on pg_2; same-key inserts merge, the later wins, and
// nothing stops on a unique violation.
func TestInsertConflict(t *testing.T) {
	c := newCluster(t, 2, initSQL)
	c.start(t.TempDir())
	c.setSubscription("postgres_2", false)
	c.exec("postgres_1", "INSERT INTO public.entries (id, content) VALUES ($1, 'Hello from a')", idA)
	// The row is merged (it reaches the log) before pg_2 writes its own.
	c.waitLogHead(1)
	c.exec("postgres_2", "INSERT INTO public.entries (id, content) VALUES ($1, 'Hello from b')", idA)
	c.waitRows("postgres_1", selEntries, idA+"|Hello from b|<NULL>")
	c.setSubscription("postgres_2", true)
	c.waitAll(selEntries, idA+"|Hello from b|<NULL>")
	c.checkNoApplyErrors()
}

// insert_insert.lux: concurrent inserts of different keys on both sides.
func TestInsertInsert(t *testing.T) {
	c := newCluster(t, 2, initSQL)
	c.start(t.TempDir())
	var want []string
	for i := 0; i < 20; i++ {
		for j, n := range c.names {
			id := fmt.Sprintf("00000000-0000-0000-%04d-%012d", j+1, i)
			want = append(want, id+"|from "+n+"|<NULL>")
		}
	}
	done := make(chan struct{}, len(c.names))
	for j, n := range c.names {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 20; i++ {
				id := fmt.Sprintf("00000000-0000-0000-%04d-%012d", j+1, i)
				c.pgs[n].Exec("INSERT INTO public.entries (id, content) VALUES ($1, $2)", id, "from "+n)
			}
		}()
	}
	for range c.names {
		<-done
	}
	c.waitAll(selEntries, sorted(want)...)
	c.waitLogHead(40)
	if h := c.logHead(); h != 40 {
		t.Errorf("log head %d after 40 source transactions, want 40", h)
	}
}

// update_wins.lux: an update concurrent with a delete keeps the row.
func TestUpdateWins(t *testing.T) {
	c := newCluster(t, 2, initSQL)
	c.start(t.TempDir())
	c.setSubscription("postgres_2", false)
	c.exec("postgres_2", "INSERT INTO public.entries (id, content) VALUES ($1, 'State1')", idA)
	c.waitRows("postgres_1", selEntries, idA+"|State1|<NULL>")
	c.exec("postgres_1", "DELETE FROM public.entries WHERE id = $1", idA)
	c.waitLogHead(2)
	// pg_2 has not seen the delete: its update is concurrent with it.
	c.exec("postgres_2", "UPDATE public.entries SET content = 'State2' WHERE id = $1", idA)
	c.waitRows("postgres_1", selEntries, idA+"|State2|<NULL>")
	c.setSubscription("postgres_2", true)
	c.waitAll(selEntries, idA+"|State2|<NULL>")
	c.checkNoApplyErrors()
}

// The backlog (sysbench_tests.lux): rows written while the engine is down,
// after the slot exists, reach the other side when it starts again.
func TestBacklog(t *testing.T) {
	c := newCluster(t, 2, initSQL)
	dir := t.TempDir()
	c.start(dir)
	c.exec("postgres_1", "INSERT INTO public.entries (id, content) VALUES ($1, 'before')", idA)
	c.waitAll(selEntries, idA+"|before|<NULL>")
	c.stop()
	c.exec("postgres_1", "INSERT INTO public.entries (id, content) SELECT ('00000000-0000-0000-0000-'||lpad(g::text, 12, '0'))::uuid, 'backlog '||g FROM generate_series(1, 500) g")
	c.exec("postgres_1", "UPDATE public.entries SET content = 'after' WHERE id = $1", idA)
	c.exec("postgres_2", "INSERT INTO public.entries (id, content) VALUES ($1, 'from 2 while down')", idB)
	c.start(dir)
	c.waitAll("SELECT count(*) FROM public.entries", "502")
	c.waitAll("SELECT content FROM public.entries WHERE id = '"+idA+"'", "after")
	c.waitAll("SELECT content FROM public.entries WHERE id = '"+idB+"'", "from 2 while down")
	c.assertSame("public.entries")
}

// Three Postgres: every write reaches the two others, conflicts resolve the
// same way everywhere.
func TestThreePostgres(t *testing.T) {
	c := newCluster(t, 3, initSQL)
	c.start(t.TempDir())
	c.exec("postgres_1", "INSERT INTO public.entries (id, content) VALUES ($1, 'from 1')", idA)
	c.waitAll(selEntries, idA+"|from 1|<NULL>")
	c.exec("postgres_3", "INSERT INTO public.entries (id, content) VALUES ($1, 'from 3')", idB)
	c.waitAll(selEntries, idA+"|from 1|<NULL>", idB+"|from 3|<NULL>")
	c.exec("postgres_2", "UPDATE public.entries SET content_b = 'b from 2' WHERE id = $1", idB)
	c.exec("postgres_3", "DELETE FROM public.entries WHERE id = $1", idA)
	c.waitAll(selEntries, idB+"|from 3|b from 2")
	// A conflict with pg_3 cut off: its write is concurrent with pg_1's.
	c.setSubscription("postgres_3", false)
	c.exec("postgres_1", "UPDATE public.entries SET content = 'one' WHERE id = $1", idB)
	c.waitRows("postgres_2", selEntries, idB+"|one|b from 2")
	c.exec("postgres_3", "UPDATE public.entries SET content_b = 'three' WHERE id = $1", idB)
	c.setSubscription("postgres_3", true)
	c.waitAll(selEntries, idB+"|one|three")
	c.checkNoApplyErrors()
}
