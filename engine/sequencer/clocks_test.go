package sequencer

import (
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/internal/testkit"
)

func micros(t time.Time) uint64 { return uint64(t.UnixMicro()) }

// A Satellite-like transaction whose commit_timestamp is 18446744073709551
// ms (the year 584 million) counts as the engine's time + 1 s; the writes
// another origin makes afterwards win, every eff stays within the window, the
// stored commit time is the bounded one, and the clamp is logged once per
// origin, not per transaction.
func TestFarFutureCommitIsBounded(t *testing.T) {
	clk := testkit.NewClock(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
	var logs testkit.SyncBuffer
	l := openLog(t, t.TempDir())
	s := start(t, l, Options{Now: clk.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	window := func() uint64 { return micros(clk.Now()) + merge.MaxAhead }

	const far = 18446744073709551 * 1000 // what the Satellite session makes of the ms
	off := submit(t, s, item("satellite:c1", far, insert("1", "name", "sat", "note", "sat")))
	e := entry(t, l, off)
	if e.Eff != window() || e.CommitTime != window() {
		t.Fatalf("far-future entry: eff %d commit %d, want both %d", e.Eff, e.CommitTime, window())
	}
	for i := 0; i < 3; i++ { // the client keeps its clock: one warning
		off = submit(t, s, item("satellite:c1", far, update("1", "note", "sat")))
	}
	if e := entry(t, l, off); e.Eff > window()+3 {
		t.Errorf("the far-future origin's later eff %d is beyond the window %d + its 3 causal steps", e.Eff, window())
	}
	if n := strings.Count(logs.String(), "commit timestamp ahead of the engine clock"); n != 1 {
		t.Errorf("%d clamp warnings, want 1:\n%s", n, logs.String())
	}

	// Another origin, 2 s later, concurrent (it had not seen the Satellite's
	// write): it wins, because the Satellite's clock counted as 1 s ahead.
	clk.Add(2 * time.Second)
	pg := item("pg1", micros(clk.Now()), update("1", "name", "pg"))
	off = submit(t, s, pg)
	if e := entry(t, l, off); e.Eff != micros(clk.Now()) {
		t.Errorf("the later write's eff = %d, want its commit time %d", e.Eff, micros(clk.Now()))
	}
	r, err := l.Row(table, "1")
	if err != nil || r.Image()["name"].Text != "pg" {
		t.Fatalf("row after the later write = %+v, %v", r, err)
	}
	// Many more writes: nothing is dragged beyond the window.
	for i := 0; i < 50; i++ {
		clk.Add(time.Millisecond)
		off = submit(t, s, item("pg1", micros(clk.Now()), update("1", "note", "n")))
		if e := entry(t, l, off); e.Eff > window() {
			t.Fatalf("write %d: eff %d beyond engine time + MaxAhead %d", i, e.Eff, window())
		}
	}
}

// A commit time at the very top of uint64 is clamped without overflow, and a
// context that is already at the largest timestamp refuses only that
// transaction, with an error that says why; the sequencer keeps going.
func TestOverflowingTimestamps(t *testing.T) {
	clk := testkit.NewClock(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
	l := openLog(t, t.TempDir())
	// Entry 1: a log poisoned before clocks were bounded.
	b := &txlog.Batch{}
	b.Append(&txlog.Entry{Offset: 1, Origin: "p", Eff: math.MaxUint64, MaxEff: math.MaxUint64,
		Changes: []txlog.RowChange{{Table: table, Key: "0", Row: vals("id", "0")}}})
	if err := l.Commit(b); err != nil {
		t.Fatal(err)
	}
	s := start(t, l, Options{Now: clk.Now})
	off := submit(t, s, item("a", math.MaxUint64, insert("1", "name", "x")))
	if e := entry(t, l, off); e.Eff != micros(clk.Now())+merge.MaxAhead {
		t.Errorf("eff of a MaxUint64 commit = %d", e.Eff)
	}
	bad := item("b", 10, update("1", "name", "y"))
	bad.ContextOffset = 1
	_, err := s.Submit(t.Context(), bad)
	if !errors.Is(err, merge.ErrInvalidTx) || !strings.Contains(err.Error(), "timestamp overflow") {
		t.Fatalf("poisoned context: %v", err)
	}
	off = submit(t, s, item("b", 10, update("1", "name", "z")))
	if e := entry(t, l, off); e.Eff != 10 {
		t.Errorf("the next transaction of b: eff %d", e.Eff)
	}
}
