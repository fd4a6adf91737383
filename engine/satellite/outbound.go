// The server→client stream: the log from the client's position, as
// SatRelation and SatOpLog frames of the rows this client's user gets.

package satellite

import (
	"context"
	"fmt"
	"slices"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/satellite/satpb"
	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/engine/txlog"
	"google.golang.org/protobuf/proto"
)

// chunkBytes bounds the ops of one outgoing SatOpLog; a larger transaction
// spans several messages (the client reassembles them), so one queued frame
// stays small and a slow client costs bounded memory.
const chunkBytes = 64 << 10

// sentRelation is a relation announced on this connection.
type sentRelation struct {
	id      uint32
	columns []schema.Column
}

func (s *session) startOutbound(m *satpb.SatInStartReplicationReq) error {
	if s.outActive.Load() {
		return perr(satpb.SatErrorResp_INVALID_REQUEST, "replication already started")
	}
	var first, last, sync bool
	for _, o := range m.Options {
		switch o {
		case satpb.SatInStartReplicationReq_FIRST_LSN:
			first = true
		case satpb.SatInStartReplicationReq_LAST_LSN:
			last = true
		case satpb.SatInStartReplicationReq_SYNC_MODE:
			sync = true
		}
	}
	if sync && m.SyncBatchSize <= 0 {
		return perr(satpb.SatErrorResp_INVALID_REQUEST, "SYNC_MODE with batch size %d", m.SyncBatchSize)
	}
	head := s.srv.opts.Log.Head()
	var after uint64
	switch {
	case first:
		after = 0
	case last:
		after = head
	default:
		// LAST_ACKNOWLEDGED is not implemented (as in the original): the
		// lsn is required.
		gen, off, err := splitServerLSN(m.Lsn)
		if err != nil {
			return perr(satpb.SatErrorResp_INVALID_REQUEST, "start replication: %w", err)
		}
		if resume, stale := s.srv.resumeOffset(gen, off); stale {
			// generation.go
			s.srv.stats.staleGeneration.Add(1)
			s.log.Warn("satellite client resumes from a position the restored log never had: sending it every entry since the restore",
				"client", s.clientID, "client_generation", gen, "client_offset", off, "generation", s.srv.opts.Generation, "resume_after", resume)
			off = resume
		}
		if off > head {
			return perr(satpb.SatErrorResp_INVALID_REQUEST, "start replication after offset %d, beyond the log head %d", off, head)
		}
		after = off
		if err := s.checkRewound(off); err != nil { // rewind.go
			return err
		}
		// The client stores a server lsn only with the transaction it
		// applied: it has seen the log up to there.
		s.ackOffset(off)
	}
	if err := s.send(s.ctx, &satpb.SatInStartReplicationResp{}); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(s.ctx)
	s.outCancel = cancel
	s.outDone = make(chan struct{})
	s.outActive.Store(true)
	s.processed.Store(after)
	s.delivered.Store(after)
	rd := s.srv.opts.Log.NewReader(after)
	var gained []string
	if !first && after > 0 && s.srv.opts.Gained != nil {
		gained = s.srv.opts.Gained(after)
	}
	go s.outbound(ctx, rd, s.outDone, gained)
	return nil
}

func (s *session) stopOutboundReq() error {
	if !s.outActive.Load() {
		return perr(satpb.SatErrorResp_INVALID_REQUEST, "stop replication while not replicating")
	}
	s.stopOutbound()
	return s.send(s.ctx, &satpb.SatInStopReplicationResp{})
}

// stopOutbound cancels the outbound stream and waits until it has queued
// its last frame.
func (s *session) stopOutbound() {
	if s.outCancel == nil {
		return
	}
	s.outCancel()
	<-s.outDone
	s.outCancel, s.outDone = nil, nil
	s.outActive.Store(false)
}

// outbound streams the log to the client. gained are tables it gained
// while it was away: their rows are sent first. When the tables streamed
// grow while it runs, the client gets the rows of what it gained.
func (s *session) outbound(ctx context.Context, rd Reader, done chan struct{}, gained []string) {
	defer close(done)
	defer rd.Close()
	kr := &kickableReader{rd: rd}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go kr.watch(wctx, s.tablesKick)
	last := s.srv.tableSet() // the tables the client was last served
	if len(gained) > 0 {
		if !s.waitTables(ctx) {
			return
		}
		last = s.srv.tableSet()
		if err := s.backfill(ctx, last, gained); err != nil {
			s.failBackfill(ctx, err)
			return
		}
	}
	for {
		e, err := kr.next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.failAsync(&protocolError{code: satpb.SatErrorResp_INTERNAL, err: fmt.Errorf("reading the log: %w", err)})
			}
			return
		}
		// Before the engine knows its tables every row would be left out,
		// and never sent again: wait.
		if !s.waitTables(ctx) {
			return
		}
		// A client that holds none of the log yet needs no backfill: it
		// gets every entry with the new tables.
		tables := s.srv.tableSet()
		if tables != last && s.processed.Load() > 0 {
			if err := s.backfill(ctx, tables, gainedTables(last, tables)); err != nil {
				s.failBackfill(ctx, err)
				return
			}
		}
		last = tables
		if e == nil {
			continue // woken by a change of the tables
		}
		sent, ok := s.sendEntry(ctx, e, tables)
		if !ok {
			return
		}
		if sent {
			s.delivered.Store(e.Offset)
			s.txOut.Add(1)
			s.srv.stats.txOut.Add(1)
			s.askAck()
		}
	}
}

// sendEntry queues the frames of e for this client, as one step between
// compensations (outMu); sent is false when the client gets nothing of e,
// ok false when the stream must end.
func (s *session) sendEntry(ctx context.Context, e *txlog.Entry, tables *tableIndex) (sent, ok bool) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	frames, announced, err := s.encodeEntry(e, tables)
	if err != nil {
		s.failAsync(&protocolError{code: satpb.SatErrorResp_INTERNAL, err: err})
		return false, false
	}
	for _, f := range frames {
		if err := s.sendFrame(ctx, f); err != nil {
			// Stopped mid-entry: the relations may not have reached the
			// client, so announce them again after a restart.
			for _, id := range announced {
				delete(s.relSent, id)
			}
			return false, false
		}
	}
	s.processed.Store(e.Offset)
	return len(frames) > 0, true
}

// failBackfill ends the session after a failed backfill, unless the
// stream was stopped.
func (s *session) failBackfill(ctx context.Context, err error) {
	if ctx.Err() == nil {
		s.failAsync(&protocolError{code: satpb.SatErrorResp_INTERNAL, err: err})
	}
}

// encodeEntry turns a log entry into the frames for this client: SatRelation
// for tables not yet announced, then the transaction as one or more
// SatOpLog. Rows of tables not streamed, and rows owned by another user, are
// left out; an entry left empty yields no frames. announced lists the
// tables announced by these frames. Relation ids are stable per table, so
// the SatOpLog frames of an entry are the same for every session that gets
// the same rows: they are encoded once and shared.
func (s *session) encodeEntry(e *txlog.Entry, tables *tableIndex) (frames [][]byte, announced []string, err error) {
	key := frameKey{offset: e.Offset, tables: tables}
	rows := false
	for i := range e.Changes {
		rc := &e.Changes[i]
		t := tables.byID[rc.Table]
		if t == nil {
			continue
		}
		if hasOwner(rc.Row) {
			key.user = s.userID // which rows are sent depends on the user
		}
		if !owned(rc.Row, s.userID) {
			continue
		}
		rows = true
		relFrame, err := s.relation(t, tables.relID[rc.Table])
		if err != nil {
			return nil, nil, err
		}
		if relFrame != nil {
			frames = append(frames, relFrame)
			announced = append(announced, rc.Table)
		}
	}
	if !rows {
		return nil, nil, nil
	}
	ops, ok := s.srv.frames.get(key)
	if !ok {
		ops, err = encodeOps(e, tables, s.userID, s.srv.opts.Generation)
		if err != nil {
			return nil, nil, err
		}
		s.srv.frames.put(key, ops)
	}
	if len(ops) == 0 {
		return nil, nil, nil
	}
	return append(frames, ops...), announced, nil
}

// encodeOps encodes the rows of e that user gets as SatOpLog frames.
func encodeOps(e *txlog.Entry, tables *tableIndex, user string, gen uint16) ([][]byte, error) {
	var ops []*satpb.SatTransOp
	for i := range e.Changes {
		rc := &e.Changes[i]
		t := tables.byID[rc.Table]
		if t == nil || !owned(rc.Row, user) {
			continue
		}
		id := tables.relID[rc.Table]
		vals := make([]merge.Value, len(t.Columns))
		for j, c := range t.Columns {
			v, ok := rc.Row[c.Name]
			if !ok {
				v = merge.Value{Null: true}
			}
			vals[j] = v
		}
		row := encodeRow(vals)
		if rc.Deleted {
			ops = append(ops, &satpb.SatTransOp{Op: &satpb.SatTransOp_Delete{
				Delete: &satpb.SatOpDelete{RelationId: id, OldRowData: row}}})
		} else {
			// Full row, no old row: 0.4.3 applies an update with old_row_data
			// as a diff and corrupts the row (notes §6 T).
			ops = append(ops, &satpb.SatTransOp{Op: &satpb.SatTransOp_Update{
				Update: &satpb.SatOpUpdate{RelationId: id, RowData: row}}})
		}
	}
	if len(ops) == 0 {
		return nil, nil
	}
	// The lsn carries the log's generation (generation.go); the client's
	// last-writer-wins must agree with ours.
	return chunkOps(ops, ServerLSN(e.Offset|uint64(gen)<<genShift), e.Eff/1000)
}

// chunkOps wraps ops in one transaction (begin and commit with lsn and ts,
// in ms) as SatOpLog frames of at most about chunkBytes each.
func chunkOps(ops []*satpb.SatTransOp, lsn []byte, ts uint64) ([][]byte, error) {
	begin := &satpb.SatTransOp{Op: &satpb.SatTransOp_Begin{Begin: &satpb.SatOpBegin{CommitTimestamp: ts, Lsn: lsn}}}
	commit := &satpb.SatTransOp{Op: &satpb.SatTransOp_Commit{Commit: &satpb.SatOpCommit{CommitTimestamp: ts, Lsn: lsn}}}
	var frames [][]byte
	chunk := []*satpb.SatTransOp{begin}
	size := 0
	for _, op := range ops {
		n := proto.Size(op)
		if size > 0 && size+n > chunkBytes {
			f, err := satpb.Encode(&satpb.SatOpLog{Ops: chunk})
			if err != nil {
				return nil, err
			}
			frames = append(frames, f)
			chunk, size = nil, 0
		}
		chunk = append(chunk, op)
		size += n
	}
	chunk = append(chunk, commit)
	f, err := satpb.Encode(&satpb.SatOpLog{Ops: chunk})
	if err != nil {
		return nil, err
	}
	return append(frames, f), nil
}

// relation returns the SatRelation frame for t when this connection has not
// announced t with its current columns yet, else nil.
func (s *session) relation(t *schema.Table, id uint32) ([]byte, error) {
	qn := t.QualifiedName()
	if r := s.relSent[qn]; r != nil && r.id == id && slices.EqualFunc(r.columns, t.Columns, func(a, b schema.Column) bool {
		return a.Name == b.Name && a.TypeOID == b.TypeOID
	}) {
		return nil, nil
	}
	s.relSent[qn] = &sentRelation{id: id, columns: slices.Clone(t.Columns)}
	m := &satpb.SatRelation{
		SchemaName: t.Schema,
		TableType:  satpb.SatRelation_TABLE,
		TableName:  t.Name,
		RelationId: id,
	}
	for _, c := range t.Columns {
		m.Columns = append(m.Columns, &satpb.SatRelationColumn{Name: c.Name, Type: clientType(c.TypeOID)})
	}
	return satpb.Encode(m)
}
