package pgsource

import (
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
)

func TestAckQueueConfirmsInOrder(t *testing.T) {
	t.Parallel()
	q := newAckQueue()
	check := func(want pglogrepl.LSN) {
		t.Helper()
		if got, _ := q.snapshot(); got != want {
			t.Fatalf("confirmed %d, want %d", got, want)
		}
	}
	q.raise(10)
	check(10)
	q.skip(15) // nothing pending: irrelevant WAL is confirmed at once
	check(15)

	now := time.Now()
	a := q.push(20, now)
	b := q.push(30, now.Add(time.Second))
	q.skip(35) // after b: waits for a and b
	c := q.push(40, now.Add(2*time.Second))
	q.skip(45)
	q.skip(50) // merged into the same marker
	check(15)
	if _, oldest := q.snapshot(); !oldest.Equal(now) {
		t.Errorf("oldest pending commit time %v, want %v", oldest, now)
	}

	q.ack(b) // out of order: nothing moves
	check(15)
	q.ack(a) // a and b done, then the marker at 35; c is not
	check(35)
	if _, oldest := q.snapshot(); !oldest.Equal(now.Add(2 * time.Second)) {
		t.Errorf("oldest pending is not c: %v", oldest)
	}
	q.ack(c)
	check(50)
	if q.pending() != 0 {
		t.Errorf("%d pending after all acks", q.pending())
	}
	q.ack(c) // a second report is ignored
	check(50)

	// An item that could not be handed over is dropped, not confirmed.
	d := q.push(60, now)
	q.drop(d)
	q.skip(55)
	check(55)
	q.raise(40) // never backwards
	check(55)
}
