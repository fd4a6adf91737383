package satellite

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/electric-sql/electric-go/engine/satellite/satpb"
	"github.com/electric-sql/electric-go/internal/testkit"
)

// writeAcked sends one client transaction inserting id and waits for its ack.
func (c *tclient) writeAcked(lsn []byte, id string) {
	c.t.Helper()
	c.send(oplog(begin(lsn, nowMs()), insert(0, txt(id), txt("v"), null), commit()))
	for {
		if ack, ok := c.recv().(*satpb.SatPingResp); ok {
			if !bytes.Equal(ack.Lsn, lsn) {
				c.t.Fatalf("ack %x, want %x", ack.Lsn, lsn)
			}
			return
		}
	}
}

// reconnect authenticates a new connection once the previous session with
// that id has ended, and starts the client's stream.
func (env *testEnv) reconnect(id, user string) *tclient {
	env.t.Helper()
	testkit.Eventually(env.t, "previous session gone", func() bool { return len(env.srv.Sessions()) == 0 })
	c := env.dial()
	c.handshake(id, user, nil)
	return c
}

// Issue 11 point 5: bob authenticates with alice's client id while alice is
// offline and sends an empty transaction with lsn ffffffff. Before the
// binding, that moved alice's position so that her later writes were acked
// and dropped. Now bob is refused at auth with AUTH_REQUIRED, logged and
// counted, and alice's position and writes are untouched.
func TestClientIDTakeoverRefused(t *testing.T) {
	env := newEnv(t, nil)
	alice := env.dial()
	alice.handshake("c-alice", "alice", nil)
	alice.send(clientItems)
	alice.writeAcked(be32(1), "a1")
	_ = alice.conn.Close()
	testkit.Eventually(t, "alice offline", func() bool { return len(env.srv.Sessions()) == 0 })

	bob := env.dial()
	bob.answerPings = false // a server that let bob in would close him, not hang the test
	bob.send(authReq("c-alice", "bob"))
	bob.expectError(satpb.SatErrorResp_AUTH_REQUIRED)
	// Even if bob's frames got through, nothing would be taken.
	if n := env.srv.Status().OwnerRefused; n != 1 {
		t.Errorf("OwnerRefused = %d, want 1", n)
	}
	if pos, err := env.log.Position("satellite:c-alice"); err != nil || !bytes.Equal(pos, be32(1)) {
		t.Fatalf("alice's position after bob's attempt = %x, %v; want %x", pos, err, be32(1))
	}
	if owner, _ := env.log.Owner("satellite:c-alice"); owner != "alice" {
		t.Fatalf("owner of alice's client id = %q", owner)
	}

	alice = env.reconnect("c-alice", "alice")
	alice.send(clientItems)
	alice.writeAcked(be32(2), "a2")
	if env.row("public.items", "a2") == nil {
		t.Fatal("alice's write after bob's attempt was acked but not applied")
	}
	// Bob's own client id is his.
	_ = alice.conn.Close()
	bob = env.reconnect("c-bob", "bob")
	bob.send(clientItems)
	bob.writeAcked([]byte{0xff, 0xff, 0xff, 0xff}, "b1")
	if pos, _ := env.log.Position("satellite:c-alice"); !bytes.Equal(pos, be32(2)) {
		t.Fatalf("alice's position = %x after bob's write on his own id", pos)
	}
}

// The binding is in the log: after the engine restarts (the store is
// reopened), the client id still belongs to its first user.
func TestClientIDBindingSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	env := newEnvDir(t, dir, nil)
	c := env.dial()
	c.auth("c1", "alice")
	env.close()

	env = newEnvDir(t, dir, nil)
	bob := env.dial()
	bob.answerPings = false
	bob.send(authReq("c1", "bob"))
	bob.expectError(satpb.SatErrorResp_AUTH_REQUIRED)
	alice := env.dial()
	alice.auth("c1", "alice")
}

// Bounds on what a client names and declares: over a bound the session gets
// one SatErrorResp with the spec's code and is closed, and it is counted.
func TestProtocolBounds(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	relation := func(id uint32, table string, cols int, colName string) *satpb.SatRelation {
		r := &satpb.SatRelation{SchemaName: "public", TableName: table, RelationId: id}
		for i := 0; i < cols; i++ {
			name := colName
			if name == "" {
				name = "c" + strings.Repeat("_", i%5) + string(rune('a'+i%26))
			}
			r.Columns = append(r.Columns, &satpb.SatRelationColumn{Name: name, Type: "TEXT"})
		}
		return r
	}
	cases := []struct {
		name string
		code satpb.SatErrorResp_ErrorCode
		run  func(c *tclient)
	}{
		{"long client id", satpb.SatErrorResp_INVALID_REQUEST, func(c *tclient) {
			c.send(authReq(long(MaxClientIDBytes+1), "alice"))
		}},
		{"long user id", satpb.SatErrorResp_AUTH_REQUIRED, func(c *tclient) {
			c.send(authReq("c", long(MaxUserIDBytes+1)))
		}},
		{"10 KB table name", satpb.SatErrorResp_INVALID_REQUEST, func(c *tclient) {
			c.handshake("c", "alice", nil)
			c.send(relation(1, long(10<<10), 1, ""))
		}},
		{"10 KB column name", satpb.SatErrorResp_INVALID_REQUEST, func(c *tclient) {
			c.handshake("c", "alice", nil)
			c.send(relation(1, "items", 1, long(10<<10)))
		}},
		{"too many columns", satpb.SatErrorResp_INVALID_REQUEST, func(c *tclient) {
			c.handshake("c", "alice", nil)
			c.send(relation(1, "items", MaxRelationColumns+1, ""))
		}},
		{"1001 relations", satpb.SatErrorResp_INVALID_REQUEST, func(c *tclient) {
			c.handshake("c", "alice", nil)
			for i := 0; i < MaxRelationsPerSession; i++ {
				c.send(relation(uint32(i), "items", 1, ""))
			}
			// Announcing a known id again is no new relation.
			c.send(relation(7, "items", 2, ""))
			c.send(relation(MaxRelationsPerSession, "items", 1, ""))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, nil)
			c := env.dial()
			c.t = t
			c.answerPings = false // a server that did not refuse closes the silent client
			tc.run(c)
			c.expectError(tc.code)
			if n := env.srv.Status().OverLimit; n != 1 {
				t.Errorf("OverLimit = %d, want 1", n)
			}
		})
	}
}

// A transaction over MaxTransactionBytes closes the session, with a log
// line and the counter; nothing of it is taken or acked.
func TestTransactionOverCap(t *testing.T) {
	var logs testkit.SyncBuffer
	env := newEnv(t, func(o *Options) {
		o.MaxTransactionBytes = 64 << 10
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	c := env.dial()
	c.handshake("c", "alice", nil)
	c.send(clientItems)
	c.writeAcked(be32(1), "small")
	big := strings.Repeat("y", 16<<10)
	c.send(oplog(begin(be32(2), nowMs())))
	// The server closes as soon as the cap is passed: later writes may fail.
	for i := 0; i < 5; i++ {
		c.reply(oplog(insert(0, txt("big"+string(rune('a'+i))), txt(big), null)))
	}
	c.reply(oplog(commit()))
	c.answerPings = false
	c.expectError(satpb.SatErrorResp_INVALID_REQUEST)
	if n := env.srv.Status().TxTooLarge; n != 1 {
		t.Errorf("TxTooLarge = %d, want 1", n)
	}
	if !logs.Contains("transaction over the size cap") {
		t.Errorf("no log line for the closed session:\n%s", logs.String())
	}
	if env.row("public.items", "biga") != nil {
		t.Error("part of the transaction over the cap was taken")
	}
	if pos, _ := env.log.Position("satellite:c"); !bytes.Equal(pos, be32(1)) {
		t.Errorf("position = %x, want %x", pos, be32(1))
	}
}
