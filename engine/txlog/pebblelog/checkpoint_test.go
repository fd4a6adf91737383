package pebblelog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/engine/txlog/logtest"
	"github.com/electric-sql/electric-go/internal/testkit"
)

// A checkpoint taken while commits run is a log of whole batches ending at
// the head it reports: every entry up to it, and the position committed
// with that entry, nothing after. The copy opens as a log of its own and
// takes commits; the original goes on unaffected.
func TestCheckpointWhileCommitting(t *testing.T) {
	src := openTest(t, t.TempDir(), Options{})
	commitOne := func(l txlog.Log) {
		b := &txlog.Batch{}
		off := l.Head() + 1
		b.Append(logtest.Entry(off, 3))
		b.SetPosition("db_a", binary.BigEndian.AppendUint64(nil, off))
		if err := l.Commit(b); err != nil {
			t.Errorf("commit: %v", err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				commitOne(src)
			}
		}
	}()
	testkit.Eventually(t, "50 entries committed", func() bool { return src.Head() >= 50 })
	dst := filepath.Join(t.TempDir(), "backup")
	head, err := src.Checkpoint(dst)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if head < 50 {
		t.Fatalf("checkpoint head %d, want at least 50", head)
	}
	if _, err := src.Checkpoint(dst); err == nil {
		t.Fatal("a checkpoint into an existing directory succeeded")
	}

	cp := openTest(t, dst, Options{})
	if cp.Head() != head {
		t.Fatalf("the copy's head is %d, the checkpoint reported %d", cp.Head(), head)
	}
	pos, err := cp.Position("db_a")
	if err != nil || !bytes.Equal(pos, binary.BigEndian.AppendUint64(nil, head)) {
		t.Fatalf("the copy's position is %x (%v), want the one committed with entry %d", pos, err, head)
	}
	for i, e := range logtest.ReadN(t, cp.NewReader(0), int(head)) {
		if e.Offset != uint64(i+1) || len(e.Changes) != 3 {
			t.Fatalf("entry %d of the copy: offset %d with %d changes", i+1, e.Offset, len(e.Changes))
		}
	}
	commitOne(cp)
	if cp.Head() != head+1 {
		t.Fatalf("the copy did not take a commit: head %d", cp.Head())
	}
	if src.Head() <= head {
		t.Fatalf("the original stopped at %d", src.Head())
	}
}

func TestCheckpointClosed(t *testing.T) {
	l, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	dst := filepath.Join(t.TempDir(), "backup")
	if _, err := l.Checkpoint(dst); !errors.Is(err, txlog.ErrClosed) {
		t.Fatalf("checkpoint of a closed log: %v", err)
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("checkpoint of a closed log left %s", dst)
	}
}
