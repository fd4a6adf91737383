package merge

import (
	"bytes"
	"errors"
	"maps"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func sampleRow() *Row {
	return &Row{
		Cells: map[string]Cell{
			"id":      {Value: txt("42"), Eff: 1700000000000001, Origin: "pg_a"},
			"content": {Value: txt("Hello from b"), Eff: 1700000000000500, Origin: "pg_b"},
			"note":    {Value: null, Eff: 1700000000000001, Origin: "pg_a"},
			"empty":   {Value: txt(""), Eff: 0, Origin: "satellite:x"},
		},
		Tags: []Tag{{Origin: "pg_b", Eff: 1700000000000500, Offset: 7}, {Origin: "pg_a", Eff: 1700000000000001, Offset: 1}},
	}
}

func rowsEqual(a, b *Row) bool {
	if len(a.Cells) != len(b.Cells) || !maps.Equal(a.Cells, b.Cells) {
		return false
	}
	at, bt := map[Tag]bool{}, map[Tag]bool{}
	for _, t := range a.Tags {
		at[t] = true
	}
	for _, t := range b.Tags {
		bt[t] = true
	}
	return len(a.Tags) == len(b.Tags) && maps.Equal(at, bt)
}

func TestRowCodecRoundTrip(t *testing.T) {
	rows := []*Row{sampleRow(), {}, {Cells: map[string]Cell{"": {Value: null}}}, {Tags: []Tag{{Origin: "", Eff: ^uint64(0), Offset: ^uint64(0)}}}}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		rows = append(rows, randomRow(rng))
	}
	for _, r := range rows {
		b := MarshalRow(r)
		got, err := UnmarshalRow(b)
		if err != nil {
			t.Fatalf("unmarshal %+v: %v", r, err)
		}
		if !rowsEqual(r, got) {
			t.Fatalf("round trip: got %+v, want %+v", got, r)
		}
		if again := MarshalRow(got); !bytes.Equal(again, b) {
			t.Fatalf("encoding not deterministic: %x vs %x", again, b)
		}
		// Every strict prefix is rejected, never a panic.
		for i := range len(b) {
			if _, err := UnmarshalRow(b[:i]); !errors.Is(err, ErrBadRow) {
				t.Fatalf("prefix %d of %x: err = %v", i, b, err)
			}
		}
	}
	if _, err := UnmarshalRow(append(MarshalRow(sampleRow()), 0)); !errors.Is(err, ErrBadRow) {
		t.Fatalf("trailing byte accepted: %v", err)
	}
}

func TestMarshalNilRow(t *testing.T) {
	got, err := UnmarshalRow(MarshalRow(nil))
	if err != nil || !reflect.DeepEqual(got, &Row{Cells: map[string]Cell{}}) {
		t.Fatalf("nil row: %+v, %v", got, err)
	}
}

func randomRow(rng *rand.Rand) *Row {
	origins := []string{"a", "b", "satellite:c", ""}
	r := &Row{Cells: map[string]Cell{}}
	for range rng.IntN(30) {
		v := txt(string(rune('a' + rng.IntN(26))))
		if rng.IntN(4) == 0 {
			v = null
		}
		r.Cells[string(rune('a'+rng.IntN(26)))+"col"] = Cell{Value: v, Eff: rng.Uint64() >> rng.IntN(64), Origin: origins[rng.IntN(len(origins))], Offset: rng.Uint64() >> rng.IntN(64)}
	}
	seen := map[string]bool{}
	for range rng.IntN(4) {
		o := origins[rng.IntN(len(origins))]
		if !seen[o] {
			seen[o] = true
			r.Tags = append(r.Tags, Tag{Origin: o, Eff: rng.Uint64(), Offset: rng.Uint64() >> rng.IntN(64)})
		}
	}
	return r
}

// A row state of codec 1 (txlog format 2) is refused by UnmarshalRow with
// a message naming the upgrade, and read by UnmarshalLegacyRow: tags
// without offsets, the removed clock dropped.
func TestLegacyRow(t *testing.T) {
	// origins a, b; cell x = 'v' (eff 5, origin a); tag (b, 9); removed {a: 4}
	v1 := []byte{1, 2, 1, 'a', 1, 'b', 1, 1, 'x', 0, 1, 'v', 5, 0, 1, 1, 9, 1, 0, 4}
	if _, err := UnmarshalRow(v1); !errors.Is(err, ErrBadRow) || !strings.Contains(err.Error(), "format 3") {
		t.Fatalf("UnmarshalRow of codec 1: %v", err)
	}
	r, err := UnmarshalLegacyRow(v1)
	want := &Row{Cells: map[string]Cell{"x": {Value: txt("v"), Eff: 5, Origin: "a"}}, Tags: []Tag{{Origin: "b", Eff: 9}}}
	if err != nil || !reflect.DeepEqual(r, want) {
		t.Fatalf("legacy row = %+v, %v", r, err)
	}
	for i := range len(v1) {
		if _, err := UnmarshalLegacyRow(v1[:i]); !errors.Is(err, ErrBadRow) {
			t.Fatalf("prefix %d: %v", i, err)
		}
	}
	if _, err := UnmarshalLegacyRow(MarshalRow(sampleRow())); !errors.Is(err, ErrBadRow) {
		t.Fatalf("UnmarshalLegacyRow of codec 2: %v", err)
	}
}

func FuzzUnmarshalRow(f *testing.F) {
	f.Add(MarshalRow(sampleRow()))
	f.Add([]byte{2, 0, 0, 0})
	f.Add([]byte{2, 1, 1, 'a', 1, 1, 'x', 1, 5, 0, 7, 1, 0, 5, 7})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := UnmarshalRow(b)
		if err != nil {
			return
		}
		back, err := UnmarshalRow(MarshalRow(r))
		if err != nil || !rowsEqual(r, back) {
			t.Fatalf("re-encoding of %x: %+v, %v", b, back, err)
		}
	})
}
