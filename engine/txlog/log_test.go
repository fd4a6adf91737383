package txlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/electric-sql/electric-go/engine/merge"
)

func openTest(t *testing.T, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// testEntry builds entry off with n changed rows of table "public.items".
func testEntry(off uint64, n int) *Entry {
	e := &Entry{
		Offset:     off,
		Origin:     "a",
		Eff:        1000 + off,
		CommitTime: 900 + off,
		Clock:      merge.Clock{"a": 1000 + off, "b": 7},
	}
	for i := 0; i < n; i++ {
		e.Changes = append(e.Changes, RowChange{
			Table: "public.items",
			Key:   fmt.Sprintf("k%d-%d", off, i),
			Row: map[string]merge.Value{
				"id":    {Text: fmt.Sprintf("%d-%d", off, i)},
				"name":  {Text: ""},
				"notes": {Null: true},
			},
		})
	}
	return e
}

func testRow(v string) *merge.Row {
	return &merge.Row{
		Cells: map[string]merge.Cell{
			"id":   {Value: merge.Value{Text: v}, Eff: 5, Origin: "a"},
			"note": {Value: merge.Value{Null: true}, Eff: 6, Origin: "b"},
		},
		Tags:    []merge.Tag{{Origin: "a", Eff: 5}, {Origin: "b", Eff: 6}},
		Removed: merge.Clock{"c": 3},
	}
}

func commitEntries(t *testing.T, l *Log, n, rows int) {
	t.Helper()
	for i := 0; i < n; i++ {
		b := &Batch{}
		b.Append(testEntry(l.Head()+1, rows))
		if err := l.Commit(b); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
}

func readN(t *testing.T, r *Reader, n int) []*Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*Entry
	for len(out) < n {
		e, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("next after %d entries: %v", len(out), err)
		}
		out = append(out, e)
	}
	return out
}

func TestCodecRoundTrip(t *testing.T) {
	entries := []*Entry{
		testEntry(1, 3),
		{Offset: 2, Origin: "satellite:x", Clock: merge.Clock{}}, // a decoded Clock is never nil
		{Offset: 3, Origin: "", Clock: merge.Clock{}, Changes: []RowChange{{Table: "t", Key: "", Deleted: true}}},
		{Offset: 1 << 60, Eff: 1<<64 - 1, Clock: merge.Clock{"a": 1}, Changes: []RowChange{{Table: "t", Key: "\x00\xff", Deleted: true, Row: map[string]merge.Value{"x": {Text: "é\x00"}}}}},
	}
	for _, e := range entries {
		got, err := decodeEntry(appendEntry(nil, e))
		if err != nil {
			t.Fatalf("decode %+v: %v", e, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("entry round trip:\n got %+v\nwant %+v", got, e)
		}
	}
}

// Every truncation and a few bit flips of a record must give an error or a
// value, never a panic or a huge allocation.
func TestCodecCorrupt(t *testing.T) {
	eb := appendEntry(nil, testEntry(9, 4))
	for i := 0; i < len(eb); i++ {
		if _, err := decodeEntry(eb[:i]); err == nil {
			t.Errorf("entry truncated to %d bytes decoded without error", i)
		}
	}
	for i := 0; i < len(eb); i++ {
		c := append([]byte(nil), eb...)
		c[i] ^= 0xff
		_, _ = decodeEntry(c)
	}
	if _, err := decodeEntry(append(eb, 0)); err == nil || !strings.Contains(err.Error(), "trailing") {
		t.Errorf("trailing byte: err = %v", err)
	}
	if _, err := decodeEntry([]byte{99}); err == nil || !strings.Contains(err.Error(), "unknown format") {
		t.Errorf("unknown format: err = %v", err)
	}
}

func TestAppendAndRead(t *testing.T) {
	l := openTest(t, t.TempDir(), Options{})
	if l.Head() != 0 {
		t.Fatalf("empty head = %d", l.Head())
	}
	// One batch of several entries, then single ones.
	b := &Batch{}
	for i := uint64(1); i <= 3; i++ {
		b.Append(testEntry(i, 2))
	}
	if err := l.Commit(b); err != nil {
		t.Fatal(err)
	}
	commitEntries(t, l, 2, 1)
	if l.Head() != 5 {
		t.Fatalf("head = %d, want 5", l.Head())
	}
	got := readN(t, l.NewReader(0), 5)
	for i, e := range got {
		if e.Offset != uint64(i+1) {
			t.Fatalf("entry %d has offset %d", i, e.Offset)
		}
	}
	e, err := l.Entry(2)
	if err != nil {
		t.Fatal(err)
	}
	if want := testEntry(2, 2); !reflect.DeepEqual(e, want) {
		t.Errorf("Entry(2) = %+v, want %+v", e, want)
	}
}

func TestCommitValidation(t *testing.T) {
	l := openTest(t, t.TempDir(), Options{})
	commitEntries(t, l, 2, 1)
	bad := []*Batch{
		{Entries: []*Entry{testEntry(2, 1)}},                  // already there
		{Entries: []*Entry{testEntry(4, 1)}},                  // gap
		{Entries: []*Entry{testEntry(3, 1), testEntry(5, 1)}}, // gap inside
		{Entries: []*Entry{nil}},
		{Rows: []RowState{{Key: "k", Row: testRow("1")}}},
	}
	for i, b := range bad {
		b.SetPosition("src", []byte("p"))
		if err := l.Commit(b); err == nil {
			t.Errorf("bad batch %d committed", i)
		}
	}
	if l.Head() != 2 {
		t.Errorf("head = %d after rejected batches", l.Head())
	}
	if p, _ := l.Position("src"); p != nil {
		t.Errorf("position of a rejected batch stored: %q", p)
	}
	if err := l.Commit(&Batch{}); err != nil {
		t.Errorf("empty batch: %v", err)
	}
}

func TestRowsAndPositions(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, Options{})
	b := &Batch{}
	b.Append(testEntry(1, 1))
	b.SetRow("public.items", "k2", testRow("2"))
	b.SetRow("public.items", "k1", testRow("1"))
	b.SetRow("public.other", "k1", testRow("o"))
	b.SetRow("public.items", "k3", testRow("3"))
	b.SetPosition("a", []byte{0, 1, 2})
	if err := l.Commit(b); err != nil {
		t.Fatal(err)
	}
	b = &Batch{}
	b.SetRow("public.items", "k3", nil)           // delete
	b.SetRow("public.items", "k1", testRow("1b")) // overwrite
	b.SetPosition("a", []byte{3})
	b.SetPosition("satellite:x", []byte("lsn"))
	if err := l.Commit(b); err != nil {
		t.Fatal(err)
	}
	if l.Head() != 1 {
		t.Errorf("a batch without entries moved the head to %d", l.Head())
	}
	check := func(l *Log) {
		t.Helper()
		keys, err := l.Keys("public.items")
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"k1", "k2"}; !reflect.DeepEqual(keys, want) {
			t.Errorf("keys = %q, want %q", keys, want)
		}
		if k, _ := l.Keys("public.item"); len(k) != 0 {
			t.Errorf("a table name prefix matched keys %q", k)
		}
		r, err := l.Row("public.items", "k1")
		if err != nil || !reflect.DeepEqual(r, testRow("1b")) {
			t.Errorf("row k1 = %+v, %v", r, err)
		}
		if r, err := l.Row("public.items", "k3"); r != nil || err != nil {
			t.Errorf("deleted row k3 = %+v, %v", r, err)
		}
		if r, err := l.Row("public.none", "k1"); r != nil || err != nil {
			t.Errorf("absent row = %+v, %v", r, err)
		}
		var seen []string
		err = l.Rows("public.items", func(k string, r *merge.Row) error {
			seen = append(seen, k+"="+r.Cells["id"].Value.Text)
			return nil
		})
		if err != nil || strings.Join(seen, ",") != "k1=1b,k2=2" {
			t.Errorf("rows = %q, %v", seen, err)
		}
		stop := errors.New("stop")
		if err := l.Rows("public.items", func(string, *merge.Row) error { return stop }); !errors.Is(err, stop) {
			t.Errorf("Rows did not return fn's error: %v", err)
		}
		if p, _ := l.Position("a"); string(p) != "\x03" {
			t.Errorf("position a = %q", p)
		}
		if p, _ := l.Position("satellite:x"); string(p) != "lsn" {
			t.Errorf("position satellite:x = %q", p)
		}
		if p, err := l.Position("nobody"); p != nil || err != nil {
			t.Errorf("unknown position = %q, %v", p, err)
		}
	}
	check(l)
	// A row read from a fresh Log comes from disk, not the cache.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	check(openTest(t, dir, Options{}))
}

// A caller modifying a row it was given must not change the stored state.
func TestRowIsCallersCopy(t *testing.T) {
	l := openTest(t, t.TempDir(), Options{})
	b := &Batch{}
	b.SetRow("t", "k", testRow("1"))
	if err := l.Commit(b); err != nil {
		t.Fatal(err)
	}
	r, _ := l.Row("t", "k")
	r.Cells["id"] = merge.Cell{Value: merge.Value{Text: "changed"}}
	r2, _ := l.Row("t", "k")
	if r2.Cells["id"].Value.Text != "1" {
		t.Errorf("stored row changed through a returned copy")
	}
}

func TestReaderFollowsHead(t *testing.T) {
	l := openTest(t, t.TempDir(), Options{})
	commitEntries(t, l, 2, 1)
	r := l.NewReader(0)
	defer r.Close()
	readN(t, r, 2)
	got := make(chan *Entry)
	go func() {
		e, err := r.Next(context.Background())
		if err != nil {
			t.Errorf("next: %v", err)
		}
		got <- e
	}()
	// The reader is blocked at the head (or about to be); a commit wakes it.
	commitEntries(t, l, 1, 1)
	select {
	case e := <-got:
		if e.Offset != 3 {
			t.Errorf("woken with offset %d, want 3", e.Offset)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("reader at the head not woken by a commit")
	}
	// A blocked Next returns on ctx cancel and on Close.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { _, err := r.Next(ctx); errc <- err }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("next after cancel: %v", err)
	}
	go func() { _, err := r.Next(context.Background()); errc <- err }()
	r.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("next after reader close: %v", err)
	}
}

func TestCloseWakesReaders(t *testing.T) {
	l, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := l.NewReader(0)
	errc := make(chan error)
	go func() { _, err := r.Next(context.Background()); errc <- err }()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("next after log close: %v", err)
	}
	if err := l.Commit(&Batch{Entries: []*Entry{testEntry(1, 1)}}); !errors.Is(err, ErrClosed) {
		t.Errorf("commit after close: %v", err)
	}
	if _, err := l.Row("t", "k"); !errors.Is(err, ErrClosed) {
		t.Errorf("row after close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

// Readers started at every offset, with a tail cache so small that most
// reads go to disk, see exactly the entries after their offset.
func TestReaderFromAnyOffset(t *testing.T) {
	for _, tailBytes := range []int{1, 1 << 20} {
		t.Run(fmt.Sprint("tail", tailBytes), func(t *testing.T) {
			l := openTest(t, t.TempDir(), Options{TailCacheBytes: tailBytes})
			const n = 300 // more than one store read batch
			commitEntries(t, l, n, 2)
			for _, after := range []uint64{0, 1, 2, 127, 128, 129, 200, n - 1, n} {
				r := l.NewReader(after)
				got := readN(t, r, int(n-after))
				for i, e := range got {
					if want := after + uint64(i) + 1; e.Offset != want || len(e.Changes) != 2 {
						t.Fatalf("after %d: entry %d has offset %d, want %d", after, i, e.Offset, want)
					}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
				if e, err := r.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("after %d: read past the head: %v %v", after, e, err)
				}
				cancel()
				r.Close()
			}
		})
	}
}

func TestBadOffsets(t *testing.T) {
	l := openTest(t, t.TempDir(), Options{})
	commitEntries(t, l, 3, 1)
	for _, off := range []uint64{0, 4, 1 << 63} {
		if _, err := l.Entry(off); !errors.Is(err, ErrNoEntry) {
			t.Errorf("Entry(%d): %v", off, err)
		}
	}
	r := l.NewReader(4)
	if _, err := r.Next(context.Background()); !errors.Is(err, ErrBeyondHead) {
		t.Errorf("reader after head: %v", err)
	}
	r.Close()
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	commitEntries(t, l, 10, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, Options{})
	if l.Head() != 10 {
		t.Fatalf("head after reopen = %d", l.Head())
	}
	got := readN(t, l.NewReader(5), 5)
	if !reflect.DeepEqual(got[0], testEntry(6, 3)) {
		t.Errorf("entry 6 after reopen = %+v", got[0])
	}
	commitEntries(t, l, 1, 1)
	if l.Head() != 11 {
		t.Errorf("head = %d", l.Head())
	}
}

func TestConcurrentReaders(t *testing.T) {
	l := openTest(t, t.TempDir(), Options{TailCacheBytes: 4 << 10})
	const readers, entries = 40, 200
	commitEntries(t, l, 20, 1)
	var wg sync.WaitGroup
	for i := 0; i < readers; i++ {
		r := l.NewReader(uint64(i % 20))
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			want := r.next
			for want <= entries {
				e, err := r.Next(ctx)
				if err != nil {
					t.Errorf("reader: %v", err)
					return
				}
				if e.Offset != want {
					t.Errorf("reader got %d, want %d", e.Offset, want)
					return
				}
				want++
			}
		}()
	}
	go func() {
		for l.Head() < entries {
			b := &Batch{}
			b.Append(testEntry(l.Head()+1, 1))
			if err := l.Commit(b); err != nil {
				t.Errorf("commit: %v", err)
				return
			}
		}
	}()
	wg.Wait()
	if s := l.Stats(); s.Readers != 0 || s.Head != entries || s.SizeBytes <= 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestStats(t *testing.T) {
	l := openTest(t, t.TempDir(), Options{})
	commitEntries(t, l, 5, 10)
	s := l.Stats()
	if s.Head != 5 || s.SizeBytes <= 0 || s.EntriesPerSec <= 0 || s.RowsPerSec <= 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestForeignDir(t *testing.T) {
	// A directory with unrelated files.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrForeignDir) {
		t.Errorf("dir with other files: %v", err)
	}
	// A path that is a file.
	if _, err := Open(filepath.Join(dir, "notes.txt"), Options{}); err == nil {
		t.Errorf("opened a file as a log")
	}
	// Someone else's Pebble store.
	dir = t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("x"), []byte("y"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrForeignDir) {
		t.Errorf("foreign pebble store: %v", err)
	}
}

func TestCorruptDir(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	commitEntries(t, l, 3, 1)
	l.Close()
	ms, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	if len(ms) == 0 {
		t.Fatal("no manifest")
	}
	for _, m := range ms {
		if err := os.WriteFile(m, []byte("garbage garbage garbage garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err = Open(dir, Options{})
	if err == nil {
		t.Fatal("opened a log with a corrupted manifest")
	}
	if !strings.Contains(err.Error(), "open txlog in "+dir) {
		t.Errorf("error does not say what failed: %v", err)
	}
}

// Rows cached by a read follow later commits (overwrite, delete, re-create).
func TestRowCacheFollowsCommits(t *testing.T) {
	l := openTest(t, t.TempDir(), Options{})
	commitRow := func(r *merge.Row) {
		t.Helper()
		b := &Batch{}
		b.SetRow("t", "k", r)
		if err := l.Commit(b); err != nil {
			t.Fatal(err)
		}
	}
	read := func() string {
		t.Helper()
		r, err := l.Row("t", "k")
		if err != nil {
			t.Fatal(err)
		}
		if r == nil {
			return "<nil>"
		}
		return r.Cells["id"].Value.Text
	}
	commitRow(testRow("1"))
	for i, step := range []struct {
		row  *merge.Row
		want string
	}{
		{testRow("2"), "2"},
		{nil, "<nil>"},
		{testRow("3"), "3"},
		{testRow("4"), "4"},
	} {
		read() // cache the current state
		commitRow(step.row)
		if got := read(); got != step.want {
			t.Errorf("step %d: read %s, want %s", i, got, step.want)
		}
	}
	if s := l.Stats(); s.RowCacheBytes <= 0 {
		t.Errorf("nothing cached: %+v", s)
	}
}

// A thousand readers waiting at the head (one per connector and Satellite
// session) are all woken by each commit and each get every entry.
func TestThousandReadersAtHead(t *testing.T) {
	l := openTest(t, t.TempDir(), Options{})
	const readers, entries = 1000, 5
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for i := 0; i < readers; i++ {
		r := l.NewReader(0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for want := uint64(1); want <= entries; want++ {
				e, err := r.Next(ctx)
				if err != nil {
					errs <- err
					return
				}
				if e.Offset != want {
					errs <- fmt.Errorf("got %d, want %d", e.Offset, want)
					return
				}
			}
		}()
	}
	if s := l.Stats(); s.Readers != readers {
		t.Errorf("stats: %d readers", s.Readers)
	}
	commitEntries(t, l, entries, 3)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// failingStore is the real Pebble store whose batch commits fail on demand
// (a full or broken disk).
type failingStore struct {
	*pebbleStore
	fail bool
}

type failingBatch struct {
	kvBatch
	s *failingStore
}

func (s *failingStore) newBatch(size int) kvBatch {
	return failingBatch{s.pebbleStore.newBatch(size), s}
}

func (b failingBatch) commit() error {
	if b.s.fail {
		b.kvBatch.abandon()
		return errors.New("write wal: no space left on device")
	}
	return b.kvBatch.commit()
}

func TestFailedCommitIsSticky(t *testing.T) {
	dir := t.TempDir()
	ps, err := openPebble(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	fs := &failingStore{pebbleStore: ps}
	l, err := openWith(dir, fs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	commitEntries(t, l, 2, 1)
	fs.fail = true
	b := &Batch{}
	b.Append(testEntry(3, 1))
	if err := l.Commit(b); err == nil || !strings.Contains(err.Error(), "no space") {
		t.Fatalf("failing commit: %v", err)
	}
	if l.Head() != 2 {
		t.Errorf("head moved to %d by a failed commit", l.Head())
	}
	fs.fail = false
	if err := l.Commit(b); err == nil || !strings.Contains(err.Error(), "reopen") {
		t.Errorf("commit after a failure: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, Options{})
	if l.Head() != 2 {
		t.Fatalf("head after reopen = %d", l.Head())
	}
	commitEntries(t, l, 1, 1)
}
