package logtest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"testing"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// tombstone is the merged state of a deleted row: its cells, no live tag.
func tombstone(v string) *merge.Row {
	r := Row(v)
	r.Tags = nil
	return r
}

// A deleted row keeps its merged state (a tombstone): listed by Keys and
// Rows, returned by Row, kept across a reopen; the entry of the delete
// carries the last image.
func testTombstones(t *testing.T, open Opener) {
	dir := t.TempDir()
	l := open(t, dir)
	b := &txlog.Batch{}
	b.Append(Entry(1, 0))
	b.SetRow("public.items", "k1", Row("1"))
	if err := l.Commit(b); err != nil {
		t.Fatal(err)
	}
	del := Entry(2, 0)
	del.Changes = []txlog.RowChange{{Table: "public.items", Key: "k1", Deleted: true, Row: map[string]merge.Value{"id": {Text: "1"}, "note": {Null: true}}}}
	b = &txlog.Batch{}
	b.Append(del)
	b.SetRow("public.items", "k1", tombstone("1"))
	if err := l.Commit(b); err != nil {
		t.Fatal(err)
	}
	check := func(l txlog.Log) {
		t.Helper()
		if r, err := l.Row("public.items", "k1"); err != nil || !reflect.DeepEqual(r, tombstone("1")) {
			t.Errorf("tombstone = %+v, %v", r, err)
		}
		if keys, err := l.Keys("public.items"); err != nil || !reflect.DeepEqual(keys, []string{"k1"}) {
			t.Errorf("keys with a tombstone = %q, %v", keys, err)
		}
		if e, err := l.Entry(2); err != nil || !reflect.DeepEqual(e, del) {
			t.Errorf("delete entry = %+v, %v", e, err)
		}
	}
	check(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	check(open(t, dir))
}

// A snapshot keeps showing the state at its offset while commits go on, and
// refuses reads once closed.
func testSnapshot(t *testing.T, open Opener) {
	l := open(t, t.TempDir())
	s, err := l.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if tables, err := s.Tables(); s.Offset() != 0 || len(tables) != 0 || err != nil {
		t.Errorf("snapshot of an empty log: offset %d, tables %q, %v", s.Offset(), tables, err)
	}
	s.Close()

	b := &txlog.Batch{}
	b.Append(Entry(1, 1))
	b.Append(Entry(2, 1))
	b.SetRow("public.items", "k1", Row("1"))
	b.SetRow("public.items", "k2", Row("2"))
	b.SetRow("public.a", "x", Row("x"))
	b.SetPosition("src", []byte("p2"))
	if err := l.Commit(b); err != nil {
		t.Fatal(err)
	}
	s, err = l.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b = &txlog.Batch{}
	b.Append(Entry(3, 1))
	b.SetRow("public.items", "k1", Row("1b"))
	b.SetRow("public.items", "k2", nil)
	b.SetRow("public.z", "new", Row("n"))
	b.SetPosition("src", []byte("p3"))
	if err := l.Commit(b); err != nil {
		t.Fatal(err)
	}

	if s.Offset() != 2 {
		t.Errorf("snapshot offset = %d, want 2", s.Offset())
	}
	if tables, err := s.Tables(); err != nil || !reflect.DeepEqual(tables, []string{"public.a", "public.items"}) {
		t.Errorf("snapshot tables = %q, %v", tables, err)
	}
	if keys, err := s.Keys("public.items"); err != nil || !reflect.DeepEqual(keys, []string{"k1", "k2"}) {
		t.Errorf("snapshot keys = %q, %v", keys, err)
	}
	if r, err := s.Row("public.items", "k1"); err != nil || !reflect.DeepEqual(r, Row("1")) {
		t.Errorf("snapshot row k1 = %+v, %v", r, err)
	}
	if r, err := s.Row("public.z", "new"); r != nil || err != nil {
		t.Errorf("snapshot sees a later row: %+v, %v", r, err)
	}
	var seen []string
	if err := s.Rows("public.items", func(k string, r *merge.Row) error {
		seen = append(seen, k+"="+r.Cells["id"].Value.Text)
		return nil
	}); err != nil || fmt.Sprint(seen) != "[k1=1 k2=2]" {
		t.Errorf("snapshot rows = %q, %v", seen, err)
	}
	if p, err := s.Position("src"); err != nil || string(p) != "p2" {
		t.Errorf("snapshot position = %q, %v", p, err)
	}
	// The log itself has moved on.
	if r, _ := l.Row("public.items", "k1"); !reflect.DeepEqual(r, Row("1b")) {
		t.Errorf("log row k1 = %+v", r)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Row("public.items", "k1"); !errors.Is(err, txlog.ErrClosed) {
		t.Errorf("row from a closed snapshot: %v", err)
	}
	// A snapshot still open when the log closes is closed with it.
	s2, err := l.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("close with a snapshot open: %v", err)
	}
	if _, err := s2.Keys("public.items"); !errors.Is(err, txlog.ErrClosed) {
		t.Errorf("keys from a snapshot of a closed log: %v", err)
	}
	if _, err := l.Snapshot(); !errors.Is(err, txlog.ErrClosed) {
		t.Errorf("snapshot of a closed log: %v", err)
	}
	_ = s2.Close()
}

// counterRow is the state of the row "counter" after commit n.
func counterRow(n uint64) *merge.Row {
	return &merge.Row{
		Cells: map[string]merge.Cell{"n": {Value: merge.Value{Text: strconv.FormatUint(n, 10)}, Eff: n, Origin: "w"}},
		Tags:  []merge.Tag{{Origin: "w", Eff: n}},
	}
}

// Snapshots taken while a writer commits see exactly the state at their
// offset: commit n sets the counter row to n, adds the row "r<n>" and sets
// the position to n, so the three must agree with the offset.
func testSnapshotUnderWrites(t *testing.T, open Opener) {
	l := open(t, t.TempDir())
	const commits = 150
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := uint64(1); n <= commits; n++ {
			b := &txlog.Batch{}
			b.Append(Entry(n, 1))
			b.SetRow("public.c", "counter", counterRow(n))
			b.SetRow("public.c", fmt.Sprintf("r%04d", n), Row("x"))
			b.SetPosition("w", []byte(strconv.FormatUint(n, 10)))
			if err := l.Commit(b); err != nil {
				t.Errorf("commit %d: %v", n, err)
				return
			}
		}
	}()
	check := func() (uint64, bool) {
		s, err := l.Snapshot()
		if err != nil {
			t.Errorf("snapshot: %v", err)
			return 0, false
		}
		defer s.Close()
		off := s.Offset()
		r, err := s.Row("public.c", "counter")
		if off == 0 {
			if r != nil || err != nil {
				t.Errorf("snapshot at 0 has counter %+v, %v", r, err)
			}
			return off, true
		}
		if err != nil || !reflect.DeepEqual(r, counterRow(off)) {
			t.Errorf("snapshot at %d has counter %+v, %v", off, r, err)
			return off, false
		}
		keys, err := s.Keys("public.c")
		if err != nil || uint64(len(keys)) != off+1 || keys[len(keys)-1] != fmt.Sprintf("r%04d", off) {
			t.Errorf("snapshot at %d has %d keys (last %q), %v", off, len(keys), keys[len(keys)-1:], err)
			return off, false
		}
		if p, err := s.Position("w"); err != nil || string(p) != strconv.FormatUint(off, 10) {
			t.Errorf("snapshot at %d has position %q, %v", off, p, err)
			return off, false
		}
		return off, true
	}
	var seen int
	for {
		off, ok := check()
		if !ok {
			break
		}
		seen++
		if off == commits {
			break
		}
	}
	wg.Wait()
	if seen < 2 {
		t.Logf("only %d snapshots taken during the writes", seen)
	}
}

// A reader started at a snapshot's offset continues exactly where the
// snapshot ends: snapshot state plus the tail is the state at the head.
func testSnapshotThenTail(t *testing.T, open Opener) {
	l := open(t, t.TempDir())
	commit := func(n uint64) {
		b := &txlog.Batch{}
		b.Append(Entry(n, 1))
		b.SetRow("public.c", "counter", counterRow(n))
		if err := l.Commit(b); err != nil {
			t.Fatal(err)
		}
	}
	for n := uint64(1); n <= 5; n++ {
		commit(n)
	}
	s, err := l.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for n := uint64(6); n <= 9; n++ {
		commit(n)
	}
	r := l.NewReader(s.Offset())
	defer r.Close()
	got := ReadN(t, r, 4)
	if got[0].Offset != s.Offset()+1 || got[3].Offset != l.Head() {
		t.Errorf("tail after snapshot %d: offsets %d..%d, head %d", s.Offset(), got[0].Offset, got[3].Offset, l.Head())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if e, err := r.Next(ctx); err == nil {
		t.Errorf("read past the head: %+v", e)
	}
}
