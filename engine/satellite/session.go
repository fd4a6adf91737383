package satellite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/electric-sql/electric-go/engine/satellite/satpb"
	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"
)

// Protocol version of this server (satpb.ProtocolVersion).
const serverMajor, serverMinor = 0, 2

// OwnerColumn is the column of the ownership filter (spec §3.7).
const OwnerColumn = "electric_user_id"

// After a client was sent transactions it is asked for its position (a
// ping) after ackPingDelay, which coalesces a burst, and at most once per
// ackPingEvery, which bounds the pings a busy stream adds.
const (
	ackPingDelay = 50 * time.Millisecond
	ackPingEvery = 200 * time.Millisecond
)

// States of the client→server stream (spec §3.3).
const (
	inNone int32 = iota
	inRequested
	inActive
	inPaused
)

type outFrame struct {
	data  []byte
	next  []byte // a second frame sent in the same TCP segment
	final bool   // close the socket after writing it
}

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

	// Read loop only.
	relations map[uint32]*inRelation
	tx        *pendingTx
	enqueued  []byte // highest client lsn handed to the sink (or durable at start)
	gapAfter  []byte // lsn after which a gap made us restart the stream
	acks      chan *ackItem
	inflight  sync.WaitGroup

	// Outbound stream: started and stopped by the read loop; relSent is
	// used by one outbound goroutine at a time and survives stop/start.
	outCancel context.CancelFunc
	outDone   chan struct{}
	relSent   map[string]*sentRelation

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
		acks:       make(chan *ackItem, 1024),
	}
	s.ctx, s.cancel = context.WithCancel(srv.base)
	s.lastRecv.Store(s.since.UnixNano())
	return s
}

func (s *session) run() {
	go s.writer()
	s.wg.Add(1)
	go s.pinger()
	stop := context.AfterFunc(s.ctx, func() {
		// Server shutdown: unblock the read loop.
		if s.srv.base.Err() != nil {
			s.hardClose()
		}
	})
	err := s.readLoop()
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

func (s *session) writer() {
	defer close(s.writerDone)
	done := s.ctx.Done()
	var giveUp <-chan time.Time
	for {
		select {
		case f := <-s.out:
			_ = s.conn.SetWriteDeadline(time.Now().Add(s.srv.opts.WriteTimeout))
			if err := s.writeFrame(f); err != nil {
				s.log.Debug("satellite write failed", "err", err)
				s.hardClose()
				return
			}
			if f.final {
				_ = s.conn.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.ClosePolicyViolation, ""), time.Now().Add(time.Second))
				s.hardClose()
				return
			}
		case <-done:
			if !s.failed.Load() {
				s.hardClose()
				return
			}
			// The error frame follows the frames already queued.
			done = nil
			giveUp = time.After(s.srv.opts.WriteTimeout)
		case <-giveUp:
			s.hardClose()
			return
		}
	}
}

func (s *session) writeFrame(f outFrame) error {
	if f.next == nil {
		return s.conn.WriteMessage(websocket.BinaryMessage, f.data)
	}
	// The 0.4.3 client must handle both frames in one socket read: between
	// a SatInStopReplicationReq and the next SatInStartReplicationReq a
	// local write would crash it.
	nc := s.conn.NetConn()
	cork(nc, true)
	defer cork(nc, false)
	if err := s.conn.WriteMessage(websocket.BinaryMessage, f.data); err != nil {
		return err
	}
	return s.conn.WriteMessage(websocket.BinaryMessage, f.next)
}

var errSessionClosed = errors.New("session closed")

// send queues a frame, waiting while the queue is full (back-pressure).
func (s *session) send(ctx context.Context, m proto.Message) error {
	frame, err := satpb.Encode(m)
	if err != nil {
		return err
	}
	return s.sendFrame(ctx, frame)
}

func (s *session) sendFrame(ctx context.Context, frame []byte) error {
	return s.queue(ctx, outFrame{data: frame})
}

func (s *session) queue(ctx context.Context, f outFrame) error {
	select {
	case s.out <- f:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sending frame: %w", ctx.Err())
	case <-s.writerDone:
		return errSessionClosed
	}
}

func (s *session) readLoop() error {
	max := s.srv.opts.MaxFrameBytes
	for {
		mt, r, err := s.conn.NextReader()
		if err != nil {
			return fmt.Errorf("reading frame: %w", err)
		}
		if mt != websocket.BinaryMessage {
			return perr(satpb.SatErrorResp_INTERNAL, "text frames are not part of the protocol")
		}
		data, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
		if err != nil {
			return fmt.Errorf("reading frame: %w", err)
		}
		if len(data) > max {
			return perr(satpb.SatErrorResp_INVALID_REQUEST, "frame larger than %d bytes", max)
		}
		msg, err := satpb.Decode(data)
		if err != nil {
			return perr(satpb.SatErrorResp_INTERNAL, "%w", err)
		}
		if err := s.handle(msg); err != nil {
			return err
		}
		s.lastRecv.Store(time.Now().UnixNano())
	}
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
		s.tx = nil
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

var versionRe = regexp.MustCompile(`^v(\d+)_(\d+)$`)

// parseVersion reads "Electric.Satellite.v0_2" as (0, 2).
func parseVersion(v string) (major, minor int, ok bool) {
	last := v[strings.LastIndexByte(v, '.')+1:]
	m := versionRe.FindStringSubmatch(last)
	if m == nil {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(m[1])
	minor, err2 := strconv.Atoi(m[2])
	return major, minor, err1 == nil && err2 == nil
}

func (s *session) handleAuth(m *satpb.SatAuthReq) error {
	if m.Id == "" || m.Token == "" {
		return perr(satpb.SatErrorResp_INVALID_REQUEST, "auth request without id or token")
	}
	// The token is checked before the headers (spec §3.2).
	user, err := s.srv.opts.Auth.Validate(m.Token)
	if err != nil {
		return perr(satpb.SatErrorResp_AUTH_REQUIRED, "client %q: %w", m.Id, err)
	}
	if len(m.Headers) == 0 {
		return perr(satpb.SatErrorResp_INVALID_REQUEST, "auth request without headers")
	}
	version := ""
	for _, h := range m.Headers {
		if h.Key == satpb.SatAuthHeader_PROTO_VERSION {
			version = h.Value
		}
	}
	major, minor, ok := parseVersion(version)
	if !ok || major != serverMajor || minor > serverMinor {
		return perr(satpb.SatErrorResp_PROTO_VSN_MISSMATCH, "client protocol %q, server %s", version, satpb.ProtocolVersion)
	}
	if err := s.srv.claim(s.ctx, m.Id, s); err != nil {
		return perr(satpb.SatErrorResp_INVALID_REQUEST, "%w", err)
	}
	s.claimed = true
	s.clientID, s.userID, s.source = m.Id, user, "satellite:"+m.Id
	pos, err := s.srv.opts.Log.Position(s.source)
	if err != nil {
		return perr(satpb.SatErrorResp_INTERNAL, "reading position of %s: %w", s.source, err)
	}
	s.enqueued = pos
	s.startLSN = pos
	authResp, err := satpb.Encode(&satpb.SatAuthResp{Id: s.srv.opts.ServerID})
	if err != nil {
		return err
	}
	// Ask the client to stream its writes (spec §3.3). The 0.4.3 client
	// ignores lsn and batch size and re-sends everything it has not had
	// acked; a transaction we already hold is recognised by its lsn.
	startReq, err := satpb.Encode(&satpb.SatInStartReplicationReq{
		Lsn:           pos,
		Options:       []satpb.SatInStartReplicationReq_Option{satpb.SatInStartReplicationReq_SYNC_MODE},
		SyncBatchSize: 1,
	})
	if err != nil {
		return err
	}
	s.authed.Store(true)
	s.log.Info("satellite authenticated", "client", s.clientID, "user", user)
	s.wg.Add(1)
	go s.acker()
	s.inState.Store(inRequested)
	// Both in one segment: a 0.4.3 client that writes locally between the
	// two crashes ("enqueuing a transaction while outbound replication has
	// not started").
	return s.queue(s.ctx, outFrame{data: authResp, next: startReq})
}

func (s *session) handlePingResp(m *satpb.SatPingResp) error {
	if m.Lsn == nil {
		return nil
	}
	if len(m.Lsn) == 0 {
		return perr(satpb.SatErrorResp_INVALID_REQUEST, "ping response with an empty lsn")
	}
	off, err := OffsetOfServerLSN(m.Lsn)
	if err != nil {
		return perr(satpb.SatErrorResp_INVALID_REQUEST, "%w", err)
	}
	s.ackOffset(off)
	if s.acked.Load() < s.delivered.Load() {
		s.askAck()
	}
	return nil
}

// ackOffset records that the client has applied the log up to off.
func (s *session) ackOffset(off uint64) {
	if head := s.srv.opts.Log.Head(); off > head {
		off = head
	}
	for {
		cur := s.acked.Load()
		if off <= cur || s.acked.CompareAndSwap(cur, off) {
			return
		}
	}
}

func (s *session) askAck() {
	select {
	case s.solicit <- struct{}{}:
	default:
	}
}

// pinger keeps the connection alive (spec §3.1) and asks the client for
// its position after it was sent transactions: its acks are the causal
// context of its next writes, so they should not lag behind.
func (s *session) pinger() {
	defer s.wg.Done()
	interval := s.srv.opts.PingInterval
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var livePing time.Time // when the liveness ping was sent; zero if none
	var solicitTimer <-chan time.Time
	var lastSolicit time.Time
	ping := func() bool {
		return s.send(s.ctx, &satpb.SatPingReq{}) == nil
	}
	var resend *time.Timer
	var resendC <-chan time.Time
	defer func() {
		if resend != nil {
			resend.Stop()
		}
	}()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.received:
			if s.srv.opts.ResendAfter < 0 {
				continue
			}
			if resend == nil {
				resend = time.NewTimer(s.srv.opts.ResendAfter)
			} else {
				resend.Reset(s.srv.opts.ResendAfter)
			}
			resendC = resend.C
		case <-resendC:
			resendC = nil
			if err := s.kick("the client is quiet after sending transactions"); err != nil {
				return
			}
		case now := <-tick.C:
			last := time.Unix(0, s.lastRecv.Load())
			if !s.authed.Load() {
				if now.Sub(s.since) >= 2*interval {
					s.log.Info("satellite connection closed: no authentication")
					s.cancel()
					s.hardClose()
					return
				}
				continue
			}
			if now.Sub(last) < interval {
				livePing = time.Time{}
				continue
			}
			if !livePing.IsZero() && !last.After(livePing) {
				s.log.Info("satellite connection closed: no answer to ping")
				s.cancel()
				s.hardClose()
				return
			}
			if !ping() {
				return
			}
			livePing = now
		case <-s.solicit:
			if solicitTimer == nil {
				wait := max(ackPingDelay, time.Until(lastSolicit.Add(ackPingEvery)))
				solicitTimer = time.After(wait)
			}
		case now := <-solicitTimer:
			solicitTimer = nil
			if s.acked.Load() >= s.delivered.Load() {
				continue
			}
			lastSolicit = now
			if !ping() {
				return
			}
		}
	}
}

// kick restarts the client's stream: SatInStopReplicationReq then
// SatInStartReplicationReq, in one segment. 0.4.3 then re-sends every
// transaction not yet acked, starting with the oldest; those already taken
// are recognised by their lsn and acked again.
func (s *session) kick(why string) error {
	if s.inState.Load() != inActive || !s.kicking.CompareAndSwap(false, true) {
		return nil
	}
	s.resyncs.Add(1)
	s.log.Debug("restarting the client's stream", "client", s.clientID, "reason", why)
	stop, err := satpb.Encode(&satpb.SatInStopReplicationReq{})
	if err != nil {
		return err
	}
	start, err := satpb.Encode(&satpb.SatInStartReplicationReq{
		Options:       []satpb.SatInStartReplicationReq_Option{satpb.SatInStartReplicationReq_SYNC_MODE},
		SyncBatchSize: 1,
	})
	if err != nil {
		return err
	}
	return s.queue(s.ctx, outFrame{data: stop, next: start})
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
