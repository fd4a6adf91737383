package sequencer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/engine/txlog/pebblelog"
)

const table = "public.items"

func openLog(t testing.TB, dir string) txlog.Log {
	t.Helper()
	l, err := pebblelog.Open(dir, pebblelog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// start runs a sequencer until the test ends.
func start(t *testing.T, l txlog.Log, opts Options) *Sequencer {
	t.Helper()
	s := New(l, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("run: %v", err)
		}
	})
	return s
}

func vals(kv ...string) map[string]merge.Value {
	m := map[string]merge.Value{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = merge.Value{Text: kv[i+1]}
	}
	return m
}

func insert(key string, kv ...string) merge.Op {
	return merge.Op{Kind: merge.OpInsert, Table: table, Key: key, Columns: vals(append([]string{"id", key}, kv...)...)}
}

func update(key string, kv ...string) merge.Op {
	return merge.Op{Kind: merge.OpUpdate, Table: table, Key: key, Columns: vals(kv...)}
}

func del(key string) merge.Op {
	return merge.Op{Kind: merge.OpDelete, Table: table, Key: key}
}

func item(origin string, commit uint64, ops ...merge.Op) Item {
	return Item{Source: origin, Tx: merge.Tx{Origin: origin, CommitTime: commit, Ops: ops}}
}

func submit(t *testing.T, s *Sequencer, it Item) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	off, err := s.Submit(ctx, it)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	return off
}

func entry(t *testing.T, l txlog.Log, off uint64) *txlog.Entry {
	t.Helper()
	e, err := l.Entry(off)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestSubmitWritesEntryRowAndPosition(t *testing.T) {
	l := openLog(t, t.TempDir())
	s := start(t, l, Options{})
	it := item("a", 1000, insert("1", "name", "x"), insert("2", "name", "y"))
	it.Position = []byte("lsn-1")
	if off := submit(t, s, it); off != 1 {
		t.Fatalf("offset = %d", off)
	}
	e := entry(t, l, 1)
	if e.Origin != "a" || e.Eff != 1000 || e.CommitTime != 1000 || e.MaxEff != 1000 || len(e.Changes) != 2 {
		t.Fatalf("entry = %+v", e)
	}
	c := e.Changes[0]
	if c.Table != table || c.Key != "1" || c.Deleted || c.Row["name"].Text != "x" || c.Row["id"].Text != "1" {
		t.Errorf("change = %+v", c)
	}
	r, err := l.Row(table, "2")
	if err != nil || !r.Live() || r.Image()["name"].Text != "y" {
		t.Errorf("row state 2 = %+v, %v", r, err)
	}
	if p, _ := l.Position("a"); string(p) != "lsn-1" {
		t.Errorf("position = %q", p)
	}
	// A later write of the same origin with an older commit time still
	// gets a higher eff; MaxEff is the highest eff so far.
	submit(t, s, item("b", 2000, update("1", "name", "b")))
	submit(t, s, item("a", 10, update("2", "name", "z")))
	e = entry(t, l, 3)
	if e.Eff != 1001 || e.MaxEff != 2000 {
		t.Errorf("entry 3 = %+v", e)
	}
	if st := s.Status(); st.Entries != 3 || st.Head != 3 || st.Rows != 4 || !st.Running {
		t.Errorf("status = %+v", st)
	}
}

func TestPositionOnlyItem(t *testing.T) {
	l := openLog(t, t.TempDir())
	s := start(t, l, Options{})
	off := submit(t, s, Item{Source: "a", Position: []byte("p1")})
	if off != 0 || l.Head() != 0 {
		t.Fatalf("offset %d head %d", off, l.Head())
	}
	if p, _ := l.Position("a"); string(p) != "p1" {
		t.Errorf("position = %q", p)
	}
}

// Items queued before Run starts are merged in one group: later items see the
// row states of earlier ones of the same group.
func TestGroupCommitSeesEarlierItems(t *testing.T) {
	l := openLog(t, t.TempDir())
	s := New(l, Options{})
	type res struct {
		off uint64
		err error
	}
	results := make([]chan res, 4)
	items := []Item{
		item("a", 100, insert("1", "name", "a", "qty", "1")),
		item("b", 200, update("1", "qty", "2")),
		item("a", 300, insert("2", "name", "two")),
		{Source: "a", Position: []byte("pos-a"), Tx: merge.Tx{Origin: "a", CommitTime: 400,
			Ops: []merge.Op{{Kind: merge.OpTruncate, Table: table}}}},
	}
	for i, it := range items {
		ch := make(chan res, 1)
		results[i] = ch
		it.Done = func(off uint64, err error) { ch <- res{off, err} }
		if err := s.Enqueue(context.Background(), it); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	for i, ch := range results {
		r := <-ch
		if r.err != nil || r.off != uint64(i+1) {
			t.Fatalf("item %d: offset %d err %v", i, r.off, r.err)
		}
	}
	if st := s.Status(); st.Commits != 1 || st.LastBatch != 4 {
		t.Errorf("status = %+v (want one group commit of 4)", st)
	}
	e2 := entry(t, l, 2)
	if img := e2.Changes[0].Row; img["name"].Text != "a" || img["qty"].Text != "2" {
		t.Errorf("entry 2 image = %v (the update did not see the insert of the same group)", img)
	}
	// The truncate by "a" saw a's insert of 1 but not b's update of it
	// (b's write is concurrent), so 1 stays live; 2 (only a's) goes.
	e4 := entry(t, l, 4)
	got := map[string]bool{}
	for _, c := range e4.Changes {
		got[c.Key] = c.Deleted
		if c.Key == "2" && c.Row["name"].Text != "two" {
			t.Errorf("deleted row 2 lacks its last image: %v", c.Row)
		}
	}
	if d, ok := got["2"]; !ok || !d {
		t.Errorf("truncate changes = %v, want 2 deleted", got)
	}
	if got["1"] {
		t.Errorf("truncate deleted row 1 despite b's concurrent update")
	}
	r1, _ := l.Row(table, "1")
	r2, _ := l.Row(table, "2")
	if !r1.Live() || r2.Live() {
		t.Errorf("row states: 1 live=%v, 2 live=%v", r1.Live(), r2.Live())
	}
	if p, _ := l.Position("a"); string(p) != "pos-a" {
		t.Errorf("position = %q", p)
	}
}

// A delete's context comes from the log clock at ContextOffset: with it the
// delete removes what it had seen; without it the concurrent insert wins.
func TestContextOffset(t *testing.T) {
	// ClockCache 1: the context clock is read back from the log.
	for _, cache := range []int{0, 1} {
		t.Run(fmt.Sprint("cache", cache), func(t *testing.T) {
			l := openLog(t, t.TempDir())
			s := start(t, l, Options{ClockCache: cache})
			submit(t, s, item("a", 100, insert("1", "name", "x")))
			submit(t, s, item("a", 100, insert("2", "name", "y")))

			submit(t, s, item("b", 50, del("1"))) // saw nothing
			if r, _ := l.Row(table, "1"); !r.Live() {
				t.Errorf("a delete that saw nothing removed the row")
			}
			it := item("b", 50, del("2"))
			it.ContextOffset = 2 // b had applied the log up to entry 2
			off := submit(t, s, it)
			e := entry(t, l, off)
			if len(e.Changes) != 1 || !e.Changes[0].Deleted || e.Changes[0].Row["name"].Text != "y" {
				t.Errorf("delete entry = %+v", e)
			}
			if e.Eff <= 101 {
				t.Errorf("eff %d does not follow the context", e.Eff)
			}
			if r, _ := l.Row(table, "2"); r.Live() {
				t.Errorf("a delete that saw the insert left the row live")
			}
			// A context covers what is at or before its offset, not
			// what came after: d's update stays live after a delete
			// by c that had applied the log up to just before it,
			// and goes with one that had applied it.
			dOff := submit(t, s, item("d", 3000, update("1", "name", "d")))
			it = item("c", 1, del("1"))
			it.ContextOffset = dOff - 1
			submit(t, s, it)
			if r, _ := l.Row(table, "1"); !r.Live() {
				t.Errorf("a delete removed an update it had not seen")
			}
			it = item("c", 1, del("1"))
			it.ContextOffset = dOff
			submit(t, s, it)
			if r, _ := l.Row(table, "1"); r.Live() {
				t.Errorf("a delete that had seen every write left the row live")
			}
		})
	}
}

// A refused transaction (merge.ErrInvalidTx) fails only itself and stores
// its position; a context beyond the log head (a restored state) counts as
// the head. Failures that stop a source are in failures_test.go.
func TestRefusalFailsOnlyItsItem(t *testing.T) {
	l := openLog(t, t.TempDir())
	s := New(l, Options{})
	errs := make([]error, 3)
	var wg sync.WaitGroup
	bad := item("", 1, insert("1")) // no origin
	bad.Source, bad.Position = "x", []byte("bad")
	beyond := item("b", 1, insert("2"))
	beyond.ContextOffset = 99
	for i, it := range []Item{bad, item("a", 1, insert("3")), beyond} {
		wg.Add(1)
		it.Done = func(_ uint64, err error) { errs[i] = err; wg.Done() }
		if err := s.Enqueue(context.Background(), it); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	wg.Wait()
	if !errors.Is(errs[0], merge.ErrInvalidTx) || !errors.Is(errs[0], ErrRefused) || errs[1] != nil || errs[2] != nil {
		t.Fatalf("errors = %v", errs)
	}
	if l.Head() != 2 {
		t.Errorf("head = %d, want 2", l.Head())
	}
	// The refused transaction's position is stored: the source goes on
	// after it.
	if p, _ := l.Position("x"); string(p) != "bad" {
		t.Errorf("position of a refused item = %q", p)
	}
	if st := s.Status(); st.Failed != 0 || st.Refused != 1 {
		t.Errorf("status = %+v", st)
	}
}

// originLast comes back after a restart from the log (Log.OriginEff).
func TestRestartKeepsOriginClock(t *testing.T) {
	dir := t.TempDir()
	var l txlog.Log
	l, err := pebblelog.Open(dir, pebblelog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := New(l, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	submit(t, s, item("a", 5000, insert("1")))
	submit(t, s, item("b", 10, insert("2")))
	cancel()
	<-done
	l.Close()

	l = openLog(t, dir)
	s = start(t, l, Options{})
	off := submit(t, s, item("a", 7, update("1", "name", "n")))
	if e := entry(t, l, off); e.Eff != 5001 || e.MaxEff != 5001 {
		t.Errorf("after restart: entry %+v", e)
	}
}

func TestBackPressureAndStop(t *testing.T) {
	l := openLog(t, t.TempDir())
	s := New(l, Options{MaxQueuedRows: 1})
	var got error
	first := item("a", 1, insert("1"))
	first.Done = func(_ uint64, err error) { got = err }
	if err := s.Enqueue(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Enqueue(ctx, item("a", 2, insert("2"))); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("enqueue on a full queue: %v", err)
	}
	// Run with a cancelled context: the queued item is failed, not lost.
	rctx, rcancel := context.WithCancel(context.Background())
	rcancel()
	if err := s.Run(rctx); !errors.Is(err, context.Canceled) {
		t.Errorf("run: %v", err)
	}
	if !errors.Is(got, context.Canceled) {
		t.Errorf("queued item's Done error = %v", got)
	}
	if err := s.Enqueue(context.Background(), item("a", 3, insert("3"))); !errors.Is(err, ErrStopped) {
		t.Errorf("enqueue after stop: %v", err)
	}
	if _, err := s.Submit(context.Background(), item("a", 3, insert("3"))); !errors.Is(err, ErrStopped) {
		t.Errorf("submit after stop: %v", err)
	}
	if err := s.Run(context.Background()); err == nil {
		t.Errorf("second Run succeeded")
	}
}

// Many concurrent sources: every item gets a distinct offset, the log has no
// gaps and each entry is the one its source submitted.
func TestConcurrentSubmit(t *testing.T) {
	l := openLog(t, t.TempDir())
	s := start(t, l, Options{MaxBatch: 7})
	const sources, each = 8, 40
	offs := make([][]uint64, sources)
	var wg sync.WaitGroup
	for i := 0; i < sources; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			origin := fmt.Sprintf("o%d", i)
			for j := 0; j < each; j++ {
				it := item(origin, uint64(j), insert(fmt.Sprintf("%d-%d", i, j)))
				it.Position = []byte(fmt.Sprint(j))
				off, err := s.Submit(context.Background(), it)
				if err != nil {
					t.Error(err)
					return
				}
				offs[i] = append(offs[i], off)
			}
		}()
	}
	wg.Wait()
	if l.Head() != sources*each {
		t.Fatalf("head = %d", l.Head())
	}
	seen := map[uint64]bool{}
	for i, list := range offs {
		for j, off := range list {
			if seen[off] {
				t.Fatalf("offset %d given twice", off)
			}
			seen[off] = true
			e := entry(t, l, off)
			if e.Origin != fmt.Sprintf("o%d", i) || e.Changes[0].Key != fmt.Sprintf("%d-%d", i, j) {
				t.Errorf("entry %d = %+v", off, e)
			}
		}
		if p, _ := l.Position(fmt.Sprintf("o%d", i)); string(p) != fmt.Sprint(each-1) {
			t.Errorf("position of o%d = %q", i, p)
		}
	}
}

// One item per group, queued faster than commits: each group is merged while
// earlier ones may still be committing, and must see their row states.
func TestPipelinedGroupsSeeEachOther(t *testing.T) {
	l := openLog(t, t.TempDir())
	s := start(t, l, Options{MaxBatch: 1})
	const n = 200
	var wg sync.WaitGroup
	wg.Add(n + 1)
	submitAsync := func(it Item) {
		it.Done = func(_ uint64, err error) {
			if err != nil {
				t.Error(err)
			}
			wg.Done()
		}
		if err := s.Enqueue(context.Background(), it); err != nil {
			t.Fatal(err)
		}
	}
	submitAsync(item("a", 1, insert("1")))
	for i := 0; i < n; i++ {
		submitAsync(item("a", uint64(i+2), update("1", fmt.Sprintf("c%d", i), "v")))
	}
	wg.Wait()
	for off := uint64(2); off <= n+1; off++ {
		if img := entry(t, l, off).Changes[0].Row; len(img) != int(off) {
			t.Fatalf("entry %d image has %d columns, want %d (an earlier group's state was missed)", off, len(img), off)
		}
	}
	if st := s.Status(); st.Commits < 2 {
		t.Errorf("status = %+v", st)
	}
}

// A failed commit stops the sequencer: the items get the error, Run returns
// it and new items are refused.
func TestCommitFailureStops(t *testing.T) {
	l, err := pebblelog.Open(t.TempDir(), pebblelog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := New(l, Options{})
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	submit(t, s, item("a", 1, insert("1")))
	l.Close()
	if _, err := s.Submit(context.Background(), item("a", 2, update("1", "x", "y"))); err == nil {
		t.Fatal("submit to a closed log succeeded")
	}
	select {
	case err := <-done:
		if !errors.Is(err, txlog.ErrClosed) {
			t.Errorf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop after a failed commit")
	}
	if err := s.Enqueue(context.Background(), item("a", 3, insert("3"))); !errors.Is(err, ErrStopped) {
		t.Errorf("enqueue after failure: %v", err)
	}
}

// The first owner of a source wins, in one group or across groups and
// restarts; a refused item stores nothing.
func TestOwnerFirstWins(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	s := start(t, l, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	submit(t, s, Item{Source: "satellite:c", Owner: "alice"})
	submit(t, s, Item{Source: "satellite:c", Owner: "alice"}) // again: fine
	bob := Item{Source: "satellite:c", Owner: "bob", Position: []byte{0xff, 0xff, 0xff, 0xff}}
	if _, err := s.Submit(ctx, bob); !errors.Is(err, ErrOwnedByOther) {
		t.Fatalf("bob binding alice's source: %v, want ErrOwnedByOther", err)
	}
	if u, err := l.Owner("satellite:c"); u != "alice" || err != nil {
		t.Errorf("owner = %q, %v; want alice", u, err)
	}
	if p, _ := l.Position("satellite:c"); p != nil {
		t.Errorf("the refused item stored position %x", p)
	}
	// A fresh sequencer (a restart) reads the binding from the log.
	s2 := New(l, Options{})
	ctx2, cancel2 := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s2.Run(ctx2) }()
	if _, err := s2.Submit(ctx, bob); !errors.Is(err, ErrOwnedByOther) {
		t.Errorf("after a restart: %v, want ErrOwnedByOther", err)
	}
	cancel2()
	<-done
}
