package publisher

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/electric-sql/electric-go/engine/merge"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The expected bytes are written out by hand from the pgoutput v1 format
// (protocol-logicalrep-message-formats), then decoded with pglogrepl.
func TestBeginCommitBytes(t *testing.T) {
	ts := time.Date(2023, 1, 2, 3, 4, 5, 6000, time.UTC)
	pgts := ts.UnixMicro() - pgEpochOffset
	b := appendBegin(nil, 0x0000000100020003, pgts, 7)
	want := append(mustHex(t, "42"+"0000000100020003"), be64(uint64(pgts))...)
	want = append(want, 0, 0, 0, 7)
	if !bytes.Equal(b, want) {
		t.Fatalf("begin:\n got %x\nwant %x", b, want)
	}
	m, err := pglogrepl.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	bm := m.(*pglogrepl.BeginMessage)
	if bm.FinalLSN != 0x0000000100020003 || !bm.CommitTime.Equal(ts) || bm.Xid != 7 {
		t.Fatalf("begin decoded as %+v", bm)
	}

	c := appendCommit(nil, 0x10, 0x11, pgts)
	want = append(mustHex(t, "43"+"00"+"0000000000000010"+"0000000000000011"), be64(uint64(pgts))...)
	if !bytes.Equal(c, want) {
		t.Fatalf("commit:\n got %x\nwant %x", c, want)
	}
	m, err = pglogrepl.Parse(c)
	if err != nil {
		t.Fatal(err)
	}
	cm := m.(*pglogrepl.CommitMessage)
	if cm.Flags != 0 || cm.CommitLSN != 0x10 || cm.TransactionEndLSN != 0x11 || !cm.CommitTime.Equal(ts) {
		t.Fatalf("commit decoded as %+v", cm)
	}
}

func be64(v uint64) []byte { return putU64(nil, v) }

func TestRelationBytes(t *testing.T) {
	cols := []relColumn{
		{Name: "id", Key: true, TypeOID: 23, TypeMod: -1},
		{Name: "v", TypeOID: 1043, TypeMod: 24},
	}
	b := appendRelation(nil, 16385, "public", "items", 'd', cols)
	want := mustHex(t, "52"+"00004001"+hex.EncodeToString([]byte("public\x00items\x00"))+"64"+"0002"+
		"01"+hex.EncodeToString([]byte("id\x00"))+"00000017"+"ffffffff"+
		"00"+hex.EncodeToString([]byte("v\x00"))+"00000413"+"00000018")
	if !bytes.Equal(b, want) {
		t.Fatalf("relation:\n got %x\nwant %x", b, want)
	}
	m, err := pglogrepl.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	rm := m.(*pglogrepl.RelationMessage)
	if rm.RelationID != 16385 || rm.Namespace != "public" || rm.RelationName != "items" || rm.ReplicaIdentity != 'd' || rm.ColumnNum != 2 {
		t.Fatalf("relation decoded as %+v", rm)
	}
	for i, c := range cols {
		got := rm.Columns[i]
		wantFlags := uint8(0)
		if c.Key {
			wantFlags = 1
		}
		if got.Name != c.Name || got.Flags != wantFlags || got.DataType != c.TypeOID || got.TypeModifier != c.TypeMod {
			t.Fatalf("column %d decoded as %+v, want %+v", i, got, c)
		}
	}
}

func TestInsertDeleteBytes(t *testing.T) {
	cols := []relColumn{
		{Name: "id", Key: true, TypeOID: 23, TypeMod: -1},
		{Name: "v", TypeOID: 25, TypeMod: -1},
		{Name: "w", TypeOID: 25, TypeMod: -1},
		{Name: "missing", TypeOID: 25, TypeMod: -1},
	}
	r := map[string]merge.Value{"id": {Text: "42"}, "v": {Text: "héllo"}, "w": {Null: true}, "ignored": {Text: "x"}}
	b := appendInsert(nil, 7, cols, r)
	want := mustHex(t, "49"+"00000007"+"4e"+"0004"+
		"74"+"00000002"+hex.EncodeToString([]byte("42"))+
		"74"+"00000006"+hex.EncodeToString([]byte("héllo"))+
		"6e"+"6e")
	if !bytes.Equal(b, want) {
		t.Fatalf("insert:\n got %x\nwant %x", b, want)
	}
	m, err := pglogrepl.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	im := m.(*pglogrepl.InsertMessage)
	if im.RelationID != 7 || im.Tuple == nil || len(im.Tuple.Columns) != 4 {
		t.Fatalf("insert decoded as %+v", im)
	}
	if string(im.Tuple.Columns[1].Data) != "héllo" || im.Tuple.Columns[1].DataType != 't' || im.Tuple.Columns[2].DataType != 'n' {
		t.Fatalf("insert tuple decoded as %+v", im.Tuple.Columns)
	}

	d := appendDelete(nil, 7, cols, r)
	want = mustHex(t, "44"+"00000007"+"4b"+"0004"+"74"+"00000002"+hex.EncodeToString([]byte("42"))+"6e6e6e")
	if !bytes.Equal(d, want) {
		t.Fatalf("delete:\n got %x\nwant %x", d, want)
	}
	m, err = pglogrepl.Parse(d)
	if err != nil {
		t.Fatal(err)
	}
	dm := m.(*pglogrepl.DeleteMessage)
	if dm.RelationID != 7 || dm.OldTupleType != 'K' || string(dm.OldTuple.Columns[0].Data) != "42" || dm.OldTuple.Columns[1].DataType != 'n' {
		t.Fatalf("delete decoded as %+v", dm)
	}
}

func TestXLogDataAndKeepalive(t *testing.T) {
	msg := appendBegin(nil, 5, 0, 1)
	b := appendXLogData(nil, 3, 4, 99, msg)
	x, err := pglogrepl.ParseXLogData(b[1:])
	if err != nil {
		t.Fatal(err)
	}
	if x.WALStart != 3 || x.ServerWALEnd != 4 || !bytes.Equal(x.WALData, msg) {
		t.Fatalf("xlogdata decoded as %+v", x)
	}
	k := appendKeepalive(nil, 0xabc, 99, true)
	if !bytes.Equal(k, mustHex(t, "6b"+"0000000000000abc"+"0000000000000063"+"01")) {
		t.Fatalf("keepalive bytes %x", k)
	}
	pk, err := pglogrepl.ParsePrimaryKeepaliveMessage(k[1:])
	if err != nil {
		t.Fatal(err)
	}
	if pk.ServerWALEnd != 0xabc || !pk.ReplyRequested {
		t.Fatalf("keepalive decoded as %+v", pk)
	}
}

func TestParseStandbyStatus(t *testing.T) {
	b := mustHex(t, "72"+"0000000000000001"+"0000000000000002"+"0000000000000003"+"0000000000000004"+"01")
	ss, ok := parseStandbyStatus(b)
	if !ok || ss.Write != 1 || ss.Flush != 2 || ss.Apply != 3 || ss.Clock != 4 || !ss.Reply {
		t.Fatalf("parsed %+v %v", ss, ok)
	}
	if _, ok := parseStandbyStatus(b[:20]); ok {
		t.Fatal("short status update accepted")
	}
}

func TestNormalizeQuery(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT  a,\n\tb FROM t;\x00":   "SELECT a, b FROM t",
		"SELECT 'a  b' ,  \"x  y\"  ;;": "SELECT 'a  b' , \"x  y\"",
		"   IDENTIFY_SYSTEM   ":         "IDENTIFY_SYSTEM",
		"":                              "",
	} {
		if got := normalizeQuery(in); got != want {
			t.Errorf("normalizeQuery(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseStart(t *testing.T) {
	so, err := parseStart(`START_REPLICATION SLOT "a ""b""" LOGICAL 1/2F (proto_version '1', publication_names '"all_tables"')`)
	if err != nil {
		t.Fatal(err)
	}
	if so.slot != `a "b"` || so.lsn != 1<<32|0x2f || so.options["proto_version"] != "1" || so.options["publication_names"] != `"all_tables"` {
		t.Fatalf("parsed %+v", so)
	}
	for _, bad := range []string{
		"START_REPLICATION SLOT a PHYSICAL 0/0",
		"START_REPLICATION SLOT a LOGICAL 0/0 (proto_version 1)",
		"START_REPLICATION SLOT a LOGICAL zz/0",
	} {
		if _, err := parseStart(bad); err == nil {
			t.Errorf("parseStart(%q) accepted", bad)
		}
	}
}
