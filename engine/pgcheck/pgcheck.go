// Package pgcheck checks client values against the Postgres columns that
// will hold them, before they are merged: each value goes through the
// column type's own input function (with the column's type modifier), on
// the Postgres of every connector that holds the table, which is what a
// subscriber's apply worker does with it; NOT NULL is checked against that
// connector's catalog. It owns one small connection pool per connector and
// only runs SELECTs; it never writes and knows nothing of Satellites.
//
// Postgres 15 has no pg_input_is_valid, so a check is a query that calls
// the input functions (int4in, varcharin, domain_in, …) on the values and
// fails on the first bad one; a failing query is repeated per column and
// then on halves of that column's values to name the bad value.
package pgcheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrUnavailable: no Postgres holding a table of the values could check
// them (every such connector is down, or the check timed out). The values
// must not be merged unchecked.
var ErrUnavailable = errors.New("no Postgres holding the table could check the values")

// Defaults.
const (
	DefaultTimeout     = 3 * time.Second
	DefaultMaxInFlight = 8
	// maxGroupsPerQuery bounds the select list of one check query (Postgres
	// allows 1664 entries).
	maxGroupsPerQuery = 400
)

// Target is one connector's Postgres.
type Target struct {
	Name string
	URI  string
	// Tables are the tables this Postgres holds, with its own column types
	// and nullability; nil when not known yet (the connector holds none).
	Tables func() []schema.Table
}

// Options configures a Checker.
type Options struct {
	Targets []Target
	// Timeout bounds one Check (default 3 s): connecting, waiting for a
	// slot and every query.
	Timeout time.Duration
	// MaxInFlight bounds the checks running at once on one Postgres
	// (default 8); more wait for a slot within Timeout.
	MaxInFlight int
	Logger      *slog.Logger
}

// Cell is one value to check: Table is schema-qualified ("public.items").
type Cell struct {
	Table, Column string
	Value         merge.Value
}

// Invalid is a value a Postgres cannot hold.
type Invalid struct {
	Cell      int    // index in the cells given to Check
	Connector string // the Postgres that refused it
	Code      string // SQLSTATE
	Err       string // Postgres' message
}

// Checker checks values on the connectors' Postgres.
type Checker struct {
	opts    Options
	targets []*target
}

type target struct {
	Target
	log     *slog.Logger
	timeout time.Duration
	maxConn int

	mu    sync.Mutex
	pool  *pgxpool.Pool
	funcs map[uint32]inputFunc // by type OID
}

// inputFunc is a type's input function as the apply worker calls it.
type inputFunc struct {
	name    string // quoted, schema-qualified
	nargs   int
	ioParam uint32
}

// New returns a Checker; connections are opened on first use.
func New(opts Options) *Checker {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Checker{opts: opts}
	for _, t := range opts.Targets {
		c.targets = append(c.targets, &target{Target: t, log: opts.Logger.With("connector", t.Name),
			timeout: opts.Timeout, maxConn: opts.MaxInFlight, funcs: map[uint32]inputFunc{}})
	}
	return c
}

// Close closes the connections.
func (c *Checker) Close() {
	for _, t := range c.targets {
		t.mu.Lock()
		if t.pool != nil {
			t.pool.Close()
			t.pool = nil
		}
		t.mu.Unlock()
	}
}

// Check checks cells on every Postgres that holds their tables, in
// parallel, and returns the values one of them cannot hold. Every table
// must be checked by at least one Postgres, else the error wraps
// ErrUnavailable (so does a table no connector's schema holds: nothing
// could vouch for its values).
func (c *Checker) Check(ctx context.Context, cells []Cell) ([]Invalid, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	type result struct {
		bad     []Invalid
		checked map[string]bool
		err     error
	}
	results := make([]result, len(c.targets))
	held := map[string]bool{}
	var wg sync.WaitGroup
	for i, t := range c.targets {
		tables := t.held(cells)
		if len(tables) == 0 {
			continue
		}
		for name := range tables {
			held[name] = true
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			bad, err := t.check(ctx, cells, tables)
			results[i] = result{bad: bad, err: err}
			if err == nil {
				results[i].checked = map[string]bool{}
				for name := range tables {
					results[i].checked[name] = true
				}
			}
		}()
	}
	wg.Wait()
	for i := range cells {
		if !held[cells[i].Table] {
			return nil, fmt.Errorf("checking values of %s: %w: no connector's schema has the table", cells[i].Table, ErrUnavailable)
		}
	}
	var bad []Invalid
	checked := map[string]bool{}
	var errs []error
	for i, r := range results {
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.targets[i].Name, r.err))
			continue
		}
		bad = append(bad, r.bad...)
		for name := range r.checked {
			checked[name] = true
		}
	}
	for name := range held {
		if !checked[name] {
			return nil, fmt.Errorf("checking values of %s: %w: %w", name, ErrUnavailable, errors.Join(errs...))
		}
	}
	return bad, nil
}

// held returns the tables of cells this Postgres holds.
func (t *target) held(cells []Cell) map[string]*schema.Table {
	if t.Tables == nil {
		return nil
	}
	all := t.Tables()
	byName := make(map[string]*schema.Table, len(all))
	for j := range all {
		byName[all[j].QualifiedName()] = &all[j]
	}
	out := map[string]*schema.Table{}
	for i := range cells {
		if tab := byName[cells[i].Table]; tab != nil {
			out[cells[i].Table] = tab
		}
	}
	return out
}

// group is the values of one column that need its input function.
type group struct {
	col   schema.Column
	cells []int // indexes into the cells
	vals  []string
}

// check checks the cells of tables on this Postgres.
func (t *target) check(ctx context.Context, cells []Cell, tables map[string]*schema.Table) ([]Invalid, error) {
	var bad []Invalid
	groups := map[string]*group{}
	var order []string
	for i, cell := range cells {
		tab := tables[cell.Table]
		if tab == nil {
			continue
		}
		col, ok := tab.Column(cell.Column)
		if !ok {
			continue // a column this Postgres lacks is not sent to it
		}
		if inv, done := t.precheck(i, cell, col, tab); done {
			if inv != nil {
				bad = append(bad, *inv)
			}
			continue
		}
		k := cell.Table + "\x00" + cell.Column
		g := groups[k]
		if g == nil {
			g = &group{col: col}
			groups[k] = g
			order = append(order, k)
		}
		g.cells = append(g.cells, i)
		g.vals = append(g.vals, cell.Value.Text)
	}
	if len(order) == 0 {
		return bad, nil
	}
	pool, err := t.connect(ctx)
	if err != nil {
		return nil, err
	}
	list := make([]*group, len(order))
	for i, k := range order {
		list[i] = groups[k]
	}
	if err := t.loadFuncs(ctx, pool, list); err != nil {
		return nil, err
	}
	for len(list) > 0 {
		n := min(len(list), maxGroupsPerQuery)
		more, err := t.checkGroups(ctx, pool, list[:n])
		if err != nil {
			return nil, err
		}
		bad = append(bad, more...)
		list = list[n:]
	}
	return bad, nil
}

// precheck decides a value without Postgres when that is exact: NULL
// against NOT NULL (the catalog), a NUL byte (no Postgres type's text form
// can hold one: the server refuses it in any encoding), and text or
// unbounded varchar, whose input function takes any valid UTF-8 (the
// engine's connections are UTF-8). done is false when Postgres must parse it.
func (t *target) precheck(i int, cell Cell, col schema.Column, tab *schema.Table) (inv *Invalid, done bool) {
	if cell.Value.Null {
		if col.NotNull {
			return &Invalid{Cell: i, Connector: t.Name, Code: "23502",
				Err: fmt.Sprintf("null value in column %q of relation %q violates not-null constraint", col.Name, tab.Name)}, true
		}
		return nil, true
	}
	if strings.IndexByte(cell.Value.Text, 0) >= 0 {
		return &Invalid{Cell: i, Connector: t.Name, Code: "22021", Err: `invalid byte sequence for encoding "UTF8": 0x00`}, true
	}
	const textOID, varcharOID = 25, 1043
	if (col.TypeOID == textOID || (col.TypeOID == varcharOID && col.TypeMod < 0)) && utf8.ValidString(cell.Value.Text) {
		return nil, true
	}
	return nil, false
}

func (t *target) connect(ctx context.Context) (*pgxpool.Pool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pool != nil {
		return t.pool, nil
	}
	cfg, err := pgxpool.ParseConfig(t.URI)
	if err != nil {
		return nil, fmt.Errorf("parsing the connector URI: %w", err)
	}
	cfg.MaxConns = int32(t.maxConn)
	cfg.MinConns = 1 // kept: a check costs one round trip, not a connection
	cfg.ConnConfig.RuntimeParams["application_name"] = "electric-value-check"
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(t.timeout.Milliseconds())
	cfg.ConnConfig.RuntimeParams["client_encoding"] = "UTF8"
	cfg.ConnConfig.ConnectTimeout = t.timeout
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	t.pool = pool
	return pool, nil
}

// loadFuncs looks up the input functions of the groups' types not cached.
func (t *target) loadFuncs(ctx context.Context, pool *pgxpool.Pool, groups []*group) error {
	t.mu.Lock()
	var missing []uint32
	for _, g := range groups {
		if _, ok := t.funcs[g.col.TypeOID]; !ok {
			missing = append(missing, g.col.TypeOID)
		}
	}
	t.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	// typioparam as the server computes it (getTypeIOParam): the element
	// type when there is one, else the type itself.
	rows, err := pool.Query(ctx, `
SELECT t.oid, n.nspname, p.proname, p.pronargs, CASE WHEN t.typelem <> 0 THEN t.typelem ELSE t.oid END
FROM pg_type t JOIN pg_proc p ON p.oid = t.typinput JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE t.oid = ANY($1)`, missing)
	if err != nil {
		return fmt.Errorf("reading input functions: %w", err)
	}
	defer rows.Close()
	found := map[uint32]inputFunc{}
	for rows.Next() {
		var (
			oid, ioParam uint32
			nsp, name    string
			nargs        int16
		)
		if err := rows.Scan(&oid, &nsp, &name, &nargs, &ioParam); err != nil {
			return fmt.Errorf("reading input functions: %w", err)
		}
		found[oid] = inputFunc{name: schema.QuoteIdent(nsp) + "." + schema.QuoteIdent(name), nargs: int(nargs), ioParam: ioParam}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading input functions: %w", err)
	}
	for _, oid := range missing {
		if _, ok := found[oid]; !ok {
			return fmt.Errorf("type %d has no input function on this Postgres (dropped?)", oid)
		}
	}
	t.mu.Lock()
	for oid, f := range found {
		t.funcs[oid] = f
	}
	t.mu.Unlock()
	return nil
}
