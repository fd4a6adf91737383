// Package txlog owns the engine's durable state (DESIGN.md "The one big
// change"): one totally ordered log of merged transactions, the merged row
// state of every row, and each source's position, kept together in one
// embedded store in a data directory so that one Commit makes all three
// durable at once. It knows nothing of merging (package merge) or of who
// writes (package sequencer, the single writer); it stores, orders and
// replays.
package txlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/electric-sql/electric-go/engine/merge"
)

// Errors callers act on.
var (
	// ErrClosed is returned by every call on a closed Log or Reader.
	ErrClosed = errors.New("txlog closed")
	// ErrNoEntry is returned for an offset that is not in the log.
	ErrNoEntry = errors.New("no such log entry")
	// ErrBeyondHead is returned by a Reader asked to start after the head:
	// the caller holds an offset this log never wrote (another data
	// directory, or state lost), and following it would skip entries.
	ErrBeyondHead = errors.New("offset beyond the log head")
	// ErrForeignDir is returned by Open for a directory that holds
	// something other than a txlog.
	ErrForeignDir = errors.New("not a txlog data directory")
)

// Key layout in the store. One-byte prefixes keep the three kinds apart;
// entries use big-endian offsets so that key order is log order.
const (
	prefixEntry    = 'e'
	prefixRow      = 'r'
	prefixPosition = 'p'
)

var (
	metaKey   = []byte("\x00meta")
	metaValue = []byte("electric-txlog format 1")
)

// Options tune a Log. The zero value is usable.
type Options struct {
	Logger *slog.Logger
	// RowCacheBytes bounds the cache of encoded row states (default 32 MiB).
	RowCacheBytes int
	// TailCacheBytes bounds the decoded recent entries kept in memory for
	// readers at the head (default 8 MiB of encoded size, about three
	// times that decoded).
	TailCacheBytes int
}

// Log is the durable, ordered log plus row state and positions. Reads are
// safe from any goroutine; Commit calls are serialized.
type Log struct {
	dir   string
	log   *slog.Logger
	store kvStore

	commitMu sync.Mutex // serializes Commit and Close
	// failed is the error of a store commit that failed: the store's write
	// path is then in an unknown state, so later commits are refused until
	// the log is reopened (recovery discards any partial write).
	failed error

	// storeMu guards store use by readers against Close (Pebble panics
	// when used after close). Commit never takes it: it holds commitMu.
	storeMu     sync.RWMutex
	storeClosed bool

	mu       sync.RWMutex
	head     uint64
	closed   bool
	notify   chan struct{} // closed and replaced after each commit
	tail     []*Entry      // the most recent entries, tail[i].Offset consecutive
	tailSize []int
	tailLen  int // sum of tailSize
	tailMax  int

	rows rowCache
	keys *keyFilter

	// Encoding buffers reused by Commit (serialized by commitMu): the
	// store copies what it is given.
	entryBuf    []byte
	batchHint   int // size of the last batch, to size the next one
	rowSizeHint int // average encoded row state of the last batch

	statsMu   sync.Mutex
	samples   []rateSample
	rowsTotal uint64
	readers   int
}

type rateSample struct {
	at         time.Time
	head, rows uint64
}

// Open opens the log in dir, creating it if needed. A directory that holds
// other files, or a store written by something else, is refused with
// ErrForeignDir.
func Open(dir string, opts Options) (*Log, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	st, err := openPebble(dir, opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("open txlog in %s: %w", dir, err)
	}
	l, err := openWith(dir, st, opts)
	if err != nil {
		_ = st.close()
		return nil, err
	}
	return l, nil
}

// checkDir refuses to create a store next to unrelated files, so that a
// wrong OFFSET_STORAGE_FILE does not silently start an empty log in, say, a
// home directory.
func checkDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("open txlog: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("open txlog: %w", err)
	}
	if len(ents) == 0 {
		return nil
	}
	desc, err := pebble.Peek(dir, vfs.Default)
	if err != nil {
		return fmt.Errorf("open txlog in %s: %w: %v", dir, ErrForeignDir, err)
	}
	if !desc.Exists {
		return fmt.Errorf("open txlog in %s: %w (it holds other files; use an empty or new directory)", dir, ErrForeignDir)
	}
	return nil
}

func openWith(dir string, st kvStore, opts Options) (*Log, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	meta, err := st.get(metaKey)
	if err != nil {
		return nil, fmt.Errorf("open txlog in %s: read format: %w", dir, err)
	}
	switch {
	case meta == nil:
		// A new store, or someone else's Pebble: refuse the latter.
		var any bool
		if err := st.scan(nil, nil, func(k, v []byte) error { any = true; return errStopScan }); err != nil {
			return nil, fmt.Errorf("open txlog in %s: %w", dir, err)
		}
		if any {
			return nil, fmt.Errorf("open txlog in %s: %w (a store without the txlog format marker)", dir, ErrForeignDir)
		}
		b := st.newBatch(64)
		b.set(metaKey, metaValue)
		if err := b.commit(); err != nil {
			return nil, fmt.Errorf("open txlog in %s: write format: %w", dir, err)
		}
	case !bytes.Equal(meta, metaValue):
		return nil, fmt.Errorf("open txlog in %s: %w (format %q, want %q)", dir, ErrForeignDir, meta, metaValue)
	}
	last, err := st.last([]byte{prefixEntry}, []byte{prefixEntry + 1})
	if err != nil {
		return nil, fmt.Errorf("open txlog in %s: find head: %w", dir, err)
	}
	var head uint64
	if last != nil {
		if len(last) != 9 {
			return nil, fmt.Errorf("open txlog in %s: bad entry key %x", dir, last)
		}
		head = binary.BigEndian.Uint64(last[1:])
	}
	if opts.RowCacheBytes <= 0 {
		opts.RowCacheBytes = 32 << 20
	}
	if opts.TailCacheBytes <= 0 {
		opts.TailCacheBytes = 8 << 20
	}
	keys := newKeyFilter()
	start := time.Now()
	nkeys := 0
	err = st.scan([]byte{prefixRow}, []byte{prefixRow + 1}, func(k, _ []byte) error {
		keys.add(k)
		nkeys++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open txlog in %s: load row keys: %w", dir, err)
	}
	l := &Log{
		keys:    keys,
		dir:     dir,
		log:     opts.Logger,
		store:   st,
		head:    head,
		notify:  make(chan struct{}),
		tailMax: opts.TailCacheBytes,
		rows:    rowCache{max: opts.RowCacheBytes, m: map[string][]byte{}},
	}
	l.log.Info("txlog opened", "dir", dir, "head", head, "rows", nkeys, "rows_loaded_in", time.Since(start).Round(time.Millisecond))
	return l, nil
}

// Close closes the log; readers blocked in Next return ErrClosed.
func (l *Log) Close() error {
	l.commitMu.Lock()
	defer l.commitMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.notify)
	l.tail = nil
	l.mu.Unlock()
	l.storeMu.Lock()
	defer l.storeMu.Unlock()
	l.storeClosed = true
	if err := l.store.close(); err != nil {
		return fmt.Errorf("close txlog: %w", err)
	}
	return nil
}

// Head is the offset of the last committed entry (0 when empty).
func (l *Log) Head() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.head
}

func entryKey(offset uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixEntry
	binary.BigEndian.PutUint64(k[1:], offset)
	return k
}

func rowKey(table, key string) []byte {
	k := make([]byte, 0, 2+len(table)+len(key))
	k = append(k, prefixRow)
	k = append(k, table...)
	k = append(k, 0) // Postgres names cannot hold NUL
	return append(k, key...)
}

func tablePrefix(table string) []byte {
	k := make([]byte, 0, 2+len(table))
	k = append(k, prefixRow)
	k = append(k, table...)
	return append(k, 0)
}

func positionKey(source string) []byte {
	return append([]byte{prefixPosition}, source...)
}

// Entry returns the entry at offset. The entry is shared with readers and
// must not be modified.
func (l *Log) Entry(offset uint64) (*Entry, error) {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return nil, ErrClosed
	}
	if offset == 0 || offset > l.head {
		head := l.head
		l.mu.RUnlock()
		return nil, fmt.Errorf("read entry %d (head %d): %w", offset, head, ErrNoEntry)
	}
	if e := l.tailEntry(offset); e != nil {
		l.mu.RUnlock()
		return e, nil
	}
	l.mu.RUnlock()
	v, err := l.get(entryKey(offset))
	if err != nil {
		return nil, fmt.Errorf("read entry %d: %w", offset, err)
	}
	if v == nil {
		return nil, fmt.Errorf("read entry %d: %w", offset, ErrNoEntry)
	}
	e, err := decodeEntry(v)
	if err != nil {
		return nil, fmt.Errorf("read entry %d: %w", offset, err)
	}
	if e.Offset != offset {
		return nil, fmt.Errorf("read entry %d: stored entry says offset %d", offset, e.Offset)
	}
	return e, nil
}

// tailEntry returns the cached entry at offset or nil; l.mu must be held.
func (l *Log) tailEntry(offset uint64) *Entry {
	if len(l.tail) == 0 {
		return nil
	}
	first := l.tail[0].Offset
	if offset < first || offset > l.tail[len(l.tail)-1].Offset {
		return nil
	}
	return l.tail[offset-first]
}

// Row returns the merged state of a row, nil when there is none. The
// returned row is the caller's own copy.
func (l *Log) Row(table, key string) (*merge.Row, error) {
	k := rowKey(table, key)
	if !l.keys.mayContain(k) {
		if l.isClosed() {
			return nil, ErrClosed
		}
		return nil, nil
	}
	v, gen, ok := l.rows.get(k)
	if !ok {
		var err error
		v, err = l.get(k)
		if err != nil {
			return nil, fmt.Errorf("read row %s %q: %w", table, key, err)
		}
		if v == nil {
			return nil, nil
		}
		l.rows.fill(k, v, gen)
	}
	r, err := merge.UnmarshalRow(v)
	if err != nil {
		return nil, fmt.Errorf("read row %s %q: %w", table, key, err)
	}
	return r, nil
}

func (l *Log) isClosed() bool {
	l.storeMu.RLock()
	defer l.storeMu.RUnlock()
	return l.storeClosed
}

// get reads from the store unless the log is closed.
func (l *Log) get(k []byte) ([]byte, error) {
	l.storeMu.RLock()
	defer l.storeMu.RUnlock()
	if l.storeClosed {
		return nil, ErrClosed
	}
	return l.store.get(k)
}

// scan scans the store unless the log is closed.
func (l *Log) scan(lower, upper []byte, fn func(k, v []byte) error) error {
	l.storeMu.RLock()
	defer l.storeMu.RUnlock()
	if l.storeClosed {
		return ErrClosed
	}
	return l.store.scan(lower, upper, fn)
}

// Keys lists the keys of every row state of table, in key order.
func (l *Log) Keys(table string) ([]string, error) {
	var keys []string
	p := tablePrefix(table)
	err := l.scanPrefix(p, func(k, _ []byte) error {
		keys = append(keys, string(k[len(p):]))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list keys of %s: %w", table, err)
	}
	return keys, nil
}

// Rows calls fn for every row state of table, in key order, until fn
// returns an error, which Rows returns.
func (l *Log) Rows(table string, fn func(key string, r *merge.Row) error) error {
	p := tablePrefix(table)
	return l.scanPrefix(p, func(k, v []byte) error {
		r, err := merge.UnmarshalRow(v)
		if err != nil {
			return fmt.Errorf("read rows of %s: key %q: %w", table, k[len(p):], err)
		}
		return fn(string(k[len(p):]), r)
	})
}

func (l *Log) scanPrefix(p []byte, fn func(k, v []byte) error) error {
	upper := bytes.Clone(p)
	upper[len(upper)-1]++ // p ends in 0
	return l.scan(p, upper, fn)
}

// Position returns the position last committed for source, nil if none.
func (l *Log) Position(source string) ([]byte, error) {
	v, err := l.get(positionKey(source))
	if err != nil {
		return nil, fmt.Errorf("read position of %s: %w", source, err)
	}
	return v, nil
}

// Batch is one atomic write: new entries, row states and source positions.
// After Commit the Log owns the entries; they must not be modified.
type Batch struct {
	// Entries must have offsets Head()+1, Head()+2, … in order.
	Entries   []*Entry
	Rows      []RowState
	Positions map[string][]byte
}

// RowState sets (Row != nil) or deletes (Row == nil) the state of a row.
type RowState struct {
	Table, Key string
	Row        *merge.Row
}

// Append adds an entry to the batch.
func (b *Batch) Append(e *Entry) { b.Entries = append(b.Entries, e) }

// SetRow sets the state of a row; nil deletes it. A later call for the same
// row wins.
func (b *Batch) SetRow(table, key string, r *merge.Row) {
	b.Rows = append(b.Rows, RowState{Table: table, Key: key, Row: r})
}

// SetPosition records source's position.
func (b *Batch) SetPosition(source string, pos []byte) {
	if b.Positions == nil {
		b.Positions = map[string][]byte{}
	}
	b.Positions[source] = pos
}

// Empty reports whether the batch writes nothing.
func (b *Batch) Empty() bool {
	return len(b.Entries) == 0 && len(b.Rows) == 0 && len(b.Positions) == 0
}

// Commit writes the batch atomically and returns once it is durable
// (fsynced). Readers are woken afterwards. On error nothing of the batch is
// visible.
func (l *Log) Commit(b *Batch) error {
	l.commitMu.Lock()
	defer l.commitMu.Unlock()
	l.mu.RLock()
	head, closed := l.head, l.closed
	l.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if l.failed != nil {
		return fmt.Errorf("commit: an earlier commit failed, reopen the log: %w", l.failed)
	}
	for i, e := range b.Entries {
		if e == nil {
			return fmt.Errorf("commit: entry %d is nil", i)
		}
		if want := head + uint64(i) + 1; e.Offset != want {
			return fmt.Errorf("commit: entry %d has offset %d, want %d (head %d)", i, e.Offset, want, head)
		}
	}
	for _, r := range b.Rows {
		if r.Table == "" {
			return fmt.Errorf("commit: row state %q without a table", r.Key)
		}
	}
	if b.Empty() {
		return nil
	}

	kb := l.store.newBatch(l.batchHint)
	sizes := make([]int, len(b.Entries))
	var nrows uint64
	total := 0
	for i, e := range b.Entries {
		l.entryBuf = appendEntry(l.entryBuf[:0], e)
		sizes[i] = len(l.entryBuf)
		total += len(l.entryBuf) + 20
		kb.set(entryKey(e.Offset), l.entryBuf)
		nrows += uint64(len(e.Changes))
	}
	// Row states are encoded into one arena: far fewer allocations than
	// growing one buffer per row. The row cache gets exact-size copies so
	// that it does not pin whole arenas.
	rowVals := make([]cachedRow, len(b.Rows))
	arena := make([]byte, 0, (l.rowSizeHint+16)*len(b.Rows))
	for i, r := range b.Rows {
		k := rowKey(r.Table, r.Key)
		if r.Row == nil {
			kb.delete(k)
			rowVals[i] = cachedRow{k: k}
			total += len(k) + 20
			continue
		}
		// Known to the filter before it is in the store, so a
		// concurrent Row never misses it.
		l.keys.add(k)
		start := len(arena)
		arena = merge.AppendRow(arena, r.Row)
		v := arena[start:len(arena):len(arena)]
		kb.set(k, v)
		rowVals[i] = cachedRow{k: k, v: v}
		total += len(k) + len(v) + 20
	}
	for src, pos := range b.Positions {
		kb.set(positionKey(src), pos)
		total += len(src) + len(pos) + 20
	}
	l.batchHint = total
	if len(b.Rows) > 0 {
		l.rowSizeHint = len(arena) / len(b.Rows)
	}
	if cap(l.entryBuf) > 16<<20 {
		l.entryBuf = nil // do not pin one huge entry's buffer
	}
	if err := kb.commit(); err != nil {
		l.failed = err
		l.log.Error("txlog commit failed; refusing further commits until reopened", "err", err)
		return fmt.Errorf("commit %d entries after %d: %w", len(b.Entries), head, err)
	}

	l.rows.update(rowVals)
	if len(b.Entries) == 0 {
		return nil
	}
	now := time.Now()
	l.statsMu.Lock()
	if n := len(l.samples); n == 0 || now.Sub(l.samples[n-1].at) >= time.Second {
		l.samples = append(l.samples, rateSample{at: now, head: head, rows: l.rowsTotal})
		if len(l.samples) > 32 {
			l.samples = append(l.samples[:0], l.samples[len(l.samples)-16:]...)
		}
	}
	l.rowsTotal += nrows
	l.statsMu.Unlock()

	l.mu.Lock()
	for i, e := range b.Entries {
		l.tail = append(l.tail, e)
		l.tailSize = append(l.tailSize, sizes[i])
		l.tailLen += sizes[i]
	}
	// Keep at least the newest entry so readers at the head never go to disk.
	drop := 0
	for l.tailLen > l.tailMax && drop < len(l.tail)-1 {
		l.tailLen -= l.tailSize[drop]
		drop++
	}
	if drop > 0 {
		clear(l.tail[:drop])
		l.tail = l.tail[drop:]
		l.tailSize = l.tailSize[drop:]
	}
	l.head = b.Entries[len(b.Entries)-1].Offset
	close(l.notify)
	l.notify = make(chan struct{})
	l.mu.Unlock()
	return nil
}

// Stats is a snapshot for the status API.
type Stats struct {
	Head           uint64
	SizeBytes      int64   // on disk
	EntriesPerSec  float64 // over the last ~10 s
	RowsPerSec     float64 // row changes over the last ~10 s
	Readers        int     // open readers
	RowCacheBytes  int
	KeyFilterBytes int // memory of the in-memory filter of row keys
}

const rateWindow = 10 * time.Second

// Stats returns current figures.
func (l *Log) Stats() Stats {
	l.mu.RLock()
	head, closed := l.head, l.closed
	l.mu.RUnlock()
	s := Stats{Head: head}
	if !closed {
		l.storeMu.RLock()
		if !l.storeClosed {
			s.SizeBytes = l.store.sizeBytes()
		}
		l.storeMu.RUnlock()
	}
	now := time.Now()
	l.statsMu.Lock()
	s.Readers = l.readers
	for _, smp := range l.samples {
		if now.Sub(smp.at) > rateWindow {
			continue
		}
		secs := max(now.Sub(smp.at).Seconds(), 1)
		s.EntriesPerSec = float64(head-smp.head) / secs
		s.RowsPerSec = float64(l.rowsTotal-smp.rows) / secs
		break
	}
	l.statsMu.Unlock()
	s.RowCacheBytes = l.rows.size()
	s.KeyFilterBytes = l.keys.sizeBytes()
	return s
}

// rowCache keeps encoded row states by store key. It holds encoded bytes,
// not *merge.Row, so that no caller can alter the cache through a row it was
// given. Rows enter it when they are read (the sequencer reads the rows it
// merges) and commits keep cached rows current; a commit does not add rows,
// so an ingest of new rows does not churn it. Eviction is random (Go map
// order).
type rowCache struct {
	mu   sync.Mutex
	m    map[string][]byte
	used int
	max  int
	// gen counts writes, so that a value read from the store before a
	// commit is not cached over the committed one (see fill).
	gen uint64
}

type cachedRow struct {
	k, v []byte // v nil: deleted
}

func (c *rowCache) get(k []byte) (v []byte, gen uint64, ok bool) {
	c.mu.Lock()
	v, ok = c.m[string(k)]
	gen = c.gen
	c.mu.Unlock()
	return v, gen, ok
}

// fill caches a value read from the store, unless a commit changed the cache
// since gen (the value read may then be older than the committed one).
func (c *rowCache) fill(k, v []byte, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	c.putLocked(k, v)
}

// update applies a commit's row states to the rows already cached.
func (c *rowCache) update(rows []cachedRow) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if len(c.m) == 0 {
		return
	}
	for _, r := range rows {
		old, ok := c.m[string(r.k)]
		if !ok {
			continue
		}
		if r.v == nil {
			c.used -= len(r.k) + len(old)
			delete(c.m, string(r.k))
			continue
		}
		c.putLocked(r.k, bytes.Clone(r.v))
	}
}

func (c *rowCache) putLocked(k, v []byte) {
	if old, ok := c.m[string(k)]; ok {
		c.used -= len(k) + len(old)
	}
	c.m[string(k)] = v
	c.used += len(k) + len(v)
	for c.used > c.max {
		for ek, ev := range c.m {
			delete(c.m, ek)
			c.used -= len(ek) + len(ev)
			break
		}
	}
}

func (c *rowCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}
