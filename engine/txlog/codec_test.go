package txlog

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/electric-sql/electric-go/engine/merge"
)

// testEntry builds entry off with n changed rows of table "public.items".
func testEntry(off uint64, n int) *Entry {
	e := &Entry{
		Offset:     off,
		Origin:     "a",
		Eff:        1000 + off,
		CommitTime: 900 + off,
		Clock:      merge.Clock{"a": 1000 + off, "b": 7},
	}
	for i := 0; i < n; i++ {
		e.Changes = append(e.Changes, RowChange{
			Table: "public.items",
			Key:   fmt.Sprintf("k%d-%d", off, i),
			Row: map[string]merge.Value{
				"id":    {Text: fmt.Sprintf("%d-%d", off, i)},
				"name":  {Text: ""},
				"notes": {Null: true},
			},
		})
	}
	return e
}

func TestCodecRoundTrip(t *testing.T) {
	entries := []*Entry{
		testEntry(1, 3),
		{Offset: 2, Origin: "satellite:x", Clock: merge.Clock{}}, // a decoded Clock is never nil
		{Offset: 3, Origin: "", Clock: merge.Clock{}, Changes: []RowChange{{Table: "t", Key: "", Deleted: true}}},
		{Offset: 1 << 60, Eff: 1<<64 - 1, Clock: merge.Clock{"a": 1}, Changes: []RowChange{{Table: "t", Key: "\x00\xff", Deleted: true, Row: map[string]merge.Value{"x": {Text: "é\x00"}}}}},
	}
	for _, e := range entries {
		got, err := DecodeEntry(AppendEntry(nil, e))
		if err != nil {
			t.Fatalf("decode %+v: %v", e, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("entry round trip:\n got %+v\nwant %+v", got, e)
		}
	}
}

// Every truncation and a few bit flips of a record must give an error or a
// value, never a panic or a huge allocation.
func TestCodecCorrupt(t *testing.T) {
	eb := AppendEntry(nil, testEntry(9, 4))
	for i := 0; i < len(eb); i++ {
		if _, err := DecodeEntry(eb[:i]); err == nil {
			t.Errorf("entry truncated to %d bytes decoded without error", i)
		}
	}
	for i := 0; i < len(eb); i++ {
		c := append([]byte(nil), eb...)
		c[i] ^= 0xff
		_, _ = DecodeEntry(c)
	}
	if _, err := DecodeEntry(append(eb, 0)); err == nil || !strings.Contains(err.Error(), "trailing") {
		t.Errorf("trailing byte: err = %v", err)
	}
	if _, err := DecodeEntry([]byte{99}); err == nil || !strings.Contains(err.Error(), "unknown format") {
		t.Errorf("unknown format: err = %v", err)
	}
}
