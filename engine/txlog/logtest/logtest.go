// Package logtest is the conformance suite of the log contract (package
// txlog): every implementation runs Run against itself, so the promises
// written in txlog's package comment are checked, not just stated.
package logtest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// Opener opens the log stored in dir, creating it when dir is empty; opened
// again on the same dir it must hold what was committed before. It fails t
// on error and closes the log when t ends (Close twice is allowed).
type Opener func(t *testing.T, dir string) txlog.Log

// Run runs every contract test against the implementation open opens.
func Run(t *testing.T, open Opener) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"AppendAndRead", testAppendAndRead},
		{"CommitValidation", testCommitValidation},
		{"RowsAndPositions", testRowsAndPositions},
		{"Owners", testOwners},
		{"OriginEff", testOriginEff},
		{"RowIsCallersCopy", testRowIsCallersCopy},
		{"Tombstones", testTombstones},
		{"ReaderFollowsHead", testReaderFollowsHead},
		{"CloseWakesReaders", testCloseWakesReaders},
		{"ReaderFromAnyOffset", testReaderFromAnyOffset},
		{"BadOffsets", testBadOffsets},
		{"Reopen", testReopen},
		{"Snapshot", testSnapshot},
		{"SnapshotUnderWrites", testSnapshotUnderWrites},
		{"SnapshotThenTail", testSnapshotThenTail},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// Entry builds entry off with n changed rows of table "public.items".
func Entry(off uint64, n int) *txlog.Entry {
	e := &txlog.Entry{
		Offset:     off,
		Origin:     "a",
		Eff:        1000 + off,
		CommitTime: 900 + off,
		MaxEff:     1000 + off,
	}
	for i := 0; i < n; i++ {
		e.Changes = append(e.Changes, txlog.RowChange{
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

// Row builds a merged row state with cells and tags.
func Row(v string) *merge.Row {
	return &merge.Row{
		Cells: map[string]merge.Cell{
			"id":   {Value: merge.Value{Text: v}, Eff: 5, Origin: "a"},
			"note": {Value: merge.Value{Null: true}, Eff: 6, Origin: "b"},
		},
		Tags: []merge.Tag{{Origin: "a", Eff: 5, Offset: 1}, {Origin: "b", Eff: 6, Offset: 2}},
	}
}

// CommitEntries commits n entries of rows changes each after the head.
func CommitEntries(t *testing.T, l txlog.Log, n, rows int) {
	t.Helper()
	for i := 0; i < n; i++ {
		b := &txlog.Batch{}
		b.Append(Entry(l.Head()+1, rows))
		if err := l.Commit(b); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
}

// ReadN reads n entries from r, failing the test after 30 s.
func ReadN(t *testing.T, r txlog.Reader, n int) []*txlog.Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*txlog.Entry
	for len(out) < n {
		e, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("next after %d entries: %v", len(out), err)
		}
		out = append(out, e)
	}
	return out
}

func testAppendAndRead(t *testing.T, open Opener) {
	l := open(t, t.TempDir())
	if l.Head() != 0 {
		t.Fatalf("empty head = %d", l.Head())
	}
	// One batch of several entries, then single ones.
	b := &txlog.Batch{}
	for i := uint64(1); i <= 3; i++ {
		b.Append(Entry(i, 2))
	}
	if err := l.Commit(b); err != nil {
		t.Fatal(err)
	}
	CommitEntries(t, l, 2, 1)
	if l.Head() != 5 {
		t.Fatalf("head = %d, want 5", l.Head())
	}
	got := ReadN(t, l.NewReader(0), 5)
	for i, e := range got {
		if e.Offset != uint64(i+1) {
			t.Fatalf("entry %d has offset %d", i, e.Offset)
		}
	}
	e, err := l.Entry(2)
	if err != nil {
		t.Fatal(err)
	}
	if want := Entry(2, 2); !reflect.DeepEqual(e, want) {
		t.Errorf("Entry(2) = %+v, want %+v", e, want)
	}
}

func testCommitValidation(t *testing.T, open Opener) {
	l := open(t, t.TempDir())
	CommitEntries(t, l, 2, 1)
	bad := []*txlog.Batch{
		{Entries: []*txlog.Entry{Entry(2, 1)}},              // already there
		{Entries: []*txlog.Entry{Entry(4, 1)}},              // gap
		{Entries: []*txlog.Entry{Entry(3, 1), Entry(5, 1)}}, // gap inside
		{Entries: []*txlog.Entry{nil}},
		{Rows: []txlog.RowState{{Key: "k", Row: Row("1")}}},
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
	if err := l.Commit(&txlog.Batch{}); err != nil {
		t.Errorf("empty batch: %v", err)
	}
}

// testOriginEff: the log keeps each origin's highest entry eff, from
// entries of one batch or several, across a reopen.
func testOriginEff(t *testing.T, open Opener) {
	dir := t.TempDir()
	l := open(t, dir)
	check := func(want map[string]uint64) {
		t.Helper()
		for o, e := range want {
			if got, err := l.OriginEff(o); got != e || err != nil {
				t.Errorf("OriginEff(%q) = %d, %v; want %d", o, got, err, e)
			}
		}
	}
	check(map[string]uint64{"a": 0})
	b := &txlog.Batch{}
	for i := uint64(1); i <= 3; i++ {
		e := Entry(i, 1)
		if i == 2 {
			e.Origin, e.Eff = "satellite:x", 5
		}
		b.Append(e)
	}
	if err := l.Commit(b); err != nil {
		t.Fatal(err)
	}
	CommitEntries(t, l, 1, 1) // a: 1004
	want := map[string]uint64{"a": 1004, "satellite:x": 5, "b": 0}
	check(want)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = open(t, dir)
	check(want)
}

// testOwners: a binding is durable with its batch, alone or beside entries
// and positions, survives a reopen, and does not touch positions.
func testOwners(t *testing.T, open Opener) {
	dir := t.TempDir()
	l := open(t, dir)
	if u, err := l.Owner("satellite:c1"); u != "" || err != nil {
		t.Fatalf("owner of an unbound source = %q, %v; want none", u, err)
	}
	b := &txlog.Batch{}
	b.SetOwner("satellite:c1", "alice")
	if b.Empty() {
		t.Fatal("a batch with only an owner is empty")
	}
	if err := l.Commit(b); err != nil {
		t.Fatal(err)
	}
	b = &txlog.Batch{}
	b.Append(Entry(1, 1))
	b.SetPosition("satellite:c2", []byte{1})
	b.SetOwner("satellite:c2", "bob")
	if err := l.Commit(b); err != nil {
		t.Fatal(err)
	}
	check := func(l txlog.Log) {
		t.Helper()
		for src, want := range map[string]string{"satellite:c1": "alice", "satellite:c2": "bob", "satellite:c": ""} {
			if u, err := l.Owner(src); u != want || err != nil {
				t.Errorf("owner of %s = %q, %v; want %q", src, u, err, want)
			}
		}
		if p, err := l.Position("satellite:c1"); p != nil || err != nil {
			t.Errorf("a binding wrote position %x, %v", p, err)
		}
	}
	check(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	check(open(t, dir))
}

func testRowsAndPositions(t *testing.T, open Opener) {
	dir := t.TempDir()
	l := open(t, dir)
	b := &txlog.Batch{}
	b.Append(Entry(1, 1))
	b.SetRow("public.items", "k2", Row("2"))
	b.SetRow("public.items", "k1", Row("1"))
	b.SetRow("public.other", "k1", Row("o"))
	b.SetRow("public.items", "k3", Row("3"))
	b.SetPosition("a", []byte{0, 1, 2})
	if err := l.Commit(b); err != nil {
		t.Fatal(err)
	}
	b = &txlog.Batch{}
	b.SetRow("public.items", "k3", nil)       // delete
	b.SetRow("public.items", "k1", Row("1b")) // overwrite
	b.SetPosition("a", []byte{3})
	b.SetPosition("satellite:x", []byte("lsn"))
	if err := l.Commit(b); err != nil {
		t.Fatal(err)
	}
	if l.Head() != 1 {
		t.Errorf("a batch without entries moved the head to %d", l.Head())
	}
	check := func(l txlog.Log) {
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
		if err != nil || !reflect.DeepEqual(r, Row("1b")) {
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
	check(open(t, dir))
}

// A caller modifying a row it was given must not change the stored state.
func testRowIsCallersCopy(t *testing.T, open Opener) {
	l := open(t, t.TempDir())
	b := &txlog.Batch{}
	b.SetRow("t", "k", Row("1"))
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

func testReaderFollowsHead(t *testing.T, open Opener) {
	l := open(t, t.TempDir())
	CommitEntries(t, l, 2, 1)
	r := l.NewReader(0)
	defer r.Close()
	ReadN(t, r, 2)
	got := make(chan *txlog.Entry)
	go func() {
		e, err := r.Next(context.Background())
		if err != nil {
			t.Errorf("next: %v", err)
		}
		got <- e
	}()
	// The reader is blocked at the head (or about to be); a commit wakes it.
	CommitEntries(t, l, 1, 1)
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
	if err := <-errc; !errors.Is(err, txlog.ErrClosed) {
		t.Errorf("next after reader close: %v", err)
	}
}

func testCloseWakesReaders(t *testing.T, open Opener) {
	l := open(t, t.TempDir())
	r := l.NewReader(0)
	errc := make(chan error)
	go func() { _, err := r.Next(context.Background()); errc <- err }()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, txlog.ErrClosed) {
		t.Errorf("next after log close: %v", err)
	}
	if err := l.Commit(&txlog.Batch{Entries: []*txlog.Entry{Entry(1, 1)}}); !errors.Is(err, txlog.ErrClosed) {
		t.Errorf("commit after close: %v", err)
	}
	if _, err := l.Row("t", "k"); !errors.Is(err, txlog.ErrClosed) {
		t.Errorf("row after close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

// Readers started at every offset, with a tail cache so small that most
// reads go to disk, see exactly the entries after their offset.
func testReaderFromAnyOffset(t *testing.T, open Opener) {
	l := open(t, t.TempDir())
	const n = 300 // more than a page of anything an implementation reads at once
	CommitEntries(t, l, n, 2)
	for _, after := range []uint64{0, 1, 2, 127, 128, 129, 200, n - 1, n} {
		r := l.NewReader(after)
		got := ReadN(t, r, int(n-after))
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
}

func testBadOffsets(t *testing.T, open Opener) {
	l := open(t, t.TempDir())
	CommitEntries(t, l, 3, 1)
	for _, off := range []uint64{0, 4, 1 << 63} {
		if _, err := l.Entry(off); !errors.Is(err, txlog.ErrNoEntry) {
			t.Errorf("Entry(%d): %v", off, err)
		}
	}
	r := l.NewReader(4)
	if _, err := r.Next(context.Background()); !errors.Is(err, txlog.ErrBeyondHead) {
		t.Errorf("reader after head: %v", err)
	}
	r.Close()
}

func testReopen(t *testing.T, open Opener) {
	dir := t.TempDir()
	l := open(t, dir)
	CommitEntries(t, l, 10, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = open(t, dir)
	if l.Head() != 10 {
		t.Fatalf("head after reopen = %d", l.Head())
	}
	got := ReadN(t, l.NewReader(5), 5)
	if !reflect.DeepEqual(got[0], Entry(6, 3)) {
		t.Errorf("entry 6 after reopen = %+v", got[0])
	}
	CommitEntries(t, l, 1, 1)
	if l.Head() != 11 {
		t.Errorf("head = %d", l.Head())
	}
}
