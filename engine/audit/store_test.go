package audit

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/internal/testkit"
)

func open(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// stored waits until the store has written every event recorded so far
// and holds n of them.
func stored(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.wmu.Lock()
		written := s.next - s.opened
		s.wmu.Unlock()
		st := s.Stats()
		var recorded uint64
		for _, m := range st.Recorded {
			for _, c := range m {
				recorded += c
			}
		}
		if written+st.Dropped >= recorded && st.Stored == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored = %d, want %d", s.Stats().Stored, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func query(t *testing.T, s *Store, f Filter) []Event {
	t.Helper()
	evs, err := s.Query(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestRetentionByCount(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{MaxEvents: 5})
	for i := 0; i < 12; i++ {
		s.Record(Event{Kind: KindOwnership, Table: "public.t", Key: string(rune('a' + i))})
		stored(t, s, min(i+1, 5))
	}
	evs := query(t, s, Filter{})
	if len(evs) != 5 || evs[0].Key != "l" || evs[4].Key != "h" || evs[0].ID != 12 {
		t.Fatalf("kept %+v, want the newest 5, newest first", evs)
	}
	// Reopened, the ids go on and the bound still holds.
	s.Close()
	s = open(t, dir, Options{MaxEvents: 5})
	s.Record(Event{Kind: KindOwnership, Table: "public.t", Key: "m"})
	stored(t, s, 5)
	if evs := query(t, s, Filter{Limit: 1}); len(evs) != 1 || evs[0].ID != 13 || evs[0].Key != "m" {
		t.Fatalf("after reopen: %+v", evs)
	}
}

func TestRetentionByAge(t *testing.T) {
	clk := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := open(t, t.TempDir(), Options{MaxAge: time.Hour, Now: clk.Now})
	s.Record(Event{Kind: KindOwnership, Key: "old"})
	stored(t, s, 1)
	clk.Add(2 * time.Hour)
	s.Record(Event{Kind: KindOwnership, Key: "new"})
	stored(t, s, 1)
	if evs := query(t, s, Filter{}); len(evs) != 1 || evs[0].Key != "new" {
		t.Fatalf("kept %+v, want only the new one", evs)
	}
}

func TestValuesAreBounded(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	long := strings.Repeat("é", MaxValueBytes) // 2 bytes a rune
	ev := Conflict(7, merge.Conflict{Table: "public.t", Key: "k", Column: "c",
		Winner: merge.Cell{Value: merge.Value{Text: long}, Eff: 2, Origin: "a"},
		Loser:  merge.Cell{Value: merge.Value{Null: true}, Eff: 1, Origin: "b"}})
	ev.Error = long
	s.Record(ev)
	stored(t, s, 1)
	got := query(t, s, Filter{})[0]
	if !got.Truncated || len(*got.Winner.Value) > MaxValueBytes || !strings.HasPrefix(long, *got.Winner.Value) ||
		len(got.Error) > MaxValueBytes || got.Loser.Value != nil || got.Offset != 7 {
		t.Fatalf("event = %+v", got)
	}
}

func TestRecordNeverBlocks(t *testing.T) {
	s := open(t, t.TempDir(), Options{Queue: 2})
	s.wmu.Lock() // the disk is stuck: the writer cannot store anything
	for i := 0; i < 10; i++ {
		s.Record(Event{Kind: KindOwnership, Table: "public.t"})
	}
	s.wmu.Unlock()
	st := s.Stats()
	if st.Dropped < 1 || st.Recorded[KindOwnership]["public.t"] != 10 {
		t.Fatalf("stats = %+v: want the overflow dropped and counted", st)
	}
	stored(t, s, 10-int(st.Dropped)) // the rest is stored once the disk moves
}

func TestFilters(t *testing.T) {
	clk := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := open(t, t.TempDir(), Options{Now: clk.Now})
	s.Record(Conflict(1, merge.Conflict{Table: "public.a", Key: "1", Column: "v",
		Winner: merge.Cell{Origin: "db_a", Eff: 2}, Loser: merge.Cell{Origin: "db_b", Eff: 1}}))
	clk.Add(time.Minute)
	s.Record(Event{Kind: KindWithheld, Table: "public.b", Connector: "db_b", Origin: "db_a", Error: "check"})
	s.Record(Event{Kind: KindInvalidValue, Table: "public.a", Origin: "satellite:c1", Error: "not an int"})
	stored(t, s, 3)
	since := clk.Now()
	cases := []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"all", Filter{}, []uint64{3, 2, 1}},
		{"conflicts", Filter{Kinds: []Kind{KindConflict}}, []uint64{1}},
		{"rejections", Filter{Kinds: RejectionKinds}, []uint64{3, 2}},
		{"table", Filter{Table: "public.a"}, []uint64{3, 1}},
		{"connector: subscriber or side", Filter{Connector: "db_b"}, []uint64{2, 1}},
		{"origin", Filter{Origin: "db_a"}, []uint64{2, 1}},
		{"since", Filter{Since: since}, []uint64{3, 2}},
		{"limit", Filter{Limit: 1}, []uint64{3}},
	}
	for _, c := range cases {
		var ids []uint64
		for _, ev := range query(t, s, c.f) {
			ids = append(ids, ev.ID)
		}
		if !equal(ids, c.want) {
			t.Errorf("%s: ids %v, want %v", c.name, ids, c.want)
		}
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRetryMarksWithheldAndCallsHook(t *testing.T) {
	var hooked []Event
	s := open(t, t.TempDir(), Options{OnRetry: func(evs []Event) { hooked = evs }})
	s.Record(Event{Kind: KindWithheld, Table: "public.b", Connector: "db_b", Error: "check"})
	s.Record(Event{Kind: KindWithheld, Table: "public.b", Connector: "db_a", Error: "check"})
	s.Record(Event{Kind: KindOwnership, Table: "public.b", Connector: "db_b"})
	stored(t, s, 3)
	evs, err := s.Retry(context.Background(), Filter{Connector: "db_b"})
	if err != nil || len(evs) != 1 || evs[0].ID != 1 || evs[0].State != StateRetry || len(hooked) != 1 {
		t.Fatalf("retry = %+v, %v; hook got %+v", evs, err, hooked)
	}
	if got := query(t, s, Filter{Kinds: []Kind{KindWithheld}}); got[1].State != StateRetry || got[0].State != StateWithheld {
		t.Fatalf("states = %+v", got)
	}
	if err := s.Resolve(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if evs, _ := s.Retry(context.Background(), Filter{Connector: "db_b"}); len(evs) != 0 {
		t.Fatalf("a resolved row was retried: %+v", evs)
	}
}
