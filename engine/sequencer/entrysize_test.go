package sequencer

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// Issue 12, "flat entries": the log bytes of a one-row Postgres transaction
// must not grow with the number of Satellite clients that ever wrote. With
// a per-origin clock in every entry they did (about 68 KB per entry after
// 1,000 clients).
//
//	go test -run '^$' -bench EntryBytes ./engine/sequencer

// entryBytesAfter writes one one-row transaction from each of clients
// distinct Satellite origins, then one one-row Postgres transaction that had
// seen all of it, and returns the encoded size of that last entry and of
// the row state it wrote.
func entryBytesAfter(tb testing.TB, clients int) (entry, row int) {
	tb.Helper()
	l := openLog(tb, tb.TempDir())
	s := New(l, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for i := range clients {
		origin := fmt.Sprintf("satellite:%08d-0000-4000-8000-000000000000", i)
		it := item(origin, 1_700_000_000_000_000+uint64(i), insert(fmt.Sprint("c", i), "name", "from a client"))
		it.Position = []byte{0, 0, 0, 1}
		wg.Add(1)
		it.Done = func(_ uint64, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
			wg.Done()
		}
		if err := s.Enqueue(ctx, it); err != nil {
			tb.Fatal(err)
		}
	}
	wg.Wait()
	select {
	case err := <-errs:
		tb.Fatal(err)
	default:
	}
	it := item("pg_a", 1_800_000_000_000_000, insert("pg", "name", "from postgres"))
	it.ContextOffset = l.Head()
	it.Position = []byte{0, 0, 0, 0, 0, 0, 1, 0}
	off, err := s.Submit(ctx, it)
	if err != nil {
		tb.Fatal(err)
	}
	e, err := l.Entry(off)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := l.Row(table, "pg")
	if err != nil {
		tb.Fatal(err)
	}
	return len(txlog.AppendEntry(nil, e)), len(merge.MarshalRow(r))
}

// TestEntryBytesFlat: the entry after 2,000 clients is the size of the
// entry after none, but for the varints of its larger offset and MaxEff.
func TestEntryBytesFlat(t *testing.T) {
	e0, r0 := entryBytesAfter(t, 0)
	eN, rN := entryBytesAfter(t, 2000)
	if eN > e0+4 || rN > r0+4 {
		t.Fatalf("one-row entry: %d bytes after no clients, %d after 2,000; row state %d, %d", e0, eN, r0, rN)
	}
	t.Logf("one-row entry: %d bytes after no clients, %d after 2,000 (row state %d, %d)", e0, eN, r0, rN)
}

// BenchmarkEntryBytes prints the bytes of a one-row entry (and of its row
// state) after 0, 100, 1,000 and 10,000 distinct clients wrote once.
func BenchmarkEntryBytes(b *testing.B) {
	for _, n := range []int{0, 100, 1000, 10000} {
		b.Run(fmt.Sprint("clients=", n), func(b *testing.B) {
			var entry, row int
			for range b.N {
				entry, row = entryBytesAfter(b, n)
			}
			b.ReportMetric(float64(entry), "entry-bytes")
			b.ReportMetric(float64(row), "row-bytes")
		})
	}
}
