package engine_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/electric-sql/electric-go/engine/satellite/satpb"
)

// A raw Satellite client sends commit_timestamp 18446744073709551 ms (the
// year 584 million; issue 12): the engine takes it at its own time + 1 s,
// both Postgres get the row, go on replicating each other's later writes,
// and neither connector fails.
func TestFarFutureSatelliteClock(t *testing.T) {
	c := newCluster(t, 2, "CREATE TABLE public.items (id TEXT PRIMARY KEY, content TEXT);")
	c.start(t.TempDir())

	conn, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://127.0.0.1:%s/ws", c.env["WEBSOCKET_PORT"]), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var wmu sync.Mutex // one writer at a time: the test and the reply loop
	write := func(m proto.Message) error {
		f, err := satpb.Encode(m)
		if err != nil {
			return err
		}
		wmu.Lock()
		defer wmu.Unlock()
		return conn.WriteMessage(websocket.BinaryMessage, f)
	}
	send := func(m proto.Message) {
		t.Helper()
		if err := write(m); err != nil {
			t.Fatal(err)
		}
	}
	send(&satpb.SatAuthReq{Id: "far", Token: "alice", Headers: []*satpb.SatAuthHeaderPair{
		{Key: satpb.SatAuthHeader_PROTO_VERSION, Value: satpb.ProtocolVersion}}})
	// The server asks to start the client's stream; answer it and pings.
	started := make(chan struct{})
	var once sync.Once
	go func() {
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			m, err := satpb.Decode(data)
			if err != nil {
				return
			}
			var reply proto.Message
			switch m.(type) {
			case *satpb.SatInStartReplicationReq:
				reply = &satpb.SatInStartReplicationResp{}
			case *satpb.SatPingReq:
				reply = &satpb.SatPingResp{}
			case *satpb.SatErrorResp:
				t.Errorf("server error: %v", m)
				return
			}
			if reply != nil {
				_ = write(reply)
			}
			if _, ok := reply.(*satpb.SatInStartReplicationResp); ok {
				once.Do(func() { close(started) })
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not start the client's stream")
	}
	send(&satpb.SatRelation{SchemaName: "public", TableName: "items", RelationId: 1,
		Columns: []*satpb.SatRelationColumn{{Name: "id", Type: "TEXT"}, {Name: "content", Type: "TEXT"}}})
	row := &satpb.SatOpRow{NullsBitmask: []byte{0}, Values: [][]byte{[]byte("far"), []byte("from the future")}}
	send(&satpb.SatOpLog{Ops: []*satpb.SatTransOp{
		{Op: &satpb.SatTransOp_Begin{Begin: &satpb.SatOpBegin{CommitTimestamp: 18446744073709551, Lsn: []byte{0, 0, 0, 1}}}},
		{Op: &satpb.SatTransOp_Insert{Insert: &satpb.SatOpInsert{RelationId: 1, RowData: row}}},
		{Op: &satpb.SatTransOp_Commit{Commit: &satpb.SatOpCommit{}}},
	}})
	c.waitAll("SELECT id, content FROM items ORDER BY id", "far|from the future")

	// After the second the clamp allows, Postgres writes win and replicate
	// both ways, over and over: no clock is dragged, no connector stops.
	time.Sleep(1100 * time.Millisecond)
	for i := 0; i < 20; i++ {
		c.exec(c.names[i%2], fmt.Sprintf("UPDATE items SET content = 'pg %d' WHERE id = 'far'", i))
		c.exec(c.names[(i+1)%2], fmt.Sprintf("INSERT INTO items VALUES ('k%02d', 'v')", i))
	}
	want := []string{"far|pg 19"}
	for i := 0; i < 20; i++ {
		want = append(want, fmt.Sprintf("k%02d|v", i))
	}
	c.waitAll("SELECT id, content FROM items ORDER BY id COLLATE \"C\"", want...)
	if c.logBuf.Contains("timestamp overflow") {
		t.Errorf("engine log mentions a timestamp overflow:\n%s", c.logBuf.Tail(4000))
	}
	if !strings.Contains(c.logBuf.String(), "commit timestamp ahead of the engine clock") {
		t.Errorf("the clamp was not logged")
	}
	c.checkNoApplyErrors()
	c.checkEngineLog()
}
