// Compensation: after a client transaction with refused rows is acked, the
// client is sent the server's state of those rows, so that it converges
// back to what every Postgres has.
//
// Sequencing (satellite-client-notes.md §3.4 item 11, §3.7): 0.4.3 applies
// a server transaction as upserts and deletes, stores its begin lsn as its
// position and sends that lsn back on reconnect and in ping responses. A
// compensation is therefore sent on the outbound stream, between two log
// entries (outMu), as a transaction whose lsn is the last log offset already
// processed for this client: it claims nothing the client has not been
// sent, and a client that resumes from it gets every later entry. Its rows
// are read from the engine's state after that offset; an entry in between
// that touched them is sent after it and carries a state at least as new,
// so the client ends on the merged row. Its commit timestamp is the row's
// newest write (µs → ms), as for a log entry, so the client's own newer
// pending writes still win locally until the server answers them.

package satellite

import (
	"fmt"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/satellite/satpb"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// compQueue bounds the compensations waiting per session; the acker waits
// when it is full.
const compQueue = 64

// queueCompensation hands refused rows to the compensator; false if the
// session ended.
func (s *session) queueCompensation(rows []compRow) bool {
	select {
	case s.comps <- rows:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// compensator sends queued compensations once the outbound stream runs.
func (s *session) compensator() {
	defer s.wg.Done()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var rows []compRow
		select {
		case rows = <-s.comps:
		case <-s.ctx.Done():
			return
		}
		for {
			sent, err := s.sendCompensation(rows)
			if err != nil {
				s.log.Warn("sending refused rows back to the client failed", "client", s.clientID, "rows", len(rows), "err", err)
				s.failAsync(&protocolError{code: satpb.SatErrorResp_INTERNAL, err: err})
				return
			}
			if sent {
				break
			}
			// The outbound stream is not running (stopped by the client):
			// wait for it.
			select {
			case <-tick.C:
			case <-s.ctx.Done():
				return
			}
		}
	}
}

// sendCompensation queues the frames of one compensation between two log
// entries; false if the outbound stream is not running.
func (s *session) sendCompensation(rows []compRow) (bool, error) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if !s.outActive.Load() {
		return false, nil
	}
	e, err := s.compensationEntry(rows)
	if err != nil {
		return false, err
	}
	tables := s.srv.tableSet()
	var frames [][]byte
	seen := map[string]bool{}
	for _, rc := range e.Changes {
		t := tables.byID[rc.Table]
		if t == nil || seen[rc.Table] {
			continue
		}
		seen[rc.Table] = true
		f, err := s.relation(t, tables.relID[rc.Table])
		if err != nil {
			return false, err
		}
		if f != nil {
			frames = append(frames, f)
		}
	}
	ops, err := encodeOps(e, tables, s.userID, s.srv.opts.Generation)
	if err != nil {
		return false, err
	}
	for _, f := range append(frames, ops...) {
		if err := s.sendFrame(s.ctx, f); err != nil {
			return false, nil //nolint:nilerr // the session is ending
		}
	}
	s.srv.stats.compensated.Add(uint64(len(e.Changes)))
	s.log.Info("refused rows sent back to the client", "client", s.clientID, "rows", len(e.Changes), "lsn_offset", e.Offset)
	return true, nil
}

// compensationEntry is the server's state of rows as one transaction at the
// last offset processed for this client: the merged row if it is live and
// the user may see it, else a delete carrying only the key (never another
// user's values).
func (s *session) compensationEntry(rows []compRow) (*txlog.Entry, error) {
	e := &txlog.Entry{Offset: s.processed.Load()}
	seen := map[string]bool{}
	for _, r := range rows {
		id := r.table + "\x00" + r.key
		if seen[id] {
			continue
		}
		seen[id] = true
		cur, err := s.srv.opts.Log.Row(r.table, r.key)
		if err != nil {
			return nil, fmt.Errorf("reading row %s %q: %w", r.table, r.key, err)
		}
		rc := txlog.RowChange{Table: r.table, Key: r.key}
		if cur.Live() && owned(cur.Image(), s.userID) {
			rc.Row = cur.Image()
		} else {
			rc.Deleted = true
			rc.Row = make(map[string]merge.Value, len(r.keyVals))
			for k, v := range r.keyVals {
				rc.Row[k] = v
			}
		}
		if cur != nil {
			for _, c := range cur.Cells {
				e.Eff = max(e.Eff, c.Eff)
			}
		}
		e.Changes = append(e.Changes, rc)
	}
	if e.Eff == 0 {
		e.Eff = uint64(time.Now().UnixMicro())
	}
	return e, nil
}

// resentRows are the rows of a transaction sent again after it was taken:
// its ack may have been lost with the connection, and with it the rows sent
// back if it was refused, so the client is sent the server's rows again
// (for a transaction that was merged, they are the echo it already had).
func (s *session) resentRows(ops []merge.Op) []compRow {
	rows := make([]compRow, 0, len(ops))
	for _, op := range ops {
		rows = append(rows, s.compRowOf(op))
	}
	return rows
}
