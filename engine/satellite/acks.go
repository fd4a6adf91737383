// Acknowledgements both ways. Client transactions are acked (SatPingResp
// with the client's lsn) in arrival order once durable; the client's acks of
// the log (SatPingResp with a server lsn) are its position, the causal context
// of its next writes.

package satellite

import (
	"errors"
	"fmt"

	"github.com/electric-sql/electric-go/engine/satellite/satpb"
	"github.com/electric-sql/electric-go/engine/sequencer"
)

// ackItem is one client transaction waiting for its SatPingResp. Items are
// acked strictly in arrival order.
type ackItem struct {
	lsn  []byte
	done chan error // nil: already durable (a re-sent transaction)
	comp []compRow  // refused rows to send back once acked
}

// queueAck hands a client transaction to the acker, in arrival order.
func (s *session) queueAck(a *ackItem) error {
	select {
	case s.acks <- a:
		return nil
	case <-s.ctx.Done():
		return fmt.Errorf("queueing ack: %w", s.ctx.Err())
	}
}

// acker sends SatPingResp{lsn} for client transactions in order, each once
// it is durable, with the client's exact lsn bytes, and never one below the
// last (0.4.3 exits on an ack below its last acked position).
func (s *session) acker() {
	defer s.wg.Done()
	for {
		var a *ackItem
		select {
		case a = <-s.acks:
		case <-s.ctx.Done():
			return
		}
		if a.done != nil {
			select {
			case err := <-a.done:
				// A refused transaction is done too (its position is
				// stored): acking it stops 0.4.3 re-sending it forever.
				if err != nil && !errors.Is(err, sequencer.ErrRefused) {
					s.failAsync(&protocolError{code: satpb.SatErrorResp_INTERNAL, err: fmt.Errorf("storing client transaction: %w", err)})
					return
				}
			case <-s.ctx.Done():
				return
			}
		}
		s.mu.Lock()
		below := compareClientLSN(a.lsn, s.lastAckLSN) < 0
		if !below {
			s.lastAckLSN = a.lsn
		}
		s.mu.Unlock()
		if below {
			continue
		}
		if err := s.send(s.ctx, &satpb.SatPingResp{Lsn: a.lsn}); err != nil {
			return
		}
		if len(a.comp) > 0 && !s.queueCompensation(a.comp) {
			return
		}
	}
}

// handlePingResp takes the client's ack of the log (an empty one is a
// position it does not have yet).
func (s *session) handlePingResp(m *satpb.SatPingResp) error {
	if m.Lsn == nil {
		return nil
	}
	if len(m.Lsn) == 0 {
		return perr(satpb.SatErrorResp_INVALID_REQUEST, "ping response with an empty lsn")
	}
	gen, off, err := splitServerLSN(m.Lsn)
	if err != nil {
		return perr(satpb.SatErrorResp_INVALID_REQUEST, "%w", err)
	}
	off, _ = s.srv.resumeOffset(gen, off)
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

// askAck asks the pinger for an ack ping; requests made while one is
// pending coalesce.
func (s *session) askAck() {
	select {
	case s.solicit <- struct{}{}:
	default:
	}
}
