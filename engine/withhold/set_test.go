package withhold

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func rec(conn, table, key string, off uint64) Record {
	return Record{Connector: conn, Table: table, Key: key, Offset: off, Error: "boom (SQLSTATE 23514)", Time: time.Unix(1, 0).UTC()}
}

// Held: the version withheld and older ones are held; a later version is
// sent and removes the record; other connectors and rows are untouched.
func TestHeld(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Add(rec("b", "public.t", "1", 5)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		conn, table, key string
		off              uint64
		held             bool
	}{
		{"b", "public.t", "1", 4, true},
		{"b", "public.t", "1", 5, true},
		{"a", "public.t", "1", 5, false},
		{"b", "public.t", "2", 5, false},
		{"b", "public.u", "1", 5, false},
	} {
		if got := s.Held(tc.conn, tc.table, tc.key, tc.off); got != tc.held {
			t.Errorf("Held(%s, %s, %s, %d) = %v, want %v", tc.conn, tc.table, tc.key, tc.off, got, tc.held)
		}
	}
	if !s.Withholds("b", "public.t", "1", 5) || s.Withholds("b", "public.t", "1", 6) || s.Count("b") != 1 {
		t.Fatalf("Withholds must not change the set")
	}
	if s.Held("b", "public.t", "1", 6) {
		t.Fatal("a later version is held")
	}
	if s.Count("b") != 0 || s.HeldAny("b", "public.t", "1") || s.Held("b", "public.t", "1", 5) {
		t.Fatalf("the record is left after a later version was sent: %+v", s.List(""))
	}
}

// The set survives a reopen, binary keys included; Remove leaves a record
// replaced meanwhile (another offset) in place.
func TestDurableAndRemove(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	bin := "a\x00\x01\xff"
	skip := Record{Connector: "b", Offset: 9, Skipped: true, Error: "skipped"}
	if err := s.Add(rec("b", "public.t", bin, 3), rec("b", "public.t", "2", 4), skip); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := s2.List("b")
	if len(got) != 3 || got[0].Key != bin || got[1].Key != "2" || !got[2].Skipped || s2.Count("b") != 2 {
		t.Fatalf("reopened: %+v (count %d)", got, s2.Count("b"))
	}
	if err := s2.Remove(rec("b", "public.t", "2", 3)); err != nil || s2.Count("b") != 2 {
		t.Fatalf("Remove of another offset removed the record (err %v)", err)
	}
	if err := s2.Remove(rec("b", "public.t", "2", 4), rec("b", "public.t", bin, 3)); err != nil || s2.Count("b") != 0 {
		t.Fatalf("Remove: count %d, err %v", s2.Count("b"), err)
	}
	s3, err := Open(dir)
	if err != nil || len(s3.List("")) != 1 {
		t.Fatalf("after removing: %+v, %v; want the skip only", s3.List(""), err)
	}
}

// A corrupt file is a clear error, not an empty set.
func TestCorruptFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, File), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil {
		t.Fatal("Open of a corrupt withheld set succeeded")
	}
}

// An error from a peer is bounded; a key is shown readably.
func TestBoundAndKeyText(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := rec("b", "public.t", "1\x00\x01\x00\x02", 1)
	r.Error = string(make([]byte, 10*MaxErrorBytes))
	if err := s.Add(r); err != nil {
		t.Fatal(err)
	}
	got := s.List("b")[0]
	if len(got.Error) > MaxErrorBytes+len("…") || got.KeyText != "1, NULL" {
		t.Fatalf("record: error %d bytes, key %q", len(got.Error), got.KeyText)
	}
}
