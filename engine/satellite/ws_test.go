package satellite

import (
	"bytes"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/auth"
	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/satellite/satpb"
	"github.com/electric-sql/electric-go/internal/testkit"
	"github.com/gorilla/websocket"
)

func TestAuthOK(t *testing.T) {
	env := newEnv(t, nil)
	c := env.dial()
	req := c.auth("client-1", "alice")
	if len(req.Lsn) != 0 || req.SyncBatchSize != 1 || len(req.Options) != 1 ||
		req.Options[0] != satpb.SatInStartReplicationReq_SYNC_MODE {
		t.Fatalf("server start request %v", req)
	}
	testkit.Eventually(t, "session listed", func() bool {
		ss := env.srv.Sessions()
		return len(ss) == 1 && ss[0].ClientID == "client-1" && ss[0].UserID == "alice" && ss[0].Authenticated
	})
}

func TestAuthErrors(t *testing.T) {
	key := "0123456789abcdef0123456789abcdef"
	jwtAuth, err := auth.New(auth.Options{SigningKey: key, Issuer: "electric-sql.com"})
	if err != nil {
		t.Fatal(err)
	}
	past, err := auth.New(auth.Options{SigningKey: key, Issuer: "electric-sql.com",
		Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	other, err := auth.New(auth.Options{SigningKey: key, Issuer: "other.example"})
	if err != nil {
		t.Fatal(err)
	}
	gen := func(a *auth.Authenticator) string {
		tok, _, err := a.Generate("alice", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good, expired, wrongIss := gen(jwtAuth), gen(past), gen(other)
	env := newEnv(t, func(o *Options) { o.Auth = jwtAuth })
	hdr := func(v string) []*satpb.SatAuthHeaderPair {
		return []*satpb.SatAuthHeaderPair{{Key: satpb.SatAuthHeader_PROTO_VERSION, Value: v}}
	}
	cases := []struct {
		name string
		req  *satpb.SatAuthReq
		code satpb.SatErrorResp_ErrorCode
	}{
		{"no headers", &satpb.SatAuthReq{Id: "c", Token: good}, satpb.SatErrorResp_INVALID_REQUEST},
		{"bad version", &satpb.SatAuthReq{Id: "c", Token: good, Headers: hdr("Electric.Satellite.v1_0")}, satpb.SatErrorResp_PROTO_VSN_MISSMATCH},
		{"newer minor", &satpb.SatAuthReq{Id: "c", Token: good, Headers: hdr("Electric.Satellite.v0_3")}, satpb.SatErrorResp_PROTO_VSN_MISSMATCH},
		{"unparseable version", &satpb.SatAuthReq{Id: "c", Token: good, Headers: hdr("Electric.Satellite.v0")}, satpb.SatErrorResp_PROTO_VSN_MISSMATCH},
		{"no version header", &satpb.SatAuthReq{Id: "c", Token: good, Headers: []*satpb.SatAuthHeaderPair{
			{Key: satpb.SatAuthHeader_SCHEMA_VERSION, Value: "sha256:00"}}}, satpb.SatErrorResp_PROTO_VSN_MISSMATCH},
		{"invalid token", &satpb.SatAuthReq{Id: "c", Token: "garbage", Headers: hdr(satpb.ProtocolVersion)}, satpb.SatErrorResp_AUTH_REQUIRED},
		{"expired token", &satpb.SatAuthReq{Id: "c", Token: expired, Headers: hdr(satpb.ProtocolVersion)}, satpb.SatErrorResp_AUTH_REQUIRED},
		{"wrong issuer", &satpb.SatAuthReq{Id: "c", Token: wrongIss, Headers: hdr(satpb.ProtocolVersion)}, satpb.SatErrorResp_AUTH_REQUIRED},
		// The token is checked before the headers.
		{"invalid token, no headers", &satpb.SatAuthReq{Id: "c", Token: "garbage"}, satpb.SatErrorResp_AUTH_REQUIRED},
		{"empty id", &satpb.SatAuthReq{Token: good, Headers: hdr(satpb.ProtocolVersion)}, satpb.SatErrorResp_INVALID_REQUEST},
		{"empty token", &satpb.SatAuthReq{Id: "c", Headers: hdr(satpb.ProtocolVersion)}, satpb.SatErrorResp_INVALID_REQUEST},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := env.dial()
			c.send(tc.req)
			c.expectError(tc.code)
		})
	}
	t.Run("older minor accepted", func(t *testing.T) {
		c := env.dial()
		c.send(&satpb.SatAuthReq{Id: "c-old", Token: good, Headers: hdr("Electric.Satellite.v0_1")})
		recvAs[*satpb.SatAuthResp](c)
	})
	t.Run("jwt ok", func(t *testing.T) {
		c := env.dial()
		c.send(&satpb.SatAuthReq{Id: "c-ok", Token: good, Headers: hdr(satpb.ProtocolVersion)})
		recvAs[*satpb.SatAuthResp](c)
		testkit.Eventually(t, "user from token", func() bool {
			for _, s := range env.srv.Sessions() {
				if s.ClientID == "c-ok" && s.UserID == "alice" {
					return true
				}
			}
			return false
		})
	})
}

func TestBeforeAuth(t *testing.T) {
	env := newEnv(t, nil)
	t.Run("ping", func(t *testing.T) {
		c := env.dial()
		c.send(&satpb.SatPingReq{})
		c.expectError(satpb.SatErrorResp_AUTH_REQUIRED)
	})
	t.Run("oplog", func(t *testing.T) {
		c := env.dial()
		c.send(oplog(begin(be32(1), 1), commit()))
		c.expectError(satpb.SatErrorResp_AUTH_REQUIRED)
	})
	t.Run("garbage", func(t *testing.T) {
		c := env.dial()
		c.sendRaw(websocket.BinaryMessage, []byte{1, 0xff, 0xff, 0xff})
		c.expectError(satpb.SatErrorResp_INTERNAL)
	})
	t.Run("unknown type", func(t *testing.T) {
		c := env.dial()
		c.sendRaw(websocket.BinaryMessage, []byte{42})
		c.expectError(satpb.SatErrorResp_INTERNAL)
	})
	t.Run("empty frame", func(t *testing.T) {
		c := env.dial()
		c.sendRaw(websocket.BinaryMessage, nil)
		c.expectError(satpb.SatErrorResp_INTERNAL)
	})
	t.Run("text frame", func(t *testing.T) {
		c := env.dial()
		c.sendRaw(websocket.TextMessage, []byte("hello"))
		c.expectError(satpb.SatErrorResp_INTERNAL)
	})
}

func TestAfterAuthErrors(t *testing.T) {
	env := newEnv(t, func(o *Options) { o.MaxFrameBytes = 1024 })
	ready := func(t *testing.T, id string) *tclient {
		c := env.dial()
		c.handshake(id, "alice", nil)
		return c
	}
	cases := []struct {
		name string
		do   func(c *tclient)
		code satpb.SatErrorResp_ErrorCode
	}{
		{"garbage", func(c *tclient) { c.sendRaw(websocket.BinaryMessage, []byte{9, 0x0a, 0x05, 1}) }, satpb.SatErrorResp_INTERNAL},
		{"unknown type", func(c *tclient) { c.sendRaw(websocket.BinaryMessage, []byte{12}) }, satpb.SatErrorResp_INTERNAL},
		{"text frame", func(c *tclient) { c.sendRaw(websocket.TextMessage, []byte("{}")) }, satpb.SatErrorResp_INTERNAL},
		{"frame too large", func(c *tclient) {
			c.sendRaw(websocket.BinaryMessage, append([]byte{10}, make([]byte, 2000)...))
		}, satpb.SatErrorResp_INVALID_REQUEST},
		{"second auth", func(c *tclient) { c.send(authReq("x", "alice")) }, satpb.SatErrorResp_INVALID_REQUEST},
		{"migration notification", func(c *tclient) { c.send(&satpb.SatMigrationNotification{}) }, satpb.SatErrorResp_INVALID_REQUEST},
		{"stop when not active", func(c *tclient) { c.send(&satpb.SatInStopReplicationReq{}) }, satpb.SatErrorResp_INVALID_REQUEST},
		{"empty lsn ping response", func(c *tclient) { c.send(&satpb.SatPingResp{Lsn: []byte{}}) }, satpb.SatErrorResp_INVALID_REQUEST},
		{"undecodable lsn ping response", func(c *tclient) { c.send(&satpb.SatPingResp{Lsn: []byte{1}}) }, satpb.SatErrorResp_INVALID_REQUEST},
		{"start without lsn", func(c *tclient) { c.send(&satpb.SatInStartReplicationReq{}) }, satpb.SatErrorResp_INVALID_REQUEST},
		{"start with bad lsn", func(c *tclient) { c.send(&satpb.SatInStartReplicationReq{Lsn: []byte{131, 97, 0}}) }, satpb.SatErrorResp_INVALID_REQUEST},
		{"start beyond head", func(c *tclient) { c.send(&satpb.SatInStartReplicationReq{Lsn: ServerLSN(99)}) }, satpb.SatErrorResp_INVALID_REQUEST},
		{"sync mode without batch", func(c *tclient) {
			c.send(&satpb.SatInStartReplicationReq{Options: []satpb.SatInStartReplicationReq_Option{
				satpb.SatInStartReplicationReq_FIRST_LSN, satpb.SatInStartReplicationReq_SYNC_MODE}})
		}, satpb.SatErrorResp_INVALID_REQUEST},
		{"start twice", func(c *tclient) {
			c.send(fromFirst)
			recvAs[*satpb.SatInStartReplicationResp](c)
			c.send(fromFirst)
		}, satpb.SatErrorResp_INVALID_REQUEST},
		{"begin without lsn", func(c *tclient) { c.send(clientItems); c.send(oplog(begin(nil, 1))) }, satpb.SatErrorResp_INVALID_REQUEST},
		{"commit without begin", func(c *tclient) { c.send(oplog(commit())) }, satpb.SatErrorResp_INVALID_REQUEST},
		{"insert without begin", func(c *tclient) {
			c.send(clientItems)
			c.send(oplog(insert(0, txt("a"), txt("b"), null)))
		}, satpb.SatErrorResp_INVALID_REQUEST},
		{"begin twice", func(c *tclient) { c.send(oplog(begin(be32(1), 1), begin(be32(2), 1))) }, satpb.SatErrorResp_INVALID_REQUEST},
		{"unknown relation", func(c *tclient) { c.send(oplog(begin(be32(1), 1), insert(7, txt("a")), commit())) }, satpb.SatErrorResp_INVALID_REQUEST},
		{"wrong value count", func(c *tclient) {
			c.send(clientItems)
			c.send(oplog(begin(be32(1), 1), insert(0, txt("a"), txt("b")), commit()))
		}, satpb.SatErrorResp_INVALID_REQUEST},
		{"short bitmask", func(c *tclient) {
			c.send(clientItems)
			c.send(oplog(begin(be32(1), 1), &satpb.SatTransOp{Op: &satpb.SatTransOp_Insert{Insert: &satpb.SatOpInsert{
				RowData: &satpb.SatOpRow{Values: [][]byte{[]byte("a"), []byte("b"), {}}}}}}, commit()))
		}, satpb.SatErrorResp_INVALID_REQUEST},
		{"insert without row", func(c *tclient) {
			c.send(clientItems)
			c.send(oplog(begin(be32(1), 1), &satpb.SatTransOp{Op: &satpb.SatTransOp_Insert{Insert: &satpb.SatOpInsert{}}}, commit()))
		}, satpb.SatErrorResp_INVALID_REQUEST},
		{"empty op", func(c *tclient) { c.send(oplog(begin(be32(1), 1), &satpb.SatTransOp{})) }, satpb.SatErrorResp_INVALID_REQUEST},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ready(t, "after-auth-"+string(rune('a'+i)))
			tc.do(c)
			c.expectError(tc.code)
		})
	}
	t.Run("ping", func(t *testing.T) {
		c := ready(t, "pinger")
		c.send(&satpb.SatPingReq{})
		resp := recvAs[*satpb.SatPingResp](c)
		if resp.Lsn != nil {
			t.Fatalf("ping answered with lsn %x before any client transaction", resp.Lsn)
		}
	})
	t.Run("client error closes", func(t *testing.T) {
		c := ready(t, "client-error")
		c.send(&satpb.SatErrorResp{ErrorType: satpb.SatErrorResp_REPLICATION_FAILED})
		c.expectClosed()
	})
}

func TestSecondConnectionSameClientID(t *testing.T) {
	env := newEnv(t, func(o *Options) { o.TakeoverWait = 200 * time.Millisecond })
	first := env.dial()
	first.auth("dup", "alice")
	second := env.dial()
	second.send(authReq("dup", "alice"))
	second.expectError(satpb.SatErrorResp_INVALID_REQUEST)
	// Once the first connection is gone the id is free again.
	_ = first.conn.Close()
	third := env.dial()
	third.auth("dup", "alice")
}

// Inbound (spec §3.4; seed satellite_ws_test "inbound"): a transaction split
// over two SatOpLog messages becomes one log entry, acked with the client's
// lsn bytes once durable; a reconnect gets that lsn in the server's start
// request.
func TestInboundTransaction(t *testing.T) {
	env := newEnv(t, nil)
	c := env.dial()
	c.handshake("cli", "alice", nil)
	ms := nowMs()
	c.send(clientItems)
	c.send(oplog(begin([]byte("1"), ms), insert(0, txt("a"), txt("hello"), null)))
	c.send(oplog(insert(0, txt("b"), txt(""), txt("x")), commit()))
	ack := recvAs[*satpb.SatPingResp](c)
	if !bytes.Equal(ack.Lsn, []byte("1")) {
		t.Fatalf("ack lsn %q", ack.Lsn)
	}
	if env.log.Head() != 1 {
		t.Fatalf("head %d", env.log.Head())
	}
	e, err := env.log.Entry(1)
	if err != nil {
		t.Fatal(err)
	}
	if e.Origin != "satellite:cli" || e.CommitTime != ms*1000 || len(e.Changes) != 2 {
		t.Fatalf("entry %+v", e)
	}
	a, b := env.row("public.items", "a"), env.row("public.items", "b")
	if a["content"] != txt("hello") || a["content_b"] != null || b["content"] != txt("") || b["content_b"] != txt("x") {
		t.Fatalf("rows %v %v", a, b)
	}
	pos, err := env.log.Position("satellite:cli")
	if err != nil || string(pos) != "1" {
		t.Fatalf("position %q %v", pos, err)
	}
	_ = c.conn.Close()
	var c2 *tclient
	testkit.Eventually(t, "reconnect", func() bool {
		c2 = env.dial()
		c2.send(authReq("cli", "alice"))
		m, err := c2.next()
		if err != nil {
			return false
		}
		_, ok := m.(*satpb.SatAuthResp)
		return ok
	})
	req := recvAs[*satpb.SatInStartReplicationReq](c2)
	if string(req.Lsn) != "1" {
		t.Fatalf("start request lsn %q", req.Lsn)
	}
}

func TestInboundIgnoredUntilActive(t *testing.T) {
	env := newEnv(t, nil)
	c := env.dial()
	c.auth("cli", "alice") // no SatInStartReplicationResp
	c.send(clientItems)
	c.send(oplog(begin(be32(1), nowMs()), insert(0, txt("a"), txt("x"), null), commit()))
	c.send(&satpb.SatPingReq{})
	resp := recvAs[*satpb.SatPingResp](c)
	if resp.Lsn != nil || env.log.Head() != 0 {
		t.Fatalf("transaction taken before the stream was active: ack %x head %d", resp.Lsn, env.log.Head())
	}
}

// A client re-sends its unacked transactions after a reconnect: each is acked
// again, in order, and applied once; acks never go below the last one.
func TestResentTransactions(t *testing.T) {
	env := newEnv(t, nil)
	c := env.dial()
	c.handshake("cli", "alice", nil)
	c.send(clientItems)
	for i := uint32(1); i <= 3; i++ {
		c.send(oplog(begin(be32(i), nowMs()), insert(0, txt("k"), txt(string(rune('0'+i))), null), commit()))
	}
	for i := uint32(1); i <= 3; i++ {
		if ack := recvAs[*satpb.SatPingResp](c); !bytes.Equal(ack.Lsn, be32(i)) {
			t.Fatalf("ack %x want %x", ack.Lsn, be32(i))
		}
	}
	head := env.log.Head()
	_ = c.conn.Close()
	var c2 *tclient
	testkit.Eventually(t, "reconnect", func() bool {
		c2 = env.dial()
		c2.send(authReq("cli", "alice"))
		m, err := c2.next()
		if err != nil {
			return false
		}
		_, ok := m.(*satpb.SatAuthResp)
		return ok
	})
	recvAs[*satpb.SatInStartReplicationReq](c2)
	c2.send(&satpb.SatInStartReplicationResp{})
	c2.send(clientItems)
	// Re-send 2 and 3 (the client never got their acks), then a new one.
	c2.send(oplog(begin(be32(2), nowMs()), insert(0, txt("k"), txt("2"), null), commit()))
	c2.send(oplog(begin(be32(3), nowMs()), insert(0, txt("k"), txt("3"), null), commit()))
	// A stray lower one must not produce an ack below the last.
	c2.send(oplog(begin(be32(1), nowMs()), insert(0, txt("k"), txt("1"), null), commit()))
	c2.send(oplog(begin([]byte{0, 0, 0, 0, 0, 0, 0, 4}, nowMs()), insert(0, txt("k"), txt("4"), null), commit()))
	for _, want := range [][]byte{be32(2), be32(3), {0, 0, 0, 0, 0, 0, 0, 4}} {
		if ack := recvAs[*satpb.SatPingResp](c2); !bytes.Equal(ack.Lsn, want) {
			t.Fatalf("ack %x want %x", ack.Lsn, want)
		}
	}
	if got := env.log.Head(); got != head+1 {
		t.Fatalf("head %d, want %d: a re-sent transaction was applied again", got, head+1)
	}
	if r := env.row("public.items", "k"); r["content"] != txt("4") {
		t.Fatalf("row %v", r)
	}
	testkit.Eventually(t, "dups counted", func() bool { return env.srv.Status().Duplicates == 3 })
}

// Outbound (spec §3.5; seed "outbound"): LAST_LSN then transactions arrive
// with relations first and begin.lsn = the offset; stop and restart from the
// last received lsn resumes without gap or repeat.
func TestOutboundStream(t *testing.T) {
	env := newEnv(t, nil)
	env.write("pg_a", itemOp("old", "before start", null))
	c := env.dial()
	c.handshake("cli", "alice", &satpb.SatInStartReplicationReq{Options: []satpb.SatInStartReplicationReq_Option{
		satpb.SatInStartReplicationReq_LAST_LSN}})
	rels := map[uint32]*satpb.SatRelation{}
	for i := 1; i <= 11; i++ {
		off := env.write("pg_a", itemOp("k"+string(rune('a'+i)), "v", txt("")))
		b, ops := c.recvTx(rels)
		if !bytes.Equal(b.Lsn, ServerLSN(off)) {
			t.Fatalf("begin lsn %x want %x", b.Lsn, ServerLSN(off))
		}
		e, _ := env.log.Entry(off)
		if b.CommitTimestamp != e.Eff/1000 || b.TransId != "" {
			t.Fatalf("begin %v, eff %d", b, e.Eff)
		}
		if len(ops) != 1 {
			t.Fatalf("%d ops", len(ops))
		}
		kind, row := rowOf(t, rels, ops[0])
		if kind != "update" || row["content_b"] != txt("") || row["id"] != txt("k"+string(rune('a'+i))) {
			t.Fatalf("%s %v", kind, row)
		}
	}
	if len(rels) != 1 {
		t.Fatalf("relations sent %d times", len(rels))
	}
	for _, r := range rels {
		if r.SchemaName != "public" || r.TableName != "items" || len(r.Columns) != 3 ||
			r.Columns[0].Type != "text" || r.Columns[1].Type != "varchar" {
			t.Fatalf("relation %v", r)
		}
	}
	last := c.lastLSN
	c.send(&satpb.SatInStopReplicationReq{})
	recvAs[*satpb.SatInStopReplicationResp](c)
	off := env.write("pg_a", itemOp("after-stop", "v", null))
	c.send(&satpb.SatInStartReplicationReq{Lsn: last})
	recvAs[*satpb.SatInStartReplicationResp](c)
	b, ops := c.recvTx(rels)
	if !bytes.Equal(b.Lsn, ServerLSN(off)) || len(ops) != 1 {
		t.Fatalf("after restart got %x", b.Lsn)
	}
	if _, row := rowOf(t, rels, ops[0]); row["id"] != txt("after-stop") {
		t.Fatalf("row %v", row)
	}
	// Delete: full old row.
	off = env.write("pg_a", merge.Op{Kind: merge.OpDelete, Table: "public.items", Key: "after-stop"})
	b, ops = c.recvTx(rels)
	if kind, row := rowOf(t, rels, ops[0]); !bytes.Equal(b.Lsn, ServerLSN(off)) || kind != "delete" ||
		row["id"] != txt("after-stop") || row["content"] != txt("v") {
		t.Fatalf("delete %s %v", kind, row)
	}
}

func TestOutboundFromFirstLSN(t *testing.T) {
	env := newEnv(t, nil)
	for i := 0; i < 5; i++ {
		env.write("pg_a", itemOp(string(rune('a'+i)), "v", null))
	}
	c := env.dial()
	c.handshake("cli", "alice", fromFirst)
	rels := map[uint32]*satpb.SatRelation{}
	for i := uint64(1); i <= 5; i++ {
		b, _ := c.recvTx(rels)
		if !bytes.Equal(b.Lsn, ServerLSN(i)) {
			t.Fatalf("got %x want offset %d", b.Lsn, i)
		}
	}
}
