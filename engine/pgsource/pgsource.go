// Package pgsource owns the ingest side of one Postgres connector: it sets up
// the publication (an explicit list of every replicated table, kept current
// by an event trigger and a periodic sync, never FOR ALL TABLES, so that
// electric.* tables stay out of it: see publication.go), the logical
// replication slot and the tables' replica identity (ReplicaIdentityFull,
// which migrations use too), streams pgoutput
// (v1) from the slot, turns each source transaction into a merge.Tx and hands
// it to the sequencer, and confirms a transaction's end LSN to Postgres only
// once the log reports it durable.
//
// It owns the rules that keep replication loop-free (transactions applied by
// the connector's own subscription are echoes: never merged again, but they
// set the causal context of the local writes that follow; electric.* tables
// are never replicated) and it keeps the slot advancing when nothing relevant
// happens so Postgres does not retain WAL forever. It never writes user data
// and never touches the subscription (that belongs to the publisher side).
package pgsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/electric-sql/electric-go/engine/sequencer"
)

// Item is what the connector hands to the sequencer.
type Item = sequencer.Item

// Sink receives the connector's items in source commit order:
// *sequencer.Sequencer. Enqueue may block (back-pressure); Done of each item
// must be called once, in order, when the item is durable or has failed.
type Sink interface {
	Enqueue(ctx context.Context, it Item) error
}

// PositionStore reads the position stored with the last durable item of a
// source (implemented by every txlog.Log); nil when none.
type PositionStore interface {
	Position(source string) ([]byte, error)
}

// Defaults.
const (
	DefaultPublication = "all_tables"
	DefaultSlot        = "all_changes"
)

// Options configure one connector's ingest.
type Options struct {
	Name        string       // connector name: the origin of its transactions and the subscription name
	URI         string       // Postgres connection URI (the replication parameter is added)
	Publication string       // default all_tables
	Slot        string       // default all_changes
	Logger      *slog.Logger // already naming the connector: lines add no connector attr
	Sink        Sink
	Store       PositionStore

	// StatusInterval is how often a standby status update is sent when
	// nothing else prompts one (default 10 s; Postgres' wal_sender_timeout
	// is 60 s).
	StatusInterval time.Duration
	// StatsInterval is how often slot statistics are read (default 5 s).
	StatsInterval time.Duration
	// MinBackoff and MaxBackoff bound the delay between reconnect attempts
	// (default 200 ms and 10 s).
	MinBackoff, MaxBackoff time.Duration
	// Withheld, when set, reports whether a row is withheld from this
	// connector's Postgres (it could not apply the merged row): a table
	// rewrite there (ALTER COLUMN ... TYPE) read back the older value that
	// row still has, which must not overwrite the merged one.
	Withheld func(table, key string) bool
}

// State is the connector's lifecycle state.
type State string

// States.
const (
	StateConnecting State = "connecting"
	StateReady      State = "ready" // set up and streaming
	// StateSnapshot: streaming, and reading the rows replicated tables held
	// before they were replicated (not ready until done).
	StateSnapshot State = "snapshot"
	StateError    State = "error" // the last attempt failed; retrying
	StateStopped  State = "stopped"
)

// Status is a snapshot of the connector for the status API.
type Status struct {
	Name  string
	State State
	Slot  string
	// ConfirmedLSN is the position last confirmed to Postgres (flush/apply).
	ConfirmedLSN pglogrepl.LSN
	// ReceivedLSN is the highest WAL position received from the slot.
	ReceivedLSN pglogrepl.LSN
	// WALRetainedBytes is pg_current_wal_lsn() - restart_lsn of the slot,
	// read periodically on a side connection (-1 when unknown).
	WALRetainedBytes int64
	// LagBytes is pg_current_wal_lsn() - confirmed_flush_lsn (-1 when unknown).
	LagBytes int64
	// LagSeconds is now - commit time of the oldest transaction received but
	// not yet durable; 0 when caught up.
	LagSeconds float64
	LastTxTime time.Time // commit time of the last transaction received
	Txs        uint64    // transactions received since start (all kinds)
	TxPerSec   float64

	// WALStatus is the slot's pg_replication_slots.wal_status ("" unknown);
	// "unreserved" means Postgres is about to invalidate it.
	WALStatus string
	// SlotInvalidations counts slots found invalidated and recreated since
	// start; SlotLost says what that lost and what to do ("" when nothing).
	SlotInvalidations uint64
	SlotLost          string

	LastError string
	// SkippedTables lists tables whose changes are ignored, with the reason.
	SkippedTables map[string]string
	// Snapshot is the progress of reading existing rows (snapshot.go).
	Snapshot SnapshotStatus
}

// Ready reports whether the connector is set up and streaming.
func (s Status) Ready() bool { return s.State == StateReady }

// Source is one connector's ingest.
type Source struct {
	opts Options
	log  *slog.Logger
	acks *ackQueue

	mu         sync.Mutex
	state      State
	received   pglogrepl.LSN
	enqueued   pglogrepl.LSN // highest end LSN handed to the sink (durable or in flight)
	echo       uint64        // last echo offset
	lastTx     time.Time
	txs        uint64
	rate       float64
	rateAt     time.Time
	rateTxs    uint64
	retained   int64
	lagBytes   int64
	lastErr    string
	skipped    map[string]string
	warned     map[string]bool
	snap       SnapshotStatus
	snapEver   bool // a snapshot pass of this process found everything read
	snapLogged time.Time
	fatal      error  // a Done error: the log cannot take our items
	attempt    uint64 // sequencer.Item.Attempt of the current connection
	// streamCancel stops the current connection (a fatal error must not
	// wait for the next message).
	streamCancel context.CancelFunc
	slot         slotHealth
}

// New checks the options and returns a Source; Run starts it.
func New(opts Options) (*Source, error) {
	if opts.Name == "" {
		return nil, errors.New("creating pgsource: connector name is empty")
	}
	if opts.URI == "" {
		return nil, fmt.Errorf("creating pgsource %s: URI is empty", opts.Name)
	}
	if opts.Sink == nil || opts.Store == nil {
		return nil, fmt.Errorf("creating pgsource %s: Sink and Store are required", opts.Name)
	}
	if opts.Publication == "" {
		opts.Publication = DefaultPublication
	}
	if opts.Slot == "" {
		opts.Slot = DefaultSlot
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.StatusInterval <= 0 {
		opts.StatusInterval = 10 * time.Second
	}
	if opts.StatsInterval <= 0 {
		opts.StatsInterval = 5 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 200 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = 10 * time.Second
		if opts.MaxBackoff < opts.MinBackoff {
			opts.MaxBackoff = opts.MinBackoff
		}
	}
	return &Source{
		opts:     opts,
		log:      opts.Logger, // the caller names the connector (engine: component and connector attrs)
		acks:     newAckQueue(),
		state:    StateConnecting,
		retained: -1,
		lagBytes: -1,
		skipped:  map[string]string{},
		warned:   map[string]bool{},
	}, nil
}

// Run ingests until ctx is done, reconnecting with backoff when Postgres goes
// away or the stream breaks. It returns nil when ctx ends, or an error when
// the sink reports that it cannot make items durable.
func (s *Source) Run(ctx context.Context) error {
	backoff := s.opts.MinBackoff
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := s.runOnce(ctx)
		if ctx.Err() != nil {
			s.setState(StateStopped, "")
			s.log.Info("ingest stopped")
			return nil
		}
		if f := s.fatalErr(); f != nil {
			s.setState(StateError, f.Error())
			s.log.Error("ingest stopped: the log cannot take transactions", "err", f)
			return f
		}
		if err == nil {
			err = errors.New("stream ended")
		}
		// A connection that streamed for a while starts the backoff over.
		if time.Since(start) > 30*time.Second {
			backoff = s.opts.MinBackoff
			attempt = 1
		}
		s.setState(StateError, err.Error())
		s.log.Warn("ingest interrupted, reconnecting", "err", err, "attempt", attempt, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			s.setState(StateStopped, "")
			s.log.Info("ingest stopped")
			return nil
		case <-t.C:
		}
		backoff *= 2
		if backoff > s.opts.MaxBackoff {
			backoff = s.opts.MaxBackoff
		}
	}
}

// Status returns a snapshot.
func (s *Source) Status() Status {
	confirmed, oldest := s.acks.snapshot()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{
		Name:             s.opts.Name,
		State:            s.state,
		Slot:             s.opts.Slot,
		ConfirmedLSN:     confirmed,
		ReceivedLSN:      s.received,
		WALRetainedBytes: s.retained,
		LagBytes:         s.lagBytes,
		LastTxTime:       s.lastTx,
		Txs:              s.txs,
		TxPerSec:         s.rate,
		LastError:        s.lastErr,
		SkippedTables:    make(map[string]string, len(s.skipped)),
		Snapshot:         s.snap,
	}
	if st.Snapshot.Active {
		st.Snapshot.Elapsed = time.Since(st.Snapshot.Started)
	}
	st.WALStatus, st.SlotLost, st.SlotInvalidations = s.slot.walStatus, s.slot.lost, s.slot.invalidations
	if !oldest.IsZero() {
		st.LagSeconds = time.Since(oldest).Seconds()
		if st.LagSeconds < 0 {
			st.LagSeconds = 0
		}
	}
	for k, v := range s.skipped {
		st.SkippedTables[k] = v
	}
	return st
}

// Ready reports whether the connector is set up and streaming.
func (s *Source) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == StateReady
}

func (s *Source) setState(st State, errText string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = st
	if errText != "" {
		s.lastErr = errText
	}
}

func (s *Source) fatalErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fatal
}

func (s *Source) setFatal(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fatal == nil {
		s.fatal = err
	}
	if s.streamCancel != nil {
		s.streamCancel()
	}
}

// warnOnce logs a warning the first time it is seen for a key.
func (s *Source) warnOnce(key, msg string, args ...any) {
	s.mu.Lock()
	seen := s.warned[key]
	s.warned[key] = true
	s.mu.Unlock()
	if !seen {
		s.log.Warn(msg, args...)
	}
}

func (s *Source) warnChange(table, msg string) {
	s.warnOnce("change:"+table+":"+msg, msg, "table", table)
}

func (s *Source) setSkipped(table, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if reason == "" {
		delete(s.skipped, table)
		return
	}
	s.skipped[table] = reason
}

// WaitIngested waits until the position confirmed to Postgres (everything
// before it is durable in the log or was not ours to merge) reaches lsn, for
// at most max, and reports whether it did.
func (s *Source) WaitIngested(ctx context.Context, lsn uint64, max time.Duration) bool {
	deadline := time.Now().Add(max)
	for {
		if uint64(s.Status().ConfirmedLSN) >= lsn {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
}
