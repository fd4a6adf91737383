package satellite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/auth"
	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/satellite/satpb"
	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/engine/sequencer"
	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/engine/txlog/pebblelog"
	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"
)

var itemsTable = schema.Table{
	Schema: "public", Name: "items", OID: 16384,
	Columns: []schema.Column{
		{Name: "id", TypeOID: oidText, TypeName: "text", NotNull: true, Num: 1},
		{Name: "content", TypeOID: oidVarchar, TypeName: "character varying(64)", NotNull: true, Num: 2},
		{Name: "content_b", TypeOID: oidText, TypeName: "text", Num: 3},
	},
	PrimaryKey: []string{"id"},
}

var ownedTable = schema.Table{
	Schema: "public", Name: "owned", OID: 16390,
	Columns: []schema.Column{
		{Name: "id", TypeOID: oidUUID, TypeName: "uuid", NotNull: true, Num: 1},
		{Name: "value", TypeOID: oidText, TypeName: "text", Num: 2},
		{Name: OwnerColumn, TypeOID: oidText, TypeName: "text", Num: 3},
	},
	PrimaryKey: []string{"id"},
}

type testEnv struct {
	t    testing.TB
	log  txlog.Log
	seq  *sequencer.Sequencer
	srv  *Server
	http *httptest.Server
	url  string
	mu   sync.Mutex
	tabs []schema.Table

	closers   []func() // run in reverse order by close
	closeOnce sync.Once
}

// close stops the server, the sink and the log (idempotent).
func (env *testEnv) close() {
	env.closeOnce.Do(func() {
		for i := len(env.closers) - 1; i >= 0; i-- {
			env.closers[i]()
		}
	})
}

func newEnv(t testing.TB, mod func(*Options)) *testEnv {
	t.Helper()
	return newEnvDir(t, t.TempDir(), mod)
}

func newEnvDir(t testing.TB, dir string, mod func(*Options)) *testEnv {
	t.Helper()
	l, err := pebblelog.Open(dir, pebblelog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	env := &testEnv{t: t, log: l, seq: sequencer.New(l, sequencer.Options{}),
		tabs: []schema.Table{itemsTable, ownedTable}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		if err := env.seq.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("sequencer: %v", err)
		}
		close(done)
	}()
	opts := Options{
		Log: TxlogSource(l), Sink: env.seq, Auth: auth.Insecure(), ServerID: "region-1.test",
		Tables: func() []schema.Table {
			env.mu.Lock()
			defer env.mu.Unlock()
			return env.tabs
		},
	}
	if os.Getenv("SATELLITE_TEST_LOG") != "" {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if mod != nil {
		mod(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	env.srv = srv
	env.http = httptest.NewServer(srv.Handler())
	env.url = "ws" + strings.TrimPrefix(env.http.URL, "http") + "/ws"
	env.closers = append(env.closers,
		func() { _ = l.Close() },
		func() { cancel(); <-done },
		func() { env.http.Close() },
		srv.Close,
		env.http.CloseClientConnections,
	)
	t.Cleanup(env.close)
	return env
}

func (env *testEnv) setTables(ts ...schema.Table) {
	env.mu.Lock()
	env.tabs = ts
	env.mu.Unlock()
}

// write merges a transaction from a Postgres-like origin into the log.
func (env *testEnv) write(origin string, ops ...merge.Op) uint64 {
	env.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	off, err := env.seq.Submit(ctx, Item{Source: origin, Position: []byte("p"),
		Tx: merge.Tx{Origin: origin, CommitTime: uint64(time.Now().UnixMicro()), Ops: ops}})
	if err != nil {
		env.t.Fatal(err)
	}
	return off
}

func txt(s string) merge.Value { return merge.Value{Text: s} }

var null = merge.Value{Null: true}

func itemOp(id, content string, b merge.Value) merge.Op {
	return merge.Op{Kind: merge.OpInsert, Table: "public.items", Key: merge.EncodeKey([]merge.Value{txt(id)}),
		Columns: map[string]merge.Value{"id": txt(id), "content": txt(content), "content_b": b}}
}

// row returns the merged live image of a row, nil if absent or deleted.
func (env *testEnv) row(table, id string) map[string]merge.Value {
	env.t.Helper()
	r, err := env.log.Row(table, merge.EncodeKey([]merge.Value{txt(id)}))
	if err != nil {
		env.t.Fatal(err)
	}
	if !r.Live() {
		return nil
	}
	return r.Image()
}

// tclient is a raw protocol client.
type tclient struct {
	t    testing.TB
	conn *websocket.Conn
	// answerPings makes recv answer SatPingReq with SatPingResp{lsn}.
	answerPings bool
	lastLSN     []byte // last server lsn received in a SatOpBegin
	restarting  bool   // got SatInStopReplicationReq, a start request follows
	restarts    int    // stream restarts answered
	wmu         sync.Mutex
}

func (c *tclient) reply(m proto.Message) {
	f, _ := satpb.Encode(m)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.WriteMessage(websocket.BinaryMessage, f)
}

func (env *testEnv) dial() *tclient {
	env.t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(env.url, nil)
	if err != nil {
		env.t.Fatal(err)
	}
	c := &tclient{t: env.t, conn: conn, answerPings: true}
	env.t.Cleanup(func() { _ = conn.Close() })
	return c
}

func (c *tclient) send(m proto.Message) {
	c.t.Helper()
	f, err := satpb.Encode(m)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(websocket.BinaryMessage, f)
}

func (c *tclient) sendRaw(mt int, data []byte) {
	c.t.Helper()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.conn.WriteMessage(mt, data); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next message, or the read error.
func (c *tclient) next() (proto.Message, error) {
	for {
		_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		mt, data, err := c.conn.ReadMessage()
		if err != nil {
			return nil, err
		}
		if mt != websocket.BinaryMessage {
			return nil, fmt.Errorf("server sent message type %d", mt)
		}
		m, err := satpb.Decode(data)
		if err != nil {
			return nil, err
		}
		if _, ok := m.(*satpb.SatInStopReplicationReq); ok && c.answerPings {
			c.restarting = true
			c.reply(&satpb.SatInStopReplicationResp{})
			continue
		}
		if _, ok := m.(*satpb.SatInStartReplicationReq); ok && c.restarting {
			c.restarting = false
			c.restarts++
			c.reply(&satpb.SatInStartReplicationResp{})
			continue
		}
		if _, ok := m.(*satpb.SatPingReq); ok && c.answerPings {
			resp := &satpb.SatPingResp{}
			if c.lastLSN != nil {
				resp.Lsn = c.lastLSN
			}
			c.reply(resp)
			continue
		}
		if l, ok := m.(*satpb.SatOpLog); ok {
			for _, op := range l.Ops {
				if b := op.GetBegin(); b != nil {
					c.lastLSN = b.Lsn
				}
			}
		}
		return m, nil
	}
}

func (c *tclient) recv() proto.Message {
	c.t.Helper()
	m, err := c.next()
	if err != nil {
		c.t.Fatalf("receiving: %v", err)
	}
	return m
}

func recvAs[T proto.Message](c *tclient) T {
	c.t.Helper()
	m := c.recv()
	v, ok := m.(T)
	if !ok {
		var zero T
		c.t.Fatalf("got %T %v, want %T", m, m, zero)
	}
	return v
}

// expectError reads until a SatErrorResp with code, then expects the close.
func (c *tclient) expectError(code satpb.SatErrorResp_ErrorCode) {
	c.t.Helper()
	for {
		m, err := c.next()
		if err != nil {
			c.t.Fatalf("connection ended before SatErrorResp %s: %v", code, err)
		}
		if e, ok := m.(*satpb.SatErrorResp); ok {
			if e.ErrorType != code {
				c.t.Fatalf("got error %s, want %s", e.ErrorType, code)
			}
			break
		}
	}
	c.expectClosed()
}

func (c *tclient) expectClosed() {
	c.t.Helper()
	for {
		m, err := c.next()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "reset") {
				return
			}
			c.t.Fatalf("expected close, got %v", err)
		}
		if _, ok := m.(*satpb.SatErrorResp); ok {
			c.t.Fatalf("second SatErrorResp before close: %v", m)
		}
	}
}

func authReq(id, token string) *satpb.SatAuthReq {
	return &satpb.SatAuthReq{Id: id, Token: token, Headers: []*satpb.SatAuthHeaderPair{
		{Key: satpb.SatAuthHeader_PROTO_VERSION, Value: satpb.ProtocolVersion}}}
}

// auth authenticates and consumes the server's SatInStartReplicationReq.
func (c *tclient) auth(id, user string) *satpb.SatInStartReplicationReq {
	c.t.Helper()
	c.send(authReq(id, user))
	resp := recvAs[*satpb.SatAuthResp](c)
	if resp.Id != "region-1.test" {
		c.t.Fatalf("auth resp id %q", resp.Id)
	}
	return recvAs[*satpb.SatInStartReplicationReq](c)
}

// handshake authenticates, starts both streams like 0.4.3 does.
func (c *tclient) handshake(id, user string, start *satpb.SatInStartReplicationReq) {
	c.t.Helper()
	c.auth(id, user)
	c.send(&satpb.SatInStartReplicationResp{})
	if start != nil {
		c.send(start)
		recvAs[*satpb.SatInStartReplicationResp](c)
	}
}

var fromFirst = &satpb.SatInStartReplicationReq{Options: []satpb.SatInStartReplicationReq_Option{satpb.SatInStartReplicationReq_FIRST_LSN}}

var clientItems = &satpb.SatRelation{SchemaName: "public", TableName: "items", RelationId: 0,
	Columns: []*satpb.SatRelationColumn{{Name: "id", Type: "TEXT"}, {Name: "content", Type: "TEXT"}, {Name: "content_b", Type: "TEXT"}}}

func begin(lsn []byte, ms uint64) *satpb.SatTransOp {
	return &satpb.SatTransOp{Op: &satpb.SatTransOp_Begin{Begin: &satpb.SatOpBegin{CommitTimestamp: ms, Lsn: lsn}}}
}

func commit() *satpb.SatTransOp {
	return &satpb.SatTransOp{Op: &satpb.SatTransOp_Commit{Commit: &satpb.SatOpCommit{}}}
}

func insert(rel uint32, vals ...merge.Value) *satpb.SatTransOp {
	return &satpb.SatTransOp{Op: &satpb.SatTransOp_Insert{Insert: &satpb.SatOpInsert{RelationId: rel, RowData: encodeRow(vals)}}}
}

func del(rel uint32, vals ...merge.Value) *satpb.SatTransOp {
	return &satpb.SatTransOp{Op: &satpb.SatTransOp_Delete{Delete: &satpb.SatOpDelete{RelationId: rel, OldRowData: encodeRow(vals)}}}
}

func oplog(ops ...*satpb.SatTransOp) *satpb.SatOpLog { return &satpb.SatOpLog{Ops: ops} }

func be32(n uint32) []byte { return []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)} }

func nowMs() uint64 { return uint64(time.Now().UnixMilli()) }

// recvTx reads relations and SatOpLog messages until one whole transaction
// has arrived, returning its begin and ops (relations are checked to come
// first and recorded in rels).
func (c *tclient) recvTx(rels map[uint32]*satpb.SatRelation) (*satpb.SatOpBegin, []*satpb.SatTransOp) {
	c.t.Helper()
	var b *satpb.SatOpBegin
	var ops []*satpb.SatTransOp
	for {
		switch m := c.recv().(type) {
		case *satpb.SatRelation:
			if b != nil {
				c.t.Fatalf("relation inside a transaction")
			}
			rels[m.RelationId] = m
		case *satpb.SatOpLog:
			for _, op := range m.Ops {
				switch o := op.Op.(type) {
				case *satpb.SatTransOp_Begin:
					b = o.Begin
				case *satpb.SatTransOp_Commit:
					if string(o.Commit.Lsn) != string(b.Lsn) {
						c.t.Fatalf("commit lsn %x != begin lsn %x", o.Commit.Lsn, b.Lsn)
					}
					return b, ops
				default:
					if b == nil {
						c.t.Fatalf("op before begin")
					}
					if rels[relationID(op)] == nil {
						c.t.Fatalf("op on unannounced relation %d", relationID(op))
					}
					ops = append(ops, op)
				}
			}
		default:
			c.t.Fatalf("unexpected %T %v", m, m)
		}
	}
}

func relationID(op *satpb.SatTransOp) uint32 {
	switch o := op.Op.(type) {
	case *satpb.SatTransOp_Insert:
		return o.Insert.RelationId
	case *satpb.SatTransOp_Update:
		return o.Update.RelationId
	case *satpb.SatTransOp_Delete:
		return o.Delete.RelationId
	}
	return 0
}

// rowOf decodes an op's row by its relation into name → value.
func rowOf(t *testing.T, rels map[uint32]*satpb.SatRelation, op *satpb.SatTransOp) (kind string, row map[string]merge.Value) {
	t.Helper()
	var data *satpb.SatOpRow
	switch o := op.Op.(type) {
	case *satpb.SatTransOp_Update:
		if o.Update.OldRowData != nil {
			t.Fatal("update carries old_row_data")
		}
		kind, data = "update", o.Update.RowData
	case *satpb.SatTransOp_Delete:
		kind, data = "delete", o.Delete.OldRowData
	case *satpb.SatTransOp_Insert:
		kind, data = "insert", o.Insert.RowData
	}
	rel := rels[relationID(op)]
	vals, err := decodeRow(data, len(rel.Columns))
	if err != nil {
		t.Fatal(err)
	}
	row = map[string]merge.Value{}
	for i, c := range rel.Columns {
		row[c.Name] = vals[i]
	}
	return kind, row
}
