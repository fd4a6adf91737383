package pgsource

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/engine/txlog/pebblelog"
	"github.com/electric-sql/electric-go/internal/pgtest"
)

// BenchmarkIngest writes N rows (PGSOURCE_BENCH_ROWS, default 1,000,000) in
// 1,000-row transactions to Postgres first, then measures in the same run:
//
//   - peek: pg_logical_slot_peek_binary_changes over the WAL (server-side
//     decoding alone, no network, no client),
//   - decode: a bare pglogrepl loop that streams and parses every message
//     (the ceiling of any pgoutput consumer),
//   - ingest: pgsource + sequencer + txlog, until every transaction is a
//     durable log entry;
//
// and reports rows/s of each, the ratio ingest/decode, and peak heap.
//
//	go test -run '^$' -bench BenchmarkIngest -benchtime 1x ./engine/pgsource
func BenchmarkIngest(b *testing.B) {
	rows := 1_000_000
	if v := os.Getenv("PGSOURCE_BENCH_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			b.Fatalf("PGSOURCE_BENCH_ROWS=%q: want a number >= 1000", v)
		}
		rows = n
	}
	const txRows = 1000
	txs := rows / txRows
	rows = txs * txRows

	pg := pgtest.Start(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		pg.Exec(`DROP TABLE IF EXISTS public.bench; DROP PUBLICATION IF EXISTS all_tables;
			SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots`)
		pg.Exec(`CREATE TABLE public.bench (id bigint PRIMARY KEY, name text NOT NULL, qty int, note text);
			ALTER TABLE public.bench REPLICA IDENTITY FULL;
			CREATE PUBLICATION all_tables FOR ALL TABLES`)
		// One statement each: a slot cannot be created in a transaction
		// that wrote.
		pg.Exec(`SELECT pg_create_logical_replication_slot('all_changes', 'pgoutput')`)
		pg.Exec(`SELECT pg_create_logical_replication_slot('bench_decode', 'pgoutput')`)
		pg.Exec(`SELECT pg_create_logical_replication_slot('bench_source', 'pgoutput')`)
		conn := pg.Connect()
		// Flushed at each commit (pgtest turns it off): what is committed
		// is then streamable, and every measure sees all of it.
		if _, err := conn.Exec(ctx, `SET synchronous_commit = on`); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for t := 0; t < txs; t++ {
			lo := int64(t) * txRows
			if _, err := conn.Exec(ctx, `INSERT INTO bench SELECT g, 'name ' || g, g % 997, md5(g::text) FROM generate_series($1::bigint, $2::bigint) g`, lo, lo+txRows-1); err != nil {
				b.Fatal(err)
			}
		}
		write := time.Since(start)
		conn.Close(ctx)

		peek := peekChanges(b, pg, rows)
		decode := decodeOnly(b, pg, rows)
		sourceOnly := sourceAlone(b, pg, txs)

		b.StartTimer()
		ingest, peakHeap := ingestAll(b, pg, txs)
		b.StopTimer()

		rate := func(d time.Duration) float64 { return float64(rows) / d.Seconds() }
		b.ReportMetric(rate(ingest), "rows/s")
		b.ReportMetric(rate(decode), "decode_rows/s")
		b.ReportMetric(rate(peek), "peek_rows/s")
		b.ReportMetric(rate(sourceOnly), "source_only_rows/s")
		b.ReportMetric(decode.Seconds()/ingest.Seconds(), "ingest/decode")
		b.ReportMetric(float64(peakHeap)/(1<<20), "peak_heap_MB")
		b.ReportMetric(0, "ns/op") // the figures above are the result
		b.Logf("%d rows in %d transactions (written in %s): ingest %s (%.0f rows/s), decode-only %s (%.0f rows/s), peek %s (%.0f rows/s), pgsource alone %s (%.0f rows/s), ingest/decode %.2f, peak heap %.1f MiB, VmHWM %s",
			rows, txs, write.Round(time.Millisecond), ingest.Round(time.Millisecond), rate(ingest), decode.Round(time.Millisecond), rate(decode),
			peek.Round(time.Millisecond), rate(peek), sourceOnly.Round(time.Millisecond), rate(sourceOnly), decode.Seconds()/ingest.Seconds(), float64(peakHeap)/(1<<20), vmHWM())
	}
}

// peekChanges times server-side decoding of the whole WAL of the bench slot.
func peekChanges(b *testing.B, pg *pgtest.Cluster, rows int) time.Duration {
	conn := pg.Connect()
	defer conn.Close(context.Background())
	start := time.Now()
	var n int
	err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_logical_slot_peek_binary_changes('bench_decode', NULL, NULL,
		'proto_version', '1', 'publication_names', 'all_tables') WHERE get_byte(data, 0) = 73`).Scan(&n) // 'I'
	if err != nil {
		b.Fatal(err)
	}
	if n != rows {
		b.Fatalf("peek saw %d inserts, want %d", n, rows)
	}
	return time.Since(start)
}

// decodeOnly streams the bench slot and parses every message, the least
// any pgoutput consumer must do.
func decodeOnly(b *testing.B, pg *pgtest.Cluster, rows int) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg, err := pgconn.ParseConfig(pg.URI())
	if err != nil {
		b.Fatal(err)
	}
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	start := time.Now()
	err = pglogrepl.StartReplication(ctx, conn, "bench_decode", 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names 'all_tables'"},
	})
	if err != nil {
		b.Fatal(err)
	}
	inserts := 0
	for inserts < rows {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			b.Fatal(err)
		}
		cd, ok := msg.(*pgproto3.CopyData)
		if !ok || len(cd.Data) == 0 {
			b.Fatalf("unexpected %T", msg)
		}
		switch cd.Data[0] {
		case pglogrepl.XLogDataByteID:
			xld, err := pglogrepl.ParseXLogData(cd.Data[1:])
			if err != nil {
				b.Fatal(err)
			}
			m, err := pglogrepl.Parse(xld.WALData)
			if err != nil {
				b.Fatal(err)
			}
			if ins, ok := m.(*pglogrepl.InsertMessage); ok {
				for _, c := range ins.Tuple.Columns {
					_ = string(c.Data) // the text values, as any consumer keeps them
				}
				inserts++
			}
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			pkm, err := pglogrepl.ParsePrimaryKeepaliveMessage(cd.Data[1:])
			if err != nil {
				b.Fatal(err)
			}
			if pkm.ReplyRequested {
				if err := pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: 0}); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	return time.Since(start)
}

// ingestAll runs pgsource + sequencer + txlog until the log holds every
// transaction, sampling the heap meanwhile.
func ingestAll(b *testing.B, pg *pgtest.Cluster, txs int) (time.Duration, uint64) {
	runtime.GC()
	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
		}
	}()

	// The bench rows were written after the slot: they are the stream's to
	// ingest, not the snapshot reader's. Mark the table read.
	dir := b.TempDir()
	markSnapshotDone(b, pg, dir, "pg1", "public.bench")
	start := time.Now()
	h, err := startEngine(b, pg.URI(), dir, "pg1", quietLogger())
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Minute)
	for h.log.Head() < uint64(txs) {
		if time.Now().After(deadline) {
			b.Fatalf("ingest stalled at %d of %d entries: %+v", h.log.Head(), txs, h.src.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	close(stopSampling)
	wg.Wait()
	if err := h.stop(); err != nil {
		b.Fatal(err)
	}
	return elapsed, peak.Load()
}

// discardSink takes items and reports them durable at once: pgsource alone.
// Its snapshot progress says every table was read (snapDone): the bench
// rows are the stream's.
type discardSink struct {
	txs      atomic.Int64
	snapDone []byte
}

func (d *discardSink) Enqueue(_ context.Context, it Item) error {
	if len(it.Tx.Ops) > 0 && !isSnapshotItem(it) {
		d.txs.Add(1)
	}
	it.Done(0, nil)
	return nil
}

func (d *discardSink) Position(source string) ([]byte, error) {
	if isSnapshotItem(Item{Source: source}) {
		return d.snapDone, nil
	}
	return nil, nil
}

// sourceAlone times pgsource over its own slot with a sink that does
// nothing: decoding, op building and acknowledgement without the log.
func sourceAlone(b *testing.B, pg *pgtest.Cluster, txs int) time.Duration {
	var oid uint32
	if _, err := fmt.Sscan(pg.Rows(b, "SELECT 'public.bench'::regclass::oid")[0], &oid); err != nil {
		b.Fatal(err)
	}
	sink := &discardSink{snapDone: (&snapProgress{done: map[uint32]string{oid: "public.bench"}}).encode()}
	src, err := New(Options{Name: "pg1", URI: pg.URI(), Slot: "bench_source", Logger: quietLogger(), Sink: sink, Store: sink})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- src.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Minute)
	for sink.txs.Load() < int64(txs) {
		if time.Now().After(deadline) {
			b.Fatalf("pgsource alone stalled at %d of %d transactions", sink.txs.Load(), txs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return elapsed
}

// vmHWM is the process' peak resident set size.
func vmHWM() string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// quietLogger keeps the benchmark output to warnings and errors.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// markSnapshotDone stores, in the log at dir, that source name has read
// the existing rows of table.
func markSnapshotDone(tb testing.TB, pg *pgtest.Cluster, dir, name, table string) {
	var oid uint32
	if _, err := fmt.Sscan(pg.Rows(tb, "SELECT '"+table+"'::regclass::oid")[0], &oid); err != nil {
		tb.Fatal(err)
	}
	l, err := pebblelog.Open(dir, pebblelog.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	p := snapProgress{done: map[uint32]string{oid: table}}
	bt := &txlog.Batch{}
	bt.SetPosition(SnapshotSource(name), p.encode())
	if err := l.Commit(bt); err != nil {
		tb.Fatal(err)
	}
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
}
