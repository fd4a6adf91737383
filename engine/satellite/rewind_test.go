package satellite

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/electric-sql/electric-go/engine/satellite/satpb"
	"github.com/electric-sql/electric-go/internal/testkit"
)

// Issue 14 point 5: a client whose local database was restored resumes
// from an older log offset than it had applied, and its new transactions
// reuse lsns the engine already took. They are taken, not acknowledged and
// dropped as re-sends (before: "restored" was acked and never merged); the
// event is logged and counted. A client resuming normally is not affected.
func TestRestoredClientWritesTaken(t *testing.T) {
	var logs testkit.SyncBuffer
	env := newEnv(t, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	for _, id := range []string{"p1", "p2", "p3"} {
		env.write("pg", itemOp(id, "x", null))
	}
	c := env.dial()
	c.handshake("c", "alice", fromFirst)
	for !bytes.Equal(c.lastLSN, ServerLSN(3)) {
		c.recv()
	}
	c.reply(&satpb.SatPingResp{Lsn: ServerLSN(3)}) // the client's ack
	testkit.Eventually(t, "client acked offset 3", func() bool {
		s := env.srv.Sessions()
		return len(s) == 1 && s[0].AckedOffset >= 3
	})
	c.send(clientItems)
	c.writeAcked(be32(1), "a1")
	c.writeAcked(be32(2), "a2")
	_ = c.conn.Close()

	// The same client, normally resumed: a re-send is still a duplicate.
	testkit.Eventually(t, "session gone", func() bool { return len(env.srv.Sessions()) == 0 })
	c = env.dial()
	c.handshake("c", "alice", &satpb.SatInStartReplicationReq{Lsn: ServerLSN(3)})
	c.send(clientItems)
	c.writeAcked(be32(2), "a2")
	if n := env.srv.Status().Duplicates; n != 1 {
		t.Fatalf("Duplicates = %d after a re-send, want 1", n)
	}
	_ = c.conn.Close()

	// Restored: it had applied offset 1 only, and its next write is lsn 2.
	testkit.Eventually(t, "session gone", func() bool { return len(env.srv.Sessions()) == 0 })
	c = env.dial()
	c.handshake("c", "alice", &satpb.SatInStartReplicationReq{Lsn: ServerLSN(1)})
	c.send(clientItems)
	c.writeAcked(be32(2), "restored")
	if env.row("public.items", "restored") == nil {
		t.Fatal("the restored client's new write was acknowledged as a re-send and dropped")
	}
	if n := env.srv.Status().Rewound; n != 1 {
		t.Errorf("Rewound = %d, want 1", n)
	}
	if !logs.Contains("older than what it had applied") {
		t.Errorf("no log line for the restored client:\n%s", logs.String())
	}
	if pos, _ := env.log.Position("satellite:c"); !bytes.Equal(pos, be32(2)) {
		t.Errorf("stored position %x, want %x", pos, be32(2))
	}
}
