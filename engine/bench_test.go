package engine_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/internal/testkit"
)

// benchTables are created in both the engine's database (electric) and the
// native baseline's (native) on both clusters. On the receiving side a trigger
// enabled ALWAYS (it fires for local and replicated inserts) stamps the
// arrival time, so the lag of each row is arrived - ts on one machine clock.
const benchTables = `
CREATE TABLE public.bench_bulk (id bigint PRIMARY KEY, v text NOT NULL);
CREATE TABLE public.bench_small (id bigint PRIMARY KEY, v text NOT NULL, ts timestamptz NOT NULL, arrived timestamptz);
CREATE FUNCTION public.stamp_arrival() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN NEW.arrived := pg_catalog.clock_timestamp(); RETURN NEW; END$$;
CREATE TRIGGER a_stamp_arrival BEFORE INSERT ON public.bench_small FOR EACH ROW EXECUTE FUNCTION public.stamp_arrival();
ALTER TABLE public.bench_small ENABLE ALWAYS TRIGGER a_stamp_arrival;
`

// benchPath is one way of getting rows from postgres_1 to postgres_2.
type benchPath struct {
	name     string
	src, dst string // connection URIs of the source and replica databases
}

// BenchmarkReplication compares Postgres → Postgres through the engine with
// native logical replication (a publication and subscription between the
// same two clusters, in another database) in the same run:
//
//   - bulk: BENCH_ROWS rows (default 1,000,000) in 1,000-row transactions on
//     postgres_1, timed until the last one is on postgres_2: rows/s.
//   - small: single-row transactions at about BENCH_RATE/s (default 2,000)
//     for BENCH_SECONDS (default 10) from 4 connections: replication lag
//     p50/p99.
//
// The engine runs as a child process, as in production.
func BenchmarkReplication(b *testing.B) {
	rows := envInt(b, "BENCH_ROWS", 1_000_000)
	seconds := envInt(b, "BENCH_SECONDS", 10)
	rate := envInt(b, "BENCH_RATE", 2000)

	c := newCluster(b, 2, benchTables)
	for _, n := range c.names {
		c.exec(n, "CREATE DATABASE native")
		execOn(b, dbURI(c, n, "native"), benchTables)
	}
	execOn(b, dbURI(c, "postgres_1", "native"), "CREATE PUBLICATION native_pub FOR TABLE public.bench_bulk, public.bench_small")
	execOn(b, dbURI(c, "postgres_2", "native"), fmt.Sprintf(
		"CREATE SUBSCRIPTION native_sub CONNECTION 'host=127.0.0.1 port=%d dbname=native user=electric password=password' PUBLICATION native_pub",
		c.pgs["postgres_1"].Port))
	c.startChild(b.TempDir())
	waitNativeReady(b, dbURI(c, "postgres_2", "native"))

	native := benchPath{"native", dbURI(c, "postgres_1", "native"), dbURI(c, "postgres_2", "native")}
	viaEngine := benchPath{"engine", dbURI(c, "postgres_1", "electric"), dbURI(c, "postgres_2", "electric")}

	b.Run("bulk", func(b *testing.B) {
		var perSec [2]float64
		var settle time.Duration
		for i := 0; i < b.N; i++ {
			for j, p := range []benchPath{native, viaEngine} {
				execOn(b, p.src, "TRUNCATE public.bench_bulk")
				waitCount(b, p.dst, "public.bench_bulk", 0)
				start := time.Now()
				d := bulk(b, p, rows)
				perSec[j] = float64(rows) / d.Seconds()
				b.Logf("bulk %s: %d rows in %v: %.0f rows/s", p.name, rows, d.Round(time.Millisecond), perSec[j])
				if p.name == "engine" {
					// The engine also sends every entry back to its origin
					// (DESIGN.md: no echo skip yet); that continues after the
					// replica has the rows, and the next phase must not pay
					// for it.
					waitEngineIdle(b, c)
					settle = time.Since(start)
					b.Logf("bulk engine: idle again (echo applied on the origin and read back) after %v", settle.Round(time.Millisecond))
				}
			}
		}
		b.ReportMetric(settle.Seconds(), "engine_settle_s")
		b.ReportMetric(perSec[0], "native_rows/s")
		b.ReportMetric(perSec[1], "engine_rows/s")
		b.ReportMetric(perSec[1]/perSec[0], "engine/native")
	})
	b.Run("small", func(b *testing.B) {
		var lag [2][2]float64
		for i := 0; i < b.N; i++ {
			for j, p := range []benchPath{native, viaEngine} {
				execOn(b, p.src, "TRUNCATE public.bench_small")
				waitCount(b, p.dst, "public.bench_small", 0)
				n, got := smallTxs(b, p, rate, time.Duration(seconds)*time.Second)
				waitCount(b, p.dst, "public.bench_small", n)
				lag[j] = lagPercentiles(b, p.dst)
				if p.name == "engine" {
					waitEngineIdle(b, c)
				}
				b.Logf("small %s: %d tx at %.0f tx/s, lag p50 %.2f ms p99 %.2f ms", p.name, n, got, lag[j][0], lag[j][1])
			}
		}
		b.ReportMetric(lag[0][0], "native_p50_ms")
		b.ReportMetric(lag[0][1], "native_p99_ms")
		b.ReportMetric(lag[1][0], "engine_p50_ms")
		b.ReportMetric(lag[1][1], "engine_p99_ms")
		b.ReportMetric(lag[1][1]/lag[0][1], "p99_engine/native")
	})
	b.StopTimer()
	c.stopChild()
	c.checkNoApplyErrors("terminating logical replication worker due to", "could not receive data from WAL stream", "could not connect to the publisher")
}

// bulk writes rows in 1,000-row transactions on the source and returns the
// time until the replica holds the last one (transactions apply in commit
// order, so the last row arriving means all did).
func bulk(b *testing.B, p benchPath, rows int) time.Duration {
	ctx := context.Background()
	conn := connect(b, p.src)
	defer conn.Close(ctx)
	start := time.Now()
	for from := 1; from <= rows; from += 1000 {
		to := min(from+999, rows)
		if _, err := conn.Exec(ctx, "INSERT INTO public.bench_bulk SELECT g, md5(g::text) FROM generate_series($1::bigint, $2::bigint) g", from, to); err != nil {
			b.Fatalf("bulk insert on %s: %v", p.name, err)
		}
	}
	written := time.Since(start)
	waitRow(b, p.dst, "public.bench_bulk", rows)
	d := time.Since(start)
	b.Logf("bulk %s: source wrote %d rows in %v", p.name, rows, written.Round(time.Millisecond))
	waitCount(b, p.dst, "public.bench_bulk", rows)
	return d
}

// smallTxs commits single-row transactions at about rate per second from 4
// connections for d; it returns how many and the rate achieved.
func smallTxs(b *testing.B, p benchPath, rate int, d time.Duration) (int, float64) {
	const writers = 4
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	// Connect here: Fatal may only be called from the benchmark's goroutine.
	conns := make([]*pgx.Conn, writers)
	for w := range conns {
		conns[w] = connect(b, p.src)
		defer conns[w].Close(context.Background())
	}
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			conn := conns[w]
			interval := time.Second * writers / time.Duration(rate)
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for time.Since(start) < d {
				<-tick.C
				id := next.Add(1)
				if _, err := conn.Exec(ctx, "INSERT INTO public.bench_small (id, v, ts) VALUES ($1, 'x', clock_timestamp())", id); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("small transactions on %s: %v", p.name, err)
	}
	n := int(next.Load())
	return n, float64(n) / time.Since(start).Seconds()
}

// lagPercentiles are p50 and p99 of arrival - commit, in milliseconds.
func lagPercentiles(b *testing.B, uri string) [2]float64 {
	ctx := context.Background()
	conn := connect(b, uri)
	defer conn.Close(ctx)
	var p [2]float64
	err := conn.QueryRow(ctx, `SELECT
  percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM arrived - ts)) * 1000,
  percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM arrived - ts)) * 1000
FROM public.bench_small`).Scan(&p[0], &p[1])
	if err != nil {
		b.Fatalf("reading the lag: %v", err)
	}
	return p
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

func dbURI(c *cluster, name, db string) string {
	u := c.pgs[name].URI()
	return u[:strings.LastIndex(u, "/")+1] + db
}

// connect opens a connection with synchronous_commit on: the test clusters
// default to off, and then a walsender only sees a commit when the WAL
// writer flushes it (every 200 ms), which would dominate every lag figure.
func connect(b testing.TB, uri string) *pgx.Conn {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(uri)
	if err != nil {
		b.Fatalf("parsing %s: %v", uri, err)
	}
	cfg.RuntimeParams["synchronous_commit"] = "on"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		b.Fatalf("connecting to %s: %v", uri, err)
	}
	return conn
}

func execOn(b testing.TB, uri, sql string) {
	b.Helper()
	conn := connect(b, uri)
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		b.Fatalf("%s on %s: %v", sql, uri, err)
	}
}

// pollUntil polls cond every 20 ms for up to d.
func pollUntil(b testing.TB, d time.Duration, what string, cond func(conn *pgx.Conn) (bool, string), uri string) {
	b.Helper()
	conn := connect(b, uri)
	defer conn.Close(context.Background())
	var state string
	if !testkit.Until(d, func() bool { ok, s := cond(conn); state = s; return ok }) {
		b.Fatalf("after %v: %s: %s", d, what, state)
	}
}

func waitCount(b testing.TB, uri, table string, n int) {
	b.Helper()
	pollUntil(b, 10*time.Minute, fmt.Sprintf("%s has %d rows", table, n), func(conn *pgx.Conn) (bool, string) {
		var got int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&got); err != nil {
			return false, err.Error()
		}
		return got == n, fmt.Sprintf("%d rows", got)
	}, uri)
}

func waitRow(b testing.TB, uri, table string, id int) {
	b.Helper()
	pollUntil(b, 10*time.Minute, fmt.Sprintf("row %d in %s", id, table), func(conn *pgx.Conn) (bool, string) {
		var ok bool
		if err := conn.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM "+table+" WHERE id = $1)", id).Scan(&ok); err != nil {
			return false, err.Error()
		}
		return ok, "absent"
	}, uri)
}

// waitEngineIdle waits until every subscriber has applied the whole log and
// no source transaction (echoes included) arrived for a second.
func waitEngineIdle(b testing.TB, c *cluster) {
	b.Helper()
	cl, err := status.NewClient(c.statusURL(), nil)
	if err != nil {
		b.Fatal(err)
	}
	var last, state string
	stable := 0
	deadline := time.Now().Add(10 * time.Minute)
	for stable < 2 {
		if time.Now().After(deadline) {
			b.Fatalf("engine not idle after 10m: %s", state)
		}
		time.Sleep(500 * time.Millisecond)
		cs, err := cl.Connectors(context.Background())
		if err != nil {
			state = err.Error()
			continue
		}
		var sb strings.Builder
		lagging := false
		for _, cn := range cs {
			fmt.Fprintf(&sb, "%s: %d tx, %d entries behind; ", cn.Name, cn.Transactions, cn.Subscriber.LagEntries)
			lagging = lagging || cn.Subscriber.LagEntries > 0
		}
		state = sb.String()
		if lagging || state != last {
			last, stable = state, 0
			continue
		}
		stable++
	}
}

// waitNativeReady waits until the native subscription's tables are synced
// and its apply worker streams.
func waitNativeReady(b testing.TB, uri string) {
	pollUntil(b, time.Minute, "native subscription ready", func(conn *pgx.Conn) (bool, string) {
		var pending, workers int
		err := conn.QueryRow(context.Background(), `SELECT
  (SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'),
  (SELECT count(*) FROM pg_stat_subscription WHERE subname = 'native_sub' AND relid IS NULL AND pid IS NOT NULL)`).Scan(&pending, &workers)
		if err != nil {
			return false, err.Error()
		}
		return pending == 0 && workers == 1, fmt.Sprintf("%d tables syncing, %d apply workers", pending, workers)
	}, uri)
}
