// Package pebblelog is the embedded implementation of the log contract
// (package txlog): the log of merged transactions, the merged row state of
// every row and each source's position, kept together in one Pebble store in
// a data directory so that one Commit makes all three durable at once. It
// knows nothing of merging (package merge) or of who writes (package
// sequencer, the single writer); it stores, orders and replays. The stored
// format is versioned (format.go).
package pebblelog

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/electric-sql/electric-go/engine/txlog"
)

// Key layout in the store. One-byte prefixes keep the three kinds apart;
// entries use big-endian offsets so that key order is log order.
const (
	prefixEntry    = 'e'
	prefixRow      = 'r'
	prefixPosition = 'p'
	// Owners were added after format 1 under a prefix of their own: a
	// store without them reads as "no owners", so no format step is needed.
	prefixOwner = 'o'
	// Each origin's highest entry Eff (uvarint), written with the entries
	// of every commit; format 3 added it (the upgrade writes it).
	prefixOriginEff = 'l'
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
	lock  *os.File // the state directory's flock, released by Close (nil in tests that build a Log by hand)

	commitMu sync.Mutex // serializes Commit and Close
	// failed is the error of a store commit that failed: the store's write
	// path is then in an unknown state, so later commits are refused until
	// the log is reopened (recovery discards any partial write).
	failed error

	// storeMu guards store use by readers against Close (Pebble panics
	// when used after close). Commit never takes it: it holds commitMu.
	storeMu     sync.RWMutex
	storeClosed bool
	snaps       map[*Snapshot]struct{} // open snapshots, closed by Close

	mu       sync.RWMutex
	head     uint64
	closed   bool
	notify   chan struct{}  // closed and replaced after each commit
	tail     []*txlog.Entry // the most recent entries, tail[i].Offset consecutive
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

// Open opens the log in dir, creating it if needed. A directory that holds
// other files, or a store written by something else, is refused with
// txlog.ErrForeignDir.
func Open(dir string, opts Options) (*Log, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// Checked before locking so that a wrong directory gets no lock file.
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	st, err := openPebble(dir, opts.Logger)
	if err != nil {
		unlockDir(lock)
		return nil, fmt.Errorf("open txlog in %s: %w", dir, err)
	}
	l, err := openWith(dir, st, knownFormats(time.Now()), opts)
	if err != nil {
		_ = st.close()
		unlockDir(lock)
		return nil, err
	}
	l.lock = lock
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
	if len(ents) == 0 || len(ents) == 1 && ents[0].Name() == lockFile {
		return nil
	}
	desc, err := pebble.Peek(dir, vfs.Default)
	if err != nil {
		return fmt.Errorf("open txlog in %s: %w: %v", dir, txlog.ErrForeignDir, err)
	}
	if !desc.Exists {
		return fmt.Errorf("open txlog in %s: %w (it holds other files; use an empty or new directory)", dir, txlog.ErrForeignDir)
	}
	return nil
}

func openWith(dir string, st kvStore, fm formats, opts Options) (*Log, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := checkFormat(dir, st, fm, opts.Logger); err != nil {
		return nil, err
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
		snaps:   map[*Snapshot]struct{}{},
		tailMax: opts.TailCacheBytes,
		rows:    rowCache{max: opts.RowCacheBytes, m: map[string][]byte{}},
	}
	l.log.Info("txlog opened", "dir", dir, "head", head, "rows", nkeys, "rows_loaded_in", time.Since(start).Round(time.Millisecond))
	return l, nil
}

// Close closes the log; readers blocked in Next return txlog.ErrClosed.
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
	for s := range l.snaps {
		_ = s.closeLocked() // Pebble refuses to close with snapshots open
	}
	defer unlockDir(l.lock) // after the store is closed, so a successor never shares it
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

func ownerKey(source string) []byte {
	return append([]byte{prefixOwner}, source...)
}

func originEffKey(origin string) []byte {
	return append([]byte{prefixOriginEff}, origin...)
}
