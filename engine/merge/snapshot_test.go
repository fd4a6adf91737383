package merge

import (
	"maps"
	"testing"
)

// at places tx at log offset off.
func at(tx Tx, off uint64) Tx { tx.Offset = off; return tx }

// snapTx is a snapshot chunk of origin o holding one row (key "1").
func snapTx(o string, commit uint64, cols map[string]Value) Tx {
	return Tx{Origin: o, CommitTime: commit, Ops: []Op{{Kind: OpSnapshot, Table: "t", Key: "1", Columns: cols}}}
}

func TestSnapshotRules(t *testing.T) {
	type step struct {
		tx   Tx
		last uint64
	}
	a1 := map[string]Value{"id": txt("1"), "v": txt("a")}
	b1 := map[string]Value{"id": txt("1"), "v": txt("b")}
	cases := []struct {
		name    string
		steps   []step
		live    bool
		v       Value // merged value of column v
		changes []int // Changes per step
	}{
		{"absent row is inserted", []step{{snapTx("a", 100, a1), 0}}, true, txt("a"), []int{1}},
		{"identical rows from two origins merge into one", []step{
			{snapTx("a", 100, a1), 0}, {snapTx("b", 100, a1), 0}}, true, txt("a"), []int{1, 0}},
		{"differing rows: first merged wins", []step{
			{snapTx("b", 100, b1), 0}, {snapTx("a", 100, a1), 0}}, true, txt("b"), []int{1, 0}},
		{"a logged write is never overwritten", []step{
			{Tx{Origin: "b", CommitTime: 50, Ops: []Op{{Kind: OpInsert, Table: "t", Key: "1", Columns: b1}}}, 0},
			{snapTx("a", 100, a1), 0}}, true, txt("b"), []int{1, 0}},
		{"a logged write merged later beats the snapshot, even from an older clock", []step{
			{snapTx("a", 100, a1), 0},
			{Tx{Origin: "b", CommitTime: 2, Ops: []Op{{Kind: OpUpdate, Table: "t", Key: "1", Columns: map[string]Value{"v": txt("b")}}}}, 0}},
			true, txt("b"), []int{1, 1}},
		{"a tombstone stops the snapshot row", []step{
			{Tx{Origin: "a", CommitTime: 50, Ops: []Op{{Kind: OpDelete, Table: "t", Key: "1", Old: a1}}}, 0},
			{snapTx("a", 100, a1), 50}}, false, txt("a"), []int{1, 0}},
		{"the origin's later delete removes it", []step{
			{snapTx("a", 100, a1), 0},
			{Tx{Origin: "a", CommitTime: 200, Ops: []Op{{Kind: OpDelete, Table: "t", Key: "1", Old: a1}}}, 100}},
			false, txt("a"), []int{1, 1}},
		{"a delete that knows the origin removes it", []step{
			{snapTx("a", 100, a1), 0},
			{Tx{Origin: "b", CommitTime: 200, Context: 1, ContextEff: 100, Ops: []Op{{Kind: OpDelete, Table: "t", Key: "1"}}}, 0}},
			false, txt("a"), []int{1, 1}},
		{"a delete that never heard of the origin does not", []step{
			{snapTx("a", 100, a1), 0},
			{Tx{Origin: "b", CommitTime: 200, Ops: []Op{{Kind: OpDelete, Table: "t", Key: "1"}}}, 0}},
			true, txt("a"), []int{1, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := memStore{}
			for i, st := range c.steps {
				tx := st.tx
				tx.Offset = uint64(i + 1) // one entry per step, in log order
				res := mustApply(t, s, st.last, tx)
				if len(res.Changes) != c.changes[i] {
					t.Fatalf("step %d: %d changes, want %d", i, len(res.Changes), c.changes[i])
				}
			}
			r := s[rowID{"t", "1"}]
			if r.Live() != c.live {
				t.Errorf("live = %v, want %v", r.Live(), c.live)
			}
			if got := r.Cells["v"].Value; got != c.v {
				t.Errorf("v = %v, want %v", got, c.v)
			}
		})
	}
}

func TestSnapshotFillsOnlyUnknownCells(t *testing.T) {
	s := memStore{}
	mustApply(t, s, 0, Tx{Origin: "b", CommitTime: 50, Offset: 1, Ops: []Op{{Kind: OpInsert, Table: "t", Key: "1",
		Columns: map[string]Value{"id": txt("1"), "v": txt("b")}}}})
	res := mustApply(t, s, 0, at(snapTx("a", 100, map[string]Value{"id": txt("1"), "v": txt("a"), "w": txt("new")}), 2))
	if len(res.Changes) != 1 {
		t.Fatalf("%d changes, want 1", len(res.Changes))
	}
	want := map[string]Value{"id": txt("1"), "v": txt("b"), "w": txt("new")}
	if got := res.Changes[0].Image; !maps.Equal(got, want) {
		t.Errorf("image = %v, want %v", got, want)
	}
	r := s[rowID{"t", "1"}]
	if len(r.Tags) != 1 || r.Tags[0].Origin != "b" {
		t.Errorf("tags = %v, want only b's", r.Tags)
	}
	if c := r.Cells["w"]; c.Eff != SnapshotEff || c.Origin != "a" {
		t.Errorf("filled cell = %+v, want eff %d origin a", c, SnapshotEff)
	}
}

func TestSnapshotReportsDifferingRows(t *testing.T) {
	s := memStore{}
	mustApply(t, s, 0, at(snapTx("b", 100, map[string]Value{"id": txt("1"), "v": txt("b")}), 1))
	res := mustApply(t, s, 0, at(snapTx("a", 100, map[string]Value{"id": txt("1"), "v": txt("a")}), 2))
	if len(res.Conflicts) != 1 {
		t.Fatalf("conflicts = %+v, want one on v", res.Conflicts)
	}
	c := res.Conflicts[0]
	if c.Column != "v" || c.Winner.Value != txt("b") || c.Loser.Value != txt("a") || c.Loser.Origin != "a" {
		t.Errorf("conflict = %+v", c)
	}
	res = mustApply(t, s, 0, at(snapTx("c", 100, map[string]Value{"id": txt("1"), "v": txt("b")}), 3))
	if len(res.Conflicts) != 0 {
		t.Errorf("identical row reported: %+v", res.Conflicts)
	}
}
