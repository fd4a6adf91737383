// A session is one Satellite connection from upgrade to close: its state,
// its end (with or without an error frame), and the dispatch of what the
// client sends.

package satellite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/electric-sql/electric-go/engine/satellite/satpb"
	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"
)

// States of the client→server stream (spec §3.3).
const (
	inNone int32 = iota
	inRequested
	inActive
	inPaused
)

// protocolError ends a session with a SatErrorResp of its code.
type protocolError struct {
	code satpb.SatErrorResp_ErrorCode
	err  error
}

func (e *protocolError) Error() string { return fmt.Sprintf("%s: %v", e.code, e.err) }

func perr(code satpb.SatErrorResp_ErrorCode, format string, args ...any) error {
	return &protocolError{code: code, err: fmt.Errorf(format, args...)}
}

// errCloseSilently ends a session without an error frame.
var errCloseSilently = errors.New("closing without error frame")

type session struct {
	srv    *Server
	conn   *websocket.Conn
	remote string
	since  time.Time
	log    *slog.Logger

	// ctx ends every goroutine of the session except the writer.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	out        chan outFrame
	writerDone chan struct{}
	closeOnce  sync.Once // hard close of the socket
	failOnce   sync.Once
	failed     atomic.Bool // an error frame is queued as the final frame

	lastRecv atomic.Int64 // unix nanos of the last message processed
	authed   atomic.Bool
	solicit  chan struct{} // ask the pinger for an ack ping

	// Set once at authentication.
	clientID string
	userID   string
	source   string // "satellite:<client id>"
	startLSN []byte // durable client position when the session started
	claimed  bool
	// attempt is sequencer.Item.Attempt of this session's items: after a
	// failed one the sequencer fails the rest, and the session is closed.
	attempt uint64

	// Read loop only.
	relations  map[uint32]*inRelation
	tx         *pendingTx
	enqueued   []byte // highest client lsn handed to the sink (or durable at start)
	gapAfter   []byte // lsn after which a gap made us restart the stream
	seenStored uint64 // the client's applied offset last stored (rewind.go)
	acks       chan *ackItem
	inflight   sync.WaitGroup

	// Outbound stream: started and stopped by the read loop; relSent is
	// used by one outbound goroutine at a time and survives stop/start.
	outCancel context.CancelFunc
	outDone   chan struct{}
	relSent   map[string]*sentRelation
	// outMu orders log entries and compensations on the outbound stream
	// (and guards relSent between them).
	outMu sync.Mutex
	comps chan []compRow // refused rows to send back, after their ack
	// tablesKick wakes the outbound stream when the server's tables change
	// (Server.TablesChanged), to backfill what the client gained.
	tablesKick chan struct{}

	inState   atomic.Int32
	kicking   atomic.Bool   // a stop+start of the client's stream is under way
	received  chan struct{} // a client transaction arrived (for the stall check)
	waiting   atomic.Bool   // client transactions held back until the tables are known
	outActive atomic.Bool
	processed atomic.Uint64 // last log offset processed for the client
	delivered atomic.Uint64 // last log offset actually sent to the client
	acked     atomic.Uint64 // last log offset the client acknowledged
	txIn      atomic.Uint64
	txOut     atomic.Uint64
	dups      atomic.Uint64
	rejected  atomic.Uint64
	resyncs   atomic.Uint64

	mu         sync.Mutex
	lastAckLSN []byte // last client lsn acked on this connection
}

func newSession(srv *Server, conn *websocket.Conn, remote string) *session {
	s := &session{
		srv:        srv,
		conn:       conn,
		remote:     remote,
		since:      time.Now(),
		log:        srv.opts.Logger.With("remote", remote),
		out:        make(chan outFrame, srv.opts.OutboundQueue),
		writerDone: make(chan struct{}),
		solicit:    make(chan struct{}, 1),
		received:   make(chan struct{}, 1),
		relations:  map[uint32]*inRelation{},
		relSent:    map[string]*sentRelation{},
		tablesKick: make(chan struct{}, 1),
		acks:       make(chan *ackItem, 1024),
		comps:      make(chan []compRow, compQueue),
		attempt:    rand.Uint64(),
	}
	s.ctx, s.cancel = context.WithCancel(srv.base)
	s.lastRecv.Store(s.since.UnixNano())
	return s
}

func (s *session) run() {
	go s.writer()
	s.wg.Add(2)
	go s.pinger()
	go s.compensator()
	stop := context.AfterFunc(s.ctx, func() {
		// Server shutdown: unblock the read loop.
		if s.srv.base.Err() != nil {
			s.hardClose()
		}
	})
	err := s.readLoop()
	s.dropTx() // a transaction cut short: its spill file goes
	stop()
	var pe *protocolError
	switch {
	case errors.As(err, &pe):
		s.fail(pe)
	case errors.Is(err, errCloseSilently):
		s.log.Info("satellite session closed", "client", s.clientID, "reason", err)
	case err != nil:
		s.log.Debug("satellite connection ended", "client", s.clientID, "err", err)
	}
	s.cancel()
	if s.failed.Load() {
		// Let the writer deliver the error frame; it closes the socket.
		select {
		case <-s.writerDone:
		case <-time.After(s.srv.opts.WriteTimeout + time.Second):
		}
	}
	s.hardClose()
	<-s.writerDone
	s.stopOutbound()
	s.wg.Wait()
	if s.claimed {
		// The next session of this client reads the durable position: wait
		// until every transaction handed to the sink is settled.
		s.inflight.Wait()
		s.srv.release(s.clientID, s)
	}
}

// fail queues the error frame as the last frame and stops the session.
func (s *session) fail(pe *protocolError) {
	s.failOnce.Do(func() {
		s.log.Info("satellite session error", "client", s.who(), "code", pe.code.String(), "err", pe.err)
		s.failed.Store(true)
		s.cancel()
		frame, err := satpb.Encode(&satpb.SatErrorResp{ErrorType: pe.code})
		if err != nil {
			s.hardClose()
			return
		}
		t := time.NewTimer(s.srv.opts.WriteTimeout)
		defer t.Stop()
		select {
		case s.out <- outFrame{data: frame, final: true}:
		case <-s.writerDone:
		case <-t.C:
			s.hardClose()
		}
	})
}

// failAsync is fail for goroutines other than the read loop: it makes the
// read loop return too.
func (s *session) failAsync(pe *protocolError) {
	s.fail(pe)
	// The writer closes the socket after the error frame, which ends the
	// read loop; if the writer is gone, close it here.
	select {
	case <-s.writerDone:
		s.hardClose()
	default:
	}
}

// who is the client id once authenticated (safe from any goroutine).
func (s *session) who() string {
	if s.authed.Load() {
		return s.clientID
	}
	return ""
}

func (s *session) hardClose() {
	s.closeOnce.Do(func() { _ = s.conn.Close() })
}

func (s *session) handle(msg proto.Message) error {
	if !s.authed.Load() {
		if m, ok := msg.(*satpb.SatAuthReq); ok {
			return s.handleAuth(m)
		}
		return perr(satpb.SatErrorResp_AUTH_REQUIRED, "%T before authentication", msg)
	}
	switch m := msg.(type) {
	case *satpb.SatPingReq:
		resp := &satpb.SatPingResp{}
		s.mu.Lock()
		if s.lastAckLSN != nil {
			resp.Lsn = s.lastAckLSN
		}
		s.mu.Unlock()
		return s.send(s.ctx, resp)
	case *satpb.SatPingResp:
		return s.handlePingResp(m)
	case *satpb.SatInStartReplicationReq:
		return s.startOutbound(m)
	case *satpb.SatInStopReplicationReq:
		return s.stopOutboundReq()
	case *satpb.SatInStartReplicationResp:
		if s.kicking.Load() {
			s.kicking.Store(false)
			return nil
		}
		if st := s.inState.Load(); st == inRequested || st == inActive {
			s.inState.Store(inActive)
			return nil
		}
		return perr(satpb.SatErrorResp_INVALID_REQUEST, "start replication response without a request")
	case *satpb.SatInStopReplicationResp:
		if s.kicking.Load() {
			// First half of a restart: the stream stays active.
			return nil
		}
		s.inState.Store(inPaused)
		s.dropTx()
		return nil
	case *satpb.SatRelation:
		return s.handleRelation(m)
	case *satpb.SatOpLog:
		return s.handleOpLog(m)
	case *satpb.SatErrorResp:
		return fmt.Errorf("client sent error %s: %w", m.ErrorType, errCloseSilently)
	}
	return perr(satpb.SatErrorResp_INVALID_REQUEST, "unexpected %T", msg)
}

func (s *session) info(head uint64) SessionInfo {
	i := SessionInfo{
		RemoteAddr:     s.remote,
		ConnectedAt:    s.since,
		Authenticated:  s.authed.Load(),
		InboundActive:  s.inState.Load() == inActive,
		OutboundActive: s.outActive.Load(),
		OutboundOffset: s.processed.Load(),
		AckedOffset:    s.acked.Load(),
		TxIn:           s.txIn.Load(),
		TxOut:          s.txOut.Load(),
		Duplicates:     s.dups.Load(),
		RejectedOps:    s.rejected.Load(),
		Resyncs:        s.resyncs.Load(),
	}
	if i.Authenticated {
		i.ClientID, i.UserID = s.clientID, s.userID
	}
	s.mu.Lock()
	i.InboundLSN = append([]byte(nil), s.lastAckLSN...)
	s.mu.Unlock()
	if i.InboundLSN == nil && i.Authenticated {
		i.InboundLSN = append([]byte(nil), s.startLSN...)
	}
	if i.OutboundActive && head > i.OutboundOffset {
		i.Lag = head - i.OutboundOffset
	}
	return i
}
