package pgsource

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/engine/txlog/pebblelog"
	"github.com/electric-sql/electric-go/internal/pgtest"
	"github.com/electric-sql/electric-go/internal/testkit"
	"github.com/electric-sql/electric-go/internal/validate"
)

// The workload: source transaction T inserts rowsPerTx rows of
// public.items (ids T*rowsPerTx.., column tx = T) and sets the one row of
// public.counter to T. The validator checks the log against it.
const workloadDDL = `CREATE TABLE public.items (id bigint PRIMARY KEY, tx int NOT NULL, v text);
CREATE TABLE public.counter (id int PRIMARY KEY, n int NOT NULL);
INSERT INTO public.counter VALUES (1, 0);`

// writer commits workload transactions one after the other and remembers
// which committed.
type writer struct {
	rowsPerTx int
	pause     time.Duration // between transactions
	mu        sync.Mutex
	committed []int
	err       error
}

func (w *writer) tx(ctx context.Context, conn *pgx.Conn, T int) error {
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	for i := 0; i < w.rowsPerTx; i++ {
		b.Queue("INSERT INTO items VALUES ($1, $2, $3)", int64(T*w.rowsPerTx+i), T, "v"+strconv.Itoa(T))
	}
	b.Queue("UPDATE counter SET n = $1 WHERE id = 1", T)
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("workload tx %d: %w", T, err)
	}
	w.mu.Lock()
	w.committed = append(w.committed, T)
	w.mu.Unlock()
	return nil
}

// run writes transactions first, first+1, ... until ctx ends.
func (w *writer) run(ctx context.Context, uri string, first int) {
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		w.setErr(err)
		return
	}
	defer conn.Close(context.Background())
	for T := first; ctx.Err() == nil; T++ {
		if err := w.tx(ctx, conn, T); err != nil {
			if ctx.Err() == nil {
				w.setErr(err)
			}
			return
		}
		if w.pause > 0 {
			time.Sleep(w.pause)
		}
	}
}

func (w *writer) setErr(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.committed)
}

// validateLog reads the whole log and records every anomaly against the
// committed workload transactions (CockroachDB cdctest style: all of them,
// not just the first).
//
// The source is the judge of what committed: acknowledged is what the writer
// saw commit (a commit cut off by a cancel may have happened or not), and
// every acknowledged transaction must be in the source too.
func validateLog(t *testing.T, pg *pgtest.Cluster, l txlog.Log, origin string, rowsPerTx int, acknowledged []int) {
	t.Helper()
	var an validate.Anomalies
	add := an.Addf
	committed := sourceTxs(t, pg)
	inSource := map[int]bool{}
	for _, T := range committed {
		inSource[T] = true
	}
	for _, T := range acknowledged {
		if !inSource[T] {
			add("tx %d was acknowledged to the writer but is not in the source", T)
		}
	}

	once := validate.NewOnce(&an, "tx", "the log", committed)
	order := validate.NewOrder[string, int](&an, "tx")
	head := l.Head()
	r := l.NewReader(0)
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for off := uint64(1); off <= head; off++ {
		e, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("reading entry %d: %v", off, err)
		}
		if e.Offset != off {
			add("entry %d read at position %d (gap or reorder)", e.Offset, off)
		}
		if e.Origin != origin {
			add("entry %d: origin %q", e.Offset, e.Origin)
		}
		txs := map[int]int{}
		counter := 0
		initialCounter := false // the counter row as workloadDDL made it
		for _, c := range e.Changes {
			switch c.Table {
			case "public.items":
				T, err := strconv.Atoi(c.Row["tx"].Text)
				if err != nil || c.Deleted {
					add("entry %d: bad items change %+v", e.Offset, c)
					continue
				}
				txs[T]++
				id, _ := strconv.Atoi(c.Key)
				if id/rowsPerTx != T {
					add("entry %d: row %s belongs to tx %d, carries tx %d", e.Offset, c.Key, id/rowsPerTx, T)
				}
			case "public.counter":
				counter++
				initialCounter = c.Row["n"].Text == "0"
			default:
				add("entry %d: change to %s", e.Offset, c.Table)
			}
		}
		if len(txs) == 0 && counter == 1 && initialCounter {
			continue // the snapshot reader's copy of the row that existed before the slot
		}
		if len(txs) != 1 {
			add("entry %d holds %d source transactions (%v), want 1", e.Offset, len(txs), txs)
			continue
		}
		for T, n := range txs {
			if n != rowsPerTx || counter != 1 {
				add("entry %d (tx %d): %d rows and %d counter changes, want %d and 1", e.Offset, T, n, counter, rowsPerTx)
			}
			at := fmt.Sprintf("entry %d", e.Offset)
			once.Note(at, T)
			order.Note(at, origin, T)
		}
	}
	once.Finish()
	// Final fingerprint: the merged rows equal the source's.
	last := 0
	for _, T := range committed {
		last = max(last, T)
	}
	if r, err := l.Row("public.counter", "1"); err != nil || !r.Live() || r.Image()["n"] != (merge.Value{Text: strconv.Itoa(last)}) {
		add("counter row in the log is %v, want n = %d", r.Image(), last)
	}
	live := 0
	err := l.Rows("public.items", func(key string, row *merge.Row) error {
		if row.Live() {
			live++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if live != len(committed)*rowsPerTx {
		add("%d live items rows in the log, want %d", live, len(committed)*rowsPerTx)
	}
	an.Report(t)
	t.Logf("validated %d entries against %d committed source transactions: %d anomalies", head, len(committed), an.Len())
}

// sourceTxs lists the workload transactions present in the source, in order.
func sourceTxs(t *testing.T, pg *pgtest.Cluster) []int {
	t.Helper()
	conn := pg.Connect()
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT DISTINCT tx FROM public.items ORDER BY tx`)
	if err != nil {
		t.Fatal(err)
	}
	txs, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int, len(txs))
	for i, v := range txs {
		out[i] = int(v)
	}
	return out
}

func TestRestartResumesWithoutDuplicatesInTheLog(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	pg.Exec(workloadDDL)
	logger, _ := testLogger(t)
	dir := t.TempDir()
	h, err := startEngine(t, pg.URI(), dir, "pg1", logger)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "ready", h.src.Ready)
	w := &writer{rowsPerTx: 2}
	conn := pg.Connect()
	ctx := context.Background()
	for T := 1; T <= 40; T++ {
		if err := w.tx(ctx, conn, T); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, "40 entries", func() bool { return h.log.Head() >= 40 })
	// Stop right away: the slot may lag the log; the stored position rules.
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	for T := 41; T <= 80; T++ {
		if err := w.tx(ctx, conn, T); err != nil {
			t.Fatal(err)
		}
	}
	h, err = startEngine(t, pg.URI(), dir, "pg1", logger)
	if err != nil {
		t.Fatal(err)
	}
	defer h.stop()
	testkit.Eventually(t, "80 entries", func() bool { return h.log.Head() >= 80 })
	target := currentLSN(t, pg)
	testkit.Eventually(t, "caught up", func() bool { return h.src.Status().ConfirmedLSN >= target })
	validateLog(t, pg, h.log, "pg1", 2, w.committed)
}

func TestPostgresRestartMidStreamResumes(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	pg.Exec(workloadDDL)
	h := startTestEngine(t, pg, "pg1")
	w := &writer{rowsPerTx: 3}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.run(ctx, pg.URI(), 1); close(done) }()
	testkit.Eventually(t, "some entries", func() bool { return h.log.Head() >= 20 })
	cancel()
	<-done
	rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
	defer rcancel()
	if err := pg.Restart(rctx); err != nil {
		t.Fatal(err)
	}
	if w.err != nil {
		t.Fatal(w.err)
	}
	// Writes after the restart reach the log without any help.
	w2 := &writer{rowsPerTx: 3}
	conn := pg.Connect()
	src := sourceTxs(t, pg)
	n := src[len(src)-1]
	for T := n + 1; T <= n+30; T++ {
		if err := w2.tx(context.Background(), conn, T); err != nil {
			t.Fatal(err)
		}
	}
	target := currentLSN(t, pg)
	testkit.Eventually(t, "caught up after the restart", func() bool { return h.src.Status().ConfirmedLSN >= target })
	testkit.Eventually(t, "ready", h.src.Ready)
	validateLog(t, pg, h.log, "pg1", 3, append(append([]int(nil), w.committed...), w2.committed...))
	if !strings.Contains(h.logs.String(), "reconnecting") {
		t.Errorf("the interruption was not logged")
	}
}

const crashChildEnv = "PGSOURCE_CRASH_CHILD_DIR"

// TestKill9DuringSustainedWrites SIGKILLs an engine process (this test
// binary re-executed as the child) several times while a writer commits
// continuously, restarts it each time, and then checks that every committed
// source transaction is in the log exactly once, in order, with the final
// rows equal to the source.
func TestKill9DuringSustainedWrites(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		runCrashChild(t, dir)
		return
	}
	t.Parallel()
	pg := pgtest.Start(t)
	pg.Exec(workloadDDL)
	dir := filepath.Join(t.TempDir(), "log")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Sustained but bounded (~hundreds of tx/s), so that the backlog a slow
	// (race-instrumented, shared) machine accumulates stays small.
	w := &writer{rowsPerTx: 3, pause: 2 * time.Millisecond}
	wctx, wcancel := context.WithCancel(context.Background())
	wdone := make(chan struct{})
	started := false
	defer func() {
		wcancel()
		if started {
			<-wdone
		}
	}()

	const kills = 4
	for i := 0; i < kills; i++ {
		child := startCrashChild(t, dir, pg.URI(), i)
		if i == 0 {
			// Write only once the slot exists: earlier commits are not
			// the connector's to ingest.
			testkit.Eventually(t, "slot created", func() bool { return slotConfirmed(t, pg) > 0 })
			// And once the rows that existed before it are read: a
			// snapshot chunk read during the writes holds rows of several
			// source transactions, which the validator would not know.
			testkit.Eventually(t, "existing rows read", func() bool {
				b, _ := os.ReadFile(child.out)
				return strings.Contains(string(b), "snapshot: existing rows read")
			})
			started = true
			go func() { w.run(wctx, pg.URI(), 1); close(wdone) }()
		}
		// Let the child ingest a little (the slot moves only after its log
		// commits), then kill it mid-stream.
		from := slotConfirmed(t, pg)
		testkit.Eventually(t, "child ingesting", func() bool { return slotConfirmed(t, pg) > from && w.count() > 0 })
		time.Sleep(time.Duration(100+150*i) * time.Millisecond)
		child.kill(t)
	}
	wcancel()
	<-wdone
	if w.err != nil {
		t.Fatalf("writer: %v", w.err)
	}
	// A last run catches up on everything, then is killed as well:
	// everything confirmed to Postgres must already be durable.
	target := currentLSN(t, pg)
	child := startCrashChild(t, dir, pg.URI(), kills)
	testkit.EventuallyWithin(t, 2*time.Minute, "final catch-up", func() bool { return slotConfirmed(t, pg) >= target })
	child.kill(t)

	l, err := pebblelog.Open(dir, pebblelog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	validateLog(t, pg, l, "pg1", 3, w.committed)
}

type crashChild struct {
	cmd  *exec.Cmd
	out  string
	done chan error
}

func startCrashChild(t *testing.T, dir, uri string, n int) *crashChild {
	t.Helper()
	out := filepath.Join(filepath.Dir(dir), fmt.Sprintf("child-%d.log", n))
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9DuringSustainedWrites$", "-test.v")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, "PGSOURCE_CRASH_CHILD_URI="+uri)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &crashChild{cmd: cmd, out: out, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-c.done
		if t.Failed() || os.Getenv("PGSOURCE_SHOW_CHILD") != "" {
			if b, err := os.ReadFile(out); err == nil {
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("child %d output (tail):\n%s", n, b)
			}
		}
	})
	return c
}

func (c *crashChild) kill(t *testing.T) {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err
		b, _ := os.ReadFile(c.out)
		t.Fatalf("child exited before it was killed (%v):\n%s", err, b)
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-c.done
	c.done <- err
}

// runCrashChild is the "engine" process: it ingests until it is killed.
func runCrashChild(t *testing.T, dir string) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h, err := startEngine(t, os.Getenv("PGSOURCE_CRASH_CHILD_URI"), dir, "pg1", logger)
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	select {
	case err := <-h.srcDone:
		t.Fatalf("child: source stopped: %v", err)
	case err := <-h.seqDone:
		t.Fatalf("child: sequencer stopped: %v", err)
	}
}
