// Package sequencer is the single writer of the txlog: it takes source
// transactions (from Postgres connectors and Satellite sessions), merges each
// into the row state with package merge, gives it the next log offset and
// group-commits entries, row states and source positions in one durable
// write. Only then does it tell the source (Item.Done), so a source acks
// upstream only what is durable. It owns the per-origin last effective
// timestamps and the log clock; it does not read from sources or serve sinks.
package sequencer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// ErrStopped is returned for items enqueued after Run has stopped, or left in
// the queue when it stopped for a reason other than its context.
var ErrStopped = errors.New("sequencer stopped")

// Item is one source transaction (or a bare position update) to sequence.
type Item struct {
	Source   string   // connector name, or "satellite:<client id>"; positions are stored per Source
	Position []byte   // the source's opaque position after this item, stored atomically with it (nil: keep)
	Tx       merge.Tx // Ops may be empty: then only Position is stored, no log entry
	// ContextOffset > 0: the source had applied the log up to this offset;
	// the merge context is Tx.Context joined with the log Clock of that entry.
	ContextOffset uint64
	// Done is called once, from the sequencer's goroutine, when the item is
	// durable (offset of its entry, 0 if none was written) or has failed. It
	// must not block.
	Done func(offset uint64, err error)
}

// Options tune a Sequencer. The zero value is usable.
type Options struct {
	Logger *slog.Logger
	// MaxBatch is the most items merged into one group commit (default 512).
	MaxBatch int
	// MaxBatchRows caps the row operations of one group commit (default
	// 64k), bounding its memory and latency.
	MaxBatchRows int
	// QueueSize bounds the items waiting for Run; Enqueue blocks beyond it
	// (default 1024).
	QueueSize int
	// ClockCache is how many recent entry clocks are kept for
	// ContextOffset lookups (default 4096); older ones are read from the log.
	ClockCache int
}

// Sequencer merges and appends items to the log. Create with New, start Run.
type Sequencer struct {
	log   *txlog.Log
	lg    *slog.Logger
	opts  Options
	queue chan Item

	// stopMu makes "not stopped, then send" atomic against Run's drain on
	// stop, so that no item is left in the queue without a Done call.
	stopMu  sync.RWMutex
	stopped bool
	stopCh  chan struct{}
	started bool
	runMu   sync.Mutex

	// Run goroutine state.
	originLast map[string]uint64 // highest Eff of each origin's entries
	clock      merge.Clock       // Clock of the head entry
	clocks     []clockAt         // ring of recent entry clocks, by offset
	statusMu   sync.Mutex
	status     Status
}

type clockAt struct {
	offset uint64
	clock  merge.Clock
}

// Status is a snapshot for the status API.
type Status struct {
	Running       bool
	Head          uint64
	Queued        int
	Items         uint64 // items done (entries, positions and failures)
	Entries       uint64 // entries appended
	Rows          uint64 // row changes appended
	Failed        uint64 // items failed by merge errors
	Commits       uint64 // group commits
	LastBatch     int    // items in the last group commit
	LastCommitDur time.Duration
}

// New returns a sequencer writing to log. Run must be called for items to
// be processed.
func New(log *txlog.Log, opts Options) *Sequencer {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.MaxBatchRows <= 0 {
		opts.MaxBatchRows = 64 << 10
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1024
	}
	if opts.ClockCache <= 0 {
		opts.ClockCache = 4096
	}
	return &Sequencer{
		log:    log,
		lg:     opts.Logger,
		opts:   opts,
		queue:  make(chan Item, opts.QueueSize),
		stopCh: make(chan struct{}),
		clocks: make([]clockAt, opts.ClockCache),
	}
}

// Enqueue queues an item, blocking while the queue is full.
func (s *Sequencer) Enqueue(ctx context.Context, it Item) error {
	s.stopMu.RLock()
	defer s.stopMu.RUnlock()
	if s.stopped {
		return ErrStopped
	}
	select {
	case s.queue <- it:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stopCh:
		return ErrStopped
	}
}

// Submit enqueues an item and waits until it is durable, returning the
// offset of its entry (0 if it wrote none). it.Done, if set, is called too.
func (s *Sequencer) Submit(ctx context.Context, it Item) (uint64, error) {
	type result struct {
		off uint64
		err error
	}
	ch := make(chan result, 1)
	done := it.Done
	it.Done = func(off uint64, err error) {
		if done != nil {
			done(off, err)
		}
		ch <- result{off, err}
	}
	if err := s.Enqueue(ctx, it); err != nil {
		return 0, err
	}
	select {
	case r := <-ch:
		return r.off, r.err
	case <-ctx.Done():
		// The item may still be committed; the caller must not assume
		// either way (its position tells on restart).
		return 0, ctx.Err()
	}
}

// Status returns current figures.
func (s *Sequencer) Status() Status {
	s.statusMu.Lock()
	st := s.status
	s.statusMu.Unlock()
	st.Queued = len(s.queue)
	st.Head = s.log.Head()
	return st
}

// Run processes items until ctx is done or the log fails. Items still
// queued when it returns are failed with its error.
func (s *Sequencer) Run(ctx context.Context) (err error) {
	s.runMu.Lock()
	if s.started {
		s.runMu.Unlock()
		return errors.New("sequencer: Run called twice")
	}
	s.started = true
	s.runMu.Unlock()
	defer func() { s.stop(err) }()

	if err := s.init(); err != nil {
		return err
	}
	s.setRunning(true)
	defer s.setRunning(false)
	s.lg.Info("sequencer started", "head", s.log.Head(), "origins", len(s.originLast))

	items := make([]Item, 0, s.opts.MaxBatch)
	for {
		items = items[:0]
		if err := ctx.Err(); err != nil {
			return err // stop before taking more work
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case it := <-s.queue:
			items = append(items, it)
		}
		rows := len(items[0].Tx.Ops)
	fill:
		for len(items) < s.opts.MaxBatch && rows < s.opts.MaxBatchRows {
			select {
			case it := <-s.queue:
				items = append(items, it)
				rows += len(it.Tx.Ops)
			default:
				break fill
			}
		}
		if err := s.process(items); err != nil {
			return err
		}
		clear(items) // drop references to done items
	}
}

// stop fails every item left in the queue with cause and refuses new ones.
func (s *Sequencer) stop(cause error) {
	if cause == nil {
		cause = ErrStopped
	}
	close(s.stopCh) // wakes Enqueue calls blocked on a full queue
	s.stopMu.Lock()
	s.stopped = true
	s.stopMu.Unlock()
	for {
		select {
		case it := <-s.queue:
			if it.Done != nil {
				it.Done(0, fmt.Errorf("sequencer stopped: %w", cause))
			}
		default:
			return
		}
	}
}

func (s *Sequencer) setRunning(v bool) {
	s.statusMu.Lock()
	s.status.Running = v
	s.statusMu.Unlock()
}

// init rebuilds the per-origin last effective timestamps from the head
// entry's Clock: it holds, per origin, the highest Eff of that origin's
// entries, which is exactly what merge needs, so nothing else is persisted.
func (s *Sequencer) init() error {
	s.clock = merge.Clock{}
	if head := s.log.Head(); head > 0 {
		e, err := s.log.Entry(head)
		if err != nil {
			return fmt.Errorf("sequencer: read head entry: %w", err)
		}
		for o, eff := range e.Clock {
			s.clock[o] = eff
		}
		s.remember(head, e.Clock)
	}
	s.originLast = make(map[string]uint64, len(s.clock))
	for o, eff := range s.clock {
		s.originLast[o] = eff
	}
	return nil
}

func (s *Sequencer) remember(offset uint64, c merge.Clock) {
	s.clocks[offset%uint64(len(s.clocks))] = clockAt{offset: offset, clock: c}
}

// clockOf returns the Clock of the committed entry at offset.
func (s *Sequencer) clockOf(offset uint64) (merge.Clock, error) {
	if c := s.clocks[offset%uint64(len(s.clocks))]; c.offset == offset && c.clock != nil {
		return c.clock, nil
	}
	e, err := s.log.Entry(offset)
	if err != nil {
		return nil, err
	}
	s.remember(offset, e.Clock)
	return e.Clock, nil
}

type rowID struct{ table, key string }

// overlay is the merge.Store of one group: row states changed by earlier
// items of the group, over the log's committed states.
type overlay struct {
	log  *txlog.Log
	rows map[rowID]*merge.Row
}

func (o *overlay) Row(table, key string) (*merge.Row, error) {
	if r, ok := o.rows[rowID{table, key}]; ok {
		return r, nil
	}
	return o.log.Row(table, key)
}

func (o *overlay) Keys(table string) ([]string, error) {
	keys, err := o.log.Keys(table)
	if err != nil {
		return nil, err
	}
	var seen map[string]bool
	for id := range o.rows {
		if id.table != table {
			continue
		}
		if seen == nil {
			seen = make(map[string]bool, len(keys))
			for _, k := range keys {
				seen[k] = true
			}
		}
		if !seen[id.key] {
			seen[id.key] = true
			keys = append(keys, id.key)
		}
	}
	return keys, nil
}

type outcome struct {
	done   func(uint64, error)
	offset uint64
	err    error
}

// process merges a group of items and commits them at once.
func (s *Sequencer) process(items []Item) error {
	head := s.log.Head()
	next := head + 1
	ov := &overlay{log: s.log, rows: make(map[rowID]*merge.Row)}
	b := &txlog.Batch{}
	outs := make([]outcome, len(items))
	// Speculative state, adopted only if the commit succeeds.
	clock := s.clock
	originLast := map[string]uint64{}
	last := func(o string) uint64 {
		if e, ok := originLast[o]; ok {
			return e
		}
		return s.originLast[o]
	}
	var failed, nrows uint64

	for i := range items {
		it := &items[i]
		outs[i].done = it.Done
		if len(it.Tx.Ops) > 0 {
			e, err := s.merge(ov, it, next, head, clock, last(it.Tx.Origin))
			if err != nil {
				outs[i].err = err
				failed++
				s.lg.Warn("sequencer: item failed", "source", it.Source, "origin", it.Tx.Origin, "err", err)
				continue // nothing of it is stored, its position included
			}
			if e != nil {
				b.Append(e)
				clock = e.Clock
				originLast[e.Origin] = e.Eff
				outs[i].offset = e.Offset
				nrows += uint64(len(e.Changes))
				next++
			}
		}
		if it.Source != "" && it.Position != nil {
			b.SetPosition(it.Source, it.Position)
		}
	}
	for id, r := range ov.rows {
		b.SetRow(id.table, id.key, r)
	}

	start := time.Now()
	if err := s.log.Commit(b); err != nil {
		err = fmt.Errorf("sequencer: commit %d items: %w", len(items), err)
		for _, o := range outs {
			if o.done != nil {
				o.done(0, err)
			}
		}
		s.lg.Error("sequencer: commit failed; stopping", "err", err)
		return err
	}
	dur := time.Since(start)
	s.clock = clock
	for o, e := range originLast {
		s.originLast[o] = e
	}
	for _, e := range b.Entries {
		s.remember(e.Offset, e.Clock)
	}
	s.statusMu.Lock()
	s.status.Items += uint64(len(items))
	s.status.Entries += uint64(len(b.Entries))
	s.status.Rows += nrows
	s.status.Failed += failed
	s.status.Commits++
	s.status.LastBatch = len(items)
	s.status.LastCommitDur = dur
	s.statusMu.Unlock()
	for _, o := range outs {
		if o.done != nil {
			o.done(o.offset, o.err)
		}
	}
	return nil
}

// merge merges one item into ov and returns its entry at offset next, or nil
// if the transaction changed no row.
func (s *Sequencer) merge(ov *overlay, it *Item, next, head uint64, clock merge.Clock, originLast uint64) (*txlog.Entry, error) {
	tx := it.Tx
	if it.ContextOffset > 0 {
		if it.ContextOffset > head {
			return nil, fmt.Errorf("merge %s: context offset %d is beyond the log head %d", it.Tx.Origin, it.ContextOffset, head)
		}
		lc, err := s.clockOf(it.ContextOffset)
		if err != nil {
			return nil, fmt.Errorf("merge %s: read context clock: %w", it.Tx.Origin, err)
		}
		ctx := make(merge.Clock, len(lc)+len(tx.Context))
		for o, e := range lc {
			ctx[o] = e
		}
		for o, e := range tx.Context {
			ctx[o] = max(ctx[o], e)
		}
		tx.Context = ctx
	}
	res, err := merge.Apply(ov, originLast, tx)
	if err != nil {
		return nil, fmt.Errorf("merge %s: %w", it.Tx.Origin, err)
	}
	for _, c := range res.Changes {
		ov.rows[rowID{c.Table, c.Key}] = c.State
	}
	if len(res.Changes) == 0 {
		return nil, nil
	}
	e := &txlog.Entry{
		Offset:     next,
		Origin:     tx.Origin,
		Eff:        res.Eff,
		CommitTime: tx.CommitTime,
		Clock:      make(merge.Clock, len(clock)+1),
		Changes:    make([]txlog.RowChange, len(res.Changes)),
	}
	for o, eff := range clock {
		e.Clock[o] = eff
	}
	e.Clock[tx.Origin] = max(e.Clock[tx.Origin], res.Eff)
	for i, c := range res.Changes {
		rc := &e.Changes[i]
		rc.Table, rc.Key = c.Table, c.Key
		if c.Live {
			rc.Row = c.Image
		} else {
			rc.Deleted = true
			rc.Row = c.State.Image() // the last image, so sinks can name the row
		}
	}
	return e, nil
}
