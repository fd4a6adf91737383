package satellite

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/satellite/satpb"
)

// fakeValidator refuses the value "bad"; while down it cannot check.
type fakeValidator struct {
	mu     sync.Mutex
	down   bool
	checks int
}

func (v *fakeValidator) setDown(d bool) { v.mu.Lock(); v.down = d; v.mu.Unlock() }

func (v *fakeValidator) Check(_ context.Context, cells []Cell) ([]InvalidCell, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.checks++
	if v.down {
		return nil, errors.New("every Postgres is down")
	}
	var bad []InvalidCell
	for i, c := range cells {
		if !c.Value.Null && c.Value.Text == "bad" {
			bad = append(bad, InvalidCell{Cell: i, Connector: "pg_a", Code: "22P02", Err: "invalid input"})
		}
	}
	return bad, nil
}

// A transaction with a refused value is acked, not merged, recorded per
// row, and then the client gets the server's rows as one transaction at the
// last offset it was sent: the merged row, or a delete of a row the server
// does not have.
func TestRefusedTransactionAckedThenCompensated(t *testing.T) {
	var mu sync.Mutex
	var refs []Rejection
	env := newEnv(t, func(o *Options) {
		o.Validator = &fakeValidator{}
		o.ResendAfter = -1
		o.Rejected = func(r Rejection) { mu.Lock(); refs = append(refs, r); mu.Unlock() }
	})
	off := env.write("pg_a", itemOp("x", "server", null))
	c := env.dial()
	c.handshake("cli", "alice", fromFirst)
	rels := map[uint32]*satpb.SatRelation{}
	if b, _ := c.recvTx(rels); !bytes.Equal(b.Lsn, ServerLSN(off)) {
		t.Fatalf("first entry %x", b.Lsn)
	}
	c.send(clientItems)
	c.send(oplog(begin(be32(2), nowMs()), insert(0, txt("x"), txt("bad"), null), insert(0, txt("y"), txt("fine"), null), commit()))
	for {
		m := c.recv()
		if ack, ok := m.(*satpb.SatPingResp); ok {
			if !bytes.Equal(ack.Lsn, be32(2)) {
				t.Fatalf("ack %x", ack.Lsn)
			}
			break
		}
		t.Fatalf("%T before the ack", m)
	}
	b, ops := c.recvTx(rels)
	if !bytes.Equal(b.Lsn, ServerLSN(off)) {
		t.Fatalf("compensation at lsn %x, want the last offset sent %x", b.Lsn, ServerLSN(off))
	}
	got := map[string]string{}
	for _, op := range ops {
		kind, row := rowOf(t, rels, op)
		got[row["id"].Text] = kind + ":" + row["content"].Text
	}
	if len(got) != 2 || got["x"] != "update:server" || got["y"] != "delete:" {
		t.Fatalf("compensation %v", got)
	}
	if env.log.Head() != off {
		t.Fatalf("refused transaction merged: head %d", env.log.Head())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(refs) != 2 || refs[0].Kind != RejectInvalidValue || refs[0].Key != "x" || refs[0].Column != "content" ||
		refs[0].Value != "bad" || refs[1].Key != "y" || refs[1].Column != "" || refs[0].UserID != "alice" {
		t.Fatalf("rejections %+v", refs)
	}
	st := env.srv.Status()
	if st.InvalidRows != 2 || st.Compensated != 2 {
		t.Fatalf("status %+v", st)
	}
	// The refused transaction's position is durable: sent again (a
	// reconnect before the ack), it is acked as a duplicate, not checked.
	c.send(oplog(begin(be32(2), nowMs()), insert(0, txt("x"), txt("bad"), null), insert(0, txt("y"), txt("fine"), null), commit()))
	if ack := nextAck(c); !bytes.Equal(ack.Lsn, be32(2)) {
		t.Fatalf("ack %x", ack.Lsn)
	}
	// Its rows are sent back again: the first ones may have been lost with
	// the ack.
	if _, ops := c.recvTx(rels); len(ops) != 2 {
		t.Fatalf("re-sent transaction: %d rows sent back, want 2", len(ops))
	}
}

// Values no Postgres could check are not merged and not acked; once a
// check works again the client's stream is restarted and its re-sent
// transaction goes through.
func TestUncheckableTransactionHeld(t *testing.T) {
	v := &fakeValidator{down: true}
	env := newEnv(t, func(o *Options) { o.Validator = v; o.ResendAfter = -1; o.HoldRetry = 200 * time.Millisecond })
	c := env.dial()
	c.handshake("cli", "alice", fromFirst)
	c.send(clientItems)
	c.send(oplog(begin(be32(1), nowMs()), insert(0, txt("a"), txt("v"), null), commit()))
	c.send(oplog(begin(be32(2), nowMs()), insert(0, txt("b"), txt("v"), null), commit()))
	c.send(&satpb.SatPingReq{})
	if ack := recvAs[*satpb.SatPingResp](c); ack.Lsn != nil {
		t.Fatalf("held transaction acked: %x", ack.Lsn)
	}
	if env.log.Head() != 0 || env.srv.Status().HeldTx == 0 {
		t.Fatalf("head %d, held %d", env.log.Head(), env.srv.Status().HeldTx)
	}
	v.setDown(false)
	// The server restarts the stream (answered by recv); then the client
	// re-sends both.
	deadline := time.Now().Add(10 * time.Second)
	for c.restarts == 0 {
		if time.Now().After(deadline) {
			t.Fatal("stream not restarted")
		}
		c.send(&satpb.SatPingReq{})
		c.recv()
	}
	c.send(oplog(begin(be32(1), nowMs()), insert(0, txt("a"), txt("v"), null), commit()))
	c.send(oplog(begin(be32(2), nowMs()), insert(0, txt("b"), txt("v"), null), commit()))
	for {
		if ack := nextAck(c); bytes.Equal(ack.Lsn, be32(2)) {
			break
		}
	}
	if env.row("public.items", "a") == nil || env.row("public.items", "b") == nil {
		t.Fatal("held transactions lost")
	}
}

// Values and Postgres' messages (which quote the value) are bounded in a
// Rejection, cut on a rune boundary.
func TestTruncateText(t *testing.T) {
	long := strings.Repeat("é", MaxRejectedValueBytes) // 2 bytes each
	for _, tc := range []struct{ in, want string }{
		{"short", "short"},
		{strings.Repeat("a", MaxRejectedValueBytes), strings.Repeat("a", MaxRejectedValueBytes)},
		{strings.Repeat("a", MaxRejectedValueBytes+1), strings.Repeat("a", MaxRejectedValueBytes) + "…"},
		{"a" + long, "a" + strings.Repeat("é", (MaxRejectedValueBytes-1)/2) + "…"},
	} {
		if got := truncateText(tc.in); got != tc.want {
			t.Errorf("truncateText(%d bytes) = %d bytes %q…", len(tc.in), len(got), got[:min(10, len(got))])
		}
	}
}
