// Backfill: the current merged rows of tables a connector newly subscribes
// to, sent on its stream as one transaction that is not an entry of the log.

package publisher

import (
	"fmt"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// backfill sends the merged rows of the tables pending for this connector
// as one transaction. Its LSNs are those of the last entry sent: the
// subscriber's origin stays at that entry (it is not an entry of the log),
// and an echo of it maps to the offset whose state it at least contains.
func (st *stream) backfill() error {
	se := st.se
	tables := se.srv.takeBackfill(se.connector)
	resend := se.srv.takeResend(se.connector)
	if len(tables) == 0 && len(resend) == 0 {
		return nil
	}
	st.refreshView()
	if st.sent == 0 {
		// Nothing sent yet: the entries to come hold every row (but not
		// the withheld ones: those wait until an entry was sent, their
		// LSNs being the last entry's).
		se.srv.putBackResend(se.connector, resend)
		st.resendDeferred = len(resend) > 0
		return nil
	}
	// One past the last entry's end LSN: still maps to that offset (an
	// echo of it and a resume both land there), but the subscriber's flush
	// report tells whether it has the backfill.
	commitLSN := txlog.LSN(st.sent)
	endLSN := commitLSN + 1
	st.confirmResent()
	if st.flushedLSN.Load() >= st.backfillLSN {
		if st.backfillPending != nil {
			se.srv.noteRequeue(se.connector, false)
		}
		st.backfillPending = nil
	}
	now := pgNow()
	began := false
	rows := 0
	send := func(rs *relState, table, key string, r *merge.Row) error {
		row, ok := rowWithKey(rs, &txlog.RowChange{Table: table, Key: key, Row: r.Image()})
		if !ok {
			return nil
		}
		if !began {
			m := st.beginXLog(commitLSN, commitLSN, now)
			st.out = appendBegin(st.out, commitLSN, now, xidOf(st.sent))
			st.endFrame(m)
			began = true
		}
		if !rs.sent {
			st.announce(rs, commitLSN, now)
		}
		m := st.beginXLog(commitLSN, commitLSN, now)
		st.out = appendInsert(st.out, rs.oid, rs.cols, row)
		st.endFrame(m)
		rows++
		if len(st.out) > 1<<20 {
			return st.flush()
		}
		return nil
	}
	if se.srv.opts.Rows != nil {
		for _, table := range tables {
			rs, ok := st.rels[table]
			if !ok || !rs.hasKey || st.replayed[table] {
				continue
			}
			err := se.srv.opts.Rows(table, func(key string, r *merge.Row) error {
				if !r.Live() || st.heldAny(table, key) {
					return nil
				}
				return send(rs, table, key, r)
			})
			if err != nil {
				se.fatal("XX000", fmt.Sprintf("electric: backfilling %s: %v", table, err))
				return fmt.Errorf("backfilling %s: %w", table, err)
			}
		}
	}
	var resent, later []ResendRow
	for _, rr := range resend {
		rs, ok := st.rels[rr.Table]
		if !ok || !rs.hasKey {
			later = append(later, rr) // not subscribed (yet): kept for a later stream
			continue
		}
		r, err := se.srv.opts.Row(rr.Table, rr.Key)
		if err != nil {
			se.fatal("XX000", fmt.Sprintf("electric: resending a row of %s: %v", rr.Table, err))
			return fmt.Errorf("resending a row of %s: %w", rr.Table, err)
		}
		if !r.Live() {
			// Deleted since: its delete was sent as an entry.
			if rr.Done != nil {
				rr.Done()
			}
			continue
		}
		if err := send(rs, rr.Table, rr.Key, r); err != nil {
			return err
		}
		resent = append(resent, rr)
	}
	se.srv.putBackResend(se.connector, later)
	if !began {
		return nil
	}
	m := st.beginXLog(commitLSN, endLSN, now)
	st.out = appendCommit(st.out, commitLSN, endLSN, now)
	st.endFrame(m)
	se.log.Info("backfilled", "tables", tables, "resent_rows", len(resent), "rows", rows, "at_offset", st.sent)
	st.backfillPending = append(st.backfillPending, tables...)
	st.resentPending = append(st.resentPending, resent...)
	st.backfillLSN = endLSN
	return st.flush()
}

// requeueUnconfirmedBackfill queues again, when the stream ends (ended
// says why, nil when the subscriber closed it), the tables of backfills the
// subscriber has not confirmed flushing: it resumes after the last entry it
// confirmed, which does not contain them. Once is ordinary (the subscription
// was refreshed or paused); again and again means its apply worker refuses
// a backfilled row, so it is a warning with the count and where to look.
func (st *stream) requeueUnconfirmedBackfill(ended error) {
	se := st.se
	if len(st.backfillPending) > 0 && st.flushedLSN.Load() < st.backfillLSN {
		n := se.srv.noteRequeue(se.connector, true)
		cause := "the subscriber closed the stream (a refresh or a pause of its subscription, or its apply worker failed: see its Postgres log)"
		if ended != nil {
			cause = ended.Error()
		}
		log := se.log.Info
		if n > 1 {
			log = se.log.Warn
		}
		log("backfill not confirmed before the stream ended, requeued", "tables", st.backfillPending, "cause", cause, "times_in_a_row", n)
		se.srv.Backfill(se.connector, st.backfillPending) //nolint:errcheck // Rows is set: a backfill was sent
	} else if len(st.backfillPending) > 0 {
		se.srv.noteRequeue(se.connector, false)
	}
	if len(st.resentPending) > 0 && st.flushedLSN.Load() < st.backfillLSN {
		se.log.Info("resent rows not confirmed before the stream ended, requeued", "rows", len(st.resentPending))
		se.srv.putBackResend(se.connector, st.resentPending)
	} else {
		st.confirmResent()
	}
}

// noteRequeue counts the backfills of connector requeued in a row (requeued
// true) or resets the count (a backfill was confirmed), returning it.
func (s *Server) noteRequeue(connector string, requeued bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !requeued {
		delete(s.requeues, connector)
		return 0
	}
	if s.requeues == nil {
		s.requeues = map[string]int{}
	}
	s.requeues[connector]++
	return s.requeues[connector]
}
