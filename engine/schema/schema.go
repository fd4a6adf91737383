// Package schema reads the replicated tables of a Postgres database: columns,
// types, primary keys and replica identity. It only reads catalogs; setting
// up publications, slots or triggers belongs to the packages that own them.
package schema

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Column is one column of a table.
type Column struct {
	Name     string
	TypeOID  uint32
	TypeName string // format_type, e.g. "integer", "character varying(20)"
	TypeMod  int32
	NotNull  bool
	Num      int16 // attnum
}

// Table is one user table.
type Table struct {
	Schema  string
	Name    string
	OID     uint32
	Columns []Column // in attnum order, dropped columns excluded
	// PrimaryKey names the key columns in key order; empty when the table has
	// none (such a table cannot be replicated).
	PrimaryKey []string
	// ReplicaIdentity is pg_class.relreplident: 'd', 'f', 'i' or 'n'.
	ReplicaIdentity byte
	// GeneratedKey lists key columns filled by a sequence default or an
	// identity: two Postgres minting the same ids would merge unrelated rows.
	GeneratedKey []string
}

// QualifiedName is "schema.name", the form used as the table id everywhere in
// the engine.
func (t *Table) QualifiedName() string { return t.Schema + "." + t.Name }

// Quoted is the schema-qualified, quoted name for SQL.
func (t *Table) Quoted() string { return QuoteIdent(t.Schema) + "." + QuoteIdent(t.Name) }

// Column returns the column named n.
func (t *Table) Column(n string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == n {
			return c, true
		}
	}
	return Column{}, false
}

// IsKey reports whether column n is part of the primary key.
func (t *Table) IsKey(n string) bool {
	for _, k := range t.PrimaryKey {
		if k == n {
			return true
		}
	}
	return false
}

// QuoteIdent quotes a SQL identifier.
func QuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// QuoteLiteral quotes a SQL string constant: single quotes doubled, nothing
// else escaped. That is exact with standard_conforming_strings = on (the
// default since Postgres 9.1, and the only form the replication command
// grammar knows: it has no escape strings), where a backslash is an ordinary
// character.
func QuoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Querier is what Introspect needs: a pgx connection or pool.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// SkippedSchemas are never replicated.
var skippedSchemas = []string{"pg_catalog", "information_schema", "electric", "pg_toast"}

// Introspect lists every ordinary table outside the system and electric
// schemas, sorted by qualified name.
func Introspect(ctx context.Context, q Querier) ([]Table, error) {
	rows, err := q.Query(ctx, `
SELECT c.oid, n.nspname, c.relname, c.relreplident::text,
       a.attname, a.atttypid, format_type(a.atttypid, a.atttypmod), a.atttypmod, a.attnotnull, a.attnum,
       coalesce(array_position(i.indkey::int2[], a.attnum) + 1, 0) AS keypos,
       (a.attidentity <> '' OR coalesce(pg_get_expr(d.adbin, d.adrelid), '') LIKE 'nextval(%') AS generated
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname <> ALL($1) AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast%'
ORDER BY n.nspname, c.relname, a.attnum`, skippedSchemas)
	if err != nil {
		return nil, fmt.Errorf("introspecting tables: %w", err)
	}
	defer rows.Close()
	byOID := map[uint32]*Table{}
	var order []uint32
	type keyCol struct {
		pos  int
		name string
	}
	keys := map[uint32][]keyCol{}
	for rows.Next() {
		var (
			oid                       uint32
			nsp, rel, ident, col, typ string
			typOID                    uint32
			typMod                    int32
			notNull, generated        bool
			num                       int16
			keyPos                    int
		)
		if err := rows.Scan(&oid, &nsp, &rel, &ident, &col, &typOID, &typ, &typMod, &notNull, &num, &keyPos, &generated); err != nil {
			return nil, fmt.Errorf("introspecting tables: %w", err)
		}
		t, ok := byOID[oid]
		if !ok {
			t = &Table{Schema: nsp, Name: rel, OID: oid}
			if ident != "" {
				t.ReplicaIdentity = ident[0]
			}
			byOID[oid] = t
			order = append(order, oid)
		}
		t.Columns = append(t.Columns, Column{Name: col, TypeOID: typOID, TypeName: typ, TypeMod: typMod, NotNull: notNull, Num: num})
		if keyPos > 0 {
			keys[oid] = append(keys[oid], keyCol{keyPos, col})
			if generated {
				t.GeneratedKey = append(t.GeneratedKey, col)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("introspecting tables: %w", err)
	}
	out := make([]Table, 0, len(order))
	for _, oid := range order {
		t := byOID[oid]
		kc := keys[oid]
		sort.Slice(kc, func(i, j int) bool { return kc[i].pos < kc[j].pos })
		for _, k := range kc {
			t.PrimaryKey = append(t.PrimaryKey, k.name)
		}
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].QualifiedName() < out[j].QualifiedName() })
	return out, nil
}
