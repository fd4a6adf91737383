package pebblelog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// The store was chosen with these benchmarks: the same Log (same encoding,
// caches and batches) over Pebble and over bbolt, on the real workload.
//
//	go test -run '^$' -bench . -benchtime 2s ./engine/txlog/pebblelog

// boltStore is the bbolt candidate, kept here (not in the engine) only for
// the comparison.
type boltStore struct {
	db   *bolt.DB
	path string
}

var boltBucket = []byte("txlog")

func openBolt(dir string) (*boltStore, error) {
	path := filepath.Join(dir, "txlog.bolt")
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(boltBucket)
		return err
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &boltStore{db: db, path: path}, nil
}

func (s *boltStore) get(key []byte) (v []byte, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		if got := tx.Bucket(boltBucket).Get(key); got != nil {
			v = bytes.Clone(got)
		}
		return nil
	})
	return v, err
}

type boltOp struct {
	k, v []byte
	del  bool
}

type boltBatch struct {
	s   *boltStore
	ops []boltOp
}

func (s *boltStore) newBatch(int) kvBatch { return &boltBatch{s: s} }

func (b *boltBatch) set(k, v []byte) {
	b.ops = append(b.ops, boltOp{k: bytes.Clone(k), v: bytes.Clone(v)})
}
func (b *boltBatch) delete(k []byte) { b.ops = append(b.ops, boltOp{k: bytes.Clone(k), del: true}) }
func (b *boltBatch) abandon()        {}

func (b *boltBatch) commit() error {
	return b.s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(boltBucket)
		for _, op := range b.ops {
			var err error
			if op.del {
				err = bk.Delete(op.k)
			} else {
				err = bk.Put(op.k, op.v)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *boltStore) scan(lower, upper []byte, fn func(k, v []byte) error) error {
	err := s.db.View(func(tx *bolt.Tx) error { return boltScan(tx, lower, upper, fn) })
	if err == errStopScan {
		return nil
	}
	return err
}

func (s *boltStore) last(lower, upper []byte) (k []byte, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		k = boltLast(tx, lower, upper)
		return nil
	})
	return k, err
}

func boltScan(tx *bolt.Tx, lower, upper []byte, fn func(k, v []byte) error) error {
	c := tx.Bucket(boltBucket).Cursor()
	var k, v []byte
	if lower == nil {
		k, v = c.First()
	} else {
		k, v = c.Seek(lower)
	}
	for ; k != nil && (upper == nil || bytes.Compare(k, upper) < 0); k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

func boltLast(tx *bolt.Tx, lower, upper []byte) []byte {
	c := tx.Bucket(boltBucket).Cursor()
	got, _ := c.Seek(upper)
	if got == nil {
		got, _ = c.Last()
	} else {
		got, _ = c.Prev()
	}
	if got != nil && bytes.Compare(got, lower) >= 0 && bytes.Compare(got, upper) < 0 {
		return bytes.Clone(got)
	}
	return nil
}

func (s *boltStore) sizeBytes() int64 {
	fi, err := os.Stat(s.path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func (s *boltStore) close() error { return s.db.Close() }

// boltSnapshot is a read-only bbolt transaction.
type boltSnapshot struct{ tx *bolt.Tx }

func (s *boltStore) snapshot() (kvSnapshot, error) {
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, err
	}
	return boltSnapshot{tx}, nil
}

func (s boltSnapshot) get(key []byte) ([]byte, error) {
	return bytes.Clone(s.tx.Bucket(boltBucket).Get(key)), nil
}

func (s boltSnapshot) scan(lower, upper []byte, fn func(k, v []byte) error) error {
	if err := boltScan(s.tx, lower, upper, fn); err != nil && err != errStopScan {
		return err
	}
	return nil
}

func (s boltSnapshot) last(lower, upper []byte) ([]byte, error) {
	return boltLast(s.tx, lower, upper), nil
}

func (s boltSnapshot) close() error { return s.tx.Rollback() }

type storeCandidate struct {
	name string
	open func(b *testing.B, dir string) *Log
}

var candidates = []storeCandidate{
	{"pebble", func(b *testing.B, dir string) *Log {
		l, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		return l
	}},
	{"bbolt", func(b *testing.B, dir string) *Log {
		st, err := openBolt(dir)
		if err != nil {
			b.Fatal(err)
		}
		l, err := openWith(dir, st, knownFormats(time.Now()), Options{})
		if err != nil {
			b.Fatal(err)
		}
		return l
	}},
}

// benchBatch is one source transaction as the sequencer commits it: an entry
// of n rows with 4 text columns, the n row states and the source position.
func benchBatch(off uint64, n int, keyBase int) *txlog.Batch {
	b := &txlog.Batch{}
	e := &txlog.Entry{Offset: off, Origin: "pg_a", Eff: 1_700_000_000_000_000 + off, CommitTime: 1_700_000_000_000_000 + off,
		MaxEff: 1_700_000_000_000_000 + off}
	e.Changes = make([]txlog.RowChange, n)
	for i := 0; i < n; i++ {
		key := strconv.Itoa(keyBase + i)
		row := map[string]merge.Value{
			"id":      {Text: key},
			"name":    {Text: "item name " + key},
			"content": {Text: "some longer text content for the row, about sixty bytes long"},
			"status":  {Text: "active"},
		}
		e.Changes[i] = txlog.RowChange{Table: "public.items", Key: key, Row: row}
		cells := make(map[string]merge.Cell, len(row))
		for c, v := range row {
			cells[c] = merge.Cell{Value: v, Eff: e.Eff, Origin: e.Origin}
		}
		b.SetRow("public.items", key, &merge.Row{Cells: cells, Tags: []merge.Tag{{Origin: e.Origin, Eff: e.Eff, Offset: off}}})
	}
	b.Append(e)
	b.SetPosition("pg_a", []byte(fmt.Sprintf("%016x", off)))
	return b
}

// BenchmarkCommit measures Log.Commit (encode + one fsynced write) per store:
// rows/s for 1,000-row transactions, commits/s for 1-row transactions.
func BenchmarkCommit(b *testing.B) {
	for _, size := range []int{1000, 1} {
		for _, c := range candidates {
			b.Run(fmt.Sprintf("rows=%d/%s", size, c.name), func(b *testing.B) {
				l := c.open(b, b.TempDir())
				defer l.Close()
				batches := make([]*txlog.Batch, b.N)
				for i := range batches {
					batches[i] = benchBatch(uint64(i+1), size, i*size)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := l.Commit(batches[i]); err != nil {
						b.Fatal(err)
					}
				}
				secs := b.Elapsed().Seconds()
				b.ReportMetric(float64(b.N*size)/secs, "rows/s")
				b.ReportMetric(float64(b.N)/secs, "commits/s")
				b.ReportMetric(float64(l.Stats().SizeBytes)/float64(b.N*size), "disk-B/row")
			})
		}
	}
}

// BenchmarkRowMiss measures the sequencer's lookup of a row that does not
// exist yet (every insert of a new key) in a log of 100k rows, bypassing the
// cache; BenchmarkRowHit reads existing rows.
func BenchmarkRowRead(b *testing.B) {
	for _, c := range candidates {
		l := c.open(b, b.TempDir())
		for i := 0; i < 100; i++ {
			if err := l.Commit(benchBatch(uint64(i+1), 1000, i*1000)); err != nil {
				b.Fatal(err)
			}
		}
		b.Run("miss/"+c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if r, err := l.Row("public.items", strconv.Itoa(1_000_000+i)); r != nil || err != nil {
					b.Fatal(r, err)
				}
			}
		})
		b.Run("hit-uncached/"+c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				k := rowKey("public.items", strconv.Itoa(i%100_000))
				l.rows.update([]cachedRow{{k: k}}) // evict
				if r, err := l.Row("public.items", strconv.Itoa(i%100_000)); r == nil || err != nil {
					b.Fatal(r, err)
				}
			}
		})
		b.Run("hit-cached/"+c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if r, err := l.Row("public.items", strconv.Itoa(99_000+i%1000)); r == nil || err != nil {
					b.Fatal(r, err)
				}
			}
		})
		l.Close()
	}
}

// BenchmarkReplay measures a reader replaying 1,000-row entries from disk.
func BenchmarkReplay(b *testing.B) {
	for _, c := range candidates {
		b.Run(c.name, func(b *testing.B) {
			l := c.open(b, b.TempDir())
			defer l.Close()
			const n = 200
			for i := 0; i < n; i++ {
				if err := l.Commit(benchBatch(uint64(i+1), 1000, i*1000)); err != nil {
					b.Fatal(err)
				}
			}
			l.mu.Lock()
			l.tail, l.tailSize, l.tailLen = nil, nil, 0 // force reads from disk
			l.mu.Unlock()
			b.ResetTimer()
			rows := 0
			for i := 0; i < b.N; i++ {
				r := l.NewReader(uint64(i % n))
				e, err := r.Next(b.Context())
				if err != nil {
					b.Fatal(err)
				}
				rows += len(e.Changes)
				for j := 1; j < 100 && uint64(i%n+j) < n; j++ {
					e, err := r.Next(b.Context())
					if err != nil {
						b.Fatal(err)
					}
					rows += len(e.Changes)
				}
				r.Close()
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
