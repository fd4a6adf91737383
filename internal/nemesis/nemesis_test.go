package nemesis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/internal/faultproxy"
	"github.com/electric-sql/electric-go/internal/satinterop"
	"github.com/electric-sql/electric-go/internal/testkit"
)

// TestNemesis is the fault-injection run (see the package comment):
// NEMESIS_ROUNDS faults (default DefaultRounds; `make nemesis` runs 40),
// drawn from NEMESIS_SEED, NEMESIS_STEP of writing between two faults and
// each fault held NEMESIS_HOLD. The figures are printed at the end; a
// failing run prints its seed, which replays the same schedule.
func TestNemesis(t *testing.T) {
	cfg, err := ConfigFromEnv(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	satinterop.Dir(t)
	t.Logf("nemesis: seed %d, %d faults, %v of writes between faults, each held %v (replay: NEMESIS_SEED=%d NEMESIS_ROUNDS=%d)",
		cfg.Seed, cfg.Rounds, cfg.Step, cfg.Hold, cfg.Seed, cfg.Rounds)
	e := newEnv(t)
	e.start()
	fig := NewFigures()

	dir := t.TempDir()
	var clients []*clientWriter
	for i, name := range clientNames {
		c := satinterop.Start(t, name, filepath.Join(dir, name+".db"))
		id := c.Open(e.ws[name].Port(), "user_"+name, clientTables...)
		clients = append(clients, &clientWriter{c: c, l: &ledger{writer: name, origin: "satellite:" + id},
			rnd: rand.New(rand.NewPCG(cfg.Seed, uint64(i)))})
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(e.pgs))
	var pgLedgers []*ledger
	for i, p := range e.pgs {
		l := &ledger{writer: p.name, origin: p.name}
		pgLedgers = append(pgLedgers, l)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := pgWriter(ctx, p.pg.URI(), l, cfg.Seed+uint64(i)); err != nil && ctx.Err() == nil {
				errs <- err
			}
		}()
	}

	// writeFor writes with every client but those in offline (which the
	// fault disconnects: see inject) for d.
	writeFor := func(d time.Duration, offline ...string) {
		for end := time.Now().Add(d); time.Now().Before(end); {
			for _, c := range clients {
				if !slices.Contains(offline, c.l.writer) {
					c.step()
				}
			}
			// A 0.4.3 client pushes one transaction per snapshot, at most
			// every 500 ms, and applies what it receives one transaction
			// at a time: a faster pace builds a backlog it drains at one
			// transaction per 2 s poll, and a client busy applying misses
			// pings.
			time.Sleep(600 * time.Millisecond)
		}
	}
	plan := Plan(cfg, e.pgNames(), clientNames)
	var lastHeal time.Time
	for i, f := range plan {
		writeFor(cfg.Step)
		start := time.Now()
		e.inject(f, cfg.Hold, clients, func(offline ...string) { writeFor(cfg.Hold, offline...) })
		fig.Faults[f.Kind]++
		lastHeal = time.Now()
		if x := e.exitedByItself(); x != "" {
			fig.EngineExits = append(fig.EngineExits, fmt.Sprintf("during fault %d (%v): %s; last error: %s", i+1, f, x, e.lastError()))
			e.start()
		}
		e.waitReady(90 * time.Second)
		e.reconnectLost(clients)
		t.Logf("fault %d/%d: %v, recovered in %v", i+1, len(plan), f, time.Since(start).Round(time.Millisecond))
	}
	writeFor(cfg.Step)
	cancel()
	wg.Wait()
	writesEnd := time.Now()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	marks, markLSN := e.markers()
	var all []*ledger
	all = append(all, pgLedgers...)
	all = append(all, marks...)
	for _, c := range clients {
		all = append(all, c.l)
	}
	e.converge(clients, all)
	fig.Converge = time.Since(lastHeal)
	fig.ConvergeAfterWrites = time.Since(writesEnd)
	fig.FullDiskStarts = e.fullDiskStarts
	fig.FullDiskRuns = e.fullDiskRuns
	for _, l := range all {
		w := fig.Writer(l.writer)
		w.Written, w.Unknown = l.written, l.unknown
	}
	for _, c := range clients {
		w := fig.Writer(c.l.writer)
		w.Client, w.Acked = true, c.acked()
	}
	a := e.check(clients, all, markLSN, fig)
	t.Logf("nemesis figures (seed %d):\n%s", cfg.Seed, fig)
	if a.Len() > 0 {
		t.Errorf("%d anomalies (replay: NEMESIS_SEED=%d NEMESIS_ROUNDS=%d):", a.Len(), cfg.Seed, cfg.Rounds)
		a.Report(t)
	}
}

func (e *env) pgNames() []string {
	var n []string
	for _, p := range e.pgs {
		n = append(n, p.name)
	}
	return n
}

func (e *env) pg(name string) *postgres {
	for _, p := range e.pgs {
		if p.name == name {
			return p
		}
	}
	e.t.Fatalf("no Postgres %s", name)
	return nil
}

// inject runs one fault, holding it while write runs, and heals it.
//
// A client the fault disconnects stops writing first and gets its writes
// pushed: 0.4.3 crashes when a push of local writes fires while it is
// offline or reconnecting (client notes, pitfall V), which no server
// behaviour avoids. Its writes before the fault are in flight or
// unacknowledged all the same, so the fault still hits them.
func (e *env) inject(f Fault, hold time.Duration, clients []*clientWriter, write func(offline ...string)) {
	e.t.Helper()
	mode := faultproxy.Reset
	if f.Stall {
		mode = faultproxy.Stall
	}
	switch f.Kind {
	case KillEngine:
		e.drain(clients)
		e.kill()
		write(clientNames...) // Postgres writes pile up
		e.start()
	case CrashPostgres:
		p := e.pg(f.Target)
		done := make(chan struct{})
		go func() { defer close(done); e.crashPostgres(p, hold) }()
		write()
		<-done
	case CutPostgres:
		p := e.pg(f.Target)
		p.ingest.Cut("", mode)
		e.subs.Cut(p.name, mode)
		write()
		p.ingest.Heal("")
		e.subs.Heal(p.name)
	case CutClient:
		var offline []string
		if mode == faultproxy.Reset {
			for _, c := range clients {
				if c.l.writer == f.Target {
					e.drain([]*clientWriter{c})
				}
			}
			offline = append(offline, f.Target)
		}
		e.ws[f.Target].Cut("", mode)
		write(offline...)
		e.ws[f.Target].Heal("")
	case FullDisk:
		// Running on a full disk, then a restart on it: Pebble preallocates
		// its WAL, so a running engine may not need a new block within the
		// hold, but a start always does.
		release := e.fillStateFS()
		write()
		if x := e.exitedByItself(); x != "" {
			e.fullDiskRuns = append(e.fullDiskRuns, "exited ("+x+"): "+e.lastError())
		} else {
			e.fullDiskRuns = append(e.fullDiskRuns, "kept running")
		}
		e.drain(clients)
		e.kill()
		e.startOnFullDisk()
		release()
		if e.exitedByItself() != "" || !e.running() {
			e.start()
		}
	}
}

// drain waits (a few seconds at most) until the clients pushed every local
// write: see inject.
func (e *env) drain(clients []*clientWriter) {
	for _, c := range clients {
		testkit.Until(5*time.Second, func() bool {
			time.Sleep(50 * time.Millisecond)
			return c.unsent() == 0
		})
	}
}

// reconnectLost reconnects the clients the engine has no session for: the
// 0.4.3 client does not notice a connection the server side lost.
func (e *env) reconnectLost(clients []*clientWriter) {
	e.t.Helper()
	// A session closed by the fault may take a moment to go.
	time.Sleep(300 * time.Millisecond)
	var r status.SessionsResponse
	if err := e.getJSON("/api/sessions", &r); err != nil {
		e.t.Fatalf("listing sessions: %v", err)
	}
	live := map[string]bool{}
	for _, s := range r.Sessions {
		if s.State == "replicating" || s.State == "active" {
			live["satellite:"+s.ClientID] = true
		}
	}
	for _, c := range clients {
		if !live[c.l.origin] {
			c.c.Reconnect()
		}
	}
}

// lastError is the last ERROR (or panic) line the running or last engine
// process logged.
func (e *env) lastError() string {
	e.mu.Lock()
	mark := e.logMark
	e.mu.Unlock()
	lines := strings.Split(e.log.String()[mark:], "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		if strings.Contains(l, "level=ERROR") || strings.Contains(l, "panic:") || strings.HasPrefix(l, "electric: ") {
			return lines[i]
		}
	}
	return "(none)"
}
