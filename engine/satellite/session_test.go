package satellite

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/satellite/satpb"
	"github.com/electric-sql/electric-go/internal/testkit"
)

// Only the configured tables and columns are streamed, and every type is
// announced by a name 0.4.3 decodes. Client writes to tables that are not
// replicated, and columns the table lacks, are dropped, not fatal.
func TestTablesAndTypes(t *testing.T) {
	env := newEnv(t, nil)
	narrow := itemsTable
	narrow.Columns = narrow.Columns[:2] // the clients have no content_b
	env.setTables(narrow, typesTable)
	c := env.dial()
	c.handshake("cli", "alice", fromFirst)
	env.write("pg_a", itemOp("k", "v", txt("hidden")),
		merge.Op{Kind: merge.OpInsert, Table: "public.secret", Key: "s", Columns: map[string]merge.Value{"id": txt("s")}})
	env.write("pg_a", merge.Op{Kind: merge.OpInsert, Table: "public.secret", Key: "t", Columns: map[string]merge.Value{"id": txt("t")}})
	off := env.write("pg_a", merge.Op{Kind: merge.OpInsert, Table: "public.typed", Key: "u",
		Columns: map[string]merge.Value{"id": txt("u"), "flag": txt("f")}})
	rels := map[uint32]*satpb.SatRelation{}
	_, ops := c.recvTx(rels)
	if len(ops) != 1 {
		t.Fatalf("%d ops: unreplicated table streamed", len(ops))
	}
	if _, row := rowOf(t, rels, ops[0]); len(row) != 2 || row["content"] != txt("v") {
		t.Fatalf("row %v", row)
	}
	b, ops := c.recvTx(rels)
	if !bytes.Equal(b.Lsn, ServerLSN(off)) {
		t.Fatalf("transaction of an unreplicated table sent: %x", b.Lsn)
	}
	_, row := rowOf(t, rels, ops[0])
	if row["flag"] != txt("f") || !row["at"].Null {
		t.Fatalf("row %v", row)
	}
	want := map[string]string{"id": "uuid", "flag": "text", "at": "text", "big": "text", "code": "text",
		"amount": "text", "ratio": "text", "doc": "text"}
	for _, r := range rels {
		if r.TableName != "typed" {
			continue
		}
		for _, col := range r.Columns {
			if want[col.Name] != col.Type {
				t.Errorf("column %s announced as %q, want %q", col.Name, col.Type, want[col.Name])
			}
		}
	}

	// Inbound: a table not replicated and an extra client column.
	c.send(&satpb.SatRelation{SchemaName: "public", TableName: "local_only", RelationId: 5,
		Columns: []*satpb.SatRelationColumn{{Name: "id", Type: "TEXT"}}})
	c.send(&satpb.SatRelation{SchemaName: "public", TableName: "items", RelationId: 6,
		Columns: []*satpb.SatRelationColumn{{Name: "id", Type: "TEXT"}, {Name: "content", Type: "TEXT"}, {Name: "extra", Type: "TEXT"}}})
	c.send(&satpb.SatInStartReplicationResp{})
	head := env.log.Head()
	c.send(oplog(begin(be32(2), nowMs()), insert(5, txt("x")), insert(6, txt("n"), txt("c"), txt("e")), commit()))
	for {
		if ack, ok := c.recv().(*satpb.SatPingResp); ok {
			if !bytes.Equal(ack.Lsn, be32(2)) {
				t.Fatalf("ack %x", ack.Lsn)
			}
			break
		}
	}
	if env.log.Head() != head+1 {
		t.Fatalf("head %d", env.log.Head())
	}
	if r := env.row("public.items", "n"); r["content"] != txt("c") || len(r) != 2 {
		t.Fatalf("row %v", r)
	}
	if env.srv.Status().RejectedOps != 1 {
		t.Fatalf("rejected %d", env.srv.Status().RejectedOps)
	}
}

// A Satellite write counts as concurrent with everything it had not
// acknowledged: a delete covers the entries the client acked, and an
// update the client never saw survives it (update wins).
func TestInboundContextIsWhatTheClientAcked(t *testing.T) {
	env := newEnv(t, func(o *Options) { o.ResendAfter = -1 })
	env.write("pg_a", itemOp("seen", "v1", null))
	c := env.dial()
	c.handshake("cli", "alice", fromFirst)
	rels := map[uint32]*satpb.SatRelation{}
	c.recvTx(rels)
	c.send(&satpb.SatPingResp{Lsn: c.lastLSN})
	testkit.Eventually(t, "ack of entry 1", func() bool { return env.srv.Sessions()[0].AckedOffset == 1 })
	// An update the client has not received when it deletes the row.
	env.write("pg_b", merge.Op{Kind: merge.OpUpdate, Table: "public.items", Key: "seen",
		Columns: map[string]merge.Value{"content": txt("v2")}})
	c.send(clientItems)
	c.send(oplog(begin(be32(1), nowMs()), del(0, txt("seen"), txt("v1"), null), commit()))
	for {
		if _, ok := c.recv().(*satpb.SatPingResp); ok {
			break
		}
	}
	r := env.row("public.items", "seen")
	if r == nil || r["content"] != txt("v2") {
		st, _ := env.log.Row("public.items", "seen")
		t.Fatalf("concurrent update lost to a delete that had not seen it: %v (state %+v)", r, st)
	}
	e, err := env.log.Entry(env.log.Head())
	if err != nil {
		t.Fatal(err)
	}
	if e.Origin != "satellite:cli" {
		t.Fatalf("origin %s", e.Origin)
	}
	// Once the client acks the update, its delete removes the row.
	for off, _ := OffsetOfServerLSN(c.lastLSN); off < 2; off, _ = OffsetOfServerLSN(c.lastLSN) {
		c.recv()
	}
	c.send(&satpb.SatPingResp{Lsn: c.lastLSN})
	testkit.Eventually(t, "ack of the update", func() bool { return env.srv.Sessions()[0].AckedOffset >= 2 })
	c.send(oplog(begin(be32(2), nowMs()), del(0, txt("seen"), txt("v2"), null), commit()))
	testkit.Eventually(t, "delete applied", func() bool { return env.row("public.items", "seen") == nil })
}

// A hole in the 0.4.3 client's lsns makes the server restart the client's
// stream instead of taking the transaction; what the client then re-sends
// is taken in order.
func TestInboundGapRestartsStream(t *testing.T) {
	env := newEnv(t, func(o *Options) { o.ResendAfter = -1 })
	c := env.dial()
	c.handshake("cli", "alice", nil)
	c.send(clientItems)
	c.send(oplog(begin(be32(1), nowMs()), insert(0, txt("r1"), txt("1"), null), commit()))
	if ack := recvAs[*satpb.SatPingResp](c); !bytes.Equal(ack.Lsn, be32(1)) {
		t.Fatalf("ack %x", ack.Lsn)
	}
	// Rowid 2 was lost by the client: lsn 3 with one op follows lsn 1.
	c.answerPings = false
	c.send(oplog(begin(be32(3), nowMs()), insert(0, txt("r3"), txt("3"), null), commit()))
	recvAs[*satpb.SatInStopReplicationReq](c)
	recvAs[*satpb.SatInStartReplicationReq](c)
	c.answerPings = true
	if env.row("public.items", "r3") != nil {
		t.Fatal("transaction after a hole was taken")
	}
	c.send(&satpb.SatInStopReplicationResp{})
	c.send(&satpb.SatInStartReplicationResp{})
	// The client re-sends from its oldest unacked: 2 (two ops), then 3.
	c.send(oplog(begin(be32(2), nowMs()), insert(0, txt("r2"), txt("2"), null), commit()))
	c.send(oplog(begin(be32(3), nowMs()), insert(0, txt("r3"), txt("3"), null), commit()))
	for _, want := range [][]byte{be32(2), be32(3)} {
		if ack := recvAs[*satpb.SatPingResp](c); !bytes.Equal(ack.Lsn, want) {
			t.Fatalf("ack %x want %x", ack.Lsn, want)
		}
	}
	if env.row("public.items", "r2") == nil || env.row("public.items", "r3") == nil {
		t.Fatal("re-sent transactions not taken")
	}
	// A hole that is still there after a restart is accepted.
	c.answerPings = false
	c.send(oplog(begin(be32(9), nowMs()), insert(0, txt("r9"), txt("9"), null), commit()))
	recvAs[*satpb.SatInStopReplicationReq](c)
	recvAs[*satpb.SatInStartReplicationReq](c)
	c.answerPings = true
	c.send(&satpb.SatInStopReplicationResp{})
	c.send(&satpb.SatInStartReplicationResp{})
	c.send(oplog(begin(be32(9), nowMs()), insert(0, txt("r9"), txt("9"), null), commit()))
	if ack := recvAs[*satpb.SatPingResp](c); !bytes.Equal(ack.Lsn, be32(9)) {
		t.Fatalf("ack %x", ack.Lsn)
	}
	if s := env.srv.Sessions(); s[0].Resyncs != 2 {
		t.Fatalf("resyncs %d", s[0].Resyncs)
	}
}

// After a burst the server restarts the client's stream once the client is
// quiet, so a transaction 0.4.3 dropped from its queue is re-sent.
func TestQuietClientIsAskedToResend(t *testing.T) {
	env := newEnv(t, func(o *Options) { o.ResendAfter = 100 * time.Millisecond })
	c := env.dial()
	c.handshake("cli", "alice", nil)
	c.send(clientItems)
	c.send(oplog(begin(be32(1), nowMs()), insert(0, txt("r1"), txt("1"), null), commit()))
	recvAs[*satpb.SatPingResp](c)
	c.answerPings = false
	recvAs[*satpb.SatInStopReplicationReq](c)
	recvAs[*satpb.SatInStartReplicationReq](c)
}

// Liveness (spec §3.1): a silent client is pinged, and closed if it stays
// silent; one that answers stays.
func TestLiveness(t *testing.T) {
	env := newEnv(t, func(o *Options) { o.PingInterval = 100 * time.Millisecond })
	alive := env.dial()
	alive.handshake("alive", "alice", nil)
	fromAlive := make(chan any, 16)
	go func() {
		for {
			m, err := alive.next()
			if err != nil {
				fromAlive <- err
				return
			}
			fromAlive <- m
		}
	}()
	silent := env.dial()
	silent.handshake("silent", "alice", nil)
	silent.answerPings = false
	recvAs[*satpb.SatPingReq](silent)
	silent.expectClosed()
	// The answering client is still served.
	time.Sleep(300 * time.Millisecond) // a few ping periods
	alive.send(&satpb.SatPingReq{})
	if m := <-fromAlive; !isPingResp(m) {
		t.Fatalf("alive client got %v", m)
	}

	// A connection that never authenticates is closed too.
	idle := env.dial()
	idle.expectClosed()
}

// A client that does not read holds back only its own log reader: the
// frames queued for it are bounded, and it gets everything, in order, once
// it reads again.
func TestSlowClientBackPressure(t *testing.T) {
	env := newEnv(t, func(o *Options) { o.OutboundQueue = 4 })
	c := env.dial()
	c.handshake("slow", "alice", fromFirst)
	big := strings.Repeat("x", 32<<10)
	const n = 400 // ~13 MiB, more than the socket buffers hold
	for i := 0; i < n; i++ {
		env.write("pg_a", itemOp("k", big, txt(string(rune('a'+i%26)))))
	}
	// The reader stops well behind the head while nothing is read.
	var stuck uint64
	testkit.Eventually(t, "the reader to stop", func() bool {
		a := env.srv.Sessions()[0].OutboundOffset
		time.Sleep(200 * time.Millisecond)
		b := env.srv.Sessions()[0].OutboundOffset
		stuck = b
		return a == b && b < n
	})
	if s := env.srv.Sessions()[0]; s.Lag != n-stuck {
		t.Fatalf("lag %d, want %d", s.Lag, n-stuck)
	}
	rels := map[uint32]*satpb.SatRelation{}
	for i := uint64(1); i <= n; i++ {
		b, _ := c.recvTx(rels)
		if !bytes.Equal(b.Lsn, ServerLSN(i)) {
			t.Fatalf("got %x, want offset %d", b.Lsn, i)
		}
	}
}

// A transaction larger than one chunk spans several SatOpLog messages.
func TestLargeTransactionIsChunked(t *testing.T) {
	env := newEnv(t, nil)
	c := env.dial()
	c.handshake("cli", "alice", fromFirst)
	var ops []merge.Op
	for i := 0; i < 50; i++ {
		ops = append(ops, itemOp(strings.Repeat("k", i+1), strings.Repeat("v", 4<<10), null))
	}
	env.write("pg_a", ops...)
	msgs := 0
	var got []*satpb.SatTransOp
	rels := map[uint32]*satpb.SatRelation{}
	for done := false; !done; {
		switch m := c.recv().(type) {
		case *satpb.SatRelation:
			rels[m.RelationId] = m
		case *satpb.SatOpLog:
			msgs++
			for _, op := range m.Ops {
				if op.GetCommit() != nil {
					done = true
				}
				if relationID(op) != 0 {
					got = append(got, op)
				}
			}
		}
	}
	if msgs < 2 || len(got) != 50 {
		t.Fatalf("%d messages, %d ops", msgs, len(got))
	}
}

// Sessions and Status report what the status API shows.
func TestSessionsSnapshot(t *testing.T) {
	env := newEnv(t, nil)
	env.write("pg_a", itemOp("a", "v", null))
	c := env.dial()
	c.handshake("snap", "alice", fromFirst)
	c.recvTx(map[uint32]*satpb.SatRelation{})
	c.send(clientItems)
	c.send(oplog(begin(be32(7), nowMs()), insert(0, txt("b"), txt("w"), null), commit()))
	// The echo of the write may come before or after its ack.
	for !isPingResp(c.recv()) {
	}
	testkit.Eventually(t, "snapshot", func() bool {
		ss := env.srv.Sessions()
		if len(ss) != 1 {
			return false
		}
		s := ss[0]
		return s.ClientID == "snap" && s.UserID == "alice" && s.InboundActive && s.OutboundActive &&
			bytes.Equal(s.InboundLSN, be32(7)) && s.TxIn == 1 && s.TxOut >= 1 && s.RemoteAddr != "" &&
			!s.ConnectedAt.IsZero()
	})
	st := env.srv.Status()
	if st.Sessions != 1 || st.Authenticated != 1 || st.TxIn != 1 || st.Connections != 1 {
		t.Fatalf("status %+v", st)
	}
	// The session goes away with its connection.
	_ = c.conn.Close()
	testkit.Eventually(t, "session removed", func() bool {
		st := env.srv.Status()
		return len(env.srv.Sessions()) == 0 && st.Sessions == 0 && st.Authenticated == 0
	})
}

func isPingResp(m any) bool {
	_, ok := m.(*satpb.SatPingResp)
	return ok
}

// nextAck skips the transactions streamed to the client until an ack.
func nextAck(c *tclient) *satpb.SatPingResp {
	c.t.Helper()
	for {
		switch m := c.recv().(type) {
		case *satpb.SatPingResp:
			return m
		case *satpb.SatOpLog, *satpb.SatRelation:
		default:
			c.t.Fatalf("unexpected %T %v", m, m)
		}
	}
}

// Until the engine knows its tables nothing is dropped: the log waits to be
// streamed, and client transactions are neither taken nor acked; once the
// tables are known the client's stream is restarted so it re-sends them.
func TestTablesNotKnownYet(t *testing.T) {
	env := newEnv(t, func(o *Options) { o.ResendAfter = -1 })
	env.setTables()
	env.write("pg_a", itemOp("early", "v", null))
	c := env.dial()
	c.handshake("cli", "alice", fromFirst)
	c.send(clientItems)
	c.send(oplog(begin(be32(1), nowMs()), insert(0, txt("mine"), txt("m"), null), commit()))
	c.send(&satpb.SatPingReq{})
	if ack := recvAs[*satpb.SatPingResp](c); ack.Lsn != nil {
		t.Fatalf("transaction acked before the tables were known: %x", ack.Lsn)
	}
	if env.log.Head() != 1 || env.srv.Status().RejectedOps != 0 {
		t.Fatalf("head %d, rejected %d", env.log.Head(), env.srv.Status().RejectedOps)
	}
	c.answerPings = false
	env.setTables(itemsTable, ownedTable)
	var gotEntry, gotStop, gotStart bool
	rels := map[uint32]*satpb.SatRelation{}
	for !(gotEntry && gotStop && gotStart) {
		switch m := c.recv().(type) {
		case *satpb.SatRelation:
			rels[m.RelationId] = m
		case *satpb.SatOpLog:
			gotEntry = true
			if !bytes.Equal(c.lastLSN, ServerLSN(1)) {
				t.Fatalf("first entry %x", c.lastLSN)
			}
		case *satpb.SatInStopReplicationReq:
			gotStop = true
		case *satpb.SatInStartReplicationReq:
			gotStart = true
		case *satpb.SatPingReq:
		default:
			t.Fatalf("unexpected %T", m)
		}
	}
	c.answerPings = true
	c.send(&satpb.SatInStopReplicationResp{})
	c.send(&satpb.SatInStartReplicationResp{})
	c.send(oplog(begin(be32(1), nowMs()), insert(0, txt("mine"), txt("m"), null), commit()))
	if ack := nextAck(c); !bytes.Equal(ack.Lsn, be32(1)) {
		t.Fatalf("ack %x", ack.Lsn)
	}
	if env.row("public.items", "mine") == nil {
		t.Fatal("held back transaction lost")
	}
}
