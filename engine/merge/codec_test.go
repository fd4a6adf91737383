package merge

import (
	"bytes"
	"errors"
	"maps"
	"math/rand/v2"
	"reflect"
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
		Tags:    []Tag{{Origin: "pg_b", Eff: 1700000000000500}, {Origin: "pg_a", Eff: 1700000000000001}},
		Removed: Clock{"pg_a": 1700000000000000, "satellite:y": 3},
	}
}

func rowsEqual(a, b *Row) bool {
	if len(a.Cells) != len(b.Cells) || !maps.Equal(a.Cells, b.Cells) || len(a.Removed) != len(b.Removed) || !maps.Equal(a.Removed, b.Removed) {
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
	rows := []*Row{sampleRow(), {}, {Cells: map[string]Cell{"": {Value: null}}}, {Tags: []Tag{{Origin: "", Eff: ^uint64(0)}}}}
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
		r.Cells[string(rune('a'+rng.IntN(26)))+"col"] = Cell{Value: v, Eff: rng.Uint64() >> rng.IntN(64), Origin: origins[rng.IntN(len(origins))]}
	}
	seen := map[string]bool{}
	for range rng.IntN(4) {
		o := origins[rng.IntN(len(origins))]
		if !seen[o] {
			seen[o] = true
			r.Tags = append(r.Tags, Tag{Origin: o, Eff: rng.Uint64()})
		}
	}
	if rng.IntN(2) == 0 {
		r.Removed = Clock{}
		for range 1 + rng.IntN(3) {
			r.Removed[origins[rng.IntN(len(origins))]] = rng.Uint64()
		}
	}
	return r
}

func FuzzUnmarshalRow(f *testing.F) {
	f.Add(MarshalRow(sampleRow()))
	f.Add([]byte{1, 0, 0, 0, 0})
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
