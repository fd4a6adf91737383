package publisher

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/electric-sql/electric-go/engine/txlog"
)

// viewPoll is how often a held stream re-reads the connector's view while
// waiting for the subscription to be refreshed.
const viewPoll = 100 * time.Millisecond

// maxBatch bounds how many ready entries are encoded before a flush.
const maxBatch = 256

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
