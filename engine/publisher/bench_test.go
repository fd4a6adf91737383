package publisher_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/internal/pgtest"
)

// BenchmarkBulkApply measures how fast a stock Postgres 15 subscriber
// applies what the publisher streams (100 entries of 1,000 rows), with the
// upsert trigger and with it disabled, against native logical replication
// of the same rows between two clusters in the same run (100 source
// transactions of 1,000 rows). Each figure is the time from the commit (to
// the log, or on the source) until every row is in the subscriber's table.
func BenchmarkBulkApply(b *testing.B) {
	const entries, perEntry = 100, 1000
	const rows = entries * perEntry
	e := newEnv(b)
	dst := pgtest.Start(b)
	src := pgtest.Start(b)
	for _, tbl := range []string{"trig", "plain", "nat"} {
		dst.Exec(fmt.Sprintf(`CREATE TABLE public.%s (id int PRIMARY KEY, v text, n int)`, tbl))
	}
	src.Exec(`CREATE TABLE public.nat (id int PRIMARY KEY, v text, n int); CREATE PUBLICATION natpub FOR TABLE public.nat`)
	dst.Exec(fmt.Sprintf(`CREATE SUBSCRIPTION nat CONNECTION 'host=127.0.0.1 port=%d dbname=electric user=electric password=password'
PUBLICATION natpub WITH (copy_data = false)`, src.Port))
	e.startConnector("a", dst)
	dst.Exec(`ALTER TABLE public.plain DISABLE TRIGGER electric_upsert`)

	waitCount := func(table string, want int, start time.Time) time.Duration {
		deadline := start.Add(5 * time.Minute)
		for time.Now().Before(deadline) {
			var n int
			queryRow(b, dst, "SELECT count(*) FROM "+table, &n)
			if n == want {
				return time.Since(start)
			}
			time.Sleep(20 * time.Millisecond)
		}
		b.Fatalf("%s: rows did not arrive", table)
		return 0
	}
	// ours commits the entries to the log in one batch and waits for the
	// live subscriber to have them.
	ours := func(table string, base int) time.Duration {
		each := make([][]txlog.RowChange, entries)
		for i := range each {
			ch := make([]txlog.RowChange, perEntry)
			for j := range ch {
				id := base + i*perEntry + j
				ch[j] = upsert("public."+table, fmt.Sprintf("id=%d", id), "v="+strings.Repeat("x", 32), fmt.Sprintf("n=%d", j))
			}
			each[i] = ch
		}
		var have int
		queryRow(b, dst, "SELECT count(*) FROM public."+table, &have)
		start := time.Now()
		e.log.appendAll("b", each)
		return waitCount("public."+table, have+rows, start)
	}
	// native inserts the rows on the source in 1,000-row transactions.
	native := func(base int) time.Duration {
		var have int
		queryRow(b, dst, "SELECT count(*) FROM public.nat", &have)
		start := time.Now()
		src.Exec(fmt.Sprintf(`DO $$ BEGIN FOR i IN 0..%d LOOP
  INSERT INTO public.nat SELECT g, repeat('x', 32), g %% %d FROM generate_series(%d + i * %d, %d + i * %d + %d) g;
  COMMIT;
END LOOP; END $$`, entries-1, perEntry, base, perEntry, base, perEntry, perEntry-1))
		return waitCount("public.nat", have+rows, start)
	}
	var trig, plain, nat time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		base := i * rows
		trig += ours("trig", base)
		plain += ours("plain", base)
		nat += native(base)
	}
	b.StopTimer()
	perSec := func(d time.Duration) float64 { return float64(rows*b.N) / d.Seconds() }
	b.ReportMetric(perSec(trig), "rows/s-trigger")
	b.ReportMetric(perSec(plain), "rows/s-notrigger")
	b.ReportMetric(perSec(nat), "rows/s-native")
	b.ReportMetric(perSec(trig)/perSec(nat), "trigger/native")
	b.ReportMetric(perSec(plain)/perSec(nat), "notrigger/native")
}
