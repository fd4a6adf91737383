// Package bundle generates the migrations bundle of the published Satellite
// client (electric-sql@0.4.3): for each Postgres migration, the SQLite
// statements (satellite_body) that take a client's database from the schema
// before it to the schema after it, with the oplog triggers and
// _electric_trigger_settings rows without which the client never sends a
// write, and the files migrations.json and index.js that an app imports.
//
// It is pure: it works on schemas described by its caller (the engine records
// the schema Postgres has after each migration) and touches no database, no
// network and no engine state. Entries once built must never be rebuilt with
// a newer generator: a 0.4.3 client refuses a migration whose sha256 changed;
// storing them is the caller's job.
//
// The generated schema defends the client against its own merge of a remote
// delete with an unacknowledged local update (client notes, U): no NOT NULL
// on any column but the primary key, and a guard trigger that drops an
// insert without its key while the client applies a server transaction.
package bundle

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Column is a Postgres column as the engine records it.
type Column struct {
	Num        int    // attnum: stable across renames, never reused
	Name       string //
	Type       string // format_type() text, e.g. "integer", "character varying(3)", "timestamp with time zone"
	NotNull    bool   //
	PrimaryKey int    // 1-based position in the primary key, 0 if not part of it
}

// Table is a Postgres table with its columns ordered by Num.
type Table struct {
	Schema, Name string
	Columns      []Column
}

// Schema is the set of tables a migration leaves behind.
type Schema struct {
	Tables []Table
}

// ErrUnsupported is wrapped by every error about DDL the client cannot
// follow (a table without a primary key, a type or key change, a name the
// triggers cannot quote).
var ErrUnsupported = errors.New("not supported by the Satellite client")

// Schemas whose tables are never part of a client's database.
var systemSchemas = map[string]bool{"electric": true, "pg_catalog": true, "information_schema": true}

// Body returns the satellite_body statements that take a client from prev to
// next. Tables are matched by name (SQLite has one namespace: a name in two
// Postgres schemas is an error; a renamed table is a dropped one and a new
// one), columns by Num (a rename stays a rename). For each table created or
// changed, the body (re)creates its _electric_trigger_settings row, its four
// oplog triggers for its new column list and its key guard; a dropped table
// loses its row. Nothing changed gives an empty body.
func Body(prev, next Schema) ([]string, error) {
	p, err := index(prev)
	if err != nil {
		return nil, fmt.Errorf("previous schema: %w", err)
	}
	n, err := index(next)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range sortedNames(p) {
		if _, ok := n[name]; !ok {
			out = append(out, dropTable(name)...)
		}
	}
	for _, name := range sortedNames(n) {
		nt := n[name]
		pt, ok := p[name]
		if !ok {
			out = append(out, createTable(nt)...)
			continue
		}
		stmts, err := alterTable(pt, nt)
		if err != nil {
			return nil, err
		}
		out = append(out, stmts...)
	}
	return out, nil
}

// index checks every table of s and returns them by name.
func index(s Schema) (map[string]*Table, error) {
	m := map[string]*Table{}
	for i := range s.Tables {
		t := &s.Tables[i]
		if systemSchemas[t.Schema] {
			continue
		}
		if err := checkTable(t); err != nil {
			return nil, err
		}
		if o, dup := m[t.Name]; dup {
			return nil, fmt.Errorf("tables %s.%s and %s.%s: %w: the client keeps all tables in one namespace, so table names must be unique across schemas",
				o.Schema, o.Name, t.Schema, t.Name, ErrUnsupported)
		}
		m[t.Name] = t
	}
	return m, nil
}

func checkTable(t *Table) error {
	if err := checkName("table", t.Name); err != nil {
		return fmt.Errorf("table %s.%s: %w", t.Schema, t.Name, err)
	}
	if len(t.Columns) == 0 {
		return fmt.Errorf("table %s.%s: %w: a table without columns", t.Schema, t.Name, ErrUnsupported)
	}
	nums := map[int]bool{}
	names := map[string]bool{}
	var pk []int
	for i, c := range t.Columns {
		if err := checkName("column", c.Name); err != nil {
			return fmt.Errorf("table %s.%s: %w", t.Schema, t.Name, err)
		}
		if c.Num <= 0 || nums[c.Num] || (i > 0 && c.Num <= t.Columns[i-1].Num) {
			return fmt.Errorf("table %s.%s: column %s: number %d is not positive, unique and ascending", t.Schema, t.Name, c.Name, c.Num)
		}
		if names[c.Name] {
			return fmt.Errorf("table %s.%s: column %s appears twice", t.Schema, t.Name, c.Name)
		}
		if strings.TrimSpace(c.Type) == "" {
			return fmt.Errorf("table %s.%s: column %s has no type", t.Schema, t.Name, c.Name)
		}
		if c.PrimaryKey < 0 {
			return fmt.Errorf("table %s.%s: column %s: negative primary key position", t.Schema, t.Name, c.Name)
		}
		nums[c.Num], names[c.Name] = true, true
		if c.PrimaryKey > 0 {
			pk = append(pk, c.PrimaryKey)
		}
	}
	if len(pk) == 0 {
		return fmt.Errorf("table %s.%s: %w: it has no primary key (the client identifies rows by it; add one)", t.Schema, t.Name, ErrUnsupported)
	}
	sort.Ints(pk)
	for i, p := range pk {
		if p != i+1 {
			return fmt.Errorf("table %s.%s: primary key positions %v are not 1..%d", t.Schema, t.Name, pk, len(pk))
		}
	}
	return nil
}

func sortedNames(m map[string]*Table) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// pkColumns returns t's primary key columns in key order.
func pkColumns(t *Table) []Column {
	var pk []Column
	for _, c := range t.Columns {
		if c.PrimaryKey > 0 {
			pk = append(pk, c)
		}
	}
	sort.Slice(pk, func(i, j int) bool { return pk[i].PrimaryKey < pk[j].PrimaryKey })
	return pk
}

// alterTable returns the statements that change table p into n (same name).
func alterTable(p, n *Table) ([]string, error) {
	pc := map[int]Column{}
	for _, c := range p.Columns {
		pc[c.Num] = c
	}
	nc := map[int]Column{}
	for _, c := range n.Columns {
		nc[c.Num] = c
	}
	var drops, adds []string
	type rename struct{ from, to string }
	var renames []rename
	for _, c := range p.Columns {
		if _, ok := nc[c.Num]; !ok {
			if c.PrimaryKey > 0 {
				return nil, fmt.Errorf("table %s: column %s dropped: %w: a primary key change", n.Name, c.Name, ErrUnsupported)
			}
			drops = append(drops, fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s;", quote(n.Name), quote(c.Name)))
		}
	}
	for _, c := range n.Columns {
		old, ok := pc[c.Num]
		if !ok {
			if c.PrimaryKey > 0 {
				return nil, fmt.Errorf("table %s: column %s added: %w: a primary key change", n.Name, c.Name, ErrUnsupported)
			}
			adds = append(adds, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s;", quote(n.Name), quote(c.Name), sqliteType(c.Type)))
			continue
		}
		if old.PrimaryKey != c.PrimaryKey {
			return nil, fmt.Errorf("table %s: column %s: %w: a primary key change", n.Name, c.Name, ErrUnsupported)
		}
		if sqliteType(old.Type) != sqliteType(c.Type) {
			return nil, fmt.Errorf("table %s: column %s: %w: its type changed from %s to %s (SQLite %s to %s); add a new column instead",
				n.Name, c.Name, ErrUnsupported, old.Type, c.Type, sqliteType(old.Type), sqliteType(c.Type))
		}
		if old.Name != c.Name {
			renames = append(renames, rename{old.Name, c.Name})
		}
	}
	if len(drops) == 0 && len(adds) == 0 && len(renames) == 0 {
		return nil, nil
	}
	// Triggers name the columns: drop them before the columns change (SQLite
	// refuses to drop a column a trigger uses), recreate them after.
	out := dropTriggers(n.Name)
	out = append(out, drops...)
	// A rename onto a name another renamed column still holds (a swap) goes
	// through a temporary name.
	taken := map[string]bool{}
	for _, r := range renames {
		taken[r.from] = true
	}
	var second []string
	for _, r := range renames {
		if taken[r.to] {
			tmp := fmt.Sprintf("_electric_tmp_%s", r.from)
			out = append(out, fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s;", quote(n.Name), quote(r.from), quote(tmp)))
			second = append(second, fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s;", quote(n.Name), quote(tmp), quote(r.to)))
			continue
		}
		out = append(out, fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s;", quote(n.Name), quote(r.from), quote(r.to)))
	}
	out = append(out, second...)
	out = append(out, adds...)
	return append(out, triggers(n)...), nil
}
