package pebblelog

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// The state directories in testdata/state-format1 and state-format2 were
// written by the engines of formats 1 and 2; opening a copy of each proves
// that a state directory written by an older binary still opens after the
// upgrade (to format 3). They cannot be written again by this code: never
// regenerate them.
const (
	fixtureDir  = "../testdata/state-format1"
	fixture2Dir = "../testdata/state-format2"
)

// fixtureBatches is what the format 1 fixture holds, as format 3 reads it:
// three commits with entries (one echo-safe, one with a delete), row states
// (one deleted outright, one a tombstone: a merged row without live tags)
// and positions. Its tags got the offsets of the entries that wrote them,
// its entries MaxEff, and the tombstone lost its removed clock.
func fixtureBatches() []*txlog.Batch {
	// row: cells written by the entry at wrote, and its live tag unless dead.
	row := func(id, name string, eff uint64, origin string, wrote uint64, dead bool) *merge.Row {
		r := &merge.Row{
			Cells: map[string]merge.Cell{
				"id":   {Value: merge.Value{Text: id}, Eff: eff, Origin: origin, Offset: wrote},
				"name": {Value: merge.Value{Text: name}, Eff: eff, Origin: origin, Offset: wrote},
				"note": {Value: merge.Value{Null: true}, Eff: eff, Origin: origin, Offset: wrote},
			},
		}
		if !dead {
			r.Tags = []merge.Tag{{Origin: origin, Eff: eff, Offset: wrote}}
		}
		return r
	}
	img := func(id, name string) map[string]merge.Value {
		return map[string]merge.Value{"id": {Text: id}, "name": {Text: name}, "note": {Null: true}}
	}
	b1 := &txlog.Batch{}
	b1.Append(&txlog.Entry{
		Offset: 1, Origin: "a", Eff: 1001, CommitTime: 1000, MaxEff: 1001,
		Changes: []txlog.RowChange{
			{Table: "public.items", Key: "1", Row: img("1", "one")},
			{Table: "public.items", Key: "2", Row: img("2", "two")},
		},
	})
	b1.SetRow("public.items", "1", row("1", "one", 1001, "a", 1, false))
	b1.SetRow("public.items", "2", row("2", "two", 1001, "a", 1, false))
	b1.SetPosition("a", []byte{0, 0, 0, 0, 0, 0, 0x10, 0})

	b2 := &txlog.Batch{}
	b2.Append(&txlog.Entry{
		Offset: 2, Origin: "satellite:c1", Eff: 2002, CommitTime: 2000, MaxEff: 2002,
		Changes:  []txlog.RowChange{{Table: "public.other", Key: "x", Row: img("x", "ex")}},
		EchoSafe: true,
	})
	b2.SetRow("public.other", "x", row("x", "ex", 2002, "satellite:c1", 2, false))
	b2.SetPosition("satellite:c1", []byte("lsn-7"))

	b3 := &txlog.Batch{}
	b3.Append(&txlog.Entry{
		Offset: 3, Origin: "b", Eff: 3003, CommitTime: 3000, MaxEff: 3003,
		Changes: []txlog.RowChange{{Table: "public.items", Key: "2", Deleted: true, Row: img("2", "two")}},
	})
	b3.SetRow("public.items", "2", row("2", "two", 3003, "b", 3, true)) // the tombstone
	b3.SetPosition("a", []byte{0, 0, 0, 0, 0, 0, 0x20, 0})
	b3.SetPosition("b", []byte{0, 0, 0, 0, 0, 0, 0x30, 0})
	return []*txlog.Batch{b1, b2, b3}
}

// copyDir copies the fixture so that a test never opens (and so rewrites)
// the committed directory in place.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
	return dst
}

func TestFixtureFormat1(t *testing.T) {
	dir := copyDir(t, fixtureDir)
	if m := marker(t, dir); m != "electric-txlog format 1" {
		t.Errorf("fixture marker = %q; the fixture must stay format 1", m)
	}
	l := openTest(t, dir, Options{})
	checkFixture(t, l)
	if m, _ := l.get(metaKey); !bytes.Equal(m, formatValue(FormatVersion)) {
		t.Errorf("marker after opening the fixture = %q, want format %d", m, FormatVersion)
	}
	checkOriginEffs(t, l, map[string]uint64{"a": 1001, "b": 3003, "satellite:c1": 2002, "nobody": 0})
}

func checkOriginEffs(t *testing.T, l *Log, want map[string]uint64) {
	t.Helper()
	for o, e := range want {
		if got, err := l.OriginEff(o); got != e || err != nil {
			t.Errorf("OriginEff(%q) = %d, %v; want %d", o, got, err, e)
		}
	}
}

// openFormat1 opens (or creates) dir as the format 1 binary did: the
// records are the same, only the marker and the timestamps' bounds differ.
func openFormat1(t *testing.T, dir string) *Log {
	t.Helper()
	st, err := openPebble(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	l, err := openWith(dir, st, formats{current: 1, steps: map[int]upgradeStep{}}, Options{})
	if err != nil {
		_ = st.close()
		t.Fatal(err)
	}
	return l
}

// checkFixture checks that l holds exactly what fixtureBatches wrote.
func checkFixture(t *testing.T, l *Log) {
	t.Helper()
	bs := fixtureBatches()
	if l.Head() != 3 {
		t.Fatalf("head = %d, want 3", l.Head())
	}
	rd := l.NewReader(0)
	defer rd.Close()
	for i, b := range bs {
		want := b.Entries[0]
		got, err := l.Entry(want.Offset)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("entry %d = %+v, %v; want %+v", want.Offset, got, err, want)
		}
		got, err = rd.Next(context.Background())
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("reader entry %d = %+v, %v", i+1, got, err)
		}
	}
	rows := map[string]*merge.Row{}
	for _, b := range bs {
		for _, r := range b.Rows {
			rows[r.Table+"/"+r.Key] = r.Row
		}
	}
	for _, tk := range []struct{ table, key string }{
		{"public.items", "1"}, {"public.items", "2"}, {"public.other", "x"}, {"public.other", "gone"},
	} {
		got, err := l.Row(tk.table, tk.key)
		want := rows[tk.table+"/"+tk.key]
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("row %s %s = %+v, %v; want %+v", tk.table, tk.key, got, err, want)
		}
	}
	if keys, err := l.Keys("public.items"); err != nil || !reflect.DeepEqual(keys, []string{"1", "2"}) {
		t.Errorf("keys of public.items = %q, %v", keys, err)
	}
	if keys, err := l.Keys("public.other"); err != nil || !reflect.DeepEqual(keys, []string{"x"}) {
		t.Errorf("keys of public.other = %q, %v", keys, err)
	}
	for src, want := range map[string][]byte{
		"a":            {0, 0, 0, 0, 0, 0, 0x20, 0},
		"b":            {0, 0, 0, 0, 0, 0, 0x30, 0},
		"satellite:c1": []byte("lsn-7"),
		"nobody":       nil,
	} {
		if got, err := l.Position(src); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("position %s = %q, %v; want %q", src, got, err, want)
		}
	}
}
