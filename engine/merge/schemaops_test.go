package merge

import (
	"errors"
	"testing"
)

// schemaSetup merges: a inserts t/1 (v=one) at 100 and t/2 (v=two) at 110,
// then deletes t/2 at 120; b inserts t/3 (w=three) at 130.
func schemaSetup(t *testing.T) memStore {
	t.Helper()
	s := memStore{}
	var last = map[string]uint64{}
	var off uint64
	for _, tx := range []Tx{
		{Origin: "a", CommitTime: 100, Ops: []Op{{Kind: OpInsert, Table: "t", Key: "1", Columns: map[string]Value{"id": txt("1"), "v": txt("one")}}}},
		{Origin: "a", CommitTime: 110, Ops: []Op{{Kind: OpInsert, Table: "t", Key: "2", Columns: map[string]Value{"id": txt("2"), "v": txt("two")}}}},
		{Origin: "a", CommitTime: 120, Ops: []Op{{Kind: OpDelete, Table: "t", Key: "2"}}},
		{Origin: "b", CommitTime: 130, Ops: []Op{{Kind: OpInsert, Table: "t", Key: "3", Columns: map[string]Value{"id": txt("3"), "w": txt("three")}}}},
	} {
		off++ // setup: offsets 1..4, one entry per tx
		tx.Offset = off
		res, err := Apply(s, last[tx.Origin], tx)
		if err != nil {
			t.Fatal(err)
		}
		last[tx.Origin] = res.Eff
		s.commit(res)
	}
	return s
}

func TestSchemaOps(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ops     []Op
		changed []string          // keys of the Changes
		want    map[string]string // "key/col" -> value ("" absent)
		wantErr bool
	}{
		{
			name:    "rename copies the cell to the new name, keeps the old, skips dead rows",
			ops:     []Op{{Kind: OpRenameColumn, Table: "t", Column: "v", NewName: "v2"}},
			changed: []string{"1"},
			want:    map[string]string{"1/v2": "one", "1/v": "one", "2/v2": "", "3/v2": ""},
		},
		{
			name:    "default fills only what a row does not know, in every live row",
			ops:     []Op{{Kind: OpDefaultAll, Table: "t", Columns: map[string]Value{"v": txt("dflt")}}},
			changed: []string{"3"},
			want:    map[string]string{"1/v": "one", "3/v": "dflt", "2/v": "two"},
		},
		{
			name:    "rewrite overwrites a live row's value, never creates or resurrects a row",
			ops:     []Op{{Kind: OpRewrite, Table: "t", Key: "1", Columns: map[string]Value{"v": txt("ONE")}}, {Kind: OpRewrite, Table: "t", Key: "2", Columns: map[string]Value{"v": txt("TWO")}}, {Kind: OpRewrite, Table: "t", Key: "9", Columns: map[string]Value{"v": txt("nine")}}},
			changed: []string{"1"},
			want:    map[string]string{"1/v": "ONE", "2/v": "two", "9/v": ""},
		},
		{
			name:    "a rewrite that leaves the value gives no change",
			ops:     []Op{{Kind: OpRewrite, Table: "t", Key: "1", Columns: map[string]Value{"v": txt("one")}}},
			changed: nil,
			want:    map[string]string{"1/v": "one"},
		},
		{
			name:    "a rename sees the rows its own transaction inserted",
			ops:     []Op{{Kind: OpInsert, Table: "t", Key: "4", Columns: map[string]Value{"id": txt("4"), "v": txt("four")}}, {Kind: OpRenameColumn, Table: "t", Column: "v", NewName: "v2"}},
			changed: []string{"4", "1"},
			want:    map[string]string{"4/v2": "four", "1/v2": "one"},
		},
		{name: "rename to itself", ops: []Op{{Kind: OpRenameColumn, Table: "t", Column: "v", NewName: "v"}}, wantErr: true},
		{
			name:    "a default for one row",
			ops:     []Op{{Kind: OpDefault, Table: "t", Key: "3", Columns: map[string]Value{"v": txt("d3")}}, {Kind: OpDefault, Table: "t", Key: "1", Columns: map[string]Value{"v": txt("d1")}}},
			changed: []string{"3"},
			want:    map[string]string{"3/v": "d3", "1/v": "one"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := schemaSetup(t)
			res, err := Apply(s, 1000, Tx{Origin: "a", CommitTime: 200, Offset: 10, Ops: tc.ops})
			if tc.wantErr {
				if !errors.Is(err, ErrInvalidTx) {
					t.Fatalf("err = %v, want ErrInvalidTx", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, c := range res.Changes {
				keys = append(keys, c.Key)
				if len(c.State.Tags) == 0 {
					t.Errorf("change of %s is not live", c.Key)
				}
			}
			if len(keys) != len(tc.changed) {
				t.Fatalf("changed %v, want %v", keys, tc.changed)
			}
			for i := range keys {
				if keys[i] != tc.changed[i] {
					t.Fatalf("changed %v, want %v", keys, tc.changed)
				}
			}
			s.commit(res)
			for kc, want := range tc.want {
				var key, col string
				for i := range kc {
					if kc[i] == '/' {
						key, col = kc[:i], kc[i+1:]
						break
					}
				}
				got := ""
				if r := s[rowID{"t", key}]; r != nil {
					got = r.Cells[col].Value.Text
				}
				if got != want {
					t.Errorf("%s = %q, want %q", kc, got, want)
				}
			}
		})
	}
}

// Two sources renaming the same column converge whatever order the renames
// and writes arrive in: the moved cell keeps the eff of its write.
func TestRenameKeepsWriteOrder(t *testing.T) {
	s := schemaSetup(t)
	off := uint64(10) // after the setup's entries
	// b renamed first and wrote v2 at 300; a's rename (at 200) arrives later
	// and must not bring back a's older value.
	for _, tx := range []struct {
		tx   Tx
		last uint64
	}{
		{Tx{Origin: "b", CommitTime: 150, Ops: []Op{{Kind: OpRenameColumn, Table: "t", Column: "v", NewName: "v2"}}}, 130},
		{Tx{Origin: "b", CommitTime: 300, Ops: []Op{{Kind: OpUpdate, Table: "t", Key: "1", Columns: map[string]Value{"v2": txt("b-wrote")}}}}, 150},
		{Tx{Origin: "a", CommitTime: 200, Ops: []Op{{Kind: OpRenameColumn, Table: "t", Column: "v", NewName: "v2"}}}, 120},
	} {
		off++
		tx.tx.Offset = off
		res, err := Apply(s, tx.last, tx.tx)
		if err != nil {
			t.Fatal(err)
		}
		s.commit(res)
	}
	if got := s[rowID{"t", "1"}].Cells["v2"].Value.Text; got != "b-wrote" {
		t.Fatalf("v2 = %q, want b-wrote", got)
	}
}
