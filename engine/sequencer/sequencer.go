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
	"sync/atomic"
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
	// Done is called once, from a sequencer goroutine, when the item is
	// durable (offset of its entry, 0 if none was written) or has failed.
	// Items are done in queue order. It must not block.
	Done func(offset uint64, err error)
}

// Options tune a Sequencer. The zero value is usable.
type Options struct {
	Logger *slog.Logger
	// MaxBatch is the most items merged into one group commit (default 512).
	MaxBatch int
	// MaxBatchRows caps the row operations of one group commit (default
	// 4k), bounding its memory and latency. Larger groups do not help:
	// commits are pipelined with merging, and the fsync is paid per group.
	MaxBatchRows int
	// MaxQueuedRows bounds the row operations waiting for Run (an item
	// without ops counts as one); Enqueue blocks beyond it. An
	// item larger than the bound is taken when the queue is empty.
	// (default 8k)
	MaxQueuedRows int
	// ClockCache is how many recent entry clocks are kept for
	// ContextOffset lookups (default 4096); older ones are read from the log.
	ClockCache int
	// EchoRows bounds how many recently changed rows are remembered for
	// the echo-safety check (default 256k; up to twice as many are kept).
	// A forgotten row makes the next entry touching it unsafe, which only
	// costs an echo.
	EchoRows int
}

// Sequencer merges and appends items to the log. Create with New, start Run.
//
// Run's goroutine merges; a second goroutine commits. While one group is
// being written and fsynced, the next one is merged against the row states
// of the groups not yet committed (an overlay over the log), so the disk
// wait and the commit's encoding overlap with merging.
type Sequencer struct {
	log  *txlog.Log
	lg   *slog.Logger
	opts Options

	qmu        sync.Mutex
	queue      []Item
	queuedRows int
	stopped    bool
	ready      chan struct{} // capacity 1: items were queued
	space      chan struct{} // closed and replaced when items are taken
	stopCh     chan struct{}

	runMu   sync.Mutex
	started bool

	// Merging state, owned by Run's goroutine. Speculative: it includes
	// groups not yet committed (a failed commit stops the sequencer).
	next       uint64            // offset of the next entry
	originLast map[string]uint64 // highest Eff of each origin's entries
	clock      merge.Clock       // Clock of the last merged entry
	clocks     []clockAt         // ring of recent entry clocks, by offset
	ov         overlay
	groups     []pendingGroup // groups merged, maybe not committed, oldest first
	touches    touchMap       // last entry that changed each recent row

	committed atomic.Uint64 // seq of the last committed group

	statusMu sync.Mutex
	status   Status
}

type clockAt struct {
	offset uint64
	clock  merge.Clock
}

type pendingGroup struct {
	seq  uint64
	rows []rowID
}

// Status is a snapshot for the status API.
type Status struct {
	Running       bool
	Head          uint64
	Queued        int    // items waiting
	QueuedRows    int    // their row operations
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
		opts.MaxBatchRows = 4 << 10
	}
	if opts.MaxQueuedRows <= 0 {
		opts.MaxQueuedRows = 8 << 10
	}
	if opts.ClockCache <= 0 {
		opts.ClockCache = 4096
	}
	if opts.EchoRows <= 0 {
		opts.EchoRows = 256 << 10
	}
	return &Sequencer{
		log:    log,
		lg:     opts.Logger,
		opts:   opts,
		ready:  make(chan struct{}, 1),
		space:  make(chan struct{}),
		stopCh: make(chan struct{}),
		clocks: make([]clockAt, opts.ClockCache),
	}
}

func weight(it *Item) int { return max(1, len(it.Tx.Ops)) }

// Enqueue queues an item, blocking while the queue is full.
func (s *Sequencer) Enqueue(ctx context.Context, it Item) error {
	w := weight(&it)
	for {
		s.qmu.Lock()
		if s.stopped {
			s.qmu.Unlock()
			return ErrStopped
		}
		if s.queuedRows == 0 || s.queuedRows+w <= s.opts.MaxQueuedRows {
			s.queue = append(s.queue, it)
			s.queuedRows += w
			s.qmu.Unlock()
			select {
			case s.ready <- struct{}{}:
			default:
			}
			return nil
		}
		space := s.space
		s.qmu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stopCh:
			return ErrStopped
		}
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
		// either way (its stored position tells after a restart).
		return 0, ctx.Err()
	}
}

// Status returns current figures.
func (s *Sequencer) Status() Status {
	s.statusMu.Lock()
	st := s.status
	s.statusMu.Unlock()
	s.qmu.Lock()
	st.Queued, st.QueuedRows = len(s.queue), s.queuedRows
	s.qmu.Unlock()
	st.Head = s.log.Head()
	return st
}

// take removes up to a group's worth of items from the queue, appending them
// to items.
func (s *Sequencer) take(items []Item) []Item {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	rows, n := 0, 0
	for n < len(s.queue) && n < s.opts.MaxBatch && (n == 0 || rows+weight(&s.queue[n]) <= s.opts.MaxBatchRows) {
		rows += weight(&s.queue[n])
		n++
	}
	items = append(items, s.queue[:n]...)
	clear(s.queue[:n])
	s.queue = s.queue[n:]
	if len(s.queue) == 0 {
		s.queue = nil // let the backing array go
	}
	s.queuedRows -= rows
	if n > 0 {
		close(s.space)
		s.space = make(chan struct{})
	}
	if len(s.queue) > 0 {
		select {
		case s.ready <- struct{}{}:
		default:
		}
	}
	return items
}

// group is one merged group on its way to the committer.
type group struct {
	seq            uint64
	batch          *txlog.Batch
	outs           []outcome
	rows, failures uint64
}

type outcome struct {
	done   func(uint64, error)
	offset uint64
	err    error
}

// Run processes items until ctx is done or the log fails. Items still
// queued when it returns are failed with its error; items already merged are
// committed (or failed) first.
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
	s.lg.Info("sequencer started", "head", s.next-1, "origins", len(s.originLast))

	// One group waits while one commits: enough to overlap, and it bounds
	// the memory of merged but uncommitted groups.
	toCommit := make(chan *group, 1)
	failed := make(chan struct{})
	var commitErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		commitErr = s.committer(toCommit, failed)
	}()
	defer func() {
		close(toCommit)
		wg.Wait()
		if commitErr != nil {
			err = commitErr
		}
	}()

	var seq uint64
	var items []Item
	for {
		if err := ctx.Err(); err != nil {
			return err // stop before taking more work
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-failed:
			return nil // commitErr is returned by the deferred func
		case <-s.ready:
		}
		items = s.take(items[:0])
		if len(items) == 0 {
			continue
		}
		s.forgetCommitted()
		seq++
		g := s.merge(seq, items)
		clear(items) // drop references to items now owned by g
		select {
		case toCommit <- g:
		case <-failed:
			s.finish(g, fmt.Errorf("sequencer: %w (an earlier commit failed)", ErrStopped))
			return nil
		}
	}
}

// committer commits groups in order and then reports their items done. After
// a failed commit it fails every later group without writing it.
func (s *Sequencer) committer(in <-chan *group, failed chan struct{}) error {
	var ferr error
	for g := range in {
		if ferr != nil {
			s.finish(g, ferr)
			continue
		}
		start := time.Now()
		if err := s.log.Commit(g.batch); err != nil {
			ferr = fmt.Errorf("sequencer: commit: %w", err)
			s.lg.Error("sequencer: commit failed; stopping", "err", err)
			close(failed)
			s.finish(g, ferr)
			continue
		}
		dur := time.Since(start)
		s.committed.Store(g.seq)
		s.statusMu.Lock()
		s.status.Items += uint64(len(g.outs))
		s.status.Entries += uint64(len(g.batch.Entries))
		s.status.Rows += g.rows
		s.status.Failed += g.failures
		s.status.Commits++
		s.status.LastBatch = len(g.outs)
		s.status.LastCommitDur = dur
		s.statusMu.Unlock()
		s.finish(g, nil)
	}
	return ferr
}

// finish calls every Done of g: with err if the group failed as a whole.
func (s *Sequencer) finish(g *group, err error) {
	for _, o := range g.outs {
		if o.done == nil {
			continue
		}
		if err != nil {
			o.done(0, err)
		} else {
			o.done(o.offset, o.err)
		}
	}
}

// stop fails every item left in the queue with cause and refuses new ones.
func (s *Sequencer) stop(cause error) {
	if cause == nil {
		cause = ErrStopped
	}
	s.qmu.Lock()
	s.stopped = true
	close(s.stopCh) // wakes Enqueue calls blocked on a full queue
	left := s.queue
	s.queue, s.queuedRows = nil, 0
	s.qmu.Unlock()
	for _, it := range left {
		if it.Done != nil {
			it.Done(0, fmt.Errorf("sequencer stopped: %w", cause))
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
	head := s.log.Head()
	s.next = head + 1
	s.clock = merge.Clock{}
	s.ov = overlay{log: s.log, rows: map[rowID]ovRow{}}
	// Rebuilt empty: rows changed before a restart count as unknown, so
	// their next entries are echoed until touched again.
	s.touches = touchMap{max: s.opts.EchoRows, cur: map[rowID]touch{}}
	if head > 0 {
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

// clockOf returns the Clock of the entry at offset.
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

// forgetCommitted drops from the overlay the row states of committed groups
// (the log serves them now), unless a later group changed them again.
func (s *Sequencer) forgetCommitted() {
	done := s.committed.Load()
	n := 0
	for n < len(s.groups) && s.groups[n].seq <= done {
		g := s.groups[n]
		for _, id := range g.rows {
			if r, ok := s.ov.rows[id]; ok && r.seq == g.seq {
				delete(s.ov.rows, id)
			}
		}
		n++
	}
	clear(s.groups[:n])
	s.groups = s.groups[n:]
}

type rowID struct{ table, key string }

type ovRow struct {
	row *merge.Row
	seq uint64 // group that wrote it
}

// overlay is the merge.Store the sequencer merges against: the row states of
// groups not yet committed over the log's committed states.
type overlay struct {
	log  *txlog.Log
	rows map[rowID]ovRow
	// absent collects, while one transaction is merged, the rows that had
	// no state at all: no entry ever changed them.
	absent map[rowID]bool
}

func (o *overlay) Row(table, key string) (*merge.Row, error) {
	if r, ok := o.rows[rowID{table, key}]; ok {
		return r.row, nil
	}
	r, err := o.log.Row(table, key)
	if err == nil && r == nil && o.absent != nil {
		o.absent[rowID{table, key}] = true
	}
	return r, err
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

// merge merges a group of items into one batch.
func (s *Sequencer) merge(seq uint64, items []Item) *group {
	g := &group{seq: seq, batch: &txlog.Batch{}, outs: make([]outcome, len(items))}
	changed := map[rowID]*merge.Row{}
	var order []rowID
	for i := range items {
		it := &items[i]
		g.outs[i].done = it.Done
		if len(it.Tx.Ops) > 0 {
			e, err := s.mergeItem(seq, it, changed, &order)
			if err != nil {
				g.outs[i].err = err
				g.failures++
				s.lg.Warn("sequencer: item failed", "source", it.Source, "origin", it.Tx.Origin, "err", err)
				continue // nothing of it is stored, its position included
			}
			if e != nil {
				g.batch.Append(e)
				g.outs[i].offset = e.Offset
				g.rows += uint64(len(e.Changes))
			}
		}
		if it.Source != "" && it.Position != nil {
			g.batch.SetPosition(it.Source, it.Position)
		}
	}
	g.batch.Rows = make([]txlog.RowState, 0, len(order))
	for _, id := range order {
		g.batch.Rows = append(g.batch.Rows, txlog.RowState{Table: id.table, Key: id.key, Row: changed[id]})
	}
	s.groups = append(s.groups, pendingGroup{seq: seq, rows: order})
	return g
}

// mergeItem merges one item into the overlay and returns its entry, or nil
// if the transaction changed no row.
func (s *Sequencer) mergeItem(seq uint64, it *Item, changed map[rowID]*merge.Row, order *[]rowID) (*txlog.Entry, error) {
	tx := it.Tx
	if it.ContextOffset > 0 {
		if it.ContextOffset >= s.next {
			return nil, fmt.Errorf("merge %s: context offset %d is beyond the log head %d", tx.Origin, it.ContextOffset, s.next-1)
		}
		lc, err := s.clockOf(it.ContextOffset)
		if err != nil {
			return nil, fmt.Errorf("merge %s: read context clock: %w", tx.Origin, err)
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
	if s.ov.absent == nil {
		s.ov.absent = map[rowID]bool{}
	}
	clear(s.ov.absent)
	res, err := merge.Apply(&s.ov, s.originLast[tx.Origin], tx)
	if err != nil {
		return nil, fmt.Errorf("merge %s: %w", tx.Origin, err)
	}
	for _, c := range res.Changes {
		id := rowID{c.Table, c.Key}
		if _, ok := changed[id]; !ok {
			*order = append(*order, id)
		}
		changed[id] = c.State
		s.ov.rows[id] = ovRow{row: c.State, seq: seq}
	}
	if len(res.Changes) == 0 {
		return nil, nil
	}
	e := &txlog.Entry{
		Offset:     s.next,
		Origin:     tx.Origin,
		Eff:        res.Eff,
		CommitTime: tx.CommitTime,
		Clock:      make(merge.Clock, len(s.clock)+1),
		Changes:    make([]txlog.RowChange, len(res.Changes)),
	}
	for o, eff := range s.clock {
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
	e.EchoSafe = s.echoSafe(it.ContextOffset, tx.Origin, tx.Ops, &res)
	for _, c := range e.Changes {
		s.touches.set(rowID{c.Table, c.Key}, touch{offset: e.Offset, origin: tx.Origin, safe: e.EchoSafe})
	}
	s.next++
	s.clock = e.Clock
	s.originLast[tx.Origin] = res.Eff
	s.remember(e.Offset, e.Clock)
	return e, nil
}

// touch is the last entry that changed a row.
type touch struct {
	offset uint64
	origin string
	safe   bool // that entry was EchoSafe
}

// touchMap remembers the last touch of recently changed rows, bounded by
// generations: when cur holds max rows it becomes prev and prev is dropped.
// A dropped row is unknown, which the echo check treats as unsafe.
type touchMap struct {
	max       int
	cur, prev map[rowID]touch
}

func (m *touchMap) get(id rowID) (touch, bool) {
	if t, ok := m.cur[id]; ok {
		return t, true
	}
	t, ok := m.prev[id]
	return t, ok
}

func (m *touchMap) set(id rowID, t touch) {
	if len(m.cur) >= m.max {
		m.prev, m.cur = m.cur, make(map[rowID]touch, m.max)
	}
	m.cur[id] = t
}

// heldRow is what the origin itself holds for a row after its transaction.
type heldRow struct {
	live bool
	cols map[string]merge.Value
}

// echoSafe reports whether the entry merged from ops need not be sent back
// to its origin (DESIGN.md: skipping the echo is allowed only where the
// origin provably already holds the merged rows). For every row changed:
//   - the merged result equals what the origin's own transaction left in
//     it: not live after a delete, else live with an image equal, column for
//     column, to the row the origin wrote (an update is only known in full
//     when its old image has every column);
//   - no entry the origin will still receive changed the row in between:
//     the row never existed before, or its last change is at or below the
//     origin's context offset (applied there), or was an echo-safe entry
//     of the origin itself. Rows not remembered count as unsafe.
//
// A truncate is never safe: its effect on rows is not spelled out per row.
func (s *Sequencer) echoSafe(ctxOff uint64, origin string, ops []merge.Op, res *merge.Result) bool {
	held := make(map[rowID]heldRow, len(ops))
	for i := range ops {
		op := &ops[i]
		id := rowID{op.Table, op.Key}
		switch op.Kind {
		case merge.OpInsert:
			held[id] = heldRow{live: true, cols: op.Columns}
		case merge.OpUpdate:
			base := op.Old
			if prev, ok := held[id]; ok {
				if !prev.live {
					return false // an update of a row this transaction deleted
				}
				base = prev.cols
			}
			cols := make(map[string]merge.Value, len(base)+len(op.Columns))
			for c, v := range base {
				cols[c] = v
			}
			for c, v := range op.Columns {
				cols[c] = v
			}
			held[id] = heldRow{live: true, cols: cols}
		case merge.OpDelete:
			held[id] = heldRow{}
		default:
			return false
		}
	}
	if len(held) != len(res.Changes) {
		return false
	}
	for i := range res.Changes {
		c := &res.Changes[i]
		id := rowID{c.Table, c.Key}
		h, ok := held[id]
		if !ok || h.live != c.Live || (h.live && !sameImage(h.cols, c.Image)) {
			return false
		}
		if s.ov.absent[id] {
			continue
		}
		t, ok := s.touches.get(id)
		if !ok {
			return false
		}
		if t.offset > ctxOff && (t.origin != origin || !t.safe) {
			return false
		}
	}
	return true
}

// sameImage reports whether two rows have the same columns and values.
func sameImage(a, b map[string]merge.Value) bool {
	if len(a) != len(b) {
		return false
	}
	for c, v := range a {
		w, ok := b[c]
		if !ok || v != w {
			return false
		}
	}
	return true
}
