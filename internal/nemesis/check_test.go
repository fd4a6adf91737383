package nemesis

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/engine/txlog/pebblelog"
	"github.com/electric-sql/electric-go/internal/testkit"
	"github.com/electric-sql/electric-go/internal/validate"
)

// acked is how many of the client's oplog rows (statements) the engine
// acknowledged.
func (w *clientWriter) acked() int {
	n, _ := strconv.Atoi(fmt.Sprint(w.c.Meta()["lastAckdRowId"]))
	return n
}

// unsent is how many local writes the client has not pushed yet.
func (w *clientWriter) unsent() int {
	r := w.c.Do(map[string]any{"op": "debug"})
	max := w.c.Query("SELECT coalesce(max(rowid), 0) AS m FROM _electric_oplog")
	m, _ := max[0]["m"].(float64)
	sent, _ := r["lastSentRowId"].(float64)
	return int(m - sent)
}

// pending is how many of the client's oplog rows wait for an ack.
func (w *clientWriter) pending() int {
	n, _ := strconv.Atoi(fmt.Sprint(w.c.Meta()["pending"]))
	return n
}

const (
	nemSQL      = "SELECT id, writer, seq FROM public.nem"
	countersSQL = "SELECT writer, n FROM public.counters"
	kvSQL       = "SELECT k, v FROM public.kv"
)

// replicas reads one table on every Postgres and every client.
func (e *env) replicas(clients []*clientWriter, pgSQL, clientSQL string, cols ...string) map[string][]string {
	out := map[string][]string{}
	for _, p := range e.pgs {
		out[p.name] = p.pg.Rows(e.t, pgSQL)
	}
	for _, c := range clients {
		out[c.l.writer] = clientRows(c.c, clientSQL, cols...)
	}
	return out
}

// markers commits one write on each Postgres once the writers stopped and
// returns their ledgers and the WAL position after each: the engine's slot
// must confirm past it (its position advances) and the write must reach
// every replica (every subscription applies).
func (e *env) markers() ([]*ledger, map[string]string) {
	e.t.Helper()
	var ls []*ledger
	lsn := map[string]string{}
	for _, p := range e.pgs {
		l := &ledger{writer: "mark_" + p.name, origin: p.name}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		conn, err := pgx.Connect(ctx, p.pg.URI())
		if err != nil {
			cancel()
			e.t.Fatalf("marker on %s: %v", p.name, err)
		}
		if err := writeNem(ctx, conn, l.writer, 1); err != nil {
			e.t.Fatalf("marker on %s: %v", p.name, err)
		}
		l.commit(nemID(l.writer, 1), 1)
		var at string
		if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&at); err != nil {
			e.t.Fatalf("marker on %s: %v", p.name, err)
		}
		conn.Close(ctx)
		cancel()
		lsn[p.name] = at
		ls = append(ls, l)
	}
	return ls, lsn
}

// wantRows is what every replica must hold: each committed write's nem row,
// and each writer's counter at its last committed seq.
func wantRows(ledgers []*ledger) (nem, counters []string) {
	for _, l := range ledgers {
		ids, last := l.snapshot()
		for _, id := range ids {
			seq, _ := strconv.Atoi(id[len(id)-7:])
			nem = append(nem, fmt.Sprintf("%s|%s|%d", id, l.writer, seq))
		}
		if len(ids) > 0 {
			counters = append(counters, fmt.Sprintf("%s|%d", l.writer, last))
		}
	}
	return nem, counters
}

// converge waits until every client's writes are acknowledged and every
// replica holds the rows the writers committed and the same kv rows. A run
// that does not converge within the bound goes on to the checks, which
// name what differs.
func (e *env) converge(clients []*clientWriter, ledgers []*ledger) {
	e.t.Helper()
	start := time.Now()
	e.reconnectLost(clients)
	for _, c := range clients {
		ok := testkit.Until(2*time.Minute, func() bool { time.Sleep(200 * time.Millisecond); return c.pending() == 0 })
		if !ok {
			e.t.Errorf("%s: %d writes still unacknowledged 2 minutes after the last fault", c.l.writer, c.pending())
		}
	}
	e.t.Logf("every client write acknowledged after %v", time.Since(start).Round(time.Millisecond))
	nem, counters := wantRows(ledgers)
	sort.Strings(nem)
	sort.Strings(counters)
	same := func(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }
	testkit.Until(3*time.Minute, func() bool {
		time.Sleep(500 * time.Millisecond)
		for _, rows := range e.replicas(clients, nemSQL, "SELECT id, writer, seq FROM nem", "id", "writer", "seq") {
			if !same(sorted(rows), nem) {
				return false
			}
		}
		for _, rows := range e.replicas(clients, countersSQL, "SELECT writer, n FROM counters", "writer", "n") {
			if !same(sorted(rows), counters) {
				return false
			}
		}
		kv := e.replicas(clients, kvSQL, "SELECT k, v FROM kv", "k", "v")
		first := sorted(kv[e.pgs[0].name])
		for _, rows := range kv {
			if !same(sorted(rows), first) {
				return false
			}
		}
		return true
	})
	e.t.Logf("replicas converged after %v", time.Since(start).Round(time.Millisecond))
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}

// check runs every validator over the converged run and stops the engine to
// read its log; it fills the figures it measures.
func (e *env) check(clients []*clientWriter, ledgers []*ledger, markLSN map[string]string, fig *Figures) *validate.Anomalies {
	e.t.Helper()
	a := &validate.Anomalies{}
	nem, counters := wantRows(ledgers)

	// Every replica holds exactly what was committed, once.
	for what, r := range map[string]struct {
		want []string
		got  map[string][]string
	}{
		"public.nem":      {nem, e.replicas(clients, nemSQL, "SELECT id, writer, seq FROM nem", "id", "writer", "seq")},
		"public.counters": {counters, e.replicas(clients, countersSQL, "SELECT writer, n FROM counters", "writer", "n")},
	} {
		validate.Converged(a, what, r.want, r.got)
		for _, rows := range r.got {
			fig.RowsCompared += len(rows)
		}
	}
	kv := e.replicas(clients, kvSQL, "SELECT k, v FROM kv", "k", "v")
	validate.Identical(a, "public.kv", kv)
	for _, rows := range kv {
		fig.RowsCompared += len(rows)
	}

	// No subscription is stuck: each apply worker runs, each subscriber
	// reports the log head as applied, each slot confirmed past the marker.
	var lg status.Log
	if err := e.getJSON("/api/log", &lg); err != nil {
		a.Addf("reading the log head: %v", err)
	}
	headLSN := fmt.Sprintf("%X/%X", txlog.LSN(lg.Head)>>32, uint32(txlog.LSN(lg.Head)))
	for _, p := range e.pgs {
		var last []string
		ok := testkit.Until(time.Minute, func() bool {
			last = p.pg.Rows(e.t, fmt.Sprintf(`SELECT s.pid IS NOT NULL, coalesce(s.latest_end_lsn >= '%s'::pg_lsn, false),
  (SELECT confirmed_flush_lsn >= '%s'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'all_changes')
FROM pg_stat_subscription s WHERE s.subname = '%s'`, headLSN, markLSN[p.name], p.name))
			return len(last) == 1 && last[0] == "true|true|true"
		})
		if !ok {
			a.Addf("%s is stuck (apply worker running | subscriber reported log head %d (%s) | engine's slot confirmed the marker at %s): %q",
				p.name, lg.Head, headLSN, markLSN[p.name], last)
		}
	}

	// Nothing was refused: every write of the run is valid.
	var rej struct {
		Events []status.AuditEvent `json:"events"`
	}
	if err := e.getJSON("/api/rejected?limit=100", &rej); err != nil {
		a.Addf("reading the rejections: %v", err)
	}
	for _, ev := range rej.Events {
		a.Addf("rejected (no write of the run is invalid): %s %s %s on %s: %s", ev.Kind, ev.Table, ev.Key, ev.Connector, ev.Error)
	}
	for _, line := range strings.Split(e.log.String(), "\n") {
		if strings.Contains(line, "panic:") || strings.Contains(line, "fatal error:") {
			a.Addf("engine log: %s", line)
		}
		if strings.Contains(line, "no space left on device") {
			fig.DiskFullLogs++
		}
	}

	// The log: every committed write merged exactly once, under its origin.
	e.stop()
	e.checkLog(a, ledgers, fig)
	// The same check with a write that never happened must find it
	// missing: the run's log check is not vacuous.
	var probe validate.Anomalies
	ghost := &ledger{writer: "ghost", origin: "nowhere"}
	ghost.commit(nemID("ghost", 1), 1)
	e.checkLog(&probe, append(slices.Clone(ledgers), ghost), &Figures{})
	if !slices.ContainsFunc(probe.List(), func(s string) bool { return strings.Contains(s, "ghost-0000001") }) {
		a.Addf("the log check did not notice a committed write missing from the log: %q", probe.List())
	}
	return a
}

// checkLog reads the stopped engine's log and checks that each committed nem
// row was merged by exactly one entry, of its writer's origin.
func (e *env) checkLog(a *validate.Anomalies, ledgers []*ledger, fig *Figures) {
	e.t.Helper()
	var committed []string
	origin := map[string]string{}
	for _, l := range ledgers {
		ids, _ := l.snapshot()
		committed = append(committed, ids...)
		for _, id := range ids {
			origin[id] = l.origin
		}
	}
	lg, err := pebblelog.Open(e.vars["OFFSET_STORAGE_FILE"], pebblelog.Options{})
	if err != nil {
		a.Addf("opening the engine's log: %v", err)
		return
	}
	defer lg.Close()
	once := validate.NewOnce(a, "nem row", "the log", committed)
	fig.LogEntries = lg.Head()
	for off := uint64(1); off <= lg.Head(); off++ {
		en, err := lg.Entry(off)
		if err != nil {
			a.Addf("reading log entry %d: %v", off, err)
			continue
		}
		for _, ch := range en.Changes {
			if ch.Table != "public.nem" || ch.Deleted {
				continue
			}
			id := ch.Row["id"].Text
			at := fmt.Sprintf("entry %d (%s)", off, en.Origin)
			once.Note(at, id)
			if o, ok := origin[id]; ok && o != en.Origin {
				a.Addf("%s merged nem row %s, written by %s", at, id, o)
			}
		}
	}
	once.Finish()
}
