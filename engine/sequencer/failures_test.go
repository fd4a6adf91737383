package sequencer

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// flakyLog fails the next failRows row reads.
type flakyLog struct {
	txlog.Log
	failRows atomic.Int32
}

var errFlaky = errors.New("flaky store: read failed")

func (f *flakyLog) Row(table, key string) (*merge.Row, error) {
	if f.failRows.Add(-1) >= 0 {
		return nil, errFlaky
	}
	return f.Log.Row(table, key)
}

// A failed transaction is never skipped: the later items of its source and
// attempt fail too, in the same group and in later ones, and store no
// position; another source goes on; the source's next attempt is taken.
func TestFailedItemIsNeverSkipped(t *testing.T) {
	l := &flakyLog{Log: openLog(t, t.TempDir())}
	s := New(l, Options{})
	var mu sync.Mutex
	errs := map[string]error{}
	var wg sync.WaitGroup
	enqueue := func(name string, it Item) {
		wg.Add(1)
		it.Done = func(_ uint64, err error) {
			mu.Lock()
			errs[name] = err
			mu.Unlock()
			wg.Done()
		}
		if err := s.Enqueue(context.Background(), it); err != nil {
			t.Fatal(err)
		}
	}
	at := func(it Item, attempt uint64, pos string) Item {
		it.Attempt, it.Position = attempt, []byte(pos)
		return it
	}
	l.failRows.Store(1)
	// One group: a1 fails on the store, a2 and a bare position of a come
	// after it; b is another source.
	enqueue("a1", at(item("a", 1, insert("1")), 7, "a1"))
	enqueue("b1", at(item("b", 1, insert("2")), 7, "b1"))
	enqueue("a2", at(item("a", 2, insert("3")), 7, "a2"))
	enqueue("a-pos", at(Item{Source: "a"}, 7, "a-pos"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	wg.Wait()
	// A later group of the same attempt fails too.
	enqueue("a3", at(item("a", 3, insert("4")), 7, "a3"))
	wg.Wait()
	if !errors.Is(errs["a1"], errFlaky) || errs["b1"] != nil {
		t.Fatalf("errors = %v", errs)
	}
	for _, n := range []string{"a2", "a-pos", "a3"} {
		if !errors.Is(errs[n], ErrSourceFailed) {
			t.Errorf("%s: %v, want ErrSourceFailed", n, errs[n])
		}
	}
	if p, _ := l.Position("a"); p != nil {
		t.Fatalf("position of a stored past its failed transaction: %q", p)
	}
	// The source starts again from its stored position (nothing) under a
	// new attempt: every transaction is taken once.
	for i, n := range []string{"a1", "a2", "a3"} {
		enqueue(n, at(item("a", uint64(10+i), insert([]string{"1", "3", "4"}[i])), 8, n))
	}
	wg.Wait()
	for _, n := range []string{"a1", "a2", "a3"} {
		if errs[n] != nil {
			t.Errorf("%s after the restart: %v", n, errs[n])
		}
	}
	if p, _ := l.Position("a"); string(p) != "a3" {
		t.Errorf("position of a = %q", p)
	}
	if l.Head() != 4 {
		t.Errorf("head = %d, want 4 (b1, a1, a2, a3)", l.Head())
	}
	if st := s.Status(); st.Failed != 4 || st.Refused != 0 {
		t.Errorf("status = %+v", st)
	}
}

// A refusal stores the position, keeps the source going and reaches the
// OnRefused hook.
func TestRefusalStoresPositionAndCallsHook(t *testing.T) {
	l := openLog(t, t.TempDir())
	var got []Refusal
	var mu sync.Mutex
	s := start(t, l, Options{OnRefused: func(r Refusal) { mu.Lock(); got = append(got, r); mu.Unlock() }})
	bad := item("a", 1, merge.Op{Kind: merge.OpInsert, Key: "1"}) // no table
	bad.Position = []byte("p1")
	if _, err := s.Submit(t.Context(), bad); !errors.Is(err, ErrRefused) || !errors.Is(err, merge.ErrInvalidTx) {
		t.Fatalf("refused item: %v", err)
	}
	next := item("a", 2, insert("2"))
	next.Position = []byte("p2")
	if off := submit(t, s, next); off != 1 {
		t.Errorf("offset of the next transaction = %d", off)
	}
	if p, _ := l.Position("a"); string(p) != "p2" {
		t.Errorf("position = %q", p)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Source != "a" || string(got[0].Position) != "p1" || !errors.Is(got[0].Err, merge.ErrInvalidTx) {
		t.Errorf("refusals = %+v", got)
	}
}
