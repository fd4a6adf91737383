package pgsource

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/engine/sequencer"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// runOnce connects, sets up and streams until the connection fails or ctx
// ends.
func (s *Source) runOnce(ctx context.Context) error {
	if f := s.fatalErr(); f != nil {
		return f
	}
	s.setState(StateConnecting, "")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.streamCancel = cancel
	// Items of each connection form one attempt for the sequencer: after
	// a failed item it fails the rest of that attempt (sequencer.Item).
	s.attempt = rand.Uint64()
	s.mu.Unlock()

	side, err := s.connectSide(ctx)
	if err != nil {
		return err
	}
	defer side.Close(context.Background())
	rconn, err := s.connectReplication(ctx)
	if err != nil {
		return err
	}
	defer rconn.Close(context.Background())

	cat := &catalog{s: s, conn: side, others: map[uint32]bool{}}
	slotLSN, err := s.setup(ctx, cat, rconn)
	if err != nil {
		return err
	}
	raw, err := s.opts.Store.Position(s.opts.Name)
	if err != nil {
		return fmt.Errorf("reading the stored position: %w", err)
	}
	stored, err := DecodePosition(raw)
	if err != nil {
		return err
	}
	s.acks.raise(max(slotLSN, stored.LSN))
	s.mu.Lock()
	if stored.Echo > s.echo {
		s.echo = stored.Echo
	}
	// Items still in flight from a previous connection will become durable:
	// resume after them, not after the last confirmed position.
	start := max(slotLSN, stored.LSN, s.enqueued)
	echo := s.echo
	s.mu.Unlock()

	err = pglogrepl.StartReplication(ctx, rconn, s.opts.Slot, start, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names " + schema.QuoteLiteral(s.opts.Publication), "messages 'true'"},
	})
	if err != nil {
		return fmt.Errorf("starting replication from slot %s at %s: %w", s.opts.Slot, start, err)
	}
	s.mu.Lock()
	// Until a snapshot pass has found every table read, existing rows may
	// be missing: not ready (snapshotLoop says when).
	s.state = StateReady
	if !s.snapEver {
		s.state = StateSnapshot
	}
	s.mu.Unlock()
	s.log.Info("streaming", "slot", s.opts.Slot, "publication", s.opts.Publication, "from", start.String(),
		"slot_confirmed", slotLSN.String(), "stored", stored.LSN.String(), "echo_offset", echo)

	reply := make(chan struct{}, 1)
	errs := make(chan error, 1)
	go func() {
		err := s.ackLoop(ctx, rconn, reply)
		if err != nil {
			cancel()
		}
		errs <- err
	}()
	statsDone := make(chan struct{})
	go func() {
		defer close(statsDone)
		s.statsLoop(ctx)
	}()

	snapErrs := make(chan error, 1)
	go func() {
		err := s.snapshotLoop(ctx)
		if err != nil {
			cancel()
		}
		snapErrs <- err
	}()

	readErr := s.readLoop(ctx, cat, rconn, reply)
	cancel()
	ackErr := <-errs
	<-statsDone
	snapErr := <-snapErrs
	if readErr == nil {
		readErr = ackErr
	}
	if readErr == nil {
		readErr = snapErr // why the stream was cancelled
	}
	return readErr
}

// readLoop receives, decodes and hands over transactions. It never waits for
// durability: items are confirmed by ackLoop as the sink reports them.
func (s *Source) readLoop(ctx context.Context, cat *catalog, rconn *pgconn.PgConn, reply chan<- struct{}) error {
	dec := newDecoder(cat, s)
	// Receive without a per-call context (pgconn would arm a watcher for
	// every message); ending ctx closes the socket instead.
	stop := context.AfterFunc(ctx, func() { rconn.Conn().Close() })
	defer stop()
	for {
		msg, err := rconn.ReceiveMessage(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("receiving from the replication stream: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				return errors.New("replication stream: empty CopyData message")
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				pkm, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return fmt.Errorf("replication stream: parsing keepalive: %w", err)
				}
				s.noteReceived(pkm.ServerWALEnd)
				if !dec.inTx() {
					// Everything before the server's WAL end was sent: what
					// we did not get held nothing for us.
					s.acks.skip(pkm.ServerWALEnd)
				}
				if pkm.ReplyRequested {
					select {
					case reply <- struct{}{}:
					default:
					}
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return fmt.Errorf("replication stream: parsing XLogData: %w", err)
				}
				tx, err := dec.handle(ctx, xld.WALData)
				if err != nil {
					return fmt.Errorf("replication stream at %s: %w", xld.WALStart, err)
				}
				s.noteReceived(xld.WALStart)
				if tx != nil {
					if err := s.commit(ctx, cat, tx); err != nil {
						return err
					}
				}
			default:
				return fmt.Errorf("replication stream: unexpected CopyData message %q", m.Data[0])
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("replication stream: %w", pgconn.ErrorResponseToPgError(m))
		case *pgproto3.CopyDone, *pgproto3.CommandComplete:
			return errors.New("replication stream: postgres ended the stream")
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
			// Informational.
		default:
			return fmt.Errorf("replication stream: unexpected message %T", msg)
		}
	}
}

func (s *Source) noteReceived(lsn pglogrepl.LSN) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lsn > s.received {
		s.received = lsn
	}
}

// commit decides what a decoded transaction becomes: an item with its ops, a
// position-only item (an echo), or nothing but a skip marker.
func (s *Source) commit(ctx context.Context, cat *catalog, tx *sourceTx) error {
	s.log.Debug("transaction", "end", tx.endLSN, "ops", len(tx.ops), "electric", tx.electric, "rows", tx.rows, "origin", tx.origin)
	s.mu.Lock()
	s.txs++
	s.lastTx = tx.commitTime
	handed := tx.endLSN <= s.enqueued
	s.mu.Unlock()
	if tx.endLSN > 0 && handed {
		// Already handed over before a reconnect: the stream replays
		// what was in flight.
		return nil
	}
	if tx.origin != "" {
		echo, err := cat.isEcho(ctx, tx.origin)
		if err != nil {
			return err
		}
		if echo {
			off := txlog.OffsetOfLSN(uint64(tx.originLSN))
			s.mu.Lock()
			if off > s.echo {
				s.echo = off
			}
			s.mu.Unlock()
			// Not merged again, but its offset is the causal context of
			// what follows and must be stored before it is confirmed.
			return s.enqueue(ctx, tx, nil)
		}
	}
	tx.ops = s.dropStaleRewrites(tx.ops)
	if len(tx.ops) == 0 {
		// electric.* only, skipped tables only, or nothing: keep the slot
		// moving without a log write.
		s.mu.Lock()
		s.enqueued = tx.endLSN
		s.mu.Unlock()
		s.acks.skip(tx.endLSN)
		return nil
	}
	return s.enqueue(ctx, tx, tx.ops)
}

func (s *Source) enqueue(ctx context.Context, tx *sourceTx, ops []merge.Op) error {
	s.mu.Lock()
	echo, attempt := s.echo, s.attempt
	s.mu.Unlock()
	lsn := tx.endLSN
	seq := s.acks.push(lsn, tx.commitTime)
	it := Item{
		Source:        s.opts.Name,
		Position:      Position{LSN: lsn, Echo: echo}.Encode(),
		ContextOffset: echo,
		Tx: merge.Tx{
			Origin:     s.opts.Name,
			CommitTime: uint64(max(0, tx.commitTime.UnixMicro())), // before 1970 counts as 1970; ahead is bounded by the sequencer (merge.Bound)
			Ops:        ops,
		},
		Attempt: attempt,
		Done: func(_ uint64, err error) {
			if errors.Is(err, sequencer.ErrRefused) {
				// Not in the log, but its position is stored: it is
				// done, and confirming it keeps the slot moving.
				s.log.Warn("transaction refused by the merge, skipped", "end", lsn.String(), "err", err)
				s.acks.ack(seq)
				return
			}
			if err != nil {
				s.setFatal(fmt.Errorf("appending the transaction ending at %s to the log: %w", lsn, err))
				return
			}
			s.acks.ack(seq)
		},
	}
	if err := s.opts.Sink.Enqueue(ctx, it); err != nil {
		s.acks.drop(seq)
		if ctx.Err() != nil {
			return nil
		}
		err = fmt.Errorf("handing the transaction ending at %s to the log: %w", lsn, err)
		s.setFatal(err)
		return err
	}
	s.mu.Lock()
	s.enqueued = lsn
	s.mu.Unlock()
	return nil
}

// ackLoop confirms durable positions to Postgres: when the confirmed LSN
// moves (throttled), when Postgres asks, and periodically.
func (s *Source) ackLoop(ctx context.Context, rconn *pgconn.PgConn, reply <-chan struct{}) error {
	const (
		coalesce = 100 * time.Millisecond // at most ~10 updates/s from acks alone
		minGap   = 20 * time.Millisecond
	)
	tick := time.NewTicker(coalesce)
	defer tick.Stop()
	var sent pglogrepl.LSN
	var last time.Time
	for {
		forced := false
		select {
		case <-ctx.Done():
			return nil
		case <-reply:
			forced = true
		case <-s.acks.notify:
		case <-tick.C:
		}
		confirmed, _ := s.acks.snapshot()
		since := time.Since(last)
		if !forced && !(confirmed > sent && since >= minGap) && since < s.opts.StatusInterval {
			continue
		}
		err := pglogrepl.SendStandbyStatusUpdate(ctx, rconn, pglogrepl.StandbyStatusUpdate{
			WALWritePosition: confirmed,
			WALFlushPosition: confirmed,
			WALApplyPosition: confirmed,
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sending standby status update: %w", err)
		}
		if confirmed > sent {
			s.log.Debug("confirmed", "lsn", confirmed)
		}
		sent, last = confirmed, time.Now()
	}
}

// statsLoop reads slot statistics on its own side connection.
func (s *Source) statsLoop(ctx context.Context) {
	conn, err := s.connectSide(ctx)
	if err != nil {
		return
	}
	defer conn.Close(context.Background())
	t := time.NewTicker(s.opts.StatsInterval)
	defer t.Stop()
	for {
		s.readStats(ctx, conn)
		if err := s.syncPublication(ctx, conn); err != nil && ctx.Err() == nil {
			s.log.Warn("could not update the publication's tables; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// dropStaleRewrites leaves out the values a table rewrite read back from
// rows withheld from this Postgres (Options.Withheld): they are older than
// the merged row, which reaches this Postgres once it can apply it.
func (s *Source) dropStaleRewrites(ops []merge.Op) []merge.Op {
	if s.opts.Withheld == nil {
		return ops
	}
	kept := ops[:0]
	for _, op := range ops {
		if op.Kind == merge.OpRewrite && s.opts.Withheld(op.Table, op.Key) {
			s.log.Info("a rewritten value of a row withheld from this connector is not merged: the merged row is newer", "table", op.Table)
			continue
		}
		kept = append(kept, op)
	}
	return kept
}
