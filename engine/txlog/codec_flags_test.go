package txlog

import (
	"reflect"
	"strings"
	"testing"

	"github.com/electric-sql/electric-go/engine/merge"
)

// EchoSafe round-trips; an entry without flags keeps the format 1 bytes that
// older binaries wrote, and such records decode with EchoSafe false.
func TestCodecEchoSafe(t *testing.T) {
	e := &Entry{Offset: 5, Origin: "a", Eff: 1005, CommitTime: 905, Clock: merge.Clock{"a": 1005},
		Changes: []RowChange{{Table: "public.items", Key: "k", Row: map[string]merge.Value{"id": {Text: "1"}}}}}
	e.EchoSafe = true
	b := AppendEntry(nil, e)
	if b[0] != entryFormatFlags {
		t.Fatalf("format byte = %d, want %d", b[0], entryFormatFlags)
	}
	got, err := DecodeEntry(b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, e)
	}
	for i := 0; i < len(b); i++ {
		if _, err := DecodeEntry(b[:i]); err == nil {
			t.Errorf("flagged entry truncated to %d bytes decoded without error", i)
		}
	}
	bad := append([]byte(nil), b...)
	bad[len(bad)-1] = 0x80
	if _, err := DecodeEntry(bad); err == nil || !strings.Contains(err.Error(), "flags") {
		t.Errorf("unknown flag: err = %v", err)
	}

	old := &Entry{Offset: 7, Origin: "pg", Eff: 3, Clock: merge.Clock{"pg": 3},
		Changes: []RowChange{{Table: "public.t", Key: "k", Row: map[string]merge.Value{"id": {Text: "1"}}}}}
	ob := AppendEntry(nil, old)
	if ob[0] != entryFormat {
		t.Fatalf("unflagged format byte = %d, want %d", ob[0], entryFormat)
	}
	og, err := DecodeEntry(ob)
	if err != nil {
		t.Fatalf("decode format 1: %v", err)
	}
	if og.EchoSafe || !reflect.DeepEqual(og, old) {
		t.Errorf("format 1 round trip:\n got %+v\nwant %+v", og, old)
	}
}
