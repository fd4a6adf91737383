package merge

import (
	"reflect"
	"testing"
)

func TestConflicts(t *testing.T) {
	ins := func(key string, cols map[string]Value) Op {
		return Op{Kind: OpInsert, Table: "t", Key: key, Columns: cols}
	}
	upd := func(key string, cols map[string]Value) Op {
		return Op{Kind: OpUpdate, Table: "t", Key: key, Columns: cols}
	}
	type step struct {
		last uint64
		tx   Tx
	}
	cases := []struct {
		name  string
		steps []step
		want  []Conflict // of the last step
	}{
		{
			name: "later write lost to a concurrent one with a greater eff",
			steps: []step{
				{0, Tx{Origin: "a", CommitTime: 200, Ops: []Op{ins("1", map[string]Value{"v": txt("a")})}}},
				{0, Tx{Origin: "b", CommitTime: 100, Ops: []Op{ins("1", map[string]Value{"v": txt("b")})}}},
			},
			want: []Conflict{{Table: "t", Key: "1", Column: "v",
				Winner: Cell{Value: txt("a"), Eff: 200, Origin: "a", Offset: 1}, Loser: Cell{Value: txt("b"), Eff: 100, Origin: "b", Offset: 2}}},
		},
		{
			name: "concurrent write overwrites a cell it had not seen",
			steps: []step{
				{0, Tx{Origin: "a", CommitTime: 100, Ops: []Op{ins("1", map[string]Value{"v": txt("a"), "w": txt("same")})}}},
				{0, Tx{Origin: "b", CommitTime: 200, Ops: []Op{upd("1", map[string]Value{"v": txt("b"), "w": txt("same")})}}},
			},
			want: []Conflict{{Table: "t", Key: "1", Column: "v",
				Winner: Cell{Value: txt("b"), Eff: 200, Origin: "b", Offset: 2}, Loser: Cell{Value: txt("a"), Eff: 100, Origin: "a", Offset: 1}}},
		},
		{
			name: "an update over a value it had seen is no conflict",
			steps: []step{
				{0, Tx{Origin: "a", CommitTime: 100, Ops: []Op{ins("1", map[string]Value{"v": txt("a")})}}},
				{0, Tx{Origin: "b", CommitTime: 200, Context: 1, Ops: []Op{upd("1", map[string]Value{"v": txt("b")})}}},
			},
		},
		{
			name: "an origin's own later write is no conflict",
			steps: []step{
				{0, Tx{Origin: "a", CommitTime: 100, Ops: []Op{ins("1", map[string]Value{"v": txt("a")})}}},
				{100, Tx{Origin: "a", CommitTime: 200, Ops: []Op{upd("1", map[string]Value{"v": txt("b")})}}},
			},
		},
		{
			name: "old-image cells are not written values",
			steps: []step{
				{0, Tx{Origin: "a", CommitTime: 100, Ops: []Op{{Kind: OpDelete, Table: "t", Key: "1", Old: map[string]Value{"v": txt("x")}}}}},
				{0, Tx{Origin: "b", CommitTime: 200, Ops: []Op{upd("1", map[string]Value{"v": txt("b")})}}},
			},
		},
		{
			name: "two ops of one transaction are no conflict",
			steps: []step{
				{0, Tx{Origin: "a", CommitTime: 100, Ops: []Op{
					ins("1", map[string]Value{"v": txt("a")}), upd("1", map[string]Value{"v": txt("b")})}}},
			},
		},
		{
			name: "NULL against a value is a conflict",
			steps: []step{
				{0, Tx{Origin: "a", CommitTime: 300, Ops: []Op{ins("1", map[string]Value{"v": null})}}},
				{0, Tx{Origin: "b", CommitTime: 200, Ops: []Op{ins("1", map[string]Value{"v": txt("b")})}}},
			},
			want: []Conflict{{Table: "t", Key: "1", Column: "v",
				Winner: Cell{Value: null, Eff: 300, Origin: "a", Offset: 1}, Loser: Cell{Value: txt("b"), Eff: 200, Origin: "b", Offset: 2}}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := memStore{}
			var res Result
			for i, st := range c.steps {
				tx := st.tx
				tx.Offset = uint64(i + 1)
				res = mustApply(t, s, st.last, tx)
			}
			if !reflect.DeepEqual(res.Conflicts, c.want) {
				t.Errorf("conflicts = %+v\nwant %+v", res.Conflicts, c.want)
			}
		})
	}
}
