package satellite

import (
	"math"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/satellite/satpb"
	"github.com/electric-sql/electric-go/internal/testkit"
)

// A client whose commit_timestamp is 18446744073709551 ms (or the largest
// uint64) is taken, its time counted as the engine's + 1 s: another client
// receives a commit_timestamp within that window, and a Postgres-like write
// made after it wins.
func TestFarFutureCommitTimestamp(t *testing.T) {
	env := newEnv(t, nil)
	c := env.dial()
	c.handshake("far", "alice", nil)
	c.send(clientItems)
	c.send(oplog(begin(be32(1), 18446744073709551), insert(0, txt("a"), txt("far"), null), commit()))
	c.send(oplog(begin(be32(2), math.MaxUint64), insert(0, txt("b"), txt("far"), null), commit()))
	testkit.Eventually(t, "both transactions merged", func() bool { return env.log.Head() >= 2 })
	window := uint64(time.Now().UnixMicro()) + merge.MaxAhead
	for off := uint64(1); off <= 2; off++ {
		e, err := env.log.Entry(off)
		if err != nil || e.Eff > window || e.CommitTime > e.Eff {
			t.Fatalf("entry %d: %+v, %v; want eff and commit time within %d", off, e, err, window)
		}
	}

	d := env.dial()
	d.handshake("other", "bob", fromFirst)
	rels := map[uint32]*satpb.SatRelation{}
	for i := 0; i < 2; i++ {
		b, _ := d.recvTx(rels)
		if b.CommitTimestamp > window/1000 {
			t.Errorf("a client received commit_timestamp %d ms, beyond the window %d ms", b.CommitTimestamp, window/1000)
		}
	}

	// Once the second is over, a concurrent write from elsewhere wins.
	for uint64(time.Now().UnixMicro()) <= window {
		time.Sleep(10 * time.Millisecond)
	}
	env.write("pg_a", merge.Op{Kind: merge.OpUpdate, Table: "public.items", Key: merge.EncodeKey([]merge.Value{txt("a")}),
		Columns: map[string]merge.Value{"content": txt("pg")}})
	if r := env.row("public.items", "a"); r["content"] != txt("pg") {
		t.Errorf("a write after the far-future one lost to it: %v", r)
	}
}
