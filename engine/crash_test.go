package engine_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/engine"
	"github.com/electric-sql/electric-go/engine/config"
	"github.com/electric-sql/electric-go/internal/validate"
)

// childEnv makes the test binary run the engine instead of the tests, so the
// crash test can SIGKILL a real engine process.
const childEnv = "ELECTRIC_ENGINE_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChildEngine())
	}
	os.Exit(m.Run())
}

// runChildEngine is `electric serve` in a child process: configuration from
// the environment, log to stderr, SIGTERM stops it.
func runChildEngine() int {
	cfg, errs := config.Load(os.LookupEnv)
	if len(errs) > 0 {
		fmt.Fprintln(os.Stderr, "config:", errs)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// ELECTRIC_ENGINE_CPUPROFILE profiles the engine (benchmarks).
	if path := os.Getenv("ELECTRIC_ENGINE_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	if err := engine.Run(ctx, cfg, log); err != nil {
		log.Error("engine failed", "err", err)
		return 1
	}
	return 0
}

// startChild runs the engine as a child process with state under dir and
// waits until it is ready.
func (c *cluster) startChild(dir string) {
	c.t.Helper()
	c.spawnChild(dir)
	c.waitReady()
}

// spawnChild runs the engine as a child process with state under dir.
func (c *cluster) spawnChild(dir string) {
	c.t.Helper()
	if c.logBuf == nil {
		c.logBuf = newLogBuffer()
	}
	env := c.envFor(dir)
	cfg, errs := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if len(errs) > 0 {
		c.t.Fatalf("config: %v", errs)
	}
	c.cfg = cfg
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = c.logBuf, c.logBuf
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("starting the engine: %v", err)
	}
	c.child = cmd
	c.t.Cleanup(func() {
		c.killChild()
		if c.t.Failed() {
			c.t.Logf("engine log:\n%s", c.logBuf.Tail(30000))
		}
	})
}

// stopChild stops the child engine with SIGTERM, as an operator would.
func (c *cluster) stopChild() {
	c.t.Helper()
	if c.child == nil {
		return
	}
	c.child.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- c.child.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			c.t.Errorf("engine exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		c.t.Errorf("engine did not stop within 30s of SIGTERM")
		c.child.Process.Kill()
		<-done
	}
	c.child = nil
}

// killChild SIGKILLs the child engine (no-op when none runs).
func (c *cluster) killChild() {
	if c.child == nil {
		return
	}
	c.child.Process.Kill()
	c.child.Wait()
	c.child = nil
}

// ledger is what one writer committed on its own keys: nobody else writes
// them, so each must end with exactly this value everywhere.
type ledger struct {
	mu   sync.Mutex
	want map[string]int // id → value; absent = deleted
	txs  int            // committed transactions
}

// ledgerWriter inserts, updates and deletes rows it alone owns until ctx is
// done, recording the outcome of every transaction that committed. A
// transaction whose commit outcome is unknown (the error came at COMMIT)
// fails the test: the writer talks to Postgres directly, which the crash
// does not touch.
func ledgerWriter(ctx context.Context, uri, side string, l *ledger) error {
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		return fmt.Errorf("connecting the ledger writer: %w", err)
	}
	defer conn.Close(context.Background())
	rnd := rand.New(rand.NewPCG(uint64(side[len(side)-1]), 7))
	var live []string
	for i := 0; ctx.Err() == nil; i++ {
		id := fmt.Sprintf("%s-%06d", side, i)
		batch := map[string]int{id: 0}
		q := []string{fmt.Sprintf("INSERT INTO public.ledger (id, v) VALUES ('%s', 0)", id)}
		if len(live) > 0 && rnd.IntN(2) == 0 {
			u := live[rnd.IntN(len(live))]
			l.mu.Lock()
			batch[u] = l.want[u] + 1
			l.mu.Unlock()
			q = append(q, fmt.Sprintf("UPDATE public.ledger SET v = %d WHERE id = '%s'", batch[u], u))
		}
		var del string
		if len(live) > 10 && rnd.IntN(5) == 0 {
			j := rnd.IntN(len(live))
			if _, touched := batch[live[j]]; !touched {
				del = live[j]
				live = append(live[:j], live[j+1:]...)
				q = append(q, fmt.Sprintf("DELETE FROM public.ledger WHERE id = '%s'", del))
			}
		}
		if _, err := conn.Exec(context.Background(), "BEGIN; "+strings.Join(q, "; ")+"; COMMIT"); err != nil {
			return fmt.Errorf("ledger transaction on %s: %w", side, err)
		}
		live = append(live, id)
		l.mu.Lock()
		for k, v := range batch {
			l.want[k] = v
		}
		if del != "" {
			delete(l.want, del)
		}
		l.txs++
		l.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

const crashSQL = kvSQL + `
CREATE TABLE public.ledger (id text PRIMARY KEY, v int NOT NULL);
`

// TestCrashDuringWrites SIGKILLs the engine twice while both Postgres take
// conflicting writes and private (ledger) writes, restarting it on the same
// state each time. After the writes stop: both databases are identical,
// every ledger row has its last committed value on both sides, and no
// subscription is stuck or reported an apply error.
func TestCrashDuringWrites(t *testing.T) {
	c := newCluster(t, 2, crashSQL)
	dir := t.TempDir()
	c.startChild(dir)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var st writerStats
	var progress atomic.Int64
	l := &ledger{want: map[string]int{}}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i, n := range c.names {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := ledgerWriter(ctx, c.pgs[n].URI(), n, l); err != nil && ctx.Err() == nil {
				errs <- err
			}
		}()
		go func() {
			defer wg.Done()
			// A large n: the writer runs until the context ends.
			err := randomWriter(ctx, c.pgs[n].URI(), uint64(i+1), 1<<30, 50, &st, &progress)
			if err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("random writer on %s: %w", n, err)
			}
		}()
	}
	for round := 0; round < 2; round++ {
		time.Sleep(3 * time.Second) // writes flow through the engine
		before := c.logHead()
		c.killChild()
		t.Logf("killed the engine at log head %d", before)
		time.Sleep(time.Second) // writes pile up on both sides
		c.startChild(dir)
	}
	time.Sleep(2 * time.Second)
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	l.mu.Lock()
	t.Logf("%d random transactions changed rows (%d aborted); %d ledger rows expected", st.committed.Load(), st.aborted.Load(), len(l.want))
	l.mu.Unlock()

	c.waitQuiescent(90 * time.Second)
	c.waitAll("SELECT count(*) FROM public.ledger", fmt.Sprint(len(l.want)))
	c.assertSame("public.kv")
	c.assertSame("public.ledger")
	var want []string
	for id, v := range l.want {
		want = append(want, fmt.Sprintf("%s|%d", id, v))
	}
	sort.Strings(want)
	for _, n := range c.names {
		if d := validate.Diff(want, c.query(n, "SELECT id, v FROM public.ledger ORDER BY id")); d != "" {
			t.Errorf("ledger on %s differs from what the writers committed (- missing, + unexpected):\n%s", n, d)
		}
	}
	head := c.logHead()
	t.Logf("log head %d, %d ledger transactions", head, l.txs)
	// One entry per source transaction that changed rows: a crash must
	// neither merge a transaction twice nor merge an echo.
	sources := uint64(st.committed.Load()) + uint64(l.txs)
	if head > sources {
		t.Errorf("log head %d > %d source transactions: entries merged twice or echoes merged", head, sources)
	}
	if head < sources*9/10 {
		t.Errorf("log head %d, far below %d source transactions", head, sources)
	}
	for _, n := range c.names {
		c.eventually(30*time.Second, func() bool {
			return len(c.query(n, "SELECT 1 FROM pg_stat_subscription s JOIN pg_subscription p ON p.oid = s.subid WHERE p.subenabled AND s.pid IS NOT NULL AND s.subname = '"+n+"'")) == 1
		}, func() string {
			return n + ": subscription not running: " + fmt.Sprint(c.query(n, "SELECT * FROM pg_stat_subscription"))
		})
	}
	// The subscriber loses its publisher at each kill; anything else is an
	// apply error.
	c.checkNoApplyErrors(
		"could not receive data from WAL stream",
		"could not connect to the publisher",
	)
	c.checkEngineLog()
}
