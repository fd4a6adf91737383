package pebblelog

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
)

// kvStore is the little the Log needs from its embedded store. It exists so
// the store can be chosen by benchmark (bench_test.go runs the same
// workload on bbolt); the engine uses Pebble (see openPebble for why).
type kvStore interface {
	kvReader
	// newBatch starts a batch expected to hold about size bytes.
	newBatch(size int) kvBatch
	// snapshot returns a reader of the store as it is now, unaffected by
	// later commits.
	snapshot() (kvSnapshot, error)
	sizeBytes() int64
	close() error
}

// kvReader reads a store or a snapshot of it.
type kvReader interface {
	// get returns a copy of the value, or nil when the key is absent.
	get(key []byte) ([]byte, error)
	// scan calls fn for keys in [lower, upper) in order until fn returns
	// errStopScan (not an error) or another error. k and v are only valid
	// during the call.
	scan(lower, upper []byte, fn func(k, v []byte) error) error
	// last returns the greatest key in [lower, upper), nil if none.
	last(lower, upper []byte) ([]byte, error)
}

// kvSnapshot is a consistent, read-only view of the store.
type kvSnapshot interface {
	kvReader
	close() error
}

// kvBatch is an atomic write: commit makes all of it durable (fsynced) or
// none of it.
type kvBatch interface {
	set(k, v []byte)
	delete(k []byte)
	commit() error
	// abandon releases a batch that will not be committed.
	abandon()
}

var errStopScan = errors.New("stop scan")

// pebbleStore keeps everything in one Pebble LSM: a commit is one WAL write
// and one fsync whatever its size, reads never block the writer, and an
// unsynced WAL tail is discarded on recovery, which gives the all-or-nothing
// commit the log promises.
//
// Chosen over bbolt by BenchmarkCommit (bench_test.go), same Log over both,
// on the 2-core dev machine (shared, load ~14): 1,000-row commits 43.8k vs
// 32.1k rows/s, 1-row commits 586 vs 335 commits/s (bbolt pays a page
// rewrite and two fsyncs per commit), 149 vs 625 bytes on disk per row;
// replay from disk was close (296k vs 335k rows/s). A separate segment file
// for entries would add a second fsync per commit for no gain: an entry is
// already one sequential WAL record here.
type pebbleStore struct {
	db *pebble.DB
}

type pebbleLogger struct {
	log  *slog.Logger
	exit func(code int) // os.Exit; a test replaces it
}

func (l pebbleLogger) Infof(format string, args ...interface{}) {
	l.log.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...interface{}) {
	l.log.Error("pebble: " + fmt.Sprintf(format, args...))
}

// Fatalf is called by Pebble where it cannot go on: broken invariants, and
// a failed WAL write, which a full disk causes (the nemesis run, issue 12).
// It must not return. The store's state in memory is then unknown, while
// what was committed is durable and a restart recovers it: the engine stops
// with one clear line and status 1, never a panic's stack trace.
func (l pebbleLogger) Fatalf(format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	hint := "restart electric: it recovers every committed entry from the state directory"
	if strings.Contains(msg, "no space left on device") {
		hint = "the state directory's disk is full: free space, then restart electric (it recovers every committed entry)"
	}
	l.log.Error("txlog store failed, electric stops", "err", msg, "fix", hint)
	l.exit(1)
}

func openPebble(dir string, log *slog.Logger) (*pebbleStore, error) {
	opts := &pebble.Options{
		// A 1,000-row entry plus its row states is ~0.7 MB: a larger
		// memtable keeps flushes (and L0 files the reads must check) rare.
		MemTableSize:                32 << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		LBaseMaxBytes:               256 << 20,
		// Pebble reserves the memtables' memory inside the block cache:
		// the cache must be well above the memtables or it holds nothing
		// and every lookup of a new row reads its bloom filter from disk.
		Cache:                    pebble.NewCache(160 << 20),
		Logger:                   pebbleLogger{log: log, exit: os.Exit},
		MaxConcurrentCompactions: func() int { return 2 },
	}
	defer opts.Cache.Unref()
	opts.Levels = make([]pebble.LevelOptions, 7)
	for i := range opts.Levels {
		l := &opts.Levels[i]
		l.BlockSize = 32 << 10
		// Bloom filters make the sequencer's lookups of rows that do
		// not exist yet (every insert) cheap.
		l.FilterPolicy = bloom.FilterPolicy(10)
		l.FilterType = pebble.TableFilter
		if i > 0 {
			l.TargetFileSize = 64 << 20
		} else {
			l.TargetFileSize = 16 << 20
		}
	}
	opts.EnsureDefaults()
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	return &pebbleStore{db: db}, nil
}

func (s *pebbleStore) get(key []byte) ([]byte, error) { return pebbleGet(s.db, key) }

func (s *pebbleStore) scan(lower, upper []byte, fn func(k, v []byte) error) error {
	return pebbleScan(s.db, lower, upper, fn)
}

func (s *pebbleStore) last(lower, upper []byte) ([]byte, error) {
	return pebbleLast(s.db, lower, upper)
}

// pebbleSnapshot reads a Pebble snapshot: a sequence number that later
// commits are above, so nothing is copied and the writer is not blocked.
type pebbleSnapshot struct{ s *pebble.Snapshot }

func (s *pebbleStore) snapshot() (kvSnapshot, error) { return pebbleSnapshot{s.db.NewSnapshot()}, nil }

func (s pebbleSnapshot) get(key []byte) ([]byte, error) { return pebbleGet(s.s, key) }

func (s pebbleSnapshot) scan(lower, upper []byte, fn func(k, v []byte) error) error {
	return pebbleScan(s.s, lower, upper, fn)
}

func (s pebbleSnapshot) last(lower, upper []byte) ([]byte, error) {
	return pebbleLast(s.s, lower, upper)
}

func (s pebbleSnapshot) close() error { return s.s.Close() }

func pebbleGet(r pebble.Reader, key []byte) ([]byte, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(v)
	if out == nil {
		out = []byte{}
	}
	return out, closer.Close()
}

type pebbleBatch struct{ b *pebble.Batch }

func (s *pebbleStore) newBatch(size int) kvBatch {
	return pebbleBatch{s.db.NewBatchWithSize(size)}
}

func (b pebbleBatch) set(k, v []byte) { _ = b.b.Set(k, v, nil) }
func (b pebbleBatch) delete(k []byte) { _ = b.b.Delete(k, nil) }
func (b pebbleBatch) abandon()        { _ = b.b.Close() }

func (b pebbleBatch) commit() error {
	err := b.b.Commit(pebble.Sync)
	if cerr := b.b.Close(); err == nil {
		err = cerr
	}
	return err
}

func pebbleScan(r pebble.Reader, lower, upper []byte, fn func(k, v []byte) error) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		if err := fn(it.Key(), v); err != nil {
			it.Close()
			if errors.Is(err, errStopScan) {
				return nil
			}
			return err
		}
	}
	err = it.Error()
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	return err
}

func pebbleLast(r pebble.Reader, lower, upper []byte) ([]byte, error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	var k []byte
	if it.Last() {
		k = bytes.Clone(it.Key())
	}
	err = it.Error()
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	return k, err
}

func (s *pebbleStore) sizeBytes() int64 { return int64(s.db.Metrics().DiskSpaceUsage()) }

func (s *pebbleStore) close() error { return s.db.Close() }
