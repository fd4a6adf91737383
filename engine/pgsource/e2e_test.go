package pgsource

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/sequencer"
	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/engine/txlog/pebblelog"
	"github.com/electric-sql/electric-go/internal/pgtest"
	"github.com/electric-sql/electric-go/internal/testkit"
)

// engineHarness is the ingest half of the engine: txlog, sequencer and one
// pgsource, as engine.Run wires them.
type engineHarness struct {
	log       txlog.Log
	seq       *sequencer.Sequencer
	src       *Source
	srcCancel context.CancelFunc
	seqCancel context.CancelFunc
	srcDone   chan error
	seqDone   chan error
	logs      *testkit.SyncBuffer
}

func startEngine(t testing.TB, uri, dir, name string, logger *slog.Logger) (*engineHarness, error) {
	l, err := pebblelog.Open(dir, pebblelog.Options{Logger: logger})
	if err != nil {
		return nil, err
	}
	seq := sequencer.New(l, sequencer.Options{Logger: logger})
	src, err := New(Options{
		Name: name, URI: uri, Logger: logger, Sink: seq, Store: l,
		StatusInterval: time.Second, StatsInterval: 500 * time.Millisecond,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
	})
	if err != nil {
		l.Close()
		return nil, err
	}
	h := &engineHarness{log: l, seq: seq, src: src, srcDone: make(chan error, 1), seqDone: make(chan error, 1)}
	seqCtx, seqCancel := context.WithCancel(context.Background())
	srcCtx, srcCancel := context.WithCancel(context.Background())
	h.seqCancel, h.srcCancel = seqCancel, srcCancel
	go func() { h.seqDone <- seq.Run(seqCtx) }()
	go func() { h.srcDone <- src.Run(srcCtx) }()
	return h, nil
}

// stop stops the source first (so nothing is handed to a stopped
// sequencer), then the sequencer, then closes the log.
func (h *engineHarness) stop() error {
	h.srcCancel()
	srcErr := <-h.srcDone
	h.seqCancel()
	seqErr := <-h.seqDone
	if errors.Is(seqErr, context.Canceled) {
		seqErr = nil
	}
	closeErr := h.log.Close()
	return errors.Join(srcErr, seqErr, closeErr)
}

func startTestEngine(t *testing.T, pg *pgtest.Cluster, name string) *engineHarness {
	t.Helper()
	logger, buf := testLogger(t)
	h, err := startEngine(t, pg.URI(), t.TempDir(), name, logger)
	if err != nil {
		t.Fatal(err)
	}
	h.logs = buf
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			if err := h.stop(); err != nil {
				t.Errorf("stopping the engine: %v", err)
			}
		}
	})
	testkit.Eventually(t, "source ready", h.src.Ready)
	return h
}

func liveImage(t *testing.T, l txlog.Log, table, key string) map[string]merge.Value {
	t.Helper()
	r, err := l.Row(table, key)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Live() {
		return nil
	}
	return r.Image()
}

func TestIngestIntoTheLog(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE public.items (id int PRIMARY KEY, a text, b text); CREATE TABLE public.other (k text PRIMARY KEY, v int)`)
	h := startTestEngine(t, pg, "pg1")

	pg.Exec(`INSERT INTO items VALUES (1, 'a', ''), (2, 'x', NULL)`)
	pg.Exec(`UPDATE items SET b = 'b' WHERE id = 1`)
	pg.Exec(`DELETE FROM items WHERE id = 2`)
	pg.Exec(`BEGIN; INSERT INTO items VALUES (3, 'c', 'c'); INSERT INTO other VALUES ('k', 1); COMMIT`)
	testkit.Eventually(t, "4 entries", func() bool { return h.log.Head() >= 4 })

	if got, want := liveImage(t, h.log, "public.items", "1"), map[string]merge.Value{"id": val("1"), "a": val("a"), "b": val("b")}; !reflect.DeepEqual(got, want) {
		t.Errorf("row 1: %v, want %v", got, want)
	}
	if got := liveImage(t, h.log, "public.items", "2"); got != nil {
		t.Errorf("deleted row 2 is live: %v", got)
	}
	// The multi-table transaction is one entry.
	e, err := h.log.Entry(4)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Changes) != 2 || e.Changes[0].Table != "public.items" || e.Changes[1].Table != "public.other" || e.Origin != "pg1" {
		t.Errorf("entry 4: origin %s, changes %+v", e.Origin, e.Changes)
	}
	if h.log.Head() != 4 {
		t.Errorf("head %d, want 4", h.log.Head())
	}

	pg.Exec(`TRUNCATE items`)
	testkit.Eventually(t, "truncate entry", func() bool { return h.log.Head() >= 5 })
	for _, k := range []string{"1", "3"} {
		if got := liveImage(t, h.log, "public.items", k); got != nil {
			t.Errorf("row %s live after TRUNCATE: %v", k, got)
		}
	}
	if got := liveImage(t, h.log, "public.other", "k"); got == nil {
		t.Errorf("public.other lost its row to a TRUNCATE of public.items")
	}

	// The stored position is what the slot is confirmed to.
	raw, err := h.log.Position("pg1")
	if err != nil {
		t.Fatal(err)
	}
	pos, err := DecodePosition(raw)
	if err != nil || pos.LSN == 0 {
		t.Fatalf("stored position %x: %v", raw, err)
	}
	testkit.Eventually(t, "slot confirmed to the stored position", func() bool { return slotConfirmed(t, pg) >= pos.LSN })
}
