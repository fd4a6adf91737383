package pgsource

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/engine/schema"
)

// ErrSlotActive is returned by Teardown when a process still reads the
// slot: dropping it would cut that reader off (another engine on the same
// state, or one still running with the connector configured).
var ErrSlotActive = errors.New("replication slot is in use")

// Teardown removes what setup installs on a Postgres: the replication slot
// (so it no longer holds WAL), the publication and the two event triggers
// (electric_publish_new_tables, electric_replica_identity_full) with their
// functions. It returns what it dropped; what is already gone is skipped,
// so it can be run again. Tables keep REPLICA IDENTITY FULL (harmless, and
// the application may rely on it by now).
func Teardown(ctx context.Context, conn *pgx.Conn, slot, publication string) ([]string, error) {
	if slot == "" {
		slot = DefaultSlot
	}
	if publication == "" {
		publication = DefaultPublication
	}
	var dropped []string
	var pid *int32
	err := conn.QueryRow(ctx, `SELECT active_pid FROM pg_catalog.pg_replication_slots
WHERE slot_name = $1 AND database = current_database()`, slot).Scan(&pid)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return dropped, fmt.Errorf("reading replication slot %s: %w", slot, err)
	case pid != nil:
		return dropped, fmt.Errorf("%w: slot %s is read by process %d (an engine still serving this connector?): stop it first", ErrSlotActive, slot, *pid)
	default:
		if _, err := conn.Exec(ctx, "SELECT pg_catalog.pg_drop_replication_slot($1)", slot); err != nil {
			return dropped, fmt.Errorf("dropping replication slot %s: %w", slot, err)
		}
		dropped = append(dropped, "replication slot "+slot)
	}

	for _, o := range []struct{ what, sql, name string }{
		{"event trigger", "DROP EVENT TRIGGER IF EXISTS electric_publish_new_tables", "electric_publish_new_tables"},
		{"event trigger", "DROP EVENT TRIGGER IF EXISTS electric_replica_identity_full", "electric_replica_identity_full"},
		{"function", "DROP FUNCTION IF EXISTS electric.publish_new_tables()", "electric.publish_new_tables()"},
		{"function", "DROP FUNCTION IF EXISTS electric.replica_identity_full()", "electric.replica_identity_full()"},
		// The schema history (history.go): its trigger, functions and table.
		{"event trigger", "DROP EVENT TRIGGER IF EXISTS electric_schema_history", "electric_schema_history"},
		{"function", "DROP FUNCTION IF EXISTS electric.schema_history()", "electric.schema_history()"},
		{"function", "DROP FUNCTION IF EXISTS electric.emit_column_rows(pg_catalog.oid, text, text, text)", "electric.emit_column_rows(pg_catalog.oid,text,text,text)"},
		{"function", "DROP FUNCTION IF EXISTS electric.record_columns(pg_catalog.oid)", "electric.record_columns(pg_catalog.oid)"},
		{"table", "DROP TABLE IF EXISTS electric.columns", "electric.columns"},
		{"publication", "DROP PUBLICATION IF EXISTS " + schema.QuoteIdent(publication), publication},
	} {
		exists, err := objectExists(ctx, conn, o.what, o.name)
		if err != nil {
			return dropped, err
		}
		if !exists {
			continue
		}
		if _, err := conn.Exec(ctx, o.sql); err != nil {
			return dropped, fmt.Errorf("dropping %s %s: %w", o.what, o.name, err)
		}
		dropped = append(dropped, o.what+" "+o.name)
	}
	return dropped, nil
}

// objectExists reports whether the named object is there, so Teardown
// lists only what it really dropped.
func objectExists(ctx context.Context, conn *pgx.Conn, what, name string) (bool, error) {
	var q string
	switch what {
	case "event trigger":
		q = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = $1)"
	case "function":
		q = "SELECT pg_catalog.to_regprocedure($1) IS NOT NULL"
	case "publication":
		q = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1)"
	case "table":
		q = "SELECT pg_catalog.to_regclass($1) IS NOT NULL"
	default:
		return false, fmt.Errorf("objectExists: unknown kind %q", what)
	}
	var ok bool
	if err := conn.QueryRow(ctx, q, name).Scan(&ok); err != nil {
		return false, fmt.Errorf("looking for %s %s: %w", what, name, err)
	}
	return ok, nil
}
