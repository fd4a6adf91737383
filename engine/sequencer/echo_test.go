package sequencer

import (
	"testing"

	"github.com/electric-sql/electric-go/engine/merge"
)

func withOld(op merge.Op, kv ...string) merge.Op {
	op.Old = vals(kv...)
	return op
}

func echoSafe(t *testing.T, s *Sequencer, it Item) bool {
	t.Helper()
	off := submit(t, s, it)
	if off == 0 {
		t.Fatalf("item of %s wrote no entry", it.Tx.Origin)
	}
	return entry(t, s.log, off).EchoSafe
}

func TestEchoSafe(t *testing.T) {
	l := openLog(t, t.TempDir())
	s := start(t, l, Options{})

	// A new row written by one origin: it holds exactly the merged row.
	if !echoSafe(t, s, item("a", 10, insert("1", "v", "x"))) {
		t.Error("single-origin insert of a new row: not echo-safe")
	}
	// Its own update with the full old image, after its own safe entry.
	if !echoSafe(t, s, item("a", 20, withOld(update("1", "v", "y"), "id", "1", "v", "x"))) {
		t.Error("update with full old image after the origin's own safe entry: not echo-safe")
	}
	// An update whose old image lacks a column: what the origin holds is
	// not known in full, so the merged image cannot be shown equal.
	if echoSafe(t, s, item("a", 30, update("1", "v", "z"))) {
		t.Error("update without old image: echo-safe")
	}
	// The row's last change (the entry above) was not safe: even a full
	// update is not safe until the origin has applied it.
	if echoSafe(t, s, item("a", 40, withOld(update("1", "v", "w"), "id", "1", "v", "z"))) {
		t.Error("update after the origin's own unsafe entry: echo-safe")
	}
	// A delete whose merged row is not live.
	if !echoSafe(t, s, item("a", 50, insert("2", "v", "x"), del("2"))) {
		t.Error("insert and delete in one transaction: not echo-safe")
	}

	// Another origin changes a row after what the origin had applied.
	x := submit(t, s, item("a", 60, insert("3", "v", "a")))
	if !entry(t, l, x).EchoSafe {
		t.Fatal("insert of row 3: not echo-safe")
	}
	b := item("b", 70, withOld(update("3", "v", "b"), "id", "3", "v", "a"))
	b.ContextOffset = x
	if !echoSafe(t, s, b) {
		t.Error("update by b having applied the row's last change: not echo-safe")
	}
	a := item("a", 80, withOld(update("3", "v", "c"), "id", "3", "v", "a"))
	a.ContextOffset = x // a has not applied b's entry yet
	if echoSafe(t, s, a) {
		t.Error("update by a while b's later change is still on its way to a: echo-safe")
	}

	// Merged image differs from the row the origin wrote: b's concurrent
	// insert adds a column a's row does not have.
	bi := submit(t, s, item("b", 90, insert("4", "v", "b", "extra", "e")))
	ai := item("a", 100, insert("4", "v", "a"))
	ai.ContextOffset = bi
	if echoSafe(t, s, ai) {
		t.Error("insert whose merged image keeps a column the origin lacks: echo-safe")
	}

	// A truncate is never skipped.
	if echoSafe(t, s, item("a", 110, merge.Op{Kind: merge.OpTruncate, Table: table})) {
		t.Error("truncate: echo-safe")
	}
}

func TestEchoSafeSnapshot(t *testing.T) {
	l := openLog(t, t.TempDir())
	s := start(t, l, Options{})
	snap := func(key string, kv ...string) merge.Op {
		op := insert(key, kv...)
		op.Kind = merge.OpSnapshot
		return op
	}
	// Rows the log never had: the origin holds exactly what was read.
	if !echoSafe(t, s, item("a", 10, snap("1", "v", "x"), snap("2", "v", "y"))) {
		t.Error("snapshot of new rows: not echo-safe")
	}
	// Row 1 known, row 3 new: row 1 gives no Change, the entry is still safe.
	if !echoSafe(t, s, item("a", 20, snap("1", "v", "x"), snap("3", "v", "z"))) {
		t.Error("snapshot with an unchanged known row: not echo-safe")
	}
	// b's row differs from the merged one: b must receive the merged row.
	bi := submit(t, s, item("b", 30, snap("4", "v", "b")))
	if bi == 0 {
		t.Fatal("snapshot of row 4 wrote no entry")
	}
	if echoSafe(t, s, item("a", 40, snap("4", "v", "a", "extra", "e"))) {
		t.Error("snapshot whose merged row differs from what was read: echo-safe")
	}
}
