package pgsource

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/engine/schema"
)

// The publication lists its tables explicitly, never FOR ALL TABLES: a
// FOR ALL TABLES publication cannot leave a schema out, and electric.*
// tables (electric.migrations, ...) must never be streamed. The list is
// kept equal to every permanent ordinary table outside the system and
// electric schemas:
//
//   - an event trigger (electric_publish_new_tables, installed with the
//     replica identity one) adds a table to the publication in the
//     transaction that creates it, so the rows written by that transaction
//     and every later one are streamed, as they were with FOR ALL TABLES;
//   - syncPublication, at setup and with every statistics read, adds what
//     the trigger missed (a Postgres where it could not be installed: rows
//     written before then are not streamed) and drops what no longer
//     belongs (a table moved into the electric schema);
//   - a FOR ALL TABLES publication left by an older version is replaced by
//     the explicit form at setup, in one transaction.
//
// A partition is covered by its partitioned table; unlogged and temporary
// tables are never logically decoded.
const publishedTablesSQL = `
SELECT c.oid::oid, pg_catalog.format('%I.%I', n.nspname, c.relname)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence = 'p'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'electric')
  AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast%'`

// publishTriggerSQL installs the event trigger that adds a new table to
// publication %[1]s. It runs as its owner (SECURITY DEFINER: ALTER
// PUBLICATION needs the publication's owner) and never fails the user's
// CREATE TABLE: a table it could not add is added by the next sync.
const publishTriggerSQL = `
CREATE SCHEMA IF NOT EXISTS electric;
CREATE OR REPLACE FUNCTION electric.publish_new_tables() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT c.oid FROM pg_catalog.pg_event_trigger_ddl_commands() d
    JOIN pg_catalog.pg_class c ON c.oid = d.objid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence = 'p'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'electric')
      AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast%%'
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication_rel pr JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid
                      WHERE p.pubname = %[2]s AND pr.prrelid = c.oid)
  LOOP
    BEGIN
      EXECUTE pg_catalog.format('ALTER PUBLICATION %[1]s ADD TABLE %%s', r.oid::pg_catalog.regclass);
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'electric: could not add %% to publication %[1]s: %%', r.oid::pg_catalog.regclass, SQLERRM;
    END;
  END LOOP;
END
$fn$;
DO $do$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'electric_publish_new_tables') THEN
    CREATE EVENT TRIGGER electric_publish_new_tables ON ddl_command_end
      WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
      EXECUTE FUNCTION electric.publish_new_tables();
  END IF;
END $do$;`

// ensurePublication creates the publication with an explicit table list, or
// converts a FOR ALL TABLES one, and installs the event trigger that keeps
// new tables in it.
func (s *Source) ensurePublication(ctx context.Context, conn *pgx.Conn) error {
	pub := s.opts.Publication
	var allTables *bool
	err := conn.QueryRow(ctx, "SELECT puballtables FROM pg_catalog.pg_publication WHERE pubname = $1", pub).Scan(&allTables)
	if err != nil && err != pgx.ErrNoRows {
		return fmt.Errorf("reading publications: %w", err)
	}
	if allTables == nil || *allTables {
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if allTables != nil {
				if _, err := tx.Exec(ctx, "DROP PUBLICATION "+schema.QuoteIdent(pub)); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, "CREATE PUBLICATION "+schema.QuoteIdent(pub)); err != nil {
				return err
			}
			return s.syncPublication(ctx, tx)
		}); err != nil && !isDuplicate(err) {
			return fmt.Errorf("creating publication %s: %w", pub, err)
		}
		if allTables != nil {
			s.log.Info("converted publication from FOR ALL TABLES to an explicit table list, leaving electric.* tables out", "publication", pub)
		} else {
			s.log.Info("created publication", "publication", pub)
		}
	}
	if err := s.ensurePublishTrigger(ctx, conn); err != nil {
		s.log.Warn("could not install the event trigger that adds new tables to the publication (needs a superuser): rows written to a new table before the connector adds it (within seconds) are not replicated", "err", err)
	}
	return s.syncPublication(ctx, conn)
}

func (s *Source) ensurePublishTrigger(ctx context.Context, conn *pgx.Conn) error {
	q := fmt.Sprintf(publishTriggerSQL, schema.QuoteIdent(s.opts.Publication), schema.QuoteLiteral(s.opts.Publication))
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("installing the publication trigger: %w", err)
		}
		return nil
	})
}

type querier interface {
	Execer
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// syncPublication makes the publication's table list equal to the tables
// that are replicated.
func (s *Source) syncPublication(ctx context.Context, q querier) error {
	want, err := collectOIDNames(ctx, q, publishedTablesSQL)
	if err != nil {
		return fmt.Errorf("reading the tables to publish: %w", err)
	}
	have, err := collectOIDNames(ctx, q, `SELECT pr.prrelid::oid, pr.prrelid::regclass::text FROM pg_catalog.pg_publication_rel pr
JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid WHERE p.pubname = '`+strings.ReplaceAll(s.opts.Publication, "'", "''")+`'`)
	if err != nil {
		return fmt.Errorf("reading the tables of publication %s: %w", s.opts.Publication, err)
	}
	var add, drop []string
	for oid, name := range want {
		if _, ok := have[oid]; !ok {
			add = append(add, name)
		}
	}
	for oid, name := range have {
		if _, ok := want[oid]; !ok {
			drop = append(drop, name)
		}
	}
	sort.Strings(add)
	sort.Strings(drop)
	pub := schema.QuoteIdent(s.opts.Publication)
	for _, verb := range []struct {
		what   string
		tables []string
	}{{"ADD", add}, {"DROP", drop}} {
		if len(verb.tables) == 0 {
			continue
		}
		if _, err := q.Exec(ctx, "ALTER PUBLICATION "+pub+" "+verb.what+" TABLE "+strings.Join(verb.tables, ", ")); err != nil {
			return fmt.Errorf("updating the tables of publication %s: %w", s.opts.Publication, err)
		}
		s.log.Info("publication updated", "publication", s.opts.Publication, "op", strings.ToLower(verb.what), "tables", strings.Join(verb.tables, ","))
	}
	return nil
}

// collectOIDNames reads (oid, quoted qualified name) rows.
func collectOIDNames(ctx context.Context, q querier, sql string) (map[uint32]string, error) {
	rows, err := q.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	out := map[uint32]string{}
	for rows.Next() {
		var oid uint32
		var name string
		if err := rows.Scan(&oid, &name); err != nil {
			return nil, err
		}
		out[oid] = name
	}
	return out, rows.Err()
}
