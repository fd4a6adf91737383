package satellite

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/satellite/satpb"
	"github.com/electric-sql/electric-go/internal/fuzzseed"
)

// frameSeeds are real frames: the ones captured from electric-sql@0.4.3
// (satpb/frame_test.go), frames the test client sends, and hostile length
// prefixes.
func frameSeeds(t testing.TB) []fuzzseed.Seed {
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	enc := func(m proto.Message) []byte {
		b, err := satpb.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	seed := func(name string, frame []byte) fuzzseed.Seed { return fuzzseed.Seed{Name: name, Args: []any{frame}} }
	return []fuzzseed.Seed{
		seed("client-auth", enc(authReq("0f8fad5b-d9cb-469f-a165-70867728950e", "test-token"))),
		seed("client-start-fresh", unhex("05 12 01 03")),
		seed("client-start-resume", unhex("05 0a08 0000000000000005 1200")),
		seed("client-ping-resp-lsn", unhex("04 0a08 0000000000000005")),
		seed("client-ping-resp-empty-lsn", unhex("04 0a00")),
		seed("client-start-resp", unhex("06")),
		seed("error-invalid-request", unhex("00 0804")),
		seed("client-oplog-0.4.3", unhex("09 0a0f 0a0d 08 b0c7c5e4de30 1a04 00000001"+
			"0a1c 22 1a 1a18 0a01 20 1203 612d31 120c"+hex.EncodeToString([]byte("hello from A"))+"1200"+
			"0a02 1200")),
		seed("client-relation", enc(clientItems)),
		seed("client-oplog-update-delete", enc(oplog(begin(be32(7), 1700000000000),
			insert(0, txt("a"), txt("b"), null),
			&satpb.SatTransOp{Op: &satpb.SatTransOp_Update{Update: &satpb.SatOpUpdate{RelationId: 0,
				RowData: encodeRow([]merge.Value{txt("a"), txt("c"), txt("")})}}},
			del(0, txt("a"), txt("c"), txt("")),
			commit()))),
		seed("server-migration-notification", enc(&satpb.SatMigrationNotification{NewSchemaVersion: "2", NewSchemaHash: "x"})),
		// A bytes field whose length prefix claims 2^63 bytes, and a
		// repeated message field claiming 4 GiB: neither may be trusted.
		seed("hostile-length-bytes", unhex("04 0a ffffffffffffffff7f 00")),
		seed("hostile-length-nested", unhex("09 0a ffffffff0f 0a")),
	}
}

// FuzzDecodeFrame: any bytes decode to a message or an error; a decoded
// frame re-encodes to a frame that decodes to the same message; its size
// is bounded by the input's (no amplification from length prefixes); the
// lsn and row codecs on what a client sends round-trip.
func FuzzDecodeFrame(f *testing.F) {
	seeds := frameSeeds(f)
	fuzzseed.Sync(f, seeds)
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := satpb.Decode(frame)
		if err != nil {
			if m != nil {
				t.Fatalf("error %v with a message %v", err, m)
			}
			if len(frame) == 0 && !errors.Is(err, satpb.ErrEmptyFrame) {
				t.Fatalf("empty frame: %v", err)
			}
			if len(frame) > 0 && satpb.MsgType(frame[0]).New() == nil && !errors.Is(err, satpb.ErrUnknownType) {
				t.Fatalf("type %d: %v", frame[0], err)
			}
			return
		}
		if typ, ok := satpb.TypeOf(m); !ok || byte(typ) != frame[0] {
			t.Fatalf("frame of type %d decoded as %T", frame[0], m)
		}
		// Re-encoding can grow a field (a negative int32 sent in 5 bytes is
		// written in 10) but never by more than a constant factor.
		if n := proto.Size(m); n > 2*len(frame)+16 {
			t.Fatalf("%d-byte frame decoded to a %d-byte message", len(frame), n)
		}
		again, err := satpb.Encode(m)
		if err != nil {
			t.Fatalf("re-encoding %T: %v", m, err)
		}
		back, err := satpb.Decode(again)
		if err != nil {
			t.Fatalf("decoding the re-encoded frame %x: %v", again, err)
		}
		if !proto.Equal(m, back) {
			t.Fatalf("round trip changed the message:\n%v\n%v", m, back)
		}
		if third, err := satpb.Encode(back); err != nil || !bytes.Equal(third, again) {
			t.Fatalf("encoding is not stable: %x then %x (%v)", again, third, err)
		}
		checkCodecs(t, m)
	})
}

// checkCodecs runs the session's lsn and row codecs on a decoded message.
func checkCodecs(t *testing.T, m proto.Message) {
	lsnRoundTrip := func(lsn []byte) {
		off, err := OffsetOfServerLSN(lsn)
		if (err == nil) != (len(lsn) == 8) {
			t.Fatalf("lsn %x: %v", lsn, err)
		}
		if err == nil && !bytes.Equal(ServerLSN(off), lsn) {
			t.Fatalf("lsn %x decoded as %d", lsn, off)
		}
		if c := compareClientLSN(lsn, lsn); c != 0 {
			t.Fatalf("lsn %x compares %d to itself", lsn, c)
		}
	}
	switch m := m.(type) {
	case *satpb.SatPingResp:
		lsnRoundTrip(m.Lsn)
	case *satpb.SatInStartReplicationReq:
		lsnRoundTrip(m.Lsn)
	case *satpb.SatOpLog:
		for _, op := range m.Ops {
			var rows []*satpb.SatOpRow
			switch o := op.Op.(type) {
			case *satpb.SatTransOp_Begin:
				lsnRoundTrip(o.Begin.Lsn)
			case *satpb.SatTransOp_Insert:
				rows = append(rows, o.Insert.RowData)
			case *satpb.SatTransOp_Update:
				rows = append(rows, o.Update.RowData, o.Update.OldRowData)
			case *satpb.SatTransOp_Delete:
				rows = append(rows, o.Delete.OldRowData)
			}
			for _, row := range rows {
				checkRow(t, row)
			}
		}
	}
}

// checkRow: a row that decodes re-encodes to the same values, and to a
// minimal bitmask that agrees with the original on every column.
func checkRow(t *testing.T, row *satpb.SatOpRow) {
	n := len(row.GetValues())
	vals, err := decodeRow(row, n)
	if err != nil {
		if row != nil && len(row.NullsBitmask)*8 >= n {
			t.Fatalf("row of %d values with a %d-byte bitmask refused: %v", n, len(row.NullsBitmask), err)
		}
		return
	}
	enc := encodeRow(vals)
	if len(enc.NullsBitmask) != (n+7)/8 {
		t.Fatalf("%d columns encoded with a %d-byte bitmask", n, len(enc.NullsBitmask))
	}
	back, err := decodeRow(enc, n)
	if err != nil {
		t.Fatalf("re-encoded row refused: %v", err)
	}
	for i := range vals {
		if vals[i] != back[i] {
			t.Fatalf("column %d: %+v became %+v", i, vals[i], back[i])
		}
	}
}
