package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/status"
)

// Issue 13 point 4: a real concurrent write between two Postgres through a
// running engine appears in /api/conflicts with its winner and loser; an
// ordinary later update (its writer had seen the value) does not.
func TestConflictsAPI(t *testing.T) {
	c := newCluster(t, 2, initSQL)
	c.start(t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := status.NewClient(c.statusURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	const id = "00000000-0000-0000-0000-0000000000c1"
	sel := "SELECT content FROM public.entries WHERE id = '" + id + "'"

	h := c.logHead()
	c.setSubscription("postgres_2", false)
	c.exec("postgres_1", "INSERT INTO public.entries (id, content) VALUES ($1, 'from a')", id)
	c.waitLogHead(h + 1) // merged before postgres_2, which has not seen it, writes its own
	c.exec("postgres_2", "INSERT INTO public.entries (id, content) VALUES ($1, 'from b')", id)
	c.setSubscription("postgres_2", true)
	c.waitAll(sel, "from b")

	var got []status.AuditEvent
	c.eventually(30*time.Second, func() bool {
		got, err = cl.Conflicts(ctx, status.AuditQuery{Table: "public.entries"})
		return err == nil && len(got) > 0
	}, func() string { return fmt.Sprintf("no conflict listed: %+v, %v", got, err) })
	if len(got) != 1 {
		t.Fatalf("conflicts = %+v, want the one column that lost", got)
	}
	ev := got[0]
	if ev.Kind != status.AuditConflict || ev.Column != "content" || ev.Offset != h+2 ||
		ev.Winner == nil || ev.Winner.Origin != "postgres_2" || ev.Winner.Value == nil || *ev.Winner.Value != "from b" ||
		ev.Loser == nil || ev.Loser.Origin != "postgres_1" || ev.Loser.Value == nil || *ev.Loser.Value != "from a" ||
		ev.Winner.Eff <= ev.Loser.Eff {
		t.Fatalf("conflict = %+v (winner %+v, loser %+v)", ev, ev.Winner, ev.Loser)
	}

	// An update made after seeing the merged row is no conflict.
	h = c.logHead()
	c.exec("postgres_1", "UPDATE public.entries SET content = 'later' WHERE id = $1", id)
	c.waitAll(sel, "later")
	c.waitLogHead(h + 1)
	if got, err := cl.Conflicts(ctx, status.AuditQuery{Origin: "postgres_1"}); err != nil || len(got) != 1 {
		t.Fatalf("after an ordinary update: %+v, %v (want still the one conflict)", got, err)
	}
	if got, err := cl.Conflicts(ctx, status.AuditQuery{Table: "public.other"}); err != nil || len(got) != 0 {
		t.Fatalf("table filter: %+v, %v", got, err)
	}
	if got, err := cl.Rejected(ctx, status.AuditQuery{}); err != nil || len(got) != 0 {
		t.Fatalf("rejected: %+v, %v", got, err)
	}
}
