package engine_test

import (
	"context"
	"fmt"
	"testing"
)

// The seed's single_dc scenarios (spec §10.2) on stock Postgres 15. They
// share one cluster (starting Postgres dominates their cost): each scenario
// writes its own ids (scenario.id) and reads only those (scenario.sel), and
// counts log entries relative to where it started.

type scenario struct {
	c  *cluster
	no int
}

// id is the scenario's n-th row id.
func (s scenario) id(n int) string { return fmt.Sprintf("%08d-0000-0000-0000-%012d", s.no, n) }

// sel selects the scenario's rows of table (id|content|content_b).
func (s scenario) sel(table string) string {
	return fmt.Sprintf("SELECT id::text, content, content_b FROM public.%s WHERE id::text LIKE '%08d-%%' ORDER BY id", table, s.no)
}

func (s scenario) row(n int, content, contentB string) string {
	return s.id(n) + "|" + content + "|" + contentB
}

func TestSingleDC(t *testing.T) {
	c := newCluster(t, 2, kvSQL)
	dir := t.TempDir()
	c.start(dir)
	parent := c.t
	steps := []struct {
		name string
		fn   func(s scenario)
	}{
		{"one_direction", oneDirection},
		{"bidirectional", bidirectional},
		{"bidirectional_reversed", bidirectionalReversed},
		{"insert_conflict", insertConflict},
		{"insert_insert", insertInsert},
		{"update_wins", updateWins},
		{"convergence", func(s scenario) { testConvergence(s.c, 3, 300) }},
		{"no_apply_errors", func(s scenario) { s.c.checkNoApplyErrors() }},
		{"backlog", func(s scenario) { backlog(s, dir) }},
	}
	for i, st := range steps {
		if !t.Run(st.name, func(t *testing.T) {
			c.t = t
			defer func() { c.t = parent }()
			st.fn(scenario{c: c, no: i + 1})
		}) {
			return // the shared cluster may be in any state
		}
	}
	// backlog stopped the engine: the subscribers lost it for a while.
	c.checkNoApplyErrors("could not receive data from WAL stream", "could not connect to the publisher")
	c.checkEngineLog()
}

// one_direction.lux, for FULL and DEFAULT replica identity.
func oneDirection(s scenario) {
	c := s.c
	for _, table := range []string{"entries", "entries_default"} {
		c.exec("postgres_1", "INSERT INTO public."+table+" (id, content) VALUES ($1, 'hello')", s.id(1))
		c.waitRows("postgres_2", s.sel(table), s.row(1, "hello", "<NULL>"))
		c.exec("postgres_1", "UPDATE public."+table+" SET content = 'other' WHERE id = $1", s.id(1))
		c.waitRows("postgres_2", s.sel(table), s.row(1, "other", "<NULL>"))
		c.exec("postgres_1", "DELETE FROM public."+table+" WHERE id = $1", s.id(1))
		c.waitRows("postgres_2", s.sel(table))
	}
}

// bidirectional.lux: inserts both ways, an update from pg_1, a delete from
// pg_2; every step visible on both sides.
func bidirectional(s scenario) {
	c := s.c
	pingPong(s, "postgres_1", "postgres_2")
	c.exec("postgres_1", "UPDATE public.entries SET content_b = 'bye from pg_1' WHERE id = $1", s.id(1))
	c.waitAll(s.sel("entries"), s.row(1, "hello from pg_1", "bye from pg_1"), s.row(2, "hello from pg_2", "<NULL>"))
	c.exec("postgres_2", "DELETE FROM public.entries WHERE id = $1", s.id(1))
	c.waitAll(s.sel("entries"), s.row(2, "hello from pg_2", "<NULL>"))
	c.exec("postgres_2", "DELETE FROM public.entries WHERE id = $1", s.id(2))
	c.waitAll(s.sel("entries"))
}

// bidirectional_reversed.lux: the same ping-pong starting from pg_2.
func bidirectionalReversed(s scenario) { pingPong(s, "postgres_2", "postgres_1") }

// pingPong inserts row 1 on first, waits for it on second, then row 2 on
// second, and waits for both everywhere.
func pingPong(s scenario, first, second string) {
	c := s.c
	c.t.Helper()
	from := func(n string) string { return "hello from pg_" + n[len(n)-1:] }
	c.exec(first, "INSERT INTO public.entries (id, content) VALUES ($1, $2)", s.id(1), from(first))
	c.waitRows(second, s.sel("entries"), s.row(1, from(first), "<NULL>"))
	c.exec(second, "INSERT INTO public.entries (id, content) VALUES ($1, $2)", s.id(2), from(second))
	c.waitAll(s.sel("entries"), s.row(1, from(first), "<NULL>"), s.row(2, from(second), "<NULL>"))
}

// insert_conflict.lux: with pg_2's subscription disabled, the same id is
// inserted on pg_1 then on pg_2; same-key inserts merge, the later wins, and
// nothing stops on a unique violation.
func insertConflict(s scenario) {
	c := s.c
	h := c.logHead()
	c.setSubscription("postgres_2", false)
	c.exec("postgres_1", "INSERT INTO public.entries (id, content) VALUES ($1, 'Hello from a')", s.id(1))
	// The row is merged (it reaches the log) before pg_2 writes its own.
	c.waitLogHead(h + 1)
	c.exec("postgres_2", "INSERT INTO public.entries (id, content) VALUES ($1, 'Hello from b')", s.id(1))
	c.waitRows("postgres_1", s.sel("entries"), s.row(1, "Hello from b", "<NULL>"))
	c.setSubscription("postgres_2", true)
	c.waitAll(s.sel("entries"), s.row(1, "Hello from b", "<NULL>"))
	c.checkNoApplyErrors()
}

// insert_insert.lux: concurrent inserts of different keys on both sides;
// every transaction is one log entry.
func insertInsert(s scenario) {
	c := s.c
	h := c.logHead()
	var want []string
	for i := 0; i < 20; i++ {
		for j, n := range c.names {
			want = append(want, s.row(100*(j+1)+i, "from "+n, "<NULL>"))
		}
	}
	// Fatal may only be called from the test's goroutine: writers report.
	errs := make(chan error, len(c.names))
	for j, n := range c.names {
		conn := c.pgs[n].Connect()
		go func() {
			defer conn.Close(context.Background())
			for i := 0; i < 20; i++ {
				if _, err := conn.Exec(context.Background(), "INSERT INTO public.entries (id, content) VALUES ($1, $2)", s.id(100*(j+1)+i), "from "+n); err != nil {
					errs <- fmt.Errorf("insert on %s: %w", n, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range c.names {
		if err := <-errs; err != nil {
			c.t.Fatal(err)
		}
	}
	c.waitAll(s.sel("entries"), sorted(want)...)
	c.waitLogHead(h + 40)
	if got := c.logHead(); got != h+40 {
		c.t.Errorf("log head %d after 40 source transactions from %d, want %d", got, h, h+40)
	}
}

// update_wins.lux: an update concurrent with a delete keeps the row.
func updateWins(s scenario) {
	c := s.c
	h := c.logHead()
	c.setSubscription("postgres_2", false)
	c.exec("postgres_2", "INSERT INTO public.entries (id, content) VALUES ($1, 'State1')", s.id(1))
	c.waitRows("postgres_1", s.sel("entries"), s.row(1, "State1", "<NULL>"))
	c.exec("postgres_1", "DELETE FROM public.entries WHERE id = $1", s.id(1))
	c.waitLogHead(h + 2)
	// pg_2 has not seen the delete: its update is concurrent with it.
	c.exec("postgres_2", "UPDATE public.entries SET content = 'State2' WHERE id = $1", s.id(1))
	c.waitRows("postgres_1", s.sel("entries"), s.row(1, "State2", "<NULL>"))
	c.setSubscription("postgres_2", true)
	c.waitAll(s.sel("entries"), s.row(1, "State2", "<NULL>"))
	c.checkNoApplyErrors()
}

// The backlog (sysbench_tests.lux): rows written while the engine is down,
// after the slot exists, reach the other side when it starts again.
func backlog(s scenario, dir string) {
	c := s.c
	c.exec("postgres_1", "INSERT INTO public.entries (id, content) VALUES ($1, 'before')", s.id(0))
	c.waitAll(s.sel("entries"), s.row(0, "before", "<NULL>"))
	c.stop()
	c.exec("postgres_1", fmt.Sprintf("INSERT INTO public.entries (id, content) SELECT ('%08d-0000-0000-0000-'||lpad(g::text, 12, '0'))::uuid, 'backlog '||g FROM generate_series(1, 500) g", s.no))
	c.exec("postgres_1", "UPDATE public.entries SET content = 'after' WHERE id = $1", s.id(0))
	c.exec("postgres_2", "INSERT INTO public.entries (id, content) VALUES ($1, 'from 2 while down')", s.id(1000))
	c.start(dir)
	count := fmt.Sprintf("SELECT count(*) FROM public.entries WHERE id::text LIKE '%08d-%%'", s.no)
	c.waitAll(count, "502")
	c.waitAll("SELECT content FROM public.entries WHERE id = '"+s.id(0)+"'", "after")
	c.waitAll("SELECT content FROM public.entries WHERE id = '"+s.id(1000)+"'", "from 2 while down")
	c.assertSame("public.entries")
}

// Three Postgres: every write reaches the two others, conflicts resolve the
// same way everywhere, and random conflicting writes converge.
func TestThreePostgres(t *testing.T) {
	c := newCluster(t, 3, kvSQL)
	c.start(t.TempDir())
	s := scenario{c: c, no: 1}
	sel := s.sel("entries")
	c.exec("postgres_1", "INSERT INTO public.entries (id, content) VALUES ($1, 'from 1')", s.id(1))
	c.waitAll(sel, s.row(1, "from 1", "<NULL>"))
	c.exec("postgres_3", "INSERT INTO public.entries (id, content) VALUES ($1, 'from 3')", s.id(2))
	c.waitAll(sel, s.row(1, "from 1", "<NULL>"), s.row(2, "from 3", "<NULL>"))
	c.exec("postgres_2", "UPDATE public.entries SET content_b = 'b from 2' WHERE id = $1", s.id(2))
	c.exec("postgres_3", "DELETE FROM public.entries WHERE id = $1", s.id(1))
	c.waitAll(sel, s.row(2, "from 3", "b from 2"))
	// A conflict with pg_3 cut off: its write is concurrent with pg_1's.
	c.setSubscription("postgres_3", false)
	c.exec("postgres_1", "UPDATE public.entries SET content = 'one' WHERE id = $1", s.id(2))
	c.waitRows("postgres_2", sel, s.row(2, "one", "b from 2"))
	c.exec("postgres_3", "UPDATE public.entries SET content_b = 'three' WHERE id = $1", s.id(2))
	c.setSubscription("postgres_3", true)
	c.waitAll(sel, s.row(2, "one", "three"))
	c.checkNoApplyErrors()

	t.Run("convergence", func(sub *testing.T) {
		c.t = sub
		defer func() { c.t = t }()
		testConvergence(c, 2, 200)
	})
	c.checkEngineLog()
}
