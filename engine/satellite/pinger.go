// The pinger: liveness of the connection, ack pings after transactions were
// sent, and the restart of a client that went quiet after sending.

package satellite

import (
	"time"

	"github.com/electric-sql/electric-go/engine/satellite/satpb"
)

// After a client was sent transactions it is asked for its position (a
// ping) after ackPingDelay, which coalesces a burst, and at most once per
// ackPingEvery, which bounds the pings a busy stream adds.
const (
	ackPingDelay = 50 * time.Millisecond
	ackPingEvery = 200 * time.Millisecond
)

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
