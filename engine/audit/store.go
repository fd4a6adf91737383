package audit

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
)

// Defaults of Options (and of AUDIT_MAX_EVENTS, AUDIT_MAX_AGE).
const (
	DefaultMaxEvents = 100_000
	DefaultMaxAge    = 30 * 24 * time.Hour
	DefaultQueue     = 4096
	// maxTables bounds the per-table counters; tables beyond it are
	// counted under OtherTable.
	maxTables = 1000
	// OtherTable is the counter label of tables past maxTables.
	OtherTable = "_other"
)

// Options configure a Store.
type Options struct {
	MaxEvents int           // events kept, oldest deleted first (DefaultMaxEvents if 0)
	MaxAge    time.Duration // events older are deleted (DefaultMaxAge if 0)
	// Queue is how many events may wait for the disk; more are dropped
	// (DefaultQueue if 0).
	Queue  int
	Logger *slog.Logger
	Now    func() time.Time // default time.Now
	// OnRetry is called (outside any lock) with the withheld rows Retry
	// marked; the engine re-sends them. Nil: they stay marked "retry".
	OnRetry func([]Event)
}

// Stats are the store's counters since it was opened.
type Stats struct {
	// Recorded counts events by kind and table (OtherTable past the
	// first 1,000 tables).
	Recorded map[Kind]map[string]uint64
	Dropped  uint64 // events dropped because the queue was full
	Failed   uint64 // events lost to a write error
	Stored   int    // events on disk now
}

// Store is the durable event store. Open it with Open; Record is safe from
// any goroutine and never blocks.
type Store struct {
	db   *pebble.DB
	opts Options
	lg   *slog.Logger

	in      chan Event
	done    chan struct{}
	stopped chan struct{}
	closeMu sync.Mutex
	closed  bool
	// dbmu: readers hold it shared, Close exclusively, so no read runs on
	// a closed database.
	dbmu sync.RWMutex

	dropped, failed atomic.Uint64
	lastDropLog     atomic.Int64 // unix seconds of the last "dropped" log line

	cmu    sync.Mutex
	counts map[Kind]map[string]uint64
	ntable map[string]bool

	// wmu serialises writes (the writer goroutine, Retry, Resolve); the
	// fields below are guarded by it.
	wmu         sync.Mutex
	first, next uint64 // ids on disk are [first, next)
	opened      uint64 // next when opened
}

// ErrClosed is returned by calls on a closed store.
var ErrClosed = errors.New("audit store closed")

// Open opens (or creates) the store in dir/audit and starts its writer.
func Open(dir string, opts Options) (*Store, error) {
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = DefaultMaxEvents
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	path := filepath.Join(dir, "audit")
	db, err := pebble.Open(path, &pebble.Options{Logger: quietLogger{opts.Logger}})
	if err != nil {
		return nil, fmt.Errorf("opening the audit store in %s: %w", path, err)
	}
	s := &Store{
		db: db, opts: opts, lg: opts.Logger,
		in: make(chan Event, opts.Queue), done: make(chan struct{}), stopped: make(chan struct{}),
		counts: map[Kind]map[string]uint64{}, ntable: map[string]bool{},
	}
	if err := s.loadBounds(); err != nil {
		db.Close()
		return nil, err
	}
	s.opened = s.next
	go s.run()
	return s, nil
}

// Close stops the writer after it has stored what was queued, and closes
// the database.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.closeMu.Unlock()
	<-s.stopped
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.dbmu.Lock()
	defer s.dbmu.Unlock()
	return s.db.Close()
}

// Record queues ev to be stored: its ID is assigned then, its Time now if
// unset, its texts bounded. It never blocks: with the queue full the event
// is dropped, counted and logged (at most once a minute).
func (s *Store) Record(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = s.opts.Now()
	}
	ev.ID = 0
	if ev.Kind == KindWithheld && ev.State == "" {
		ev.State = StateWithheld
	}
	ev.bound()
	s.count(ev.Kind, ev.Table)
	select {
	case <-s.done:
		s.drop("the store is closed")
		return
	default:
	}
	select {
	case s.in <- ev:
	default:
		s.drop("the queue is full: the disk is slower than events arrive")
	}
}

func (s *Store) drop(why string) {
	n := s.dropped.Add(1)
	now := s.opts.Now().Unix()
	if last := s.lastDropLog.Load(); now-last >= 60 && s.lastDropLog.CompareAndSwap(last, now) {
		s.lg.Warn("audit: event dropped, replication goes on", "why", why, "dropped_total", n)
	}
}

func (s *Store) count(k Kind, table string) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if !s.ntable[table] {
		if len(s.ntable) >= maxTables {
			table = OtherTable
		} else {
			s.ntable[table] = true
		}
	}
	m := s.counts[k]
	if m == nil {
		m = map[string]uint64{}
		s.counts[k] = m
	}
	m[table]++
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	st := Stats{Recorded: map[Kind]map[string]uint64{}, Dropped: s.dropped.Load(), Failed: s.failed.Load()}
	s.cmu.Lock()
	for k, m := range s.counts {
		c := make(map[string]uint64, len(m))
		for t, n := range m {
			c[t] = n
		}
		st.Recorded[k] = c
	}
	s.cmu.Unlock()
	s.wmu.Lock()
	st.Stored = int(s.next - s.first)
	s.wmu.Unlock()
	return st
}

const keyPrefix = 'e'

func key(id uint64) []byte {
	k := make([]byte, 9)
	k[0] = keyPrefix
	binary.BigEndian.PutUint64(k[1:], id)
	return k
}

func idOf(k []byte) (uint64, bool) {
	if len(k) != 9 || k[0] != keyPrefix {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[1:]), true
}

// loadBounds finds the ids on disk.
func (s *Store) loadBounds() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: key(0), UpperBound: []byte{keyPrefix + 1}})
	if err != nil {
		return fmt.Errorf("reading the audit store: %w", err)
	}
	defer it.Close()
	s.first, s.next = 1, 1
	if it.First() {
		s.first, _ = idOf(it.Key())
		if it.Last() {
			last, _ := idOf(it.Key())
			s.next = last + 1
		}
	}
	return it.Error()
}

// run stores queued events in batches until Close.
func (s *Store) run() {
	defer close(s.stopped)
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	batch := make([]Event, 0, 256)
	for {
		select {
		case ev := <-s.in:
			batch = append(batch[:0], ev)
		drain:
			for len(batch) < cap(batch) {
				select {
				case ev := <-s.in:
					batch = append(batch, ev)
				default:
					break drain
				}
			}
			s.write(batch)
		case <-tick.C:
			s.expire()
		case <-s.done:
			for {
				select {
				case ev := <-s.in:
					s.write([]Event{ev})
				default:
					return
				}
			}
		}
	}
}

// write stores evs and applies the retention.
func (s *Store) write(evs []Event) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	b := s.db.NewBatch()
	next := s.next
	for i := range evs {
		evs[i].ID = next
		v, err := json.Marshal(&evs[i])
		if err != nil { // cannot happen with these field types; never stall
			s.failed.Add(1)
			continue
		}
		if err := b.Set(key(next), v, nil); err != nil {
			s.failed.Add(1)
			continue
		}
		next++
	}
	first := s.first
	if over := int(next-first) - s.opts.MaxEvents; over > 0 {
		newFirst := first + uint64(over)
		if err := b.DeleteRange(key(first), key(newFirst), nil); err == nil {
			first = newFirst
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		s.failed.Add(uint64(len(evs)))
		s.lg.Error("audit: storing events failed; they are lost, replication goes on", "events", len(evs), "err", err)
		return
	}
	s.first, s.next = first, next
	s.expireLocked()
}

// expire deletes the events older than MaxAge.
func (s *Store) expire() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.expireLocked()
}

func (s *Store) expireLocked() {
	cutoff := s.opts.Now().Add(-s.opts.MaxAge)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: key(s.first), UpperBound: key(s.next)})
	if err != nil {
		return
	}
	end := s.first
	for ok := it.First(); ok; ok = it.Next() {
		var ev Event
		id, _ := idOf(it.Key())
		// Events are in recording order, so time order but for clock
		// steps: stop at the first one to keep.
		if json.Unmarshal(it.Value(), &ev) == nil && !ev.Time.Before(cutoff) {
			break
		}
		end = id + 1
	}
	it.Close()
	if end == s.first {
		return
	}
	if err := s.db.DeleteRange(key(s.first), key(end), pebble.Sync); err != nil {
		s.lg.Warn("audit: expiring old events failed", "err", err)
		return
	}
	s.first = end
}

// Query returns the events f selects, newest first.
func (s *Store) Query(ctx context.Context, f Filter) ([]Event, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	out := []Event{}
	err := s.scan(ctx, func(ev *Event) bool {
		if f.match(ev) {
			out = append(out, *ev)
		}
		return len(out) < limit
	})
	return out, err
}

// scan calls fn for each stored event, newest first, while it returns true.
func (s *Store) scan(ctx context.Context, fn func(*Event) bool) error {
	s.dbmu.RLock()
	defer s.dbmu.RUnlock()
	s.closeMu.Lock()
	closed := s.closed
	s.closeMu.Unlock()
	if closed {
		return ErrClosed
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: key(0), UpperBound: []byte{keyPrefix + 1}})
	if err != nil {
		return fmt.Errorf("reading the audit store: %w", err)
	}
	defer it.Close()
	n := 0
	for ok := it.Last(); ok; ok = it.Prev() {
		if n++; n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		var ev Event
		if err := json.Unmarshal(it.Value(), &ev); err != nil {
			continue // not ours to fail the whole listing for
		}
		if !fn(&ev) {
			break
		}
	}
	return it.Error()
}

// Retry marks the withheld rows f selects (state withheld or retry) as
// to be retried, calls Options.OnRetry with them and returns them.
func (s *Store) Retry(ctx context.Context, f Filter) ([]Event, error) {
	f.Kinds = []Kind{KindWithheld}
	f.States = []string{StateWithheld, StateRetry}
	f.Limit = MaxLimit
	evs, err := s.setState(ctx, f, StateRetry)
	if err != nil {
		return nil, err
	}
	if len(evs) > 0 && s.opts.OnRetry != nil {
		s.opts.OnRetry(evs)
	}
	return evs, nil
}

// Resolve marks withheld rows resolved (applied after all, or superseded).
func (s *Store) Resolve(ctx context.Context, ids ...uint64) error {
	want := map[uint64]bool{}
	for _, id := range ids {
		want[id] = true
	}
	_, err := s.setState(ctx, Filter{Kinds: []Kind{KindWithheld}, Limit: MaxLimit}, StateResolved, want)
	return err
}

func (s *Store) setState(ctx context.Context, f Filter, state string, only ...map[uint64]bool) ([]Event, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	evs, err := s.Query(ctx, f)
	if err != nil {
		return nil, err
	}
	b := s.db.NewBatch()
	var done []Event
	for _, ev := range evs {
		if len(only) > 0 && !only[0][ev.ID] {
			continue
		}
		ev.State = state
		v, err := json.Marshal(&ev)
		if err != nil {
			continue
		}
		if err := b.Set(key(ev.ID), v, nil); err != nil {
			return nil, fmt.Errorf("marking event %d %s: %w", ev.ID, state, err)
		}
		done = append(done, ev)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return nil, fmt.Errorf("marking events %s: %w", state, err)
	}
	return done, nil
}

type quietLogger struct{ lg *slog.Logger }

func (l quietLogger) Infof(format string, args ...interface{}) {
	l.lg.Debug("audit pebble: " + fmt.Sprintf(format, args...))
}

func (l quietLogger) Errorf(format string, args ...interface{}) {
	l.lg.Error("audit pebble: " + fmt.Sprintf(format, args...))
}

// Fatalf is called by Pebble on broken invariants only; it must not return.
func (l quietLogger) Fatalf(format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	l.lg.Error("audit pebble fatal: " + msg)
	panic("audit store: " + msg)
}
