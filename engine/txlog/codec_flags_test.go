package txlog

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	"github.com/electric-sql/electric-go/engine/merge"
)

// EchoSafe and MaxEff round-trip; a bad flag is refused.
func TestCodecEchoSafe(t *testing.T) {
	e := &Entry{Offset: 5, Origin: "a", Eff: 1005, CommitTime: 905, MaxEff: 2000,
		Changes: []RowChange{{Table: "public.items", Key: "k", Row: map[string]merge.Value{"id": {Text: "1"}}}}}
	e.EchoSafe = true
	b := AppendEntry(nil, e)
	if b[0] != entryFormat {
		t.Fatalf("format byte = %d, want %d", b[0], entryFormat)
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
			t.Errorf("entry truncated to %d bytes decoded without error", i)
		}
	}
	bad := append([]byte(nil), b...)
	bad[len(bad)-1] = 0x80
	if _, err := DecodeEntry(bad); err == nil || !strings.Contains(err.Error(), "flags") {
		t.Errorf("unknown flag: err = %v", err)
	}
}

// appendLegacyEntry writes e as txlog format 2 and before did: format 1
// without flags, format 2 with a flags byte, and a per-origin clock where
// MaxEff is now.
func appendLegacyEntry(b []byte, e *Entry, clock map[string]uint64) []byte {
	if e.EchoSafe {
		b = append(b, entryFormatFlags)
	} else {
		b = append(b, entryFormat1)
	}
	b = binary.AppendUvarint(b, e.Offset)
	b = appendString(b, e.Origin)
	b = binary.AppendUvarint(b, e.Eff)
	b = binary.AppendUvarint(b, e.CommitTime)
	b = binary.AppendUvarint(b, uint64(len(clock)))
	for o, v := range clock {
		b = appendString(b, o)
		b = binary.AppendUvarint(b, v)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Changes)))
	for _, c := range e.Changes {
		b = appendString(b, c.Table)
		b = appendString(b, c.Key)
		b = append(b, map[bool]byte{false: 0, true: 1}[c.Deleted], 1)
		b = binary.AppendUvarint(b, uint64(len(c.Row)))
		for name, v := range c.Row {
			b = appendString(b, name)
			b = appendValue(b, v)
		}
	}
	if e.EchoSafe {
		b = append(b, flagEchoSafe)
	}
	return b
}

// Entries of formats 1 and 2 are refused by DecodeEntry with a message
// naming the upgrade, and read by DecodeLegacyEntry without their clock.
func TestCodecLegacy(t *testing.T) {
	for _, safe := range []bool{false, true} {
		e := &Entry{Offset: 7, Origin: "pg", Eff: 3, CommitTime: 2, EchoSafe: safe,
			Changes: []RowChange{{Table: "public.t", Key: "k", Row: map[string]merge.Value{"id": {Text: "1"}}}}}
		b := appendLegacyEntry(nil, e, map[string]uint64{"pg": 3, "satellite:x": 9})
		if _, err := DecodeEntry(b); err == nil || !strings.Contains(err.Error(), "upgrade to txlog format 3") {
			t.Errorf("DecodeEntry of format %d: %v", b[0], err)
		}
		got, err := DecodeLegacyEntry(b)
		if err != nil || !reflect.DeepEqual(got, e) {
			t.Errorf("legacy format %d:\n got %+v, %v\nwant %+v", b[0], got, err, e)
		}
		for i := 0; i < len(b); i++ {
			if _, err := DecodeLegacyEntry(b[:i]); err == nil {
				t.Errorf("legacy entry truncated to %d bytes decoded without error", i)
			}
		}
	}
	if _, err := DecodeLegacyEntry(AppendEntry(nil, &Entry{Offset: 1})); err == nil {
		t.Error("DecodeLegacyEntry took a current entry")
	}
}
