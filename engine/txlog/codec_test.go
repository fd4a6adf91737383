package txlog_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/engine/txlog/logtest"
)

func TestCodecRoundTrip(t *testing.T) {
	entries := []*txlog.Entry{
		logtest.Entry(1, 3),
		{Offset: 2, Origin: "satellite:x"},
		{Offset: 3, Origin: "", MaxEff: 5, Changes: []txlog.RowChange{{Table: "t", Key: "", Deleted: true}}},
		{Offset: 1 << 60, Eff: 1<<64 - 1, MaxEff: 1<<64 - 1, Changes: []txlog.RowChange{{Table: "t", Key: "\x00\xff", Deleted: true, Row: map[string]merge.Value{"x": {Text: "é\x00"}}}}},
	}
	for _, e := range entries {
		got, err := txlog.DecodeEntry(txlog.AppendEntry(nil, e))
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
	eb := txlog.AppendEntry(nil, logtest.Entry(9, 4))
	for i := 0; i < len(eb); i++ {
		if _, err := txlog.DecodeEntry(eb[:i]); err == nil {
			t.Errorf("entry truncated to %d bytes decoded without error", i)
		}
	}
	for i := 0; i < len(eb); i++ {
		c := append([]byte(nil), eb...)
		c[i] ^= 0xff
		_, _ = txlog.DecodeEntry(c)
	}
	if _, err := txlog.DecodeEntry(append(eb, 0)); err == nil || !strings.Contains(err.Error(), "trailing") {
		t.Errorf("trailing byte: err = %v", err)
	}
	if _, err := txlog.DecodeEntry([]byte{99}); err == nil || !strings.Contains(err.Error(), "unknown format") {
		t.Errorf("unknown format: err = %v", err)
	}
}
