package pebblelog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/engine/txlog/logtest"
)

func openTest(t *testing.T, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestConcurrentReaders(t *testing.T) {
	l := openTest(t, t.TempDir(), Options{TailCacheBytes: 4 << 10})
	const readers, entries = 40, 200
	logtest.CommitEntries(t, l, 20, 1)
	var wg sync.WaitGroup
	for i := 0; i < readers; i++ {
		r := l.NewReader(uint64(i % 20))
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			want := uint64(i%20) + 1
			for want <= entries {
				e, err := r.Next(ctx)
				if err != nil {
					t.Errorf("reader: %v", err)
					return
				}
				if e.Offset != want {
					t.Errorf("reader got %d, want %d", e.Offset, want)
					return
				}
				want++
			}
		}()
	}
	go func() {
		for l.Head() < entries {
			b := &txlog.Batch{}
			b.Append(logtest.Entry(l.Head()+1, 1))
			if err := l.Commit(b); err != nil {
				t.Errorf("commit: %v", err)
				return
			}
		}
	}()
	wg.Wait()
	if s := l.Stats(); s.Readers != 0 || s.Head != entries || s.SizeBytes <= 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestStats(t *testing.T) {
	l := openTest(t, t.TempDir(), Options{})
	logtest.CommitEntries(t, l, 5, 10)
	s := l.Stats()
	if s.Head != 5 || s.SizeBytes <= 0 || s.EntriesPerSec <= 0 || s.RowsPerSec <= 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestForeignDir(t *testing.T) {
	// A directory with unrelated files.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, txlog.ErrForeignDir) {
		t.Errorf("dir with other files: %v", err)
	}
	// A path that is a file.
	if _, err := Open(filepath.Join(dir, "notes.txt"), Options{}); err == nil {
		t.Errorf("opened a file as a log")
	}
	// Someone else's Pebble store.
	dir = t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("x"), []byte("y"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(dir, Options{}); !errors.Is(err, txlog.ErrForeignDir) {
		t.Errorf("foreign pebble store: %v", err)
	}
}

func TestCorruptDir(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	logtest.CommitEntries(t, l, 3, 1)
	l.Close()
	ms, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	if len(ms) == 0 {
		t.Fatal("no manifest")
	}
	for _, m := range ms {
		if err := os.WriteFile(m, []byte("garbage garbage garbage garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err = Open(dir, Options{})
	if err == nil {
		t.Fatal("opened a log with a corrupted manifest")
	}
	if !strings.Contains(err.Error(), "open txlog in "+dir) {
		t.Errorf("error does not say what failed: %v", err)
	}
}

// Rows cached by a read follow later commits (overwrite, delete, re-create).
func TestRowCacheFollowsCommits(t *testing.T) {
	l := openTest(t, t.TempDir(), Options{})
	commitRow := func(r *merge.Row) {
		t.Helper()
		b := &txlog.Batch{}
		b.SetRow("t", "k", r)
		if err := l.Commit(b); err != nil {
			t.Fatal(err)
		}
	}
	read := func() string {
		t.Helper()
		r, err := l.Row("t", "k")
		if err != nil {
			t.Fatal(err)
		}
		if r == nil {
			return "<nil>"
		}
		return r.Cells["id"].Value.Text
	}
	commitRow(logtest.Row("1"))
	for i, step := range []struct {
		row  *merge.Row
		want string
	}{
		{logtest.Row("2"), "2"},
		{nil, "<nil>"},
		{logtest.Row("3"), "3"},
		{logtest.Row("4"), "4"},
	} {
		read() // cache the current state
		commitRow(step.row)
		if got := read(); got != step.want {
			t.Errorf("step %d: read %s, want %s", i, got, step.want)
		}
	}
	if s := l.Stats(); s.RowCacheBytes <= 0 {
		t.Errorf("nothing cached: %+v", s)
	}
}

// A thousand readers waiting at the head (one per connector and Satellite
// session) are all woken by each commit and each get every entry.
func TestThousandReadersAtHead(t *testing.T) {
	l := openTest(t, t.TempDir(), Options{})
	const readers, entries = 1000, 5
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for i := 0; i < readers; i++ {
		r := l.NewReader(0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for want := uint64(1); want <= entries; want++ {
				e, err := r.Next(ctx)
				if err != nil {
					errs <- err
					return
				}
				if e.Offset != want {
					errs <- fmt.Errorf("got %d, want %d", e.Offset, want)
					return
				}
			}
		}()
	}
	if s := l.Stats(); s.Readers != readers {
		t.Errorf("stats: %d readers", s.Readers)
	}
	logtest.CommitEntries(t, l, entries, 3)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// failingStore is the real Pebble store whose batch commits fail on demand
// (a full or broken disk).
type failingStore struct {
	*pebbleStore
	fail bool
}

type failingBatch struct {
	kvBatch
	s *failingStore
}

func (s *failingStore) newBatch(size int) kvBatch {
	return failingBatch{s.pebbleStore.newBatch(size), s}
}

func (b failingBatch) commit() error {
	if b.s.fail {
		b.kvBatch.abandon()
		return errors.New("write wal: no space left on device")
	}
	return b.kvBatch.commit()
}

func TestFailedCommitIsSticky(t *testing.T) {
	dir := t.TempDir()
	ps, err := openPebble(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	fs := &failingStore{pebbleStore: ps}
	l, err := openWith(dir, fs, knownFormats(time.Now()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	logtest.CommitEntries(t, l, 2, 1)
	fs.fail = true
	b := &txlog.Batch{}
	b.Append(logtest.Entry(3, 1))
	if err := l.Commit(b); err == nil || !strings.Contains(err.Error(), "no space") {
		t.Fatalf("failing commit: %v", err)
	}
	if l.Head() != 2 {
		t.Errorf("head moved to %d by a failed commit", l.Head())
	}
	fs.fail = false
	if err := l.Commit(b); err == nil || !strings.Contains(err.Error(), "reopen") {
		t.Errorf("commit after a failure: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, Options{})
	if l.Head() != 2 {
		t.Fatalf("head after reopen = %d", l.Head())
	}
	logtest.CommitEntries(t, l, 1, 1)
}

// A second Open of the same directory fails with ErrLocked naming the
// holder, and succeeds once the first is closed.
func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, Options{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: got %v, want ErrLocked", err)
	}
	if want := fmt.Sprintf("(pid %d)", os.Getpid()); !strings.Contains(err.Error(), want) {
		t.Fatalf("second Open: %q does not name the holder %s", err, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	l2.Close()
}
