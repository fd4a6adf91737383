package pebblelog

import (
	"reflect"
	"testing"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// The format 2 fixture was written by the sequencer of format 2 (per-origin
// clocks in entries, removed clocks in row states) from six transactions:
//
//	1 a            inserts items 1 and 2
//	2 satellite:c1 inserts other x, having seen 1
//	3 b            updates items 1, having seen nothing
//	4 b            deletes items 2, having seen 1..2
//	5 a            updates items 1 (note), having seen nothing but its own
//	6 satellite:c1 deletes items 1, having seen 1..3 (not a's update at 5)
//
// Format 3 must hold the same entries and rows with flat contexts: MaxEff
// per entry, tags with the offsets of the entries that wrote them, no
// removed clocks, and each origin's last eff.
func TestFixtureFormat2(t *testing.T) {
	dir := copyDir(t, fixture2Dir)
	if m := marker(t, dir); m != "electric-txlog format 2" {
		t.Errorf("fixture marker = %q; the fixture must stay format 2", m)
	}
	l := openTest(t, dir, Options{})
	if m := string(mustGet(t, l, metaKey)); m != "electric-txlog format 3" {
		t.Errorf("marker after the upgrade = %q", m)
	}
	v := func(kv ...string) map[string]merge.Value {
		m := map[string]merge.Value{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = merge.Value{Text: kv[i+1]}
		}
		return m
	}
	items, other := "public.items", "public.other"
	want := []*txlog.Entry{
		{Offset: 1, Origin: "a", Eff: 1000, CommitTime: 1000, MaxEff: 1000, EchoSafe: true, Changes: []txlog.RowChange{
			{Table: items, Key: "1", Row: v("id", "1", "name", "one")}, {Table: items, Key: "2", Row: v("id", "2", "name", "two")}}},
		{Offset: 2, Origin: "satellite:c1", Eff: 2000, CommitTime: 2000, MaxEff: 2000, EchoSafe: true, Changes: []txlog.RowChange{
			{Table: other, Key: "x", Row: v("id", "x", "name", "ex")}}},
		{Offset: 3, Origin: "b", Eff: 1500, CommitTime: 1500, MaxEff: 2000, Changes: []txlog.RowChange{
			{Table: items, Key: "1", Row: v("id", "1", "name", "uno")}}},
		{Offset: 4, Origin: "b", Eff: 3000, CommitTime: 3000, MaxEff: 3000, EchoSafe: true, Changes: []txlog.RowChange{
			{Table: items, Key: "2", Deleted: true, Row: v("id", "2", "name", "two")}}},
		{Offset: 5, Origin: "a", Eff: 1001, CommitTime: 900, MaxEff: 3000, Changes: []txlog.RowChange{
			{Table: items, Key: "1", Row: v("id", "1", "name", "uno", "note", "n")}}},
		{Offset: 6, Origin: "satellite:c1", Eff: 4000, CommitTime: 4000, MaxEff: 4000, Changes: []txlog.RowChange{
			{Table: items, Key: "1", Row: v("id", "1", "name", "uno", "note", "n")}}},
	}
	if l.Head() != 6 {
		t.Fatalf("head = %d", l.Head())
	}
	for _, w := range want {
		if got, err := l.Entry(w.Offset); err != nil || !reflect.DeepEqual(got, w) {
			t.Errorf("entry %d = %+v, %v\nwant %+v", w.Offset, got, err, w)
		}
	}
	cell := func(val string, eff uint64, origin string, offset uint64) merge.Cell {
		return merge.Cell{Value: merge.Value{Text: val}, Eff: eff, Origin: origin, Offset: offset}
	}
	rows := map[[2]string]*merge.Row{
		{items, "1"}: {Cells: map[string]merge.Cell{"id": cell("1", 1000, "a", 1), "name": cell("uno", 1500, "b", 3), "note": cell("n", 1001, "a", 5)},
			Tags: []merge.Tag{{Origin: "a", Eff: 1001, Offset: 5}}},
		{items, "2"}: {Cells: map[string]merge.Cell{"id": cell("2", 1000, "a", 1), "name": cell("two", 1000, "a", 1)}},
		{other, "x"}: {Cells: map[string]merge.Cell{"id": cell("x", 2000, "satellite:c1", 2), "name": cell("ex", 2000, "satellite:c1", 2)},
			Tags: []merge.Tag{{Origin: "satellite:c1", Eff: 2000, Offset: 2}}},
	}
	for k, w := range rows {
		if got, err := l.Row(k[0], k[1]); err != nil || !reflect.DeepEqual(got, w) {
			t.Errorf("row %v = %+v, %v\nwant %+v", k, got, err, w)
		}
	}
	for src, pos := range map[string]string{"a": "a-2", "b": "b-2", "satellite:c1": "c1-2"} {
		if got, err := l.Position(src); err != nil || string(got) != pos {
			t.Errorf("position %s = %q, %v", src, got, err)
		}
	}
	checkOriginEffs(t, l, map[string]uint64{"a": 1001, "b": 3000, "satellite:c1": 4000, "nobody": 0})

	// The mapped offsets decide as the clocks did: a delete by b that had
	// seen the log up to 4 has not seen a's update at 5 (items 1 stays
	// live); one that had seen 5 has.
	for _, tc := range []struct {
		ctx  uint64
		live bool
	}{{4, true}, {5, false}} {
		res, err := merge.Apply(l, 3000, merge.Tx{Origin: "b", CommitTime: 5000, Offset: 7, Context: tc.ctx, ContextEff: 3000,
			Ops: []merge.Op{{Kind: merge.OpDelete, Table: items, Key: "1"}}})
		if err != nil || len(res.Changes) != 1 || res.Changes[0].Live != tc.live {
			t.Errorf("delete with context %d: %+v, %v; want live %v", tc.ctx, res.Changes, err, tc.live)
		}
	}
}

func mustGet(t *testing.T, l *Log, k []byte) []byte {
	t.Helper()
	v, err := l.get(k)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
