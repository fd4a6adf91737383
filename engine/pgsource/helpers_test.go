package pgsource

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/internal/pgtest"
	"github.com/electric-sql/electric-go/internal/testkit"
)

// recSink records items and acts as the log: it stores each item's
// position and reports it durable, like the sequencer would.
type recSink struct {
	mu        sync.Mutex
	items     []Item
	positions map[string][]byte
	offset    uint64
	hold      bool // when set, Done is not called until release
	held      []Item
}

func newRecSink() *recSink { return &recSink{positions: map[string][]byte{}} }

func (r *recSink) Enqueue(_ context.Context, it Item) error {
	r.mu.Lock()
	if r.hold {
		r.held = append(r.held, it)
		r.mu.Unlock()
		return nil
	}
	off := r.store(it)
	r.mu.Unlock()
	it.Done(off, nil)
	return nil
}

// store records an item; r.mu must be held.
func (r *recSink) store(it Item) uint64 {
	r.items = append(r.items, it)
	r.positions[it.Source] = it.Position
	if len(it.Tx.Ops) == 0 {
		return 0
	}
	r.offset++
	return r.offset
}

func (r *recSink) release() {
	r.mu.Lock()
	held := r.held
	r.held, r.hold = nil, false
	var offs []uint64
	for _, it := range held {
		offs = append(offs, r.store(it))
	}
	r.mu.Unlock()
	for i, it := range held {
		it.Done(offs[i], nil)
	}
}

func (r *recSink) Position(source string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.positions[source], nil
}

// txs returns the recorded stream items that carry ops.
func (r *recSink) txs() []Item {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Item
	for _, it := range r.items {
		if len(it.Tx.Ops) > 0 && !isSnapshotItem(it) {
			out = append(out, it)
		}
	}
	return out
}

// all returns the recorded stream items (snapshot items left out).
func (r *recSink) all() []Item {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Item
	for _, it := range r.items {
		if !isSnapshotItem(it) {
			out = append(out, it)
		}
	}
	return out
}

// snaps returns the recorded snapshot items.
func (r *recSink) snaps() []Item {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Item
	for _, it := range r.items {
		if isSnapshotItem(it) {
			out = append(out, it)
		}
	}
	return out
}

func isSnapshotItem(it Item) bool { return strings.HasPrefix(it.Source, "snapshot:") }

// testLogger logs to the test output and to a buffer the test can inspect.
func testLogger(t testing.TB) (*slog.Logger, *testkit.SyncBuffer) {
	buf := &testkit.SyncBuffer{}
	h := slog.NewTextHandler(io.MultiWriter(buf, testkit.LogTo(t)), &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(h), buf
}

// running is a Source running in the background until the test ends or
// stop is called.
type running struct {
	src    *Source
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	logs   *testkit.SyncBuffer
}

func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("Run: %v", r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("Run did not return after cancel")
	}
}

func startSource(t testing.TB, pg *pgtest.Cluster, name string, sink Sink, store PositionStore) *running {
	t.Helper()
	logger, buf := testLogger(t)
	src, err := New(Options{
		Name: name, URI: pg.URI(), Logger: logger, Sink: sink, Store: store,
		StatusInterval: time.Second, StatsInterval: 200 * time.Millisecond,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{src: src, cancel: cancel, done: make(chan struct{}), logs: buf}
	go func() {
		r.err = src.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	testkit.Eventually(t, "source ready", func() bool { return src.Ready() })
	return r
}

func val(s string) merge.Value { return merge.Value{Text: s} }

var null = merge.Value{Null: true}

// fmtOp renders an op compactly for comparisons in failure messages.
func fmtOp(op merge.Op) string {
	return fmt.Sprintf("%d %s %q cols=%v old=%v", op.Kind, op.Table, op.Key, op.Columns, op.Old)
}
