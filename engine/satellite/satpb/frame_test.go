package satpb

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

func unhex(t *testing.T, parts ...string) []byte {
	t.Helper()
	var b []byte
	for _, p := range parts {
		x, err := hex.DecodeString(strings.ReplaceAll(p, " ", ""))
		if err != nil {
			t.Fatalf("bad hex %q: %v", p, err)
		}
		b = append(b, x...)
	}
	return b
}

// Frames captured from electric-sql@0.4.3 (satellite-client-notes.md §3.3).
func TestClientFramesByteExact(t *testing.T) {
	uuid := "0f8fad5b-d9cb-469f-a165-70867728950e"
	five := unhex(t, "0000000000000005")
	cases := []struct {
		name  string
		frame []byte
		msg   proto.Message
	}{
		{
			name: "auth",
			frame: append(append(unhex(t, "01 0a24"), uuid...),
				append(append(unhex(t, "120a"), "test-token"...),
					append(unhex(t, "1a1b 0801 1217"), "Electric.Satellite.v0_2"...)...)...),
			msg: &SatAuthReq{Id: uuid, Token: "test-token", Headers: []*SatAuthHeaderPair{
				{Key: SatAuthHeader_PROTO_VERSION, Value: ProtocolVersion}}},
		},
		{
			name:  "start fresh",
			frame: unhex(t, "05 12 01 03"),
			msg: &SatInStartReplicationReq{Options: []SatInStartReplicationReq_Option{
				SatInStartReplicationReq_FIRST_LSN}},
		},
		{
			name:  "ping resp with lsn",
			frame: unhex(t, "04 0a08 0000000000000005"),
			msg:   &SatPingResp{Lsn: five},
		},
		{
			name:  "ping resp without lsn",
			frame: unhex(t, "04"),
			msg:   &SatPingResp{},
		},
		{
			name:  "ping resp with present empty lsn",
			frame: unhex(t, "04 0a00"),
			msg:   &SatPingResp{Lsn: []byte{}},
		},
		{
			name:  "start resp",
			frame: unhex(t, "06"),
			msg:   &SatInStartReplicationResp{},
		},
		{
			name:  "error internal is an empty body",
			frame: unhex(t, "00"),
			msg:   &SatErrorResp{},
		},
		{
			name:  "error invalid request",
			frame: unhex(t, "00 0804"),
			msg:   &SatErrorResp{ErrorType: SatErrorResp_INVALID_REQUEST},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Encode(c.msg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.frame) {
				t.Fatalf("encode: got %x want %x", got, c.frame)
			}
			back, err := Decode(c.frame)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(back, c.msg) {
				t.Fatalf("decode: got %v want %v", back, c.msg)
			}
		})
	}
}

func TestPingRespLsnPresence(t *testing.T) {
	// 0.4.3 crashes on a present-but-empty lsn and accepts an absent one:
	// the two must stay distinguishable after a round trip.
	m, err := Decode(unhex(t, "04 0a00"))
	if err != nil {
		t.Fatal(err)
	}
	if m.(*SatPingResp).Lsn == nil {
		t.Fatal("present empty lsn decoded as absent")
	}
	m, err = Decode(unhex(t, "04"))
	if err != nil {
		t.Fatal(err)
	}
	if m.(*SatPingResp).Lsn != nil {
		t.Fatal("absent lsn decoded as present")
	}
}

func TestDecodeResumeStartWithEmptyPackedOptions(t *testing.T) {
	// The client sends an empty packed options field (12 00) when resuming.
	m, err := Decode(unhex(t, "05 0a08 0000000000000005 1200"))
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*SatInStartReplicationReq)
	if !bytes.Equal(req.Lsn, unhex(t, "0000000000000005")) || len(req.Options) != 0 {
		t.Fatalf("got %v", req)
	}
}

func TestDecodeClientOpLog(t *testing.T) {
	// begin{ts, lsn 00000001}, insert{relation 0, row ["a-1", "hello from A", NULL]}, commit{}
	frame := unhex(t, "09 0a0f 0a0d 08 b0c7c5e4de30 1a04 00000001",
		"0a1c 22 1a 1a18 0a01 20 1203 612d31 120c", hex.EncodeToString([]byte("hello from A")), "1200",
		"0a02 1200")
	m, err := Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	ops := m.(*SatOpLog).Ops
	if len(ops) != 3 {
		t.Fatalf("got %d ops", len(ops))
	}
	b := ops[0].GetBegin()
	if b == nil || !bytes.Equal(b.Lsn, []byte{0, 0, 0, 1}) || b.CommitTimestamp == 0 {
		t.Fatalf("begin: %v", ops[0])
	}
	ins := ops[1].GetInsert()
	if ins == nil || ins.RelationId != 0 || !bytes.Equal(ins.RowData.NullsBitmask, []byte{0x20}) ||
		len(ins.RowData.Values) != 3 || string(ins.RowData.Values[1]) != "hello from A" {
		t.Fatalf("insert: %v", ops[1])
	}
	if ops[2].GetCommit() == nil {
		t.Fatalf("commit: %v", ops[2])
	}
}

func TestDecodeErrors(t *testing.T) {
	if _, err := Decode(nil); !errors.Is(err, ErrEmptyFrame) {
		t.Fatalf("empty: %v", err)
	}
	if _, err := Decode([]byte{12}); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("type 12: %v", err)
	}
	if _, err := Decode([]byte{255, 1, 2}); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("type 255: %v", err)
	}
	// A truncated varint is not a valid body.
	if _, err := Decode([]byte{byte(TypeAuthReq), 0x0a, 0x10, 'a'}); err == nil {
		t.Fatal("truncated body decoded")
	}
}

func TestEveryTypeRoundTrips(t *testing.T) {
	for i := 0; i <= 11; i++ {
		mt := MsgType(i)
		m := mt.New()
		if m == nil {
			t.Fatalf("type %d has no message", i)
		}
		got, ok := TypeOf(m)
		if !ok || got != mt {
			t.Fatalf("TypeOf(%T) = %d,%v want %d", m, got, ok, i)
		}
		f, err := Encode(m)
		if err != nil || f[0] != byte(i) {
			t.Fatalf("encode %s: %x %v", mt, f, err)
		}
	}
	if _, err := Encode(&SatOpRow{}); err == nil {
		t.Fatal("nested message encoded standalone")
	}
}
