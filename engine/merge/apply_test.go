package merge

import (
	"errors"
	"maps"
	"math"
	"testing"
)

func txt(s string) Value { return Value{Text: s} }

var null = Value{Null: true}

func mustApply(t *testing.T, s memStore, last uint64, tx Tx) Result {
	t.Helper()
	res, err := Apply(s, last, tx)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	s.commit(res)
	return res
}

func TestEffectiveTimestamp(t *testing.T) {
	cases := []struct {
		name string
		tx   Tx
		last uint64
		want uint64
	}{
		{"commit time", Tx{Origin: "a", CommitTime: 100, Offset: 1}, 0, 100},
		{"after own last", Tx{Origin: "a", CommitTime: 100, Offset: 2}, 150, 151},
		{"after context", Tx{Origin: "a", CommitTime: 100, Offset: 5, Context: 4, ContextEff: 300}, 150, 301},
		{"zero clock", Tx{Origin: "a", Offset: 1}, 0, 1},
	}
	for _, c := range cases {
		res, err := Apply(memStore{}, c.last, c.tx)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if res.Eff != c.want {
			t.Errorf("%s: eff = %d, want %d", c.name, res.Eff, c.want)
		}
	}
}

func TestApplyRejectsMalformed(t *testing.T) {
	cases := []struct {
		name string
		last uint64
		tx   Tx
	}{
		{"empty origin", 0, Tx{CommitTime: 1, Offset: 1}},
		{"bad kind", 0, Tx{Origin: "a", Offset: 1, Ops: []Op{{Kind: 99, Table: "t", Key: "1"}}}},
		{"no table", 0, Tx{Origin: "a", Offset: 1, Ops: []Op{{Kind: OpInsert, Key: "1"}}}},
		{"overflow", ^uint64(0), Tx{Origin: "a", Offset: 1}},
		{"context overflow", 0, Tx{Origin: "a", Offset: 2, Context: 1, ContextEff: ^uint64(0)}},
		{"no offset", 0, Tx{Origin: "a"}},
		{"context not before", 0, Tx{Origin: "a", Offset: 3, Context: 3}},
	}
	for _, c := range cases {
		if _, err := Apply(memStore{}, c.last, c.tx); !errors.Is(err, ErrInvalidTx) {
			t.Errorf("%s: err = %v, want ErrInvalidTx", c.name, err)
		}
	}
}

type failStore struct{}

var errDisk = errors.New("disk on fire")

func (failStore) Row(string, string) (*Row, error) { return nil, errDisk }
func (failStore) Keys(string) ([]string, error)    { return nil, errDisk }

func TestApplyStoreErrors(t *testing.T) {
	for _, op := range []Op{{Kind: OpInsert, Table: "t", Key: "1"}, {Kind: OpTruncate, Table: "t"}} {
		if _, err := Apply(failStore{}, 0, Tx{Origin: "a", Offset: 1, Ops: []Op{op}}); !errors.Is(err, errDisk) {
			t.Errorf("kind %d: err = %v, want the store's error", op.Kind, err)
		}
	}
}

func TestApplyDoesNotMutateStoredRows(t *testing.T) {
	s := memStore{}
	mustApply(t, s, 0, Tx{Origin: "a", CommitTime: 10, Offset: 1, Ops: []Op{{Kind: OpInsert, Table: "t", Key: "1", Columns: map[string]Value{"x": txt("1")}}}})
	before := s[rowID{"t", "1"}].Clone()
	stored := s[rowID{"t", "1"}]
	_, err := Apply(s, 10, Tx{Origin: "a", CommitTime: 20, Offset: 2, Ops: []Op{
		{Kind: OpUpdate, Table: "t", Key: "1", Columns: map[string]Value{"x": txt("2")}},
		{Kind: OpDelete, Table: "t", Key: "1"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(stored.Cells, before.Cells) || len(stored.Tags) != 1 {
		t.Fatalf("stored row changed: %+v", stored)
	}
}

func TestSameTxDeleteThenInsertIsLive(t *testing.T) {
	s := memStore{}
	mustApply(t, s, 0, Tx{Origin: "a", CommitTime: 10, Offset: 1, Ops: []Op{{Kind: OpInsert, Table: "t", Key: "1", Columns: map[string]Value{"x": txt("1")}}}})
	res := mustApply(t, s, 10, Tx{Origin: "a", CommitTime: 20, Offset: 2, Ops: []Op{
		{Kind: OpDelete, Table: "t", Key: "1"},
		{Kind: OpInsert, Table: "t", Key: "1", Columns: map[string]Value{"x": txt("2")}},
	}})
	if len(res.Changes) != 1 || !res.Changes[0].Live || res.Changes[0].Image["x"] != txt("2") {
		t.Fatalf("changes = %+v, want one live row x=2", res.Changes)
	}
	res = mustApply(t, s, 20, Tx{Origin: "a", CommitTime: 30, Offset: 3, Ops: []Op{
		{Kind: OpInsert, Table: "t", Key: "2", Columns: map[string]Value{"x": txt("3")}},
		{Kind: OpDelete, Table: "t", Key: "2"},
	}})
	if len(res.Changes) != 1 || res.Changes[0].Live || res.Changes[0].Image != nil {
		t.Fatalf("changes = %+v, want one dead row", res.Changes)
	}
}

func TestBound(t *testing.T) {
	const now = 1_700_000_000_000_000
	for _, tc := range []struct{ commit, now, want uint64 }{
		{now - 5, now, now - 5},                   // behind: unchanged
		{now + MaxAhead, now, now + MaxAhead},     // at the edge of the window
		{now + MaxAhead + 1, now, now + MaxAhead}, // beyond: clamped
		{18446744073709551000, now, now + MaxAhead},
		{math.MaxUint64, now, now + MaxAhead},
		{math.MaxUint64, 0, MaxTimestamp},                      // now unknown
		{math.MaxUint64, math.MaxUint64, MaxTimestamp},         // an absurd engine clock
		{MaxTimestamp - 1, MaxTimestamp - 2, MaxTimestamp - 1}, // no overflow of now + MaxAhead
	} {
		if got := Bound(tc.commit, tc.now); got != tc.want {
			t.Errorf("Bound(%d, %d) = %d, want %d", tc.commit, tc.now, got, tc.want)
		}
	}
}
