// Encoding a log entry as the pgoutput transaction this subscriber gets, and
// the CopyData framing of the send queue.

package publisher

import (
	"encoding/binary"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// encode appends the pgoutput transaction of entry e for this subscriber to
// the send queue. It reports false when nothing of e concerns it.
//
// LSNs: the commit end LSN is txlog.LSN(offset), a pure function of the
// offset, because the subscriber stores it as its replication origin
// position, asks to restart from it, and echoes it in the Origin message
// that ingest maps back to an offset. Messages inside the entry take the
// LSNs just after the previous entry's; the commit LSN is one below the end.
func (st *stream) encode(e *txlog.Entry) bool {
	se := st.se
	if st.skipEcho(e) {
		return false
	}
	base := txlog.LSN(e.Offset - 1)
	endLSN := txlog.LSN(e.Offset)
	commitLSN := endLSN - 1
	ts := pgTime(e.CommitTime)
	now := pgNow()
	k := uint64(0)
	nextLSN := func() uint64 {
		k++
		if l := base + k; l < commitLSN {
			return l
		}
		return commitLSN
	}
	began := false
	for i := range e.Changes {
		ch := &e.Changes[i]
		rs, ok := st.rels[ch.Table]
		if !ok || !rs.hasKey || st.held(ch, e.Offset) {
			continue
		}
		row, ok := rowWithKey(rs, ch)
		if !ok {
			se.log.Error("change whose key matches neither the row image nor the table's primary key: not sent",
				"table", ch.Table, "offset", e.Offset)
			continue
		}
		if !ch.Deleted {
			row = st.completeRow(rs, ch, row)
		}
		if !began {
			lsn := nextLSN()
			m := st.beginXLog(lsn, lsn, now)
			st.out = appendBegin(st.out, commitLSN, ts, xidOf(e.Offset))
			st.endFrame(m)
			began = true
		}
		if !rs.sent {
			st.announce(rs, nextLSN(), now)
		}
		lsn := nextLSN()
		m := st.beginXLog(lsn, lsn, now)
		if ch.Deleted {
			st.out = appendDelete(st.out, rs.oid, rs.cols, row)
		} else {
			st.out = appendInsert(st.out, rs.oid, rs.cols, row)
		}
		st.endFrame(m)
	}
	if !began {
		return false
	}
	m := st.beginXLog(commitLSN, endLSN, now)
	st.out = appendCommit(st.out, commitLSN, endLSN, ts)
	st.endFrame(m)
	return true
}

// completeRow fills the columns of rs that an entry's image lacks from the
// current merged row: an entry written before a column was renamed, added
// with a default or had its values read back (merge's schema ops) does not
// name it, and sending NULL would wipe the value the subscriber (and the
// merged row) has, or break a NOT NULL column. The current value may be
// newer than the entry's: the later entries carry it anyway.
func (st *stream) completeRow(rs *relState, ch *txlog.RowChange, row map[string]merge.Value) map[string]merge.Value {
	missing := false
	for _, c := range rs.cols {
		if _, ok := row[c.Name]; !ok {
			missing = true
			break
		}
	}
	if !missing || st.se.srv.opts.Row == nil {
		return row
	}
	cur, err := st.se.srv.opts.Row(ch.Table, ch.Key)
	if err != nil {
		st.se.log.Warn("reading the merged row to complete an older entry's image", "table", ch.Table, "err", err)
		return row
	}
	if cur == nil {
		return row
	}
	out := make(map[string]merge.Value, len(rs.cols))
	for k, v := range row {
		out[k] = v
	}
	for _, c := range rs.cols {
		if _, ok := out[c.Name]; !ok {
			if cell, ok := cur.Cells[c.Name]; ok {
				out[c.Name] = cell.Value
			}
		}
	}
	return out
}

// skipEcho reports whether e goes back to its origin connector only to
// be skipped: the origin already holds every merged row of e (the
// sequencer proved it, EchoSafe), so re-applying and decoding them again is
// pure cost. It is skipped like an entry with nothing for this subscriber,
// so its position still moves by a keepalive.
func (st *stream) skipEcho(e *txlog.Entry) bool {
	return e.EchoSafe && e.Origin == st.se.connector
}

// announce appends the Relation message of rs, which a subscriber needs
// before the first row of the table on a stream and again after its
// columns changed.
func (st *stream) announce(rs *relState, lsn uint64, now int64) {
	m := st.beginXLog(lsn, lsn, now)
	st.out = appendRelation(st.out, rs.oid, rs.namespace, rs.name, 'd', rs.cols)
	st.endFrame(m)
	rs.sent = true
}

// rowWithKey returns the row image to send, with the key columns taken from
// the change's key when the image lacks them (a delete's image may be empty).
func rowWithKey(rs *relState, ch *txlog.RowChange) (map[string]merge.Value, bool) {
	complete := true
	for _, k := range rs.pk {
		if v, ok := ch.Row[k]; !ok || v.Null {
			complete = false
			break
		}
	}
	if complete {
		return ch.Row, true
	}
	vals, err := merge.DecodeKey(ch.Key)
	if err != nil || len(vals) != len(rs.pk) {
		return nil, false
	}
	row := make(map[string]merge.Value, len(ch.Row)+len(vals))
	for k, v := range ch.Row {
		row[k] = v
	}
	for i, k := range rs.pk {
		if vals[i].Null {
			return nil, false
		}
		row[k] = vals[i]
	}
	return row, true
}

// xidOf derives a transaction id from the offset; 0 is InvalidTransactionId.
func xidOf(offset uint64) uint32 {
	x := uint32(offset)
	if x == 0 {
		x = 1
	}
	return x
}

// beginFrame starts a CopyData message in out; endFrame sets its length.
func (st *stream) beginFrame() int {
	st.out = append(st.out, 'd', 0, 0, 0, 0)
	return len(st.out) - 4
}

func (st *stream) endFrame(mark int) {
	binary.BigEndian.PutUint32(st.out[mark:], uint32(len(st.out)-mark))
}

// beginXLog starts a CopyData message with the XLogData header; the
// pgoutput message is appended after it.
func (st *stream) beginXLog(start, end uint64, now int64) int {
	mark := st.beginFrame()
	st.out = appendXLogData(st.out, start, end, now, nil)
	return mark
}

func (st *stream) appendKeepalive(reply bool) {
	m := st.beginFrame()
	st.out = appendKeepalive(st.out, txlog.LSN(st.sent), pgNow(), reply)
	st.endFrame(m)
}

// flush writes out.
func (st *stream) flush() error {
	err := st.se.writeRaw(st.out)
	if cap(st.out) > 4<<20 {
		st.out = nil // do not keep the buffer of one huge entry
	} else {
		st.out = st.out[:0]
	}
	return err
}
