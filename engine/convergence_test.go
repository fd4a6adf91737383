package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// kvSQL adds the convergence tests' table: a small key space that every
// writer hits, so conflicts are the common case.
const kvSQL = initSQL + `
CREATE TABLE public.kv (k int PRIMARY KEY, a text, b bigint NOT NULL DEFAULT 0, c text);
`

// writerStats counts what writers committed.
type writerStats struct {
	committed atomic.Int64 // transactions that changed at least one row
	empty     atomic.Int64 // committed transactions that changed nothing
	aborted   atomic.Int64 // transactions Postgres refused (deadlock, serialization)
}

// randomWriter commits n random transactions of 1-4 statements over keys
// [0, keys) on one Postgres. Keys within a transaction are distinct and
// written in ascending order, as the apply worker writes them, so local
// writers and the subscription cannot deadlock on each other.
func randomWriter(ctx context.Context, uri string, seed uint64, n, keys int, st *writerStats, progress *atomic.Int64) error {
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		return fmt.Errorf("connecting the writer: %w", err)
	}
	defer conn.Close(context.Background())
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		picked := map[int]bool{}
		for len(picked) < 1+rnd.IntN(4) {
			picked[rnd.IntN(keys)] = true
		}
		var ks []int
		for k := range picked {
			ks = append(ks, k)
		}
		sort.Ints(ks)
		// Not ctx: a transaction cut off at COMMIT by the end of the run
		// would have an unknown outcome and spoil the count.
		txCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		changed, err := randomTx(txCtx, conn, rnd, ks, fmt.Sprintf("w%d-%d", seed, i))
		cancel()
		progress.Add(1)
		switch {
		case err != nil && isTransient(err):
			st.aborted.Add(1)
		case err != nil:
			return err
		case changed:
			st.committed.Add(1)
		default:
			st.empty.Add(1)
		}
	}
	return nil
}

func randomTx(ctx context.Context, conn *pgx.Conn, rnd *rand.Rand, ks []int, tag string) (changed bool, err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(context.Background())
	for _, k := range ks {
		var ct pgconn.CommandTag
		switch p := rnd.IntN(10); {
		case p < 4:
			ct, err = tx.Exec(ctx, "INSERT INTO public.kv (k, a, c) VALUES ($1, $2, $2) ON CONFLICT (k) DO UPDATE SET a = EXCLUDED.a", k, tag)
		case p < 6:
			ct, err = tx.Exec(ctx, "UPDATE public.kv SET b = b + 1 WHERE k = $1", k)
		case p < 8:
			ct, err = tx.Exec(ctx, "UPDATE public.kv SET c = $2, a = NULL WHERE k = $1", k, tag)
		default:
			ct, err = tx.Exec(ctx, "DELETE FROM public.kv WHERE k = $1", k)
		}
		if err != nil {
			return false, err
		}
		changed = changed || ct.RowsAffected() > 0
	}
	return changed, tx.Commit(ctx)
}

// isTransient is an error a concurrent workload expects now and then.
func isTransient(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// fingerprint is one Postgres's kv table as a single hash.
func (c *cluster) fingerprint(name string) string {
	r := c.query(name, "SELECT count(*)::text || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY k)), '') FROM public.kv t")
	return r[0]
}

// waitQuiescent waits until every Postgres has the same kv fingerprint and
// it, and the log head, stay unchanged for a while.
func (c *cluster) waitQuiescent(d time.Duration) {
	c.t.Helper()
	var fps []string
	var stableSince time.Time
	var lastKey string
	c.eventually(d, func() bool {
		fps = fps[:0]
		for _, n := range c.names {
			fps = append(fps, c.fingerprint(n))
		}
		for _, f := range fps[1:] {
			if f != fps[0] {
				stableSince = time.Time{}
				return false
			}
		}
		key := fmt.Sprint(fps[0], c.logHead())
		if key != lastKey || stableSince.IsZero() {
			lastKey, stableSince = key, time.Now()
			return false
		}
		return time.Since(stableSince) > time.Second
	}, func() string {
		c.assertSame("public.kv")
		return fmt.Sprintf("no quiescence: fingerprints %q", fps)
	})
}

// testConvergence runs random conflicting transactions concurrently on every
// Postgres of c (writers per Postgres × txs each over 50 keys of public.kv),
// cuts the last Postgres's subscription off for the middle third, then checks
// that every Postgres ends identical and that the log grew by one entry per
// source transaction that changed something (no echo storm).
func testConvergence(c *cluster, writers, txs int) {
	t := c.t
	pgs := len(c.names)
	head0 := c.logHead()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	var st writerStats
	var progress atomic.Int64
	total := int64(pgs * writers * txs)
	var wg sync.WaitGroup
	errs := make(chan error, pgs*writers)
	for i, n := range c.names {
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := randomWriter(ctx, c.pgs[n].URI(), uint64(i*100+w+1), txs, 50, &st, &progress); err != nil {
					errs <- fmt.Errorf("writer %d on %s: %w", w, n, err)
				}
			}()
		}
	}
	// The cut: the last Postgres stops applying for the middle third, so its
	// writes there are concurrent with everything the others did meanwhile.
	cut := c.names[len(c.names)-1]
	waitProgress := func(p int64) {
		for progress.Load() < p && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitProgress(total / 3)
	c.setSubscription(cut, false)
	waitProgress(2 * total / 3)
	c.setSubscription(cut, true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d source transactions changed rows, %d changed nothing, %d aborted", st.committed.Load(), st.empty.Load(), st.aborted.Load())

	c.waitQuiescent(60 * time.Second)
	c.assertSame("public.kv")
	c.checkNoApplyErrors()
	head := c.logHead() - head0
	t.Logf("log grew by %d entries; %d rows", head, len(c.dump(c.names[0], "public.kv")))
	// Each source transaction that changed rows is at most one entry; the
	// echoes of the entries sent back must add none.
	if head > uint64(st.committed.Load()) {
		t.Errorf("log grew by %d > %d source transactions that changed rows: echoes were merged again", head, st.committed.Load())
	}
	if head < uint64(st.committed.Load())*9/10 {
		t.Errorf("log grew by %d, far below %d source transactions that changed rows", head, st.committed.Load())
	}
}
