package satellite

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/electric-sql/electric-go/engine/satellite/satpb"
)

func genLSN(gen uint16, off uint64) []byte { return ServerLSN(uint64(gen)<<genShift | off) }

// After a restore (generation 1, fence at offset 2), a client that comes
// back with a position of the previous generation beyond the fence gets
// every entry since the fence; before, it resumed after its own offset and
// missed the new entries that reused those offsets. Positions within the
// fence, and of the current generation, resume as they say.
func TestStaleGenerationResumesFromFence(t *testing.T) {
	env := newEnv(t, func(o *Options) { o.Generation, o.Fences = 1, []uint64{2} })
	for _, id := range []string{"e1", "e2", "e3", "e4", "e5"} {
		env.write("pg", itemOp(id, "x", null))
	}
	firstAfter := func(client string, lsn []byte) (gen uint16, off uint64) {
		t.Helper()
		c := env.dial()
		c.handshake(client, "alice", &satpb.SatInStartReplicationReq{Lsn: lsn})
		for c.lastLSN == nil {
			c.recv()
		}
		v := binary.BigEndian.Uint64(c.lastLSN)
		_ = c.conn.Close()
		return uint16(v >> genShift), v & offMask
	}
	cases := []struct {
		name     string
		lsn      []byte
		wantFrom uint64
	}{
		{"old generation beyond the fence", genLSN(0, 4), 3},
		{"old generation within the fence", genLSN(0, 1), 2},
		{"current generation", genLSN(1, 4), 5},
	}
	for i, tc := range cases {
		gen, off := firstAfter("c"+string(rune('a'+i)), tc.lsn)
		if gen != 1 || off != tc.wantFrom {
			t.Errorf("%s: first entry sent is generation %d offset %d, want generation 1 offset %d", tc.name, gen, off, tc.wantFrom)
		}
	}
	if n := env.srv.Status().StaleGeneration; n != 1 {
		t.Errorf("StaleGeneration = %d, want 1", n)
	}
	if !bytes.Equal(genLSN(0, 7), ServerLSN(7)) {
		t.Error("generation 0 lsns are not the plain offsets they always were")
	}
}

func TestGenerationEncoding(t *testing.T) {
	fences := []uint64{10, 3, 1 << 40}
	got, ok := DecodeGeneration(EncodeGeneration(fences))
	if !ok || len(got) != 3 || got[0] != 10 || got[1] != 3 || got[2] != 1<<40 {
		t.Fatalf("round trip: %v %v", got, ok)
	}
	if _, ok := DecodeGeneration([]byte{1, 2, 3}); ok {
		t.Fatal("a ragged encoding decoded")
	}
	if got, ok := DecodeGeneration(nil); !ok || len(got) != 0 {
		t.Fatal("no generation is generation 0")
	}
}
