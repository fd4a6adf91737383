package publisher

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// viewPoll is how often a held stream re-reads the connector's view while
// waiting for the subscription to be refreshed.
const viewPoll = 100 * time.Millisecond

// maxBatch bounds how many ready entries are encoded before a flush.
const maxBatch = 256

// relState is how one table is presented to this subscriber.
type relState struct {
	oid       uint32
	namespace string
	name      string
	cols      []relColumn
	pk        []string // primary key columns in key order (the order of merge.EncodeKey)
	hasKey    bool
	sent      bool // Relation message sent on this stream
}

// stream is one START_REPLICATION copy-both exchange.
type stream struct {
	se    *session
	after uint64 // entries with Offset > after are sent
	sent  uint64 // last offset sent or skipped

	view *View
	rels map[string]*relState // by qualified table name; only subscribed tables

	// out holds framed CopyData messages not yet written: encoded in place
	// rather than through pgproto3, which costs an allocation and a
	// reallocated write buffer per message.
	out []byte

	replayed map[string]bool // tables a full replay (after == 0) covers

	lastReply atomic.Int64 // unix nanoseconds of the last status update (or the start)

	// A backfill is not an entry of the log: a subscriber that drops the
	// stream before it flushed the backfill would resume after it. Tables
	// sent but not yet confirmed are requeued when the stream ends.
	flushedLSN      atomic.Uint64 // highest flush position the subscriber reported
	backfillPending []string
	backfillLSN     uint64 // end LSN of the last backfill sent
}

// ctlKind is what the receive goroutine reports.
type ctlKind int

const (
	ctlReply ctlKind = iota // keepalive requested by the subscriber
	ctlDone                 // CopyDone: back to query mode
	ctlEnd                  // Terminate or connection closed
)

type ctlMsg struct {
	kind ctlKind
	err  error
}

func (st *stream) run(ctx context.Context) error {
	se := st.se
	st.sent = st.after
	defer func() {
		if len(st.backfillPending) > 0 && st.flushedLSN.Load() < st.backfillLSN {
			se.log.Info("backfill not confirmed before the stream ended, requeued", "tables", st.backfillPending)
			se.srv.Backfill(se.connector, st.backfillPending) //nolint:errcheck // Rows is set: a backfill was sent
		}
	}()
	// One stream per connector, as Postgres allows one walsender per slot:
	// two subscribers under one name would apply every entry twice.
	busy := false
	se.srv.updateProgress(se.connector, func(p *ConnectorStatus) {
		if p.Streaming {
			busy = true
			return
		}
		p.Streaming = true
		p.StartOffset = st.after
		p.SentOffset = st.after
	})
	kick := make(chan struct{}, 1)
	if !busy {
		se.srv.mu.Lock()
		se.srv.kick[se.connector] = kick
		se.srv.mu.Unlock()
		defer func() {
			se.srv.mu.Lock()
			delete(se.srv.kick, se.connector)
			se.srv.mu.Unlock()
		}()
	}
	if busy {
		return se.queryError("55006", fmt.Sprintf("replication slot %q is active: connector %s already has a subscriber streaming", se.connector, se.connector))
	}
	defer se.srv.updateProgress(se.connector, func(p *ConnectorStatus) { p.Streaming = false })
	se.srv.setState(se, "waiting")
	defer se.srv.setState(se, "query")
	se.log.Info("replication started", "after_offset", st.after)

	se.send(&pgproto3.CopyBothResponse{})
	if err := se.flush(); err != nil {
		return err
	}

	st.lastReply.Store(time.Now().UnixNano())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ctl := make(chan ctlMsg, 8)
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		st.receive(ctx, ctl)
	}()

	keepalive := time.NewTicker(se.srv.opts.KeepaliveInterval)
	defer keepalive.Stop()
	if err := st.keepalive(false); err != nil {
		return err
	}

	// Hold until the subscription includes the tables: a stock apply worker
	// silently drops changes of tables it is not subscribed to yet.
	poll := time.NewTicker(viewPoll)
	for !st.refreshView() {
		select {
		case <-ctx.Done():
			poll.Stop()
			return ctx.Err()
		case m := <-ctl:
			if done, err := st.control(m, recvDone); done || err != nil {
				poll.Stop()
				return err
			}
		case <-keepalive.C:
			if err := st.tick(); err != nil {
				poll.Stop()
				return err
			}
		case <-poll.C:
		}
	}
	poll.Stop()
	se.srv.setState(se, "streaming")
	// A stream that replays the whole log needs no backfill of the tables
	// it starts with.
	if st.after == 0 {
		st.replayed = map[string]bool{}
		for t := range st.rels {
			st.replayed[t] = true
		}
	}
	if err := st.backfill(); err != nil {
		return err
	}

	reader := se.srv.opts.Feed(st.after)
	entries := make(chan *txlog.Entry, maxBatch)
	pumpErr := make(chan error, 1)
	pumpCtx, stopPump := context.WithCancel(ctx)
	pumpDone := make(chan struct{})
	go func() {
		defer close(pumpDone)
		for {
			e, err := reader.Next(pumpCtx)
			if err != nil {
				pumpErr <- err
				return
			}
			select {
			case entries <- e:
			case <-pumpCtx.Done():
				return
			}
		}
	}()
	defer func() {
		stopPump()
		<-pumpDone
		reader.Close()
	}()

	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-pumpErr:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			se.fatal("XX000", fmt.Sprintf("electric: reading the log: %v", err))
			return fmt.Errorf("reading the log: %w", err)
		case m := <-ctl:
			if done, err := st.control(m, recvDone); done || err != nil {
				return err
			}
		case <-keepalive.C:
			if err := st.tick(); err != nil {
				return err
			}
		case e := <-entries:
			if err := st.batch(e, entries); err != nil {
				return err
			}
		case <-kick:
			if err := st.backfill(); err != nil {
				return err
			}
		}
	}
}

// batch sends e and whatever else is ready, then flushes once.
func (st *stream) batch(e *txlog.Entry, more <-chan *txlog.Entry) error {
	st.refreshView()
	skipped := false
	for n := 0; ; n++ {
		if e.Offset <= st.sent {
			// A reader never repeats an entry; tolerate it rather than send
			// an LSN that goes backwards.
			st.se.log.Warn("log entry out of order", "offset", e.Offset, "sent", st.sent)
		} else {
			skipped = !st.encode(e)
			st.sent = e.Offset
		}
		if n+1 >= maxBatch {
			break
		}
		select {
		case e = <-more:
			continue
		default:
		}
		break
	}
	// An entry with nothing for this subscriber still moves the position:
	// a keepalive with the new WAL end lets the subscriber confirm it (its
	// replication origin only moves on applied transactions, so on
	// reconnect such entries are re-read and skipped again).
	if skipped {
		st.appendKeepalive(false)
	}
	sent := st.sent
	st.se.srv.updateProgress(st.se.connector, func(p *ConnectorStatus) { p.SentOffset = sent })
	return st.flush()
}

// backfill sends the merged rows of the tables pending for this connector
// as one transaction. Its LSNs are those of the last entry sent: the
// subscriber's origin stays at that entry (it is not an entry of the log),
// and an echo of it maps to the offset whose state it at least contains.
func (st *stream) backfill() error {
	se := st.se
	tables := se.srv.takeBackfill(se.connector)
	if len(tables) == 0 || se.srv.opts.Rows == nil {
		return nil
	}
	st.refreshView()
	if st.sent == 0 {
		// Nothing sent yet: the entries to come hold every row.
		return nil
	}
	// One past the last entry's end LSN: still maps to that offset (an
	// echo of it and a resume both land there), but the subscriber's flush
	// report tells whether it has the backfill.
	commitLSN := txlog.LSN(st.sent)
	endLSN := commitLSN + 1
	if st.flushedLSN.Load() >= st.backfillLSN {
		st.backfillPending = nil
	}
	now := pgNow()
	began := false
	rows := 0
	for _, table := range tables {
		rs, ok := st.rels[table]
		if !ok || !rs.hasKey || st.replayed[table] {
			continue
		}
		err := se.srv.opts.Rows(table, func(key string, r *merge.Row) error {
			if !r.Live() {
				return nil
			}
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
				m := st.beginXLog(commitLSN, commitLSN, now)
				st.out = appendRelation(st.out, rs.oid, rs.namespace, rs.name, 'd', rs.cols)
				st.endFrame(m)
				rs.sent = true
			}
			m := st.beginXLog(commitLSN, commitLSN, now)
			st.out = appendInsert(st.out, rs.oid, rs.cols, row)
			st.endFrame(m)
			rows++
			if len(st.out) > 1<<20 {
				return st.flush()
			}
			return nil
		})
		if err != nil {
			se.fatal("XX000", fmt.Sprintf("electric: backfilling %s: %v", table, err))
			return fmt.Errorf("backfilling %s: %w", table, err)
		}
	}
	if !began {
		return nil
	}
	m := st.beginXLog(commitLSN, endLSN, now)
	st.out = appendCommit(st.out, commitLSN, endLSN, now)
	st.endFrame(m)
	se.log.Info("backfilled", "tables", tables, "rows", rows, "at_offset", st.sent)
	st.backfillPending = append(st.backfillPending, tables...)
	st.backfillLSN = endLSN
	return st.flush()
}

// refreshView re-reads the connector's view and rebuilds the relation map
// when it changed. It reports whether streaming may proceed.
func (st *stream) refreshView() bool {
	v, ok := st.se.srv.opts.Connectors(st.se.connector)
	if !ok || v == nil || !v.Ready {
		// Keep the last view: the connector may be reinitialising (a
		// migration); entries keep flowing for what is known.
		return st.view != nil && st.view.Refreshed
	}
	if v == st.view {
		return v.Refreshed
	}
	rels := map[string]*relState{}
	for i := range v.Tables {
		t := &v.Tables[i]
		q := t.QualifiedName()
		if !v.Subscribed[q] {
			continue
		}
		rs := &relState{oid: t.OID, namespace: t.Schema, name: t.Name, pk: t.PrimaryKey, hasKey: len(t.PrimaryKey) > 0}
		for _, c := range t.Columns {
			rs.cols = append(rs.cols, relColumn{Name: c.Name, Key: t.IsKey(c.Name), TypeOID: c.TypeOID, TypeMod: c.TypeMod})
		}
		if old, ok := st.rels[q]; ok {
			if old.sent && old.oid == rs.oid && slices.Equal(old.cols, rs.cols) {
				rs.sent = true
			} else {
				// What the replay sent lacked the new columns.
				delete(st.replayed, q)
			}
		}
		rels[q] = rs
	}
	st.view, st.rels = v, rels
	return v.Refreshed
}

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
	if e.EchoSafe && e.Origin == se.connector {
		// The origin already holds every merged row of e (the sequencer
		// proved it): re-applying and decoding them again is pure cost.
		// Skipped like an entry with nothing for it, so its position
		// still moves by a keepalive.
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
		if !ok || !rs.hasKey {
			continue
		}
		row, ok := rowWithKey(rs, ch)
		if !ok {
			se.log.Error("change whose key matches neither the row image nor the table's primary key: not sent",
				"table", ch.Table, "offset", e.Offset)
			continue
		}
		if !began {
			lsn := nextLSN()
			m := st.beginXLog(lsn, lsn, now)
			st.out = appendBegin(st.out, commitLSN, ts, xidOf(e.Offset))
			st.endFrame(m)
			began = true
		}
		if !rs.sent {
			lsn := nextLSN()
			m := st.beginXLog(lsn, lsn, now)
			st.out = appendRelation(st.out, rs.oid, rs.namespace, rs.name, 'd', rs.cols)
			st.endFrame(m)
			rs.sent = true
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

// tick sends the periodic keepalive, asking for a reply, after checking
// that the subscriber answered recently.
func (st *stream) tick() error {
	timeout := st.se.srv.opts.ReplyTimeout
	if since := time.Since(time.Unix(0, st.lastReply.Load())); since > timeout {
		st.se.fatal("08006", fmt.Sprintf("electric: terminating replication of %s: no status update from the subscriber for %s", st.se.connector, since.Round(time.Second)))
		return fmt.Errorf("replication timeout: no status update for %s", since.Round(time.Second))
	}
	return st.keepalive(true)
}

func (st *stream) keepalive(reply bool) error {
	st.appendKeepalive(reply)
	return st.flush()
}

// control handles a report of the receive goroutine. done means the stream
// is over (err nil: back to query mode).
func (st *stream) control(m ctlMsg, recvDone <-chan struct{}) (done bool, err error) {
	se := st.se
	switch m.kind {
	case ctlReply:
		return false, st.keepalive(false)
	case ctlDone:
		<-recvDone
		se.send(&pgproto3.CopyDone{})
		se.send(&pgproto3.CommandComplete{CommandTag: []byte("COPY 0")})
		se.send(&pgproto3.CommandComplete{CommandTag: []byte("START_REPLICATION")})
		se.send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		se.log.Info("replication stopped by the subscriber", "sent_offset", st.sent)
		return true, se.flush()
	default:
		if m.err != nil {
			return true, m.err
		}
		return true, errClosed
	}
}

// receive reads the subscriber's messages in copy-both mode until CopyDone,
// Terminate or an error. It never writes: writes are the stream's.
func (st *stream) receive(ctx context.Context, ctl chan<- ctlMsg) {
	se := st.se
	report := func(m ctlMsg) {
		select {
		case ctl <- m:
		case <-ctx.Done():
		}
	}
	for {
		msg, err := se.be.Receive()
		if err != nil {
			report(ctlMsg{kind: ctlEnd, err: fmt.Errorf("reading from subscriber: %w", err)})
			return
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				se.fatal("08P01", "electric: empty CopyData message")
				report(ctlMsg{kind: ctlEnd})
				return
			}
			switch m.Data[0] {
			case 'r':
				ss, ok := parseStandbyStatus(m.Data)
				if !ok {
					se.fatal("08P01", fmt.Sprintf("electric: invalid standby status update (%d bytes)", len(m.Data)))
					report(ctlMsg{kind: ctlEnd})
					return
				}
				now := time.Now()
				st.lastReply.Store(now.UnixNano())
				if uint64(ss.Flush) > st.flushedLSN.Load() {
					st.flushedLSN.Store(uint64(ss.Flush))
				}
				se.srv.updateProgress(se.connector, func(p *ConnectorStatus) {
					p.FlushedOffset = txlog.OffsetOfLSN(ss.Flush)
					p.AppliedOffset = txlog.OffsetOfLSN(ss.Apply)
					p.LastReply = now
				})
				if ss.Reply {
					report(ctlMsg{kind: ctlReply})
				}
			case 'h':
				// Hot standby feedback concerns physical replication only.
			default:
				se.fatal("08P01", fmt.Sprintf("electric: unexpected CopyData message type %q", m.Data[0]))
				report(ctlMsg{kind: ctlEnd})
				return
			}
		case *pgproto3.CopyDone:
			report(ctlMsg{kind: ctlDone})
			return
		case *pgproto3.CopyFail:
			report(ctlMsg{kind: ctlEnd, err: fmt.Errorf("subscriber aborted replication: %s", m.Message)})
			return
		case *pgproto3.Terminate:
			report(ctlMsg{kind: ctlEnd})
			return
		default:
			se.fatal("08P01", fmt.Sprintf("electric: unexpected message %T during replication", msg))
			report(ctlMsg{kind: ctlEnd})
			return
		}
	}
}
