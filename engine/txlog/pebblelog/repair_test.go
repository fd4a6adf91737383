package pebblelog

import (
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// A format 1 state poisoned by a Satellite whose commit_timestamp was
// 18446744073709551 ms: its eff P and the effs it dragged (P+1, P+2) are
// moved, in order, to just below the upgrade time; sane values, positions
// and every merged value stay; a later write merges normally and wins.
func TestUpgradeRepairsPoisonedClocks(t *testing.T) {
	upgrade := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	T := uint64(upgrade.UnixMicro())
	sane := T - 10_000_000 // a write 10 s before the upgrade
	const P = 18446744073709551 * 1000
	v := func(s string) merge.Value { return merge.Value{Text: s} }

	// upgraded: as format 3 reads it (MaxEff, tags with the offsets of the
	// entries that wrote them, no removed clock).
	poisoned := func(a, sat, b, a2 uint64, upgraded bool) ([]*txlog.Entry, map[string]*merge.Row) {
		entries := []*txlog.Entry{
			{Offset: 1, Origin: "a", Eff: a, CommitTime: a,
				Changes: []txlog.RowChange{{Table: "public.t", Key: "1", Row: map[string]merge.Value{"id": v("1"), "x": v("a")}}}},
			{Offset: 2, Origin: "satellite:c1", Eff: sat, CommitTime: min(P, sat),
				Changes: []txlog.RowChange{{Table: "public.t", Key: "1", Row: map[string]merge.Value{"id": v("1"), "x": v("sat")}}}},
			{Offset: 3, Origin: "b", Eff: b, CommitTime: min(T-5, b),
				Changes: []txlog.RowChange{{Table: "public.t", Key: "2", Deleted: true, Row: map[string]merge.Value{"id": v("2")}}}},
			{Offset: 4, Origin: "a", Eff: a2, CommitTime: min(T-4, a2),
				Changes: []txlog.RowChange{{Table: "public.t", Key: "1", Row: map[string]merge.Value{"id": v("1"), "x": v("sat"), "y": v("a2")}}}},
		}
		rows := map[string]*merge.Row{
			"1": {
				Cells: map[string]merge.Cell{
					"id":  {Value: v("1"), Eff: a, Origin: "a"},
					"x":   {Value: v("sat"), Eff: sat, Origin: "satellite:c1"},
					"y":   {Value: v("a2"), Eff: a2, Origin: "a"},
					"old": {Value: v("o"), Eff: 0, Origin: "b"}, // from an old image
				},
				Tags: []merge.Tag{{Origin: "a", Eff: a2}, {Origin: "satellite:c1", Eff: sat}},
			},
			"2": { // a tombstone whose delete had seen the Satellite's write
				Cells: map[string]merge.Cell{"id": {Value: v("2"), Eff: sane - 1, Origin: "a"}},
			},
		}
		if upgraded {
			var m uint64
			for _, e := range entries {
				m = max(m, e.Eff)
				e.MaxEff = m
			}
			rows["1"].Tags = []merge.Tag{{Origin: "a", Eff: a2, Offset: 4}, {Origin: "satellite:c1", Eff: sat, Offset: 2}}
			for col, off := range map[string]uint64{"id": 1, "x": 2, "y": 4} {
				c := rows["1"].Cells[col]
				c.Offset = off
				rows["1"].Cells[col] = c
			}
			c := rows["2"].Cells["id"]
			c.Offset = 1 // a's first entry at or above its eff
			rows["2"].Cells["id"] = c
		}
		return entries, rows
	}

	dir := t.TempDir()
	l := openFormat1(t, dir)
	entries, rows := poisoned(sane, P, P+1, P+2, false)
	for _, e := range entries {
		b := &txlog.Batch{}
		b.Append(e)
		if e.Offset == 4 {
			for k, r := range rows {
				b.SetRow("public.t", k, r)
			}
			b.SetPosition("satellite:c1", []byte("lsn-9"))
		}
		if err := l.Commit(b); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()

	st, err := openPebble(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	l, err = openWith(dir, st, knownFormats(upgrade), Options{})
	if err != nil {
		_ = st.close()
		t.Fatalf("upgrade: %v", err)
	}
	defer l.Close()

	// Three poisoned values, so they become T-2, T-1, T (above the sane
	// 10 s before, below the upgrade time), in their order.
	wantEntries, wantRows := poisoned(sane, T-2, T-1, T, true)
	for _, want := range wantEntries {
		got, err := l.Entry(want.Offset)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("entry %d = %+v, %v\nwant %+v", want.Offset, got, err, want)
		}
	}
	for k, want := range wantRows {
		got, err := l.Row("public.t", k)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("row %s = %+v, %v\nwant %+v", k, got, err, want)
		}
	}
	if p, _ := l.Position("satellite:c1"); string(p) != "lsn-9" {
		t.Errorf("position = %q", p)
	}
	if m, _ := l.get(metaKey); string(m) != "electric-txlog format 3" {
		t.Errorf("marker = %q", m)
	}

	// A write from another origin 2 s after the upgrade wins, whether
	// concurrent with the Satellite's or having seen the whole log (the
	// head clock): the repaired clocks no longer drag it, it keeps its time.
	head, _ := l.Entry(l.Head())
	for _, ctx := range []uint64{0, head.Offset} {
		ctxEff := uint64(0)
		if ctx > 0 {
			ctxEff = head.MaxEff
		}
		res, err := merge.Apply(l, 0, merge.Tx{Origin: "pg2", CommitTime: T + 2_000_000, Now: T + 2_000_000, Offset: head.Offset + 1, Context: ctx, ContextEff: ctxEff,
			Ops: []merge.Op{{Kind: merge.OpUpdate, Table: "public.t", Key: "1", Columns: map[string]merge.Value{"x": v("pg2")}}}})
		if err != nil || res.Eff != T+2_000_000 || res.Changes[0].Image["x"].Text != "pg2" {
			t.Errorf("a later write after the repair (context %d): eff %d (want %d), %+v, %v", ctx, res.Eff, T+2_000_000, res.Changes, err)
		}
	}
}

// A state with nothing beyond the window is left byte for byte as it was
// (the fixture test checks the same on the format 1 fixture).
func TestUpgradeRepairNoop(t *testing.T) {
	dir := copyDir(t, fixtureDir)
	st, err := openPebble(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	b := &countingBatch{kvBatch: st.newBatch(64)}
	if err := repairClocks(time.Now())(st, b, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	b.abandon()
	_ = st.close()
	if b.n != 0 {
		t.Errorf("the repair of a sane state wrote %d records", b.n)
	}
}

type countingBatch struct {
	kvBatch
	n int
}

func (b *countingBatch) set(k, v []byte) { b.n++; b.kvBatch.set(k, v) }
