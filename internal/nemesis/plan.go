// Package nemesis is the fault-injection suite of issue 12: the real
// electric binary between two Postgres and two published 0.4.3 Satellite
// clients, all writing, while the engine is SIGKILLed and restarted on the
// same state, a Postgres crash-restarts (immediate shutdown), the network
// between the engine and a Postgres or a client is cut (internal/faultproxy)
// and the engine's state disk fills up; then the shared validators
// (internal/validate) check that nothing committed or acknowledged was lost
// or merged twice, that every replica holds the same rows and that no
// subscription is stuck. This file holds what the test is parameterised
// by: the fault schedule, drawn from a seed so that a failing run can be
// replayed, and the figures a run prints. The run itself is
// nemesis_test.go. It is test support only; production code must not
// import it.
package nemesis

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Kind is a kind of fault.
type Kind string

// The faults.
const (
	KillEngine    Kind = "kill-engine"    // SIGKILL the engine, restart it on the same state
	CrashPostgres Kind = "crash-postgres" // immediate shutdown of one Postgres, then start
	CutPostgres   Kind = "cut-postgres"   // the network between the engine and one Postgres, both ways
	CutClient     Kind = "cut-client"     // the network between the engine and one client
	FullDisk      Kind = "full-disk"      // the filesystem of the engine's state is full
)

// Kinds is every fault kind, kills first.
var Kinds = []Kind{KillEngine, CrashPostgres, CutPostgres, CutClient, FullDisk}

// Fault is one step of a schedule.
type Fault struct {
	Kind Kind
	// Target is the Postgres (connector name) or client the fault hits;
	// empty for the engine's own faults.
	Target string
	// Stall, for a cut: bytes are held instead of connections reset.
	Stall bool
}

func (f Fault) String() string {
	s := string(f.Kind)
	if f.Target != "" {
		s += " " + f.Target
	}
	if f.Kind == CutPostgres || f.Kind == CutClient {
		if f.Stall {
			s += " (stall)"
		} else {
			s += " (reset)"
		}
	}
	return s
}

// Config parameterises a run.
type Config struct {
	Rounds int           // faults injected
	Seed   uint64        // draws the schedule and the writers' keys
	Step   time.Duration // writing between two faults
	Hold   time.Duration // how long a fault lasts before it is healed
}

// Defaults: the short run of `make test`, one fault of each kind.
const (
	DefaultRounds = 5
	DefaultSeed   = 1
	DefaultStep   = 2 * time.Second
	DefaultHold   = 2 * time.Second
)

// shortRun is the number of rounds below which a plan has a single engine
// kill (an engine kill costs the most: both clients reconnect).
const shortRun = 10

// ConfigFromEnv reads NEMESIS_ROUNDS, NEMESIS_SEED, NEMESIS_STEP and
// NEMESIS_HOLD (Go durations), each defaulted when unset; a bad value is an
// error naming it.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{Rounds: DefaultRounds, Seed: DefaultSeed, Step: DefaultStep, Hold: DefaultHold}
	if v := getenv("NEMESIS_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return c, fmt.Errorf("NEMESIS_ROUNDS=%q: want a number of faults from 1 to 10000", v)
		}
		c.Rounds = n
	}
	if v := getenv("NEMESIS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return c, fmt.Errorf("NEMESIS_SEED=%q: want an unsigned integer", v)
		}
		c.Seed = n
	}
	for _, d := range []struct {
		name string
		to   *time.Duration
	}{{"NEMESIS_STEP", &c.Step}, {"NEMESIS_HOLD", &c.Hold}} {
		if v := getenv(d.name); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x < 100*time.Millisecond || x > time.Hour {
				return c, fmt.Errorf("%s=%q: want a duration from 100ms to 1h", d.name, v)
			}
			*d.to = x
		}
	}
	return c, nil
}

// Plan draws the schedule of c: every even round kills the engine, the odd
// rounds go through the other kinds in an order drawn from the seed (so a
// run of 2×4 rounds has every kind), each at a target drawn from postgres
// or clients. A run shorter than shortRun kills the engine once, first,
// and then goes through the other kinds, so five rounds hit every kind.
func Plan(c Config, postgres, clients []string) []Fault {
	rnd := rand.New(rand.NewPCG(c.Seed, 0x6e656d65736973))
	others := []Kind{CrashPostgres, CutPostgres, CutClient, FullDisk}
	var order []Kind
	plan := make([]Fault, 0, c.Rounds)
	for i := 0; i < c.Rounds; i++ {
		if (c.Rounds >= shortRun && i%2 == 0) || (c.Rounds < shortRun && i == 0) {
			plan = append(plan, Fault{Kind: KillEngine})
			continue
		}
		if len(order) == 0 {
			order = append([]Kind(nil), others...)
			rnd.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		}
		f := Fault{Kind: order[0]}
		order = order[1:]
		switch f.Kind {
		case CrashPostgres, CutPostgres:
			f.Target = postgres[rnd.IntN(len(postgres))]
		case CutClient:
			f.Target = clients[rnd.IntN(len(clients))]
		}
		f.Stall = (f.Kind == CutPostgres || f.Kind == CutClient) && rnd.IntN(2) == 0
		plan = append(plan, f)
	}
	return plan
}

// WriterFigures is what one writer did.
type WriterFigures struct {
	Client  bool
	Written int // writes it committed locally (Postgres: COMMIT succeeded or was found committed)
	Unknown int // Postgres: COMMITs cut off by a fault, resolved by reading the row back
	Acked   int // clients: oplog rows (statements) the engine acknowledged, at the end
}

// Figures is what a run prints at its end.
type Figures struct {
	Faults       map[Kind]int
	Writers      map[string]*WriterFigures
	RowsCompared int
	LogEntries   uint64
	EngineExits  []string // the engine stopped by itself (not killed): why
	DiskFullLogs int      // engine log lines saying the disk was full
	// FullDiskRuns is what the running engine did while its disk was
	// full; FullDiskStarts, what each engine start on a full disk did.
	FullDiskRuns, FullDiskStarts []string
	Converge                     time.Duration // from the end of the last fault to every replica identical
	// ConvergeAfterWrites is from the moment every writer stopped.
	ConvergeAfterWrites time.Duration
}

// NewFigures is an empty set of figures.
func NewFigures() *Figures {
	return &Figures{Faults: map[Kind]int{}, Writers: map[string]*WriterFigures{}}
}

// Writer returns the figures of a writer, created on first use.
func (f *Figures) Writer(name string) *WriterFigures {
	w := f.Writers[name]
	if w == nil {
		w = &WriterFigures{}
		f.Writers[name] = w
	}
	return w
}

func (f *Figures) String() string {
	var b strings.Builder
	b.WriteString("faults injected:")
	total := 0
	for _, k := range Kinds {
		fmt.Fprintf(&b, " %s=%d", k, f.Faults[k])
		total += f.Faults[k]
	}
	fmt.Fprintf(&b, " (total %d)\n", total)
	names := make([]string, 0, len(f.Writers))
	for n := range f.Writers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w := f.Writers[n]
		if w.Client {
			fmt.Fprintf(&b, "writer %-16s (client)   written %6d  oplog rows acked %6d\n", n, w.Written, w.Acked)
		} else {
			fmt.Fprintf(&b, "writer %-16s (postgres) written %6d  of which outcome unknown at COMMIT %d\n", n, w.Written, w.Unknown)
		}
	}
	fmt.Fprintf(&b, "rows compared: %d; log entries: %d; engine log lines on the full disk: %d; engine exits by itself: %d\n",
		f.RowsCompared, f.LogEntries, f.DiskFullLogs, len(f.EngineExits))
	for _, e := range f.EngineExits {
		fmt.Fprintf(&b, "  engine exit: %s\n", e)
	}
	for _, s := range f.FullDiskRuns {
		fmt.Fprintf(&b, "  engine running on a full disk: %s\n", s)
	}
	for _, s := range f.FullDiskStarts {
		fmt.Fprintf(&b, "  engine start on a full disk: %s\n", s)
	}
	fmt.Fprintf(&b, "time to converge after the last fault: %v (after the writers stopped: %v)\n",
		f.Converge.Round(time.Millisecond), f.ConvergeAfterWrites.Round(time.Millisecond))
	return b.String()
}
