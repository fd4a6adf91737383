package satellite

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/electric-sql/electric-go/engine/auth"
	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/satellite/satpb"
	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/internal/fuzzseed"
)

// The session fuzz target drives one session through the seam its read
// loop uses: each frame is decoded (satpb.Decode) and handled
// (session.handle), and the session ends as run ends it. There is no
// socket: a stand-in writer collects what the session sends, the log is
// empty at offset fuzzHead and the sink makes every transaction durable at
// once. Everything in between (state machine, acker, outbound start and
// stop) is the real code.

const fuzzHead = 3

type fuzzLog struct{}

func (fuzzLog) Head() uint64                           { return fuzzHead }
func (fuzzLog) NewReader(uint64) Reader                { return idleReader{} }
func (fuzzLog) Row(string, string) (*merge.Row, error) { return nil, nil }
func (fuzzLog) Position(string) ([]byte, error)        { return nil, nil }
func (fuzzLog) Owner(string) (string, error)           { return "", nil }

// idleReader is a log with nothing after the head.
type idleReader struct{}

func (idleReader) Next(ctx context.Context) (*txlog.Entry, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (idleReader) Close() {}

// fuzzSink makes items durable as they come and records their positions.
type fuzzSink struct {
	mu        sync.Mutex
	positions [][]byte
}

func (s *fuzzSink) Enqueue(_ context.Context, it Item) error {
	if it.Owner != "" && it.Position == nil {
		// The binding of the client id at auth, not a transaction.
		it.Done(0, nil)
		return nil
	}
	s.mu.Lock()
	s.positions = append(s.positions, it.Position)
	s.mu.Unlock()
	it.Done(1, nil)
	return nil
}

// splitFrames reads a fuzz input as frames, each prefixed by its length as
// 2 bytes big-endian (a short last frame takes what is left).
func splitFrames(data []byte) [][]byte {
	var frames [][]byte
	for len(data) >= 2 {
		n := int(binary.BigEndian.Uint16(data))
		data = data[2:]
		n = min(n, len(data))
		frames = append(frames, data[:n])
		data = data[n:]
	}
	return frames
}

func joinFrames(t testing.TB, msgs ...proto.Message) []byte {
	var out []byte
	for _, m := range msgs {
		f, err := satpb.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(f)))
		out = append(out, f...)
	}
	return out
}

// sessionSeeds are conversations of the test client (harness_test.go): a
// 0.4.3 handshake, client transactions, resends, gaps, stop and restart, and
// the error cases of ws_test.go.
func sessionSeeds(t testing.TB) []fuzzseed.Seed {
	ms := uint64(1700000000000)
	startResp := &satpb.SatInStartReplicationResp{}
	auth := authReq("client-1", "alice")
	tx := func(lsn uint32, ops ...*satpb.SatTransOp) *satpb.SatOpLog {
		return oplog(append(append([]*satpb.SatTransOp{begin(be32(lsn), ms)}, ops...), commit())...)
	}
	seed := func(name string, msgs ...proto.Message) fuzzseed.Seed {
		return fuzzseed.Seed{Name: name, Args: []any{joinFrames(t, msgs...)}}
	}
	return []fuzzseed.Seed{
		seed("handshake", auth, startResp, fromFirst, &satpb.SatPingReq{}, &satpb.SatPingResp{Lsn: ServerLSN(2)}),
		seed("client-transactions", auth, startResp, clientItems,
			tx(1, insert(0, txt("a"), txt("hello"), null)),
			tx(3, insert(0, txt("b"), txt("x"), txt("")), del(0, txt("a"), txt("hello"), null)),
			&satpb.SatPingReq{}),
		seed("resend-and-gap", auth, startResp, clientItems, clientOwned,
			tx(1, insert(0, txt("a"), txt("1"), null)),
			tx(1, insert(0, txt("a"), txt("1"), null)),
			tx(9, insert(1, txt("o"), txt("v"), txt("alice")), insert(1, txt("p"), txt("v"), txt("bob"))),
			&satpb.SatInStopReplicationResp{}, startResp,
			tx(9, insert(1, txt("o"), txt("v"), txt("alice")))),
		seed("transaction-over-frames", auth, startResp, clientItems,
			oplog(begin(be32(2), ms), insert(0, txt("a"), txt("1"), null)),
			oplog(insert(0, txt("b"), txt("2"), null)),
			oplog(commit())),
		seed("outbound-stop-start", auth, startResp,
			&satpb.SatInStartReplicationReq{Lsn: ServerLSN(2)}, &satpb.SatInStopReplicationReq{},
			&satpb.SatInStartReplicationReq{Options: []satpb.SatInStartReplicationReq_Option{satpb.SatInStartReplicationReq_LAST_LSN}}),
		seed("before-auth", &satpb.SatPingReq{}),
		seed("bad-version", &satpb.SatAuthReq{Id: "c", Token: "t", Headers: []*satpb.SatAuthHeaderPair{
			{Key: satpb.SatAuthHeader_PROTO_VERSION, Value: "Electric.Satellite.v1_0"}}}),
		seed("unknown-relation", auth, startResp, tx(1, insert(7, txt("a")))),
		seed("commit-without-begin", auth, startResp, oplog(commit())),
		seed("start-beyond-head", auth, &satpb.SatInStartReplicationReq{Lsn: ServerLSN(fuzzHead + 1)}),
		seed("client-error", auth, &satpb.SatErrorResp{ErrorType: satpb.SatErrorResp_INTERNAL}),
		{Name: "undecodable-frame", Args: []any{append(joinFrames(t, auth), 0, 3, 0xff, 1, 2)}},
	}
}

// FuzzSessionInbound feeds frames in any order to a session. The session
// never panics or hangs; it ends every conversation it refuses with one
// SatErrorResp, the last frame it sends; it sends only server messages;
// its acks never go down and the transactions it hands to the sink have
// increasing client lsns; what it keeps (relations, the open transaction)
// and what it sends are bounded by what it was sent.
func FuzzSessionInbound(f *testing.F) {
	seeds := sessionSeeds(f)
	fuzzseed.Sync(f, seeds)
	f.Fuzz(func(t *testing.T, data []byte) {
		runSession(t, splitFrames(data))
	})
}

// sessionRun is what one conversation produced.
type sessionRun struct {
	sent  []proto.Message // frames the session sent, decoded
	taken [][]byte        // client lsns of the transactions handed to the sink
}

func runSession(t *testing.T, frames [][]byte) sessionRun {
	sink := &fuzzSink{}
	srv, err := New(Options{
		Log: fuzzLog{}, Sink: sink, Auth: auth.Insecure(), ServerID: "fuzz",
		Tables:       func() []schema.Table { return []schema.Table{itemsTable, ownedTable} },
		TakeoverWait: time.Millisecond,
		ResendAfter:  -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	s := newSession(srv, nil, "fuzz")
	s.closeOnce.Do(func() {}) // no socket to close

	// Stand-in for session.writer: collects frames until the final one, or
	// until the session ends without an error frame.
	var sent [][]byte
	final := false
	go func() {
		defer close(s.writerDone)
		done := s.ctx.Done()
		for {
			select {
			case fr := <-s.out:
				sent = append(sent, fr.data)
				if fr.next != nil {
					sent = append(sent, fr.next)
				}
				if fr.final {
					final = true
					return
				}
			case <-done:
				if !s.failed.Load() {
					// The real writer drops what is still queued; keep it,
					// so the checks see everything the session said.
					for {
						select {
						case fr := <-s.out:
							sent = append(sent, fr.data)
							if fr.next != nil {
								sent = append(sent, fr.next)
							}
						default:
							return
						}
					}
				}
				done = nil
			}
		}
	}()

	var relations, rowOps, commits int
	var end error
	for _, frame := range frames {
		msg, err := satpb.Decode(frame)
		if err != nil {
			end = perr(satpb.SatErrorResp_INTERNAL, "%w", err)
			break
		}
		switch m := msg.(type) {
		case *satpb.SatRelation:
			relations++
		case *satpb.SatOpLog:
			for _, op := range m.Ops {
				switch op.Op.(type) {
				case *satpb.SatTransOp_Commit:
					commits++
				case *satpb.SatTransOp_Insert, *satpb.SatTransOp_Update, *satpb.SatTransOp_Delete:
					rowOps++
				}
			}
		}
		if end = s.handle(msg); end != nil {
			break
		}
	}
	var pe *protocolError
	switch {
	case end == nil:
	case errors.As(end, &pe):
		s.fail(pe)
	case errors.Is(end, errCloseSilently):
	default:
		t.Fatalf("session ended with %v: neither a protocol error nor the client's", end)
	}
	if len(s.relations) > relations {
		t.Fatalf("%d relations kept, %d received", len(s.relations), relations)
	}
	if s.tx != nil && len(s.tx.ops) > rowOps {
		t.Fatalf("open transaction holds %d ops, %d received", len(s.tx.ops), rowOps)
	}

	if end == nil && s.authed.Load() {
		// A session that goes on acks every transaction it took.
		sink.mu.Lock()
		var want []byte
		if n := len(sink.positions); n > 0 {
			want = sink.positions[n-1]
		}
		sink.mu.Unlock()
		deadline := time.Now().Add(10 * time.Second)
		for {
			s.mu.Lock()
			acked := compareClientLSN(s.lastAckLSN, want) >= 0
			s.mu.Unlock()
			if acked {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("transaction %x taken but not acked", want)
			}
			time.Sleep(time.Millisecond)
		}
	}

	// As session.run ends a session.
	s.cancel()
	select {
	case <-s.writerDone:
	case <-time.After(10 * time.Second):
		t.Fatal("session did not stop sending")
	}
	ended := make(chan struct{})
	go func() {
		s.stopOutbound()
		s.wg.Wait()
		if s.claimed {
			s.inflight.Wait()
			srv.release(s.clientID, s)
		}
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("session goroutines did not end")
	}

	if limit := 2*(len(frames)+commits) + 2; len(sent) > limit {
		t.Fatalf("sent %d frames for %d received", len(sent), len(frames))
	}
	var run sessionRun
	var lastAck []byte
	for i, fr := range sent {
		m, err := satpb.Decode(fr)
		if err != nil {
			t.Fatalf("sent an undecodable frame %x: %v", fr, err)
		}
		run.sent = append(run.sent, m)
		switch m := m.(type) {
		case *satpb.SatErrorResp:
			if pe == nil || m.ErrorType != pe.code || i != len(sent)-1 || !final {
				t.Fatalf("error frame %v at %d of %d (ended with %v)", m, i, len(sent), end)
			}
		case *satpb.SatPingResp:
			if m.Lsn != nil {
				if compareClientLSN(m.Lsn, lastAck) < 0 {
					t.Fatalf("ack %x after %x", m.Lsn, lastAck)
				}
				lastAck = m.Lsn
			}
		case *satpb.SatAuthResp, *satpb.SatPingReq, *satpb.SatInStartReplicationReq, *satpb.SatInStartReplicationResp,
			*satpb.SatInStopReplicationReq, *satpb.SatInStopReplicationResp, *satpb.SatOpLog, *satpb.SatRelation:
		default:
			t.Fatalf("sent %T, not a server message", m)
		}
	}
	if pe != nil && !final {
		t.Fatalf("protocol error %v without an error frame", pe)
	}
	for i := 1; i < len(sink.positions); i++ {
		if compareClientLSN(sink.positions[i-1], sink.positions[i]) >= 0 {
			t.Fatalf("client transaction %x taken after %x", sink.positions[i], sink.positions[i-1])
		}
	}
	run.taken = sink.positions
	return run
}

// The harness reaches the states the seeds are for: a conversation that
// authenticates and sends transactions gets them taken and acked, and a
// refused one gets its error frame. Otherwise the fuzz target would pass
// while exercising nothing.
func TestSessionFuzzHarness(t *testing.T) {
	seeds := map[string][]byte{}
	for _, s := range sessionSeeds(t) {
		seeds[s.Name] = s.Args[0].([]byte)
	}
	run := runSession(t, splitFrames(seeds["client-transactions"]))
	if len(run.taken) != 2 || string(run.taken[1]) != string(be32(3)) {
		t.Fatalf("transactions taken: %x", run.taken)
	}
	var acks []string
	for _, m := range run.sent {
		if p, ok := m.(*satpb.SatPingResp); ok && p.Lsn != nil {
			acks = append(acks, fmt.Sprintf("%x", p.Lsn))
		}
	}
	// The last ack may be cut off by the end of the session (the acker
	// records it, then queues it).
	if len(acks) == 0 || acks[0] != "00000001" {
		t.Fatalf("acks %v in %v", acks, run.sent)
	}
	run = runSession(t, splitFrames(seeds["before-auth"]))
	if len(run.sent) != 1 || run.sent[0].(*satpb.SatErrorResp).ErrorType != satpb.SatErrorResp_AUTH_REQUIRED {
		t.Fatalf("before auth: %v", run.sent)
	}
	run = runSession(t, splitFrames(seeds["resend-and-gap"]))
	if len(run.taken) != 2 {
		t.Fatalf("resend and gap: taken %x, sent %v", run.taken, run.sent)
	}
}
