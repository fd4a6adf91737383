package pgsource

import (
	"context"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/internal/pgtest"
)

// snapshotBenchRows is BENCH_ROWS (default def).
func snapshotBenchRows(tb testing.TB, def int) int {
	v := os.Getenv("BENCH_ROWS")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("BENCH_ROWS=%q: want a positive number", v)
	}
	return n
}

// measureSnapshot fills a table with rows, then times in the same run a
// bare COPY bench TO STDOUT (the baseline) and the snapshot of the same
// table into pgsource + sequencer + txlog (until every chunk is durable).
func measureSnapshot(tb testing.TB, rows int) (copyDur, snapDur time.Duration) {
	pg := pgtest.Start(tb)
	pg.Exec(`CREATE TABLE public.bench (id bigint PRIMARY KEY, name text NOT NULL, qty int, note text)`)
	pg.Exec(`INSERT INTO bench SELECT g, 'name ' || g, g % 997, md5(g::text) FROM generate_series(1, $1::bigint) g`, rows)
	pg.Exec(`VACUUM ANALYZE bench`)
	ctx := context.Background()

	conn := pg.Connect()
	start := time.Now()
	if _, err := conn.PgConn().CopyTo(ctx, io.Discard, `COPY public.bench TO STDOUT`); err != nil {
		tb.Fatal(err)
	}
	copyDur = time.Since(start)
	conn.Close(ctx)

	h, err := startEngine(tb, pg.URI(), tb.TempDir(), "pg1", quietLogger())
	if err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Minute)
	for {
		st := h.src.Status()
		if st.Snapshot.Done {
			if st.Snapshot.Rows != uint64(rows) {
				tb.Fatalf("snapshot read %d rows, want %d", st.Snapshot.Rows, rows)
			}
			snapDur = st.Snapshot.Elapsed
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("snapshot stalled: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	n := 0
	if err := h.log.Rows("public.bench", func(string, *merge.Row) error { n++; return nil }); err != nil {
		tb.Fatal(err)
	}
	if n != rows {
		tb.Fatalf("the log holds %d rows of bench, want %d", n, rows)
	}
	if err := h.stop(); err != nil {
		tb.Fatal(err)
	}
	return copyDur, snapDur
}

// BenchmarkSnapshot: the rows a table held before replication (BENCH_ROWS,
// default 1,000,000) into the engine's log, against COPY ... TO STDOUT of
// the same table alone (goal: ratio >= 0.5).
//
//	go test -run '^$' -bench BenchmarkSnapshot -benchtime 1x ./engine/pgsource
func BenchmarkSnapshot(b *testing.B) {
	rows := snapshotBenchRows(b, 1_000_000)
	for i := 0; i < b.N; i++ {
		copyDur, snapDur := measureSnapshot(b, rows)
		rate := func(d time.Duration) float64 { return float64(rows) / d.Seconds() }
		b.ReportMetric(rate(snapDur), "rows/s")
		b.ReportMetric(rate(copyDur), "copy_rows/s")
		b.ReportMetric(copyDur.Seconds()/snapDur.Seconds(), "snapshot/copy")
		b.ReportMetric(0, "ns/op")
		b.Logf("%d rows: snapshot into the log %s (%.0f rows/s), COPY TO STDOUT alone %s (%.0f rows/s), ratio %.2f",
			rows, snapDur.Round(time.Millisecond), rate(snapDur), copyDur.Round(time.Millisecond), rate(copyDur), copyDur.Seconds()/snapDur.Seconds())
	}
}

// TestSnapshotBenchmarkSmall runs the benchmark's measurement on a few
// rows (correctness only: no figure is asserted), so it keeps working.
func TestSnapshotBenchmarkSmall(t *testing.T) {
	copyDur, snapDur := measureSnapshot(t, snapshotBenchRows(t, 5000))
	t.Logf("COPY %s, snapshot %s", copyDur, snapDur)
}
