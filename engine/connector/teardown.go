package connector

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/engine/schema"
)

// Teardown removes what Run installs on a Postgres for connector name: its
// subscription "<name>" and the electric_upsert trigger and its
// electric.upsert_* function on every table. It returns what it dropped, in
// order; what is already gone is skipped, so a teardown cut short can be run
// again. It leaves the publication, the slot and their event triggers to
// pgsource.Teardown, and the electric schema (electric.migrations is the
// application's history) and REPLICA IDENTITY FULL as they are.
//
// The subscription is detached from its slot before it is dropped: its
// "slot" lives in Electric's publisher, which no longer serves a removed
// connector, and DROP SUBSCRIPTION would otherwise fail trying to reach it.
func Teardown(ctx context.Context, conn *pgx.Conn, name string) ([]string, error) {
	dropped, err := TeardownSubscription(ctx, conn, name)
	if err != nil {
		return dropped, err
	}
	more, err := dropUpsertTriggers(ctx, conn)
	return append(dropped, more...), err
}

// TeardownSubscription drops the subscription "<name>" alone (detached
// from its slot first), leaving the upsert triggers: for a database another
// connector still replicates.
func TeardownSubscription(ctx context.Context, conn *pgx.Conn, name string) ([]string, error) {
	var dropped []string
	var enabled bool
	err := conn.QueryRow(ctx, `SELECT s.subenabled FROM pg_catalog.pg_subscription s
WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())`,
		name).Scan(&enabled)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return dropped, fmt.Errorf("reading subscription %s: %w", name, err)
	default:
		q := schema.QuoteIdent(name)
		stmts := []string{
			"ALTER SUBSCRIPTION " + q + " SET (slot_name = NONE)",
			"DROP SUBSCRIPTION " + q,
		}
		if enabled {
			stmts = append([]string{"ALTER SUBSCRIPTION " + q + " DISABLE"}, stmts...)
		}
		// One statement at a time: DROP SUBSCRIPTION refuses to run in a
		// transaction block.
		for _, s := range stmts {
			if _, err := conn.Exec(ctx, s); err != nil {
				return dropped, fmt.Errorf("dropping subscription %s: %s: %w", name, s, err)
			}
		}
		dropped = append(dropped, "subscription "+name)
	}
	return dropped, nil
}

// dropUpsertTriggers drops every electric_upsert trigger and
// electric.upsert_* trigger function.
func dropUpsertTriggers(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	var dropped []string

	rows, err := conn.Query(ctx, `SELECT t.tgrelid::pg_catalog.regclass::text
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE t.tgname = $1 AND NOT t.tgisinternal AND n.nspname = 'electric'
ORDER BY 1`, TriggerName)
	if err != nil {
		return dropped, fmt.Errorf("reading upsert triggers: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return dropped, fmt.Errorf("reading upsert triggers: %w", err)
	}
	for _, t := range tables {
		// regclass::text is already quoted as needed.
		if _, err := conn.Exec(ctx, "DROP TRIGGER IF EXISTS "+TriggerName+" ON "+t); err != nil {
			return dropped, fmt.Errorf("dropping the upsert trigger on %s: %w", t, err)
		}
		dropped = append(dropped, "trigger "+TriggerName+" on "+t)
	}

	rows, err = conn.Query(ctx, `SELECT p.oid::pg_catalog.regprocedure::text
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'electric' AND p.proname LIKE 'upsert\_%' AND p.prorettype = 'pg_catalog.trigger'::pg_catalog.regtype
ORDER BY 1`)
	if err != nil {
		return dropped, fmt.Errorf("reading upsert functions: %w", err)
	}
	fns, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return dropped, fmt.Errorf("reading upsert functions: %w", err)
	}
	for _, fn := range fns {
		// No CASCADE: a trigger someone else put on this function keeps
		// it, and the error says which.
		if _, err := conn.Exec(ctx, "DROP FUNCTION IF EXISTS "+fn); err != nil {
			return dropped, fmt.Errorf("dropping function %s: %w", fn, err)
		}
		dropped = append(dropped, "function "+fn)
	}
	return dropped, nil
}
