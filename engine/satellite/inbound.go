// The client→server stream: the client's relations and transactions,
// checked, decoded into merge ops and handed to the sink; a stream with
// transactions missing is restarted (kick).

package satellite

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/satellite/satpb"
)

// inRelation is a relation announced by the client: its own table and
// column order (0.4.3 uses its SQLite names and declared types).
type inRelation struct {
	schema, table string
	columns       []string
}

// pendingTx is a client transaction being received; it may span several
// SatOpLog messages.
type pendingTx struct {
	lsn       []byte
	commitMs  uint64
	ctxOffset uint64
	ops       []merge.Op
	nops      int // row operations received, rejected ones included
	rejected  int
	notReady  bool     // a table could not be resolved: the engine has no tables yet
	bytes     int64    // row data received, plus txOpOverhead per op
	spill     *txSpill // ops past SpillAfterBytes are in this file (spill.go)
}

func (s *session) handleRelation(m *satpb.SatRelation) error {
	if len(m.SchemaName) > MaxNameBytes || len(m.TableName) > MaxNameBytes {
		return s.overLimit(satpb.SatErrorResp_INVALID_REQUEST, "relation %d: schema or table name over %d bytes", m.RelationId, MaxNameBytes)
	}
	if len(m.Columns) > MaxRelationColumns {
		return s.overLimit(satpb.SatErrorResp_INVALID_REQUEST, "relation %s.%s: %d columns (at most %d)", m.SchemaName, m.TableName, len(m.Columns), MaxRelationColumns)
	}
	if _, known := s.relations[m.RelationId]; !known && len(s.relations) >= MaxRelationsPerSession {
		return s.overLimit(satpb.SatErrorResp_INVALID_REQUEST, "more than %d relations in one session", MaxRelationsPerSession)
	}
	cols := make([]string, len(m.Columns))
	for i, c := range m.Columns {
		if c.Name == "" {
			return perr(satpb.SatErrorResp_INVALID_REQUEST, "relation %s.%s: column %d has no name", m.SchemaName, m.TableName, i)
		}
		if len(c.Name) > MaxNameBytes {
			return s.overLimit(satpb.SatErrorResp_INVALID_REQUEST, "relation %s.%s: column %d name over %d bytes", m.SchemaName, m.TableName, i, MaxNameBytes)
		}
		cols[i] = c.Name
	}
	if m.TableName == "" {
		return perr(satpb.SatErrorResp_INVALID_REQUEST, "relation %d without a table name", m.RelationId)
	}
	s.relations[m.RelationId] = &inRelation{schema: m.SchemaName, table: m.TableName, columns: cols}
	return nil
}

func (s *session) handleOpLog(m *satpb.SatOpLog) error {
	if s.inState.Load() != inActive {
		// Spec §3.4: ignored (and not acked) while the stream is not active.
		return nil
	}
	for _, op := range m.Ops {
		switch o := op.GetOp().(type) {
		case *satpb.SatTransOp_Begin:
			if s.tx != nil {
				return perr(satpb.SatErrorResp_INVALID_REQUEST, "begin inside an open transaction")
			}
			if len(o.Begin.Lsn) == 0 {
				return perr(satpb.SatErrorResp_INVALID_REQUEST, "begin without lsn")
			}
			// A write counts as concurrent with everything the client had
			// not acknowledged when it reached us: its acks are what it
			// provably applied.
			s.tx = &pendingTx{lsn: slices.Clone(o.Begin.Lsn), commitMs: o.Begin.CommitTimestamp, ctxOffset: s.acked.Load()}
		case *satpb.SatTransOp_Commit:
			if s.tx == nil {
				return perr(satpb.SatErrorResp_INVALID_REQUEST, "commit without begin")
			}
			tx := s.tx
			s.tx = nil
			if err := s.commitTx(tx); err != nil {
				return err
			}
		case *satpb.SatTransOp_Insert:
			if err := s.addOp(merge.OpInsert, o.Insert.RelationId, o.Insert.RowData); err != nil {
				return err
			}
		case *satpb.SatTransOp_Update:
			if err := s.addOp(merge.OpUpdate, o.Update.RelationId, o.Update.RowData); err != nil {
				return err
			}
		case *satpb.SatTransOp_Delete:
			if err := s.addOp(merge.OpDelete, o.Delete.RelationId, o.Delete.OldRowData); err != nil {
				return err
			}
		default:
			return perr(satpb.SatErrorResp_INVALID_REQUEST, "empty transaction op")
		}
	}
	return nil
}

// addOp decodes one row operation into the open transaction. Malformed
// data is a protocol error; a well-formed write the engine cannot take (a
// table or key it does not know) is rejected alone, so the client's queue
// keeps moving.
func (s *session) addOp(kind merge.OpKind, relID uint32, row *satpb.SatOpRow) error {
	if s.tx == nil {
		return perr(satpb.SatErrorResp_INVALID_REQUEST, "row operation outside a transaction")
	}
	s.tx.nops++
	if err := s.countTxBytes(row); err != nil {
		return err
	}
	rel := s.relations[relID]
	if rel == nil {
		return perr(satpb.SatErrorResp_INVALID_REQUEST, "unknown relation %d", relID)
	}
	vals, err := decodeRow(row, len(rel.columns))
	if err != nil {
		return perr(satpb.SatErrorResp_INVALID_REQUEST, "relation %s: %w", rel.table, err)
	}
	tables := s.srv.tableSet()
	t := tables.resolve(rel.schema, rel.table)
	if t == nil && len(tables.src) == 0 {
		// The engine does not know its tables yet: keep the transaction
		// for later rather than drop it.
		s.tx.notReady = true
		return nil
	}
	if t == nil {
		s.reject(rel.table, "table is not replicated to satellites")
		return nil
	}
	cols := make(map[string]merge.Value, len(vals))
	for i, name := range rel.columns {
		if _, ok := t.Column(name); ok {
			cols[name] = vals[i]
		}
	}
	key := make([]merge.Value, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		v, ok := cols[k]
		if !ok {
			s.reject(t.QualifiedName(), fmt.Sprintf("primary key column %q missing from the client's relation", k))
			return nil
		}
		if v.Null {
			s.reject(t.QualifiedName(), fmt.Sprintf("primary key column %q is NULL", k))
			return nil
		}
		key[i] = v
	}
	if len(key) == 0 {
		s.reject(t.QualifiedName(), "table has no primary key")
		return nil
	}
	op := merge.Op{Kind: kind, Table: t.QualifiedName(), Key: merge.EncodeKey(key)}
	if kind == merge.OpDelete {
		op.Old = cols
	} else {
		// 0.4.3 sends whole rows: every column is written.
		op.Columns = cols
	}
	return s.holdOp(op)
}

// countTxBytes adds a row op to the size of the open transaction and ends
// the session once it is over MaxTransactionBytes. Up to that cap it is
// spilled to disk (spill.go); refusing it alone would not help: 0.4.3
// re-sends an unacked transaction forever.
func (s *session) countTxBytes(row *satpb.SatOpRow) error {
	n := int64(txOpOverhead)
	if row != nil {
		n += int64(len(row.NullsBitmask))
		for _, v := range row.Values {
			n += int64(len(v)) + 2
		}
	}
	s.tx.bytes += n
	if max := s.srv.opts.MaxTransactionBytes; s.tx.bytes > max {
		s.srv.stats.txTooLarge.Add(1)
		s.log.Warn("satellite client transaction over the size cap; closing", "client", s.clientID,
			"lsn", fmt.Sprintf("%x", s.tx.lsn), "ops", s.tx.nops, "bytes", s.tx.bytes, "cap", max)
		s.dropTx()
		return perr(satpb.SatErrorResp_INVALID_REQUEST, "client transaction over %d bytes (SATELLITE_MAX_TRANSACTION_BYTES)", max)
	}
	return nil
}

func (s *session) reject(table, why string) {
	if s.tx != nil {
		s.tx.rejected++
	}
	s.rejected.Add(1)
	s.srv.stats.rejectedOps.Add(1)
	s.log.Warn("satellite write not applied", "client", s.clientID, "table", table, "reason", why)
}

// commitTx hands a complete client transaction to the sink, or acks it
// again if it is a re-send of one already taken.
func (s *session) commitTx(tx *pendingTx) error {
	defer tx.discardSpill() // whatever is not taken
	if s.kicking.Load() {
		// Sent before the client saw our restart of its stream: it comes
		// again, after the restart, in order.
		return nil
	}
	if tx.notReady || s.waiting.Load() {
		// Neither taken nor acked: once the tables are known the stream is
		// restarted and the client re-sends from its oldest unacked
		// transaction (an ack of a later one would delete this one from
		// the client's oplog, so every later one waits too).
		if s.waiting.CompareAndSwap(false, true) {
			s.log.Info("client transactions wait until the engine knows its tables", "client", s.clientID)
			s.wg.Add(1)
			go s.resumeWhenReady()
		}
		return nil
	}
	if compareClientLSN(tx.lsn, s.enqueued) <= 0 {
		s.dups.Add(1)
		s.srv.stats.duplicates.Add(1)
		return s.queueAck(&ackItem{lsn: tx.lsn, comp: s.resentRows(tx.ops)})
	}
	if s.gap(tx) {
		// Not taken and not acked: after the restart the client re-sends
		// from its oldest unacked transaction, the missing ones included.
		return s.kick(fmt.Sprintf("client transaction %x does not follow %x", tx.lsn, s.enqueued))
	}
	select {
	case s.received <- struct{}{}:
	default:
	}
	release, err := s.loadSpilled(s.ctx, tx)
	if err != nil {
		return perr(satpb.SatErrorResp_INTERNAL, "%w", err)
	}
	handed := false
	defer func() {
		if !handed {
			release()
		}
	}()
	sc, err := s.screen(tx.ops)
	if err != nil {
		return perr(satpb.SatErrorResp_INTERNAL, "%w", err)
	}
	if sc.held != nil {
		s.holdUnchecked(sc.held)
		return nil
	}
	s.report(sc.refs)
	ops := sc.ops
	// A refused row is acked with its transaction (0.4.3 would re-send it
	// forever), then sent back as the server has it (comp).
	ack := &ackItem{lsn: tx.lsn, done: make(chan error, 1), comp: sc.comp}
	if err := s.queueAck(ack); err != nil {
		return err
	}
	item := Item{
		Source:   s.source,
		Position: tx.lsn,
		Tx: merge.Tx{
			Origin:     s.source,
			CommitTime: min(tx.commitMs, math.MaxUint64/1000) * 1000, // saturated, not wrapped; the sequencer bounds it (merge.Bound)
			Ops:        ops,
		},
		ContextOffset: tx.ctxOffset,
		Attempt:       s.attempt,
		Done: func(_ uint64, err error) {
			if err == nil {
				s.txIn.Add(1)
				s.srv.stats.txIn.Add(1)
			}
			ack.done <- err
			release()
			s.inflight.Done()
		},
	}
	s.inflight.Add(1)
	handed = true // Done releases
	if err := s.srv.opts.Sink.Enqueue(s.ctx, item); err != nil {
		handed = false
		s.inflight.Done()
		ack.done <- err
		return perr(satpb.SatErrorResp_INTERNAL, "queueing client transaction: %w", err)
	}
	s.enqueued = tx.lsn
	s.noteSeen(tx.ctxOffset) // rewind.go
	return nil
}

// resumeWhenReady waits until the engine knows its tables, then restarts
// the client's stream so that it re-sends what was held back.
func (s *session) resumeWhenReady() {
	defer s.wg.Done()
	if !s.waitTables(s.ctx) {
		return
	}
	_ = s.kick("the engine knows its tables")
	s.waiting.Store(false)
}

// waitTables waits until Options.Tables is not empty; false if ctx ended.
func (s *session) waitTables(ctx context.Context) bool {
	if len(s.srv.tableSet().src) > 0 {
		return true
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
		if len(s.srv.tableSet().src) > 0 {
			return true
		}
	}
}

// gap reports whether transactions are missing between the last one taken
// and tx. The 0.4.3 client's lsn is the 4-byte rowid of the transaction's
// last oplog row and each op is one row, so a transaction of n ops that
// follows lsn P has lsn P+n. 0.4.3 loses a transaction when two are queued
// within one push period, then acks of later ones would delete it from its
// oplog for good. A gap seen again right after a restart is accepted: the
// rows are gone from the client.
func (s *session) gap(tx *pendingTx) bool {
	if len(tx.lsn) != 4 || len(s.enqueued) != 4 || tx.nops == 0 {
		return false
	}
	l := uint64(binary.BigEndian.Uint32(tx.lsn))
	p := uint64(binary.BigEndian.Uint32(s.enqueued))
	if l < uint64(tx.nops) || l-uint64(tx.nops) <= p {
		return false
	}
	if s.gapAfter != nil && bytes.Equal(s.gapAfter, s.enqueued) {
		s.log.Warn("client transactions missing, accepting what follows", "client", s.clientID,
			"after", fmt.Sprintf("%x", s.enqueued), "next", fmt.Sprintf("%x", tx.lsn))
		s.gapAfter = nil
		return false
	}
	s.gapAfter = s.enqueued
	return true
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
