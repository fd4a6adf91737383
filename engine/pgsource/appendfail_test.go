package pgsource

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/sequencer"
	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/engine/txlog/pebblelog"
	"github.com/electric-sql/electric-go/internal/pgtest"
	"github.com/electric-sql/electric-go/internal/testkit"
)

// failingLog fails the next row read (the merge cannot load a row) or the
// next commit (the write of a group), once armed. A failing read first
// waits (up to 10 s) until before() holds: the test makes it wait until the
// source's next transaction is queued behind the failing one.
type failingLog struct {
	txlog.Log
	failRead, failCommit atomic.Bool
	before               func() bool
}

var errInjected = errors.New("injected store failure")

func (f *failingLog) Row(table, key string) (*merge.Row, error) {
	if f.failRead.CompareAndSwap(true, false) {
		for end := time.Now().Add(10 * time.Second); f.before != nil && !f.before() && time.Now().Before(end); {
			time.Sleep(5 * time.Millisecond)
		}
		return nil, errInjected
	}
	return f.Log.Row(table, key)
}

func (f *failingLog) Commit(b *txlog.Batch) error {
	if f.failCommit.CompareAndSwap(true, false) {
		return errInjected
	}
	return f.Log.Commit(b)
}

// Issue 12, "positions": a transaction whose append fails is never skipped.
// The source stops with the error before its position passes the failed
// transaction (the later one of the same source fails too instead of
// storing its position); started again, it re-reads from its confirmed
// position, and every transaction is in the log exactly once.
func TestFailedAppendIsReReadNotSkipped(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"read", "commit"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			pg := pgtest.Start(t)
			pg.Exec(`CREATE TABLE public.items (id int PRIMARY KEY, v text)`)
			logger, logs := testLogger(t)
			l, err := pebblelog.Open(t.TempDir(), pebblelog.Options{Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			fl := &failingLog{Log: l}

			type running struct {
				seq              *sequencer.Sequencer
				seqDone, srcDone chan error
				cancel           context.CancelFunc
			}
			var seqRun *running
			startSeq := func() {
				ctx, cancel := context.WithCancel(context.Background())
				r := &running{seq: sequencer.New(fl, sequencer.Options{Logger: logger}), seqDone: make(chan error, 1), cancel: cancel}
				go func() { r.seqDone <- r.seq.Run(ctx) }()
				seqRun = r
			}
			var src *Source
			var srcDone chan error
			var srcCancel context.CancelFunc
			startSrc := func() {
				s, err := New(Options{
					Name: "pg1", URI: pg.URI(), Logger: logger, Sink: seqRun.seq, Store: l,
					StatusInterval: time.Second, StatsInterval: 500 * time.Millisecond,
					MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
				})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- s.Run(ctx) }()
				src, srcDone, srcCancel = s, done, cancel
				testkit.Eventually(t, "source ready", src.Ready)
			}
			startSeq()
			fl.before = func() bool { return seqRun.seq.Status().Queued > 0 }
			startSrc()
			t.Cleanup(func() {
				srcCancel()
				<-srcDone
				seqRun.cancel()
				<-seqRun.seqDone
			})

			pg.Exec(`INSERT INTO items VALUES (1, 'one')`)
			testkit.Eventually(t, "row 1 in the log", func() bool { return l.Head() >= 1 })
			before := pg.Rows(t, `SELECT pg_current_wal_lsn()`)[0]
			if mode == "read" {
				fl.failRead.Store(true)
			} else {
				fl.failCommit.Store(true)
			}
			pg.Exec(`INSERT INTO items VALUES (2, 'two')`)
			pg.Exec(`INSERT INTO items VALUES (3, 'three')`)

			var srcErr error
			select {
			case srcErr = <-srcDone:
				srcDone <- srcErr // for the cleanup
			case <-time.After(60 * time.Second):
				t.Fatal("the source did not stop after its append failed")
			}
			if srcErr == nil || !strings.Contains(srcErr.Error(), "appending the transaction") {
				t.Fatalf("source stopped with %v", srcErr)
			}
			if mode == "commit" {
				// A failed commit stops the sequencer: the engine stops.
				err := <-seqRun.seqDone
				seqRun.seqDone <- err // for the cleanup
				if !errors.Is(err, errInjected) {
					t.Fatalf("sequencer stopped with %v", err)
				}
			}
			// Nothing after row 1 is in the log, and the stored position
			// does not pass the failed transaction.
			if l.Head() != 1 {
				t.Fatalf("head = %d after the failed append, want 1: a later transaction was taken past it", l.Head())
			}
			raw, err := l.Position("pg1")
			if err != nil {
				t.Fatal(err)
			}
			pos, err := DecodePosition(raw)
			if err != nil {
				t.Fatal(err)
			}
			limit, err := pglogrepl.ParseLSN(before)
			if err != nil {
				t.Fatal(err)
			}
			if pos.LSN > limit {
				t.Fatalf("stored position %s passes the failed transaction (WAL was at %s before it)", pos.LSN, limit)
			}

			// Started again (the sequencer too after a failed commit, as
			// an engine restart does), the source re-reads both.
			if mode == "commit" {
				startSeq()
			}
			startSrc()
			testkit.Eventually(t, "rows 2 and 3 in the log", func() bool { return l.Head() >= 3 })
			pg.Exec(`INSERT INTO items VALUES (4, 'four')`)
			testkit.Eventually(t, "row 4 in the log", func() bool { return l.Head() >= 4 })
			count := map[string]int{}
			for off := uint64(1); off <= l.Head(); off++ {
				e, err := l.Entry(off)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range e.Changes {
					count[c.Key]++
				}
			}
			for _, k := range []string{"1", "2", "3", "4"} {
				if count[k] != 1 {
					t.Errorf("row %s is in %d entries, want 1 (counts %v)", k, count[k], count)
				}
				if img := liveImage(t, l, "public.items", k); img == nil {
					t.Errorf("row %s is not live", k)
				}
			}
			if !strings.Contains(logs.String(), errInjected.Error()) {
				t.Errorf("the failure is not logged:\n%s", logs.String())
			}
		})
	}
}
