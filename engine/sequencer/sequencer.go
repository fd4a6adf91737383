// Package sequencer is the single writer of the txlog: it takes source
// transactions (from Postgres connectors and Satellite sessions), merges each
// into the row state with package merge, gives it the next log offset and
// group-commits entries, row states and source positions in one durable
// write. Only then does it tell the source (Item.Done), so a source acks
// upstream only what is durable. It owns the per-origin last effective
// timestamps and turns a source's context offset into a merge context (the
// offset and the log's highest eff there, one number each: package merge,
// "Causal context"); it does not read from sources or serve sinks. A
// source's stored position never passes one of its transactions that is
// not in the log (failures.go).
//
// It is also where the engine's time enters the merge: each transaction is
// merged with Tx.Now = the engine's time, so a source clock that runs ahead
// counts as at most one second ahead (merge.MaxAhead, see package merge,
// "Bounded clocks"); the bounded commit time is what the entry stores. The
// effective timestamp is computed once, here, and stored in the entry, so
// every replica sees the same one whatever its own clock.
package sequencer

import (
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

// ErrOwnedByOther fails an item whose Owner differs from the user its
// Source is already bound to.
var ErrOwnedByOther = errors.New("source is owned by another user")

// Item is one source transaction (or a bare position update) to sequence.
type Item struct {
	Source   string   // connector name, or "satellite:<client id>"; positions are stored per Source
	Position []byte   // the source's opaque position after this item, stored atomically with it (nil: keep)
	Tx       merge.Tx // Ops may be empty: then only Position is stored, no log entry
	// Owner, if set, binds Source to this user (txlog.Log.Owner) in the
	// same commit as the item. The first binding of a source wins: an item
	// naming another user than the one bound fails with ErrOwnedByOther and
	// stores nothing. The check is here, in the single writer, so that two
	// engines' sessions racing for one source cannot both win.
	Owner string
	// ContextOffset is the log offset the source had applied (0: none; a
	// Satellite's is the one it had acknowledged): the merge context
	// (merge.Tx.Context). The sequencer sets Tx.Offset, Tx.Context and
	// Tx.ContextEff.
	ContextOffset uint64
	// Attempt names the run of the source that made the item (a
	// connection, a session). After a failed item every later item of the
	// same Source and Attempt fails (ErrSourceFailed): the source must start
	// again from its stored position under another Attempt. A refused item
	// (ErrRefused) does not count as failed.
	Attempt uint64
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
	// ClockCache is how many recent entries' MaxEff are kept for
	// ContextOffset lookups (default 4096); older ones are read from the log.
	ClockCache int
	// EchoRows bounds how many recently changed rows are remembered for
	// the echo-safety check (default 256k; up to twice as many are kept).
	// A forgotten row makes the next entry touching it unsafe, which only
	// costs an echo.
	EchoRows int
	// Now is the engine's clock (default time.Now); tests set it.
	Now func() time.Time
	// OnConflicts, if set, is called from the committing goroutine with the
	// cells concurrent writes lost in each group, once it is durable. It
	// must not block: replication waits for it.
	OnConflicts func([]Conflict)
	// OnRefused, if set, is called (from Run's goroutine, before the
	// refusal is durable; it must not block) for every transaction merge
	// refused (see ErrRefused).
	OnRefused func(Refusal)
}

// Sequencer merges and appends items to the log. Create with New, start Run.
//
// Run's goroutine merges; a second goroutine commits. While one group is
// being written and fsynced, the next one is merged against the row states
// of the groups not yet committed (an overlay over the log), so the disk
// wait and the commit's encoding overlap with merging.
type Sequencer struct {
	log  txlog.Log
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
	originLast map[string]uint64 // highest Eff of each origin's entries (read from the log on first use)
	maxEff     uint64            // MaxEff of the last merged entry
	maxEffs    []maxEffAt        // ring of recent entries' MaxEff, by offset
	ov         overlay
	groups     []pendingGroup    // groups merged, maybe not committed, oldest first
	touches    touchMap          // last entry that changed each recent row
	owners     map[string]string // bindings read or made (uncommitted ones too)
	// broken: the failed attempts of sources (see failures.go).
	broken map[attemptKey]error
	// clampWarned: when each origin was last warned of a clamped commit
	// time (one line per origin per clampWarnEvery, not per transaction).
	clampWarned map[string]time.Time

	committed atomic.Uint64 // seq of the last committed group

	statusMu sync.Mutex
	status   Status
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
	Failed        uint64 // items failed (nothing stored, position included)
	Refused       uint64 // transactions refused by merge (position stored)
	Commits       uint64 // group commits
	LastBatch     int    // items in the last group commit
	LastCommitDur time.Duration
}

// New returns a sequencer writing to log. Run must be called for items to
// be processed.
func New(log txlog.Log, opts Options) *Sequencer {
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
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Sequencer{
		log:     log,
		lg:      opts.Logger,
		opts:    opts,
		ready:   make(chan struct{}, 1),
		space:   make(chan struct{}),
		stopCh:  make(chan struct{}),
		maxEffs: make([]maxEffAt, opts.ClockCache),
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

func (s *Sequencer) setRunning(v bool) {
	s.statusMu.Lock()
	s.status.Running = v
	s.statusMu.Unlock()
}

// init reads where the log is: its head and the head entry's MaxEff. Each
// origin's last eff is read from the log when the origin first shows up
// (Log.OriginEff), so nothing per origin is loaded or persisted here.
func (s *Sequencer) init() error {
	head := s.log.Head()
	s.next = head + 1
	s.maxEff = 0
	s.originLast = map[string]uint64{}
	s.ov = overlay{log: s.log, rows: map[rowID]ovRow{}}
	// Rebuilt empty: rows changed before a restart count as unknown, so
	// their next entries are echoed until touched again.
	s.touches = touchMap{max: s.opts.EchoRows, cur: map[rowID]touch{}}
	s.owners = map[string]string{}
	if head > 0 {
		e, err := s.log.Entry(head)
		if err != nil {
			return fmt.Errorf("sequencer: read head entry: %w", err)
		}
		s.maxEff = e.MaxEff
		s.remember(head, e.MaxEff)
	}
	return nil
}
