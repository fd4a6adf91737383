package bundle

import (
	"fmt"
	"regexp"
	"strings"
)

// Names the triggers can quote safely and SQLite keeps apart: SQLite
// compares identifiers case-insensitively, the client matches them
// case-sensitively, so only Postgres' own folded form is taken.
var nameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// maxName is Postgres' NAMEDATALEN-1.
const maxName = 63

func checkName(kind, name string) error {
	switch {
	case !nameRE.MatchString(name) || len(name) > maxName:
		return fmt.Errorf("%s name %q: %w: names must be lower-case letters, digits and '_', not starting with a digit, at most %d bytes", kind, name, ErrUnsupported, maxName)
	case strings.HasPrefix(name, "_electric") || strings.HasPrefix(name, "sqlite_"):
		return fmt.Errorf("%s name %q: %w: the prefixes _electric and sqlite_ belong to the client and SQLite", kind, name, ErrUnsupported)
	}
	return nil
}

// quote double-quotes an identifier checked by checkName.
func quote(name string) string { return `"` + name + `"` }

// sqliteType maps a Postgres type (format_type text) to the SQLite declared
// type of its column. Values reach the client as the engine announces them
// (int2/int4 as numbers, everything else as text), so only types whose values
// survive SQLite's affinity and the client's JSON round trip unchanged get a
// numeric type: int2 and int4 INT (not INTEGER: an INTEGER key would become the
// rowid, which SQLite fills in instead of leaving NULL), float4 and float8 REAL.
// int8 stays TEXT (a JS number rounds it beyond 2^53), numeric stays TEXT
// (exact digits); bool, dates, times, json, uuid, arrays and the rest are TEXT
// holding Postgres' text form.
func sqliteType(pgType string) string {
	t := strings.ToLower(strings.TrimSpace(pgType))
	if strings.HasSuffix(t, "[]") {
		return "TEXT"
	}
	switch t {
	case "smallint", "integer", "int2", "int4", "int", "smallserial", "serial":
		return "INT"
	case "real", "double precision", "float4", "float8":
		return "REAL"
	}
	return "TEXT"
}

func settingsKey(table string) string { return "'main." + table + "'" }

// createTable creates t with its trigger settings row and triggers. Only the
// primary key is NOT NULL: a NOT NULL column would make the client's partial
// upserts fail (Postgres still enforces its constraints on every write).
func createTable(t *Table) []string {
	var defs []string
	for _, c := range t.Columns {
		d := quote(c.Name) + " " + sqliteType(c.Type)
		if c.PrimaryKey > 0 {
			d += " NOT NULL"
		}
		defs = append(defs, d)
	}
	var pk []string
	for _, c := range pkColumns(t) {
		pk = append(pk, quote(c.Name))
	}
	defs = append(defs, "PRIMARY KEY ("+strings.Join(pk, ", ")+")")
	out := []string{fmt.Sprintf("CREATE TABLE %s (%s);", quote(t.Name), strings.Join(defs, ", "))}
	return append(out, triggers(t)...)
}

// dropTable drops t (its triggers go with it) and its settings row.
func dropTable(name string) []string {
	return []string{
		fmt.Sprintf("DROP TABLE IF EXISTS %s;", quote(name)),
		fmt.Sprintf("DELETE FROM _electric_trigger_settings WHERE tablename = %s;", settingsKey(name)),
	}
}

// The trigger names the Electric CLI of early 2023 used, plus the key guard.
func triggerNames(table string) []string {
	return []string{
		"update_ensure_main_" + table + "_primarykey",
		"insert_main_" + table + "_into_oplog",
		"update_main_" + table + "_into_oplog",
		"delete_main_" + table + "_into_oplog",
		"guard_main_" + table + "_primarykey",
	}
}

func dropTriggers(table string) []string {
	var out []string
	for _, n := range triggerNames(table) {
		out = append(out, "DROP TRIGGER IF EXISTS "+quote(n)+";")
	}
	return out
}

// triggers returns t's settings row, the four oplog triggers for its current
// columns and the key guard. The guard drops an insert with a NULL key column
// while the trigger flag is off, that is while the client applies a server
// transaction: the client turns a remote delete merged with a local update
// into an insert of only the updated columns (client notes, U), which would
// otherwise keep a row without key forever. An app's own insert without key
// (flag on) still fails on NOT NULL.
func triggers(t *Table) []string {
	n := t.Name
	pk := pkColumns(t)
	flag := fmt.Sprintf("(SELECT flag FROM _electric_trigger_settings WHERE tablename = %s)", settingsKey(n))
	when := "WHEN 1 = " + flag
	obj := func(row string, cols []Column) string {
		parts := make([]string, len(cols))
		for i, c := range cols {
			parts[i] = fmt.Sprintf("'%s', %s.%s", c.Name, row, quote(c.Name))
		}
		return "json_object(" + strings.Join(parts, ", ") + ")"
	}
	oplog := func(op, keyRow, newRow, oldRow string) string {
		return fmt.Sprintf("INSERT INTO _electric_oplog (namespace, tablename, optype, primaryKey, newRow, oldRow, timestamp) "+
			"VALUES ('main', '%s', '%s', %s, %s, %s, NULL);", n, op, obj(keyRow, pk), newRow, oldRow)
	}
	var keyChanged, keyNull []string
	for _, c := range pk {
		keyChanged = append(keyChanged, fmt.Sprintf("WHEN old.%[1]s IS NOT new.%[1]s THEN RAISE(ABORT, 'cannot change the value of column %[2]s as it belongs to the primary key')", quote(c.Name), c.Name))
		keyNull = append(keyNull, "new."+quote(c.Name)+" IS NULL")
	}
	names := triggerNames(n)
	out := []string{fmt.Sprintf("INSERT OR IGNORE INTO _electric_trigger_settings (tablename, flag) VALUES (%s, 1);", settingsKey(n))}
	out = append(out, dropTriggers(n)...)
	return append(out,
		fmt.Sprintf("CREATE TRIGGER %s BEFORE UPDATE ON %s BEGIN SELECT CASE %s END; END;", quote(names[0]), quote(n), strings.Join(keyChanged, " ")),
		fmt.Sprintf("CREATE TRIGGER %s AFTER INSERT ON %s %s BEGIN %s END;", quote(names[1]), quote(n), when,
			oplog("INSERT", "new", obj("new", t.Columns), "NULL")),
		fmt.Sprintf("CREATE TRIGGER %s AFTER UPDATE ON %s %s BEGIN %s END;", quote(names[2]), quote(n), when,
			oplog("UPDATE", "new", obj("new", t.Columns), obj("old", t.Columns))),
		fmt.Sprintf("CREATE TRIGGER %s AFTER DELETE ON %s %s BEGIN %s END;", quote(names[3]), quote(n), when,
			oplog("DELETE", "old", "NULL", obj("old", t.Columns))),
		fmt.Sprintf("CREATE TRIGGER %s BEFORE INSERT ON %s WHEN (%s) AND 1 IS NOT %s BEGIN SELECT RAISE(IGNORE); END;",
			quote(names[4]), quote(n), strings.Join(keyNull, " OR "), flag),
	)
}
