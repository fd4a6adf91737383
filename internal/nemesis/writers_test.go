package nemesis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/internal/satinterop"
)

// kvKeys is the key space every writer overwrites.
const kvKeys = 20

// ledger is what one writer committed: its nem ids in order, and the seq
// its counter row must end with.
type ledger struct {
	mu      sync.Mutex
	writer  string
	origin  string   // the log origin its writes must carry
	ids     []string // committed nem ids
	last    int      // seq of the last committed write (its counter's value)
	written int
	unknown int
}

func (l *ledger) commit(id string, seq int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ids = append(l.ids, id)
	l.last = seq
	l.written++
}

func (l *ledger) snapshot() (ids []string, last int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ids...), l.last
}

func nemID(writer string, seq int) string { return fmt.Sprintf("%s-%07d", writer, seq) }

// pgWriter commits, directly on its Postgres (never through a proxy: it is
// an application of that Postgres), one transaction per write: a new nem row
// and its counter set to the write's seq; and between them single-row kv
// upserts. A write whose COMMIT is cut off by a crash has an unknown
// outcome: once Postgres is back, the row's presence decides (nobody else
// ever writes that id). Each transaction takes at most one row lock that
// the subscription's apply worker may hold too, so the two never deadlock.
func pgWriter(ctx context.Context, uri string, l *ledger, seed uint64) error {
	rnd := rand.New(rand.NewPCG(seed, 0x70677772))
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	connect := func() error {
		for ctx.Err() == nil {
			c, err := pgx.Connect(ctx, uri)
			if err == nil {
				conn = c
				return nil
			}
			time.Sleep(100 * time.Millisecond)
		}
		return ctx.Err()
	}
	if err := connect(); err != nil {
		return err
	}
	for seq := 1; ctx.Err() == nil; seq++ {
		id := nemID(l.writer, seq)
		// Not ctx: a write cut off by the end of the run would have an
		// unknown outcome for no reason.
		wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := writeNem(wctx, conn, l.writer, seq)
		cancel()
		if err == nil {
			l.commit(id, seq)
		} else {
			conn.Close(context.Background())
			conn = nil
			if err := connect(); err != nil {
				return err
			}
			var found bool
			qctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			qerr := conn.QueryRow(qctx, "SELECT EXISTS (SELECT 1 FROM public.nem WHERE id = $1)", id).Scan(&found)
			cancel()
			if qerr != nil {
				return fmt.Errorf("%s: resolving write %s after %v: %w", l.writer, id, err, qerr)
			}
			l.mu.Lock()
			l.unknown++
			l.mu.Unlock()
			if found {
				l.commit(id, seq)
			}
			continue
		}
		if rnd.IntN(3) == 0 {
			k := rnd.IntN(kvKeys)
			kctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err := conn.Exec(kctx, "INSERT INTO public.kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v", k, id)
			cancel()
			if err != nil {
				// The kv table is only compared across replicas: its
				// outcome does not matter, the connection's does.
				conn.Close(context.Background())
				conn = nil
				if err := connect(); err != nil {
					return err
				}
			}
		}
		time.Sleep(time.Duration(100+rnd.IntN(100)) * time.Millisecond)
	}
	return nil
}

// writeNem commits one write of writer: its nem row and its counter.
func writeNem(ctx context.Context, conn *pgx.Conn, writer string, seq int) error {
	_, err := conn.Exec(ctx, fmt.Sprintf(`BEGIN;
INSERT INTO public.nem (id, writer, seq) VALUES ('%s', '%s', %d);
INSERT INTO public.counters (writer, n) VALUES ('%s', %d) ON CONFLICT (writer) DO UPDATE SET n = EXCLUDED.n;
COMMIT`, nemID(writer, seq), writer, seq, writer, seq))
	return err
}

// clientWriter is a 0.4.3 client writing through its electrified SQLite:
// the writes commit locally at once and reach the engine when the client
// is connected. The driver is not safe for concurrent use: the test
// goroutine calls step.
type clientWriter struct {
	c   *satinterop.Client
	l   *ledger
	seq int
	rnd *rand.Rand
}

// step writes one nem row and its counter, and now and then a kv row.
func (w *clientWriter) step() {
	w.seq++
	id := nemID(w.l.writer, w.seq)
	w.c.Exec("INSERT INTO nem (id, writer, seq) VALUES (?, ?, ?)", id, w.l.writer, w.seq)
	w.c.Exec("INSERT INTO counters (writer, n) VALUES (?, ?) ON CONFLICT (writer) DO UPDATE SET n = excluded.n", w.l.writer, w.seq)
	w.l.commit(id, w.seq)
	if w.rnd.IntN(3) == 0 {
		w.c.Exec("INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", w.rnd.IntN(kvKeys), id)
	}
}

var clientTables = []satinterop.Table{
	{Name: "nem", Columns: []satinterop.Column{{Name: "id", Type: "TEXT", PK: true},
		{Name: "writer", Type: "TEXT NOT NULL"}, {Name: "seq", Type: "INTEGER NOT NULL"}}},
	{Name: "counters", Columns: []satinterop.Column{{Name: "writer", Type: "TEXT", PK: true}, {Name: "n", Type: "INTEGER NOT NULL"}}},
	{Name: "kv", Columns: []satinterop.Column{{Name: "k", Type: "INTEGER", PK: true}, {Name: "v", Type: "TEXT"}}},
}

// clientRows renders a client's table as Postgres rows render ("a|b").
func clientRows(c *satinterop.Client, sql string, cols ...string) []string {
	var out []string
	for _, r := range c.Query(sql) {
		s := ""
		for i, col := range cols {
			if i > 0 {
				s += "|"
			}
			switch v := r[col].(type) {
			case nil:
				s += "<NULL>"
			case float64: // JSON numbers: integers as Postgres prints them
				s += strconv.FormatFloat(v, 'f', -1, 64)
			default:
				s += fmt.Sprint(v)
			}
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
