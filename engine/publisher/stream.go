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
	// Resent rows (Server.Resend) of backfills not confirmed yet: their
	// Done is called once the subscriber confirmed them, or they are
	// requeued when the stream ends.
	resentPending []ResendRow
	// resendDeferred: rows to resend came before any entry was sent; the
	// first batch sends them.
	resendDeferred bool

	// Reports of the receive goroutine, and its end (set by startReceiver).
	ctl      <-chan ctlMsg
	recvDone <-chan struct{}
}

// run serves one START_REPLICATION until the subscriber stops it, fails or
// ctx ends: it claims the connector's stream, switches to copy-both, holds
// until the subscription covers the tables, then sends backfills and the
// log from st.after on.
func (st *stream) run(ctx context.Context) (err error) {
	se := st.se
	st.sent = st.after
	defer func() { st.requeueUnconfirmedBackfill(err) }()
	kick, release, ok := st.claim()
	if !ok {
		return se.queryError("55006", fmt.Sprintf("replication slot %q is active: connector %s already has a subscriber streaming", se.connector, se.connector))
	}
	defer release()
	se.srv.setState(se, "waiting")
	defer se.srv.setState(se, "query")
	se.log.Info("replication started", "after_offset", st.after)

	se.send(&pgproto3.CopyBothResponse{})
	if err := se.flush(); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st.startReceiver(ctx)

	keepalive := time.NewTicker(se.srv.opts.KeepaliveInterval)
	defer keepalive.Stop()
	if err := st.keepalive(false); err != nil {
		return err
	}

	if stop, err := st.awaitSubscription(ctx, keepalive.C); stop {
		return err
	}
	se.srv.setState(se, "streaming")
	st.markReplayed()
	if err := st.backfill(); err != nil {
		return err
	}

	entries, readErr, stopPump := st.startPump(ctx)
	defer stopPump()
	return st.loop(ctx, keepalive.C, entries, readErr, kick)
}

// claim makes this stream the connector's only one, as Postgres allows one
// walsender per slot: two subscribers under one name would apply every
// entry twice. ok is false when another stream holds the claim. kick wakes
// the stream when a backfill is queued; release gives the claim back.
func (st *stream) claim() (kick <-chan struct{}, release func(), ok bool) {
	se := st.se
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
	if busy {
		return nil, nil, false
	}
	k := make(chan struct{}, 1)
	se.srv.mu.Lock()
	se.srv.kick[se.connector] = k
	se.srv.mu.Unlock()
	release = func() {
		se.srv.updateProgress(se.connector, func(p *ConnectorStatus) { p.Streaming = false })
		se.srv.mu.Lock()
		delete(se.srv.kick, se.connector)
		se.srv.mu.Unlock()
	}
	return k, release, true
}

// startReceiver starts the goroutine that reads the subscriber's messages
// (see receive); the reply timeout counts from now.
func (st *stream) startReceiver(ctx context.Context) {
	st.lastReply.Store(time.Now().UnixNano())
	ctl := make(chan ctlMsg, 8)
	recvDone := make(chan struct{})
	st.ctl, st.recvDone = ctl, recvDone
	go func() {
		defer close(recvDone)
		st.receive(ctx, ctl)
	}()
}

// awaitSubscription holds the stream until the subscription includes the
// tables: a stock apply worker silently drops changes of tables it is not
// subscribed to yet. Meanwhile it answers the subscriber and keeps the
// connection alive. stop means the stream is over, with err (nil: back to
// query mode).
func (st *stream) awaitSubscription(ctx context.Context, keepalive <-chan time.Time) (stop bool, err error) {
	poll := time.NewTicker(viewPoll)
	defer poll.Stop()
	for !st.refreshView() {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case m := <-st.ctl:
			if done, err := st.control(m); done || err != nil {
				return true, err
			}
		case <-keepalive:
			if err := st.tick(); err != nil {
				return true, err
			}
		case <-poll.C:
		}
	}
	return false, nil
}

// markReplayed records that a stream replaying the whole log needs no
// backfill of the tables it starts with.
func (st *stream) markReplayed() {
	if st.after != 0 {
		return
	}
	st.replayed = map[string]bool{}
	for t := range st.rels {
		st.replayed[t] = true
	}
}

// startPump reads the log after st.after in a goroutine of its own, so that
// the stream waits on entries, the subscriber and its timers at once. A
// read error ends the pump and is reported on readErr. stop ends the pump
// and closes the reader.
func (st *stream) startPump(ctx context.Context) (entries <-chan *txlog.Entry, readErr <-chan error, stop func()) {
	reader := st.se.srv.opts.Feed(st.after)
	out := make(chan *txlog.Entry, maxBatch)
	errc := make(chan error, 1)
	pumpCtx, stopPump := context.WithCancel(ctx)
	pumpDone := make(chan struct{})
	go func() {
		defer close(pumpDone)
		for {
			e, err := reader.Next(pumpCtx)
			if err != nil {
				errc <- err
				return
			}
			select {
			case out <- e:
			case <-pumpCtx.Done():
				return
			}
		}
	}()
	stop = func() {
		stopPump()
		<-pumpDone
		reader.Close()
	}
	return out, errc, stop
}

// loop sends the log as it comes, and the backfills kick announces, while
// answering the subscriber, until the stream is over.
func (st *stream) loop(ctx context.Context, keepalive <-chan time.Time, entries <-chan *txlog.Entry, readErr <-chan error, kick <-chan struct{}) error {
	se := st.se
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readErr:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			se.fatal("XX000", fmt.Sprintf("electric: reading the log: %v", err))
			return fmt.Errorf("reading the log: %w", err)
		case m := <-st.ctl:
			if done, err := st.control(m); done || err != nil {
				return err
			}
			st.confirmResent()
		case <-keepalive:
			if err := st.tick(); err != nil {
				return err
			}
			st.confirmResent()
		case e := <-entries:
			if err := st.batch(e, entries); err != nil {
				return err
			}
			if st.resendDeferred && st.sent > 0 {
				st.resendDeferred = false
				if err := st.backfill(); err != nil {
					return err
				}
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
