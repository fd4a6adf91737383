package pgsource

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Schema history. The row states key cells by column name, and the WAL
// carries no DDL: a RENAME COLUMN would read as a new, empty column, and
// the values a column gets without a row write (ADD COLUMN ... DEFAULT, a
// fast default or a table rewrite; ALTER COLUMN ... TYPE ... USING) would
// never reach the log. So each connector's Postgres keeps the history of
// its replicated columns by attnum (electric.columns), and an event trigger
// compares every ALTER TABLE with it and writes what changed into the DDL's
// own transaction as logical decoding messages (prefix electric.ddl,
// transactional), which the stream decodes in order with the rows around
// them (see ddl.go):
//
//   - rename: a column whose attnum is known under another name;
//   - default: a column added with a constant default or none, the value
//     every existing row now has (NULL when none);
//   - rows: the values of a column after a rewrite (a volatile default, a
//     type change), read back from the table in chunks of at most
//     ddlChunkRows rows or about ddlChunkBytes bytes, each one message;
//   - type: a column's type changed (logged; its values come as rows).
//
// The trigger never fails the user's DDL: on an error it raises a warning
// and the change is not reported (the connector still sees the new schema).
const (
	ddlPrefix     = "electric.ddl"
	ddlChunkRows  = 500
	ddlChunkBytes = 1 << 20
)

const historySQL = `
CREATE SCHEMA IF NOT EXISTS electric;
CREATE TABLE IF NOT EXISTS electric.columns (
  relid pg_catalog.oid NOT NULL,
  attnum pg_catalog.int2 NOT NULL,
  name pg_catalog.text NOT NULL,
  type pg_catalog.text NOT NULL,
  PRIMARY KEY (relid, attnum)
);
CREATE OR REPLACE FUNCTION electric.record_columns(rel pg_catalog.oid) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
  DELETE FROM electric.columns WHERE relid = rel;
  INSERT INTO electric.columns (relid, attnum, name, type)
  SELECT a.attrelid, a.attnum, a.attname::text, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';
$fn$;
CREATE OR REPLACE FUNCTION electric.emit_column_rows(rel pg_catalog.oid, tname text, col text, mode text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
  keys text;
  rec record;
  batch jsonb := '[]';
  n int := 0;
  bytes bigint := 0;
BEGIN
  SELECT string_agg(format('pg_catalog.concat(%I)', a.attname), ', ' ORDER BY k.ord) INTO keys
  FROM pg_index i, unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
  JOIN pg_attribute a ON a.attnum = k.attnum
  WHERE i.indrelid = rel AND i.indisprimary AND a.attrelid = rel;
  IF keys IS NULL THEN
    RETURN; -- no key: not replicated
  END IF;
  FOR rec IN EXECUTE format('SELECT pg_catalog.jsonb_build_array(%s) AS k, CASE WHEN %I IS NULL THEN NULL ELSE pg_catalog.concat(%I) END AS v FROM %s',
                            keys, col, col, rel::regclass)
  LOOP
    batch := batch || jsonb_build_array(jsonb_build_array(rec.k, rec.v));
    n := n + 1;
    bytes := bytes + coalesce(octet_length(rec.v), 0) + octet_length(rec.k::text);
    IF n >= {{ROWS}} OR bytes >= {{BYTES}} THEN
      PERFORM pg_logical_emit_message(true, '{{PREFIX}}', jsonb_build_object('op', 'rows', 'table', tname, 'column', col, 'mode', mode, 'rows', batch)::text);
      batch := '[]'; n := 0; bytes := 0;
    END IF;
  END LOOP;
  IF n > 0 THEN
    PERFORM pg_logical_emit_message(true, '{{PREFIX}}', jsonb_build_object('op', 'rows', 'table', tname, 'column', col, 'mode', mode, 'rows', batch)::text);
  END IF;
END
$fn$;
CREATE OR REPLACE FUNCTION electric.schema_history() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
  r record;
  c record;
  tname text;
BEGIN
  FOR r IN
    SELECT DISTINCT cl.oid, n.nspname, cl.relname FROM pg_event_trigger_ddl_commands() d
    JOIN pg_class cl ON cl.oid = d.objid
    JOIN pg_namespace n ON n.oid = cl.relnamespace
    WHERE d.classid = 'pg_catalog.pg_class'::regclass
      AND cl.relkind IN ('r', 'p') AND NOT cl.relispartition AND cl.relpersistence = 'p'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'electric')
      AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast%'
  LOOP
    BEGIN
      tname := r.nspname || '.' || r.relname;
      IF EXISTS (SELECT 1 FROM electric.columns h WHERE h.relid = r.oid) THEN
        FOR c IN
          SELECT h.name AS old, a.attname::text AS new FROM electric.columns h
          JOIN pg_attribute a ON a.attrelid = h.relid AND a.attnum = h.attnum
          WHERE h.relid = r.oid AND NOT a.attisdropped AND a.attgenerated = '' AND h.name <> a.attname::text
          ORDER BY h.attnum
        LOOP
          PERFORM pg_logical_emit_message(true, '{{PREFIX}}', jsonb_build_object('op', 'rename', 'table', tname, 'from', c.old, 'to', c.new)::text);
        END LOOP;
        FOR c IN
          SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS typ, h.type AS oldtyp,
                 a.atthasmissing, a.atthasdef,
                 CASE WHEN a.atthasmissing THEN ((a.attmissingval::text)::text[])[1] END AS missing
          FROM pg_attribute a LEFT JOIN electric.columns h ON h.relid = a.attrelid AND h.attnum = a.attnum
          WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
            AND (h.attnum IS NULL OR h.type <> format_type(a.atttypid, a.atttypmod))
          ORDER BY a.attnum
        LOOP
          IF c.oldtyp IS NOT NULL THEN
            PERFORM pg_logical_emit_message(true, '{{PREFIX}}', jsonb_build_object('op', 'type', 'table', tname, 'column', c.name, 'from', c.oldtyp, 'to', c.typ)::text);
            PERFORM electric.emit_column_rows(r.oid, tname, c.name, 'rewrite');
          ELSIF c.atthasdef AND NOT c.atthasmissing THEN
            PERFORM electric.emit_column_rows(r.oid, tname, c.name, 'default'); -- rewritten: a volatile default
          ELSE
            PERFORM pg_logical_emit_message(true, '{{PREFIX}}', jsonb_build_object('op', 'default', 'table', tname, 'column', c.name, 'value', c.missing)::text);
          END IF;
        END LOOP;
      END IF;
      PERFORM electric.record_columns(r.oid);
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'electric: could not record the schema change of %: %', r.oid::regclass, SQLERRM;
    END;
  END LOOP;
  DELETE FROM electric.columns h WHERE NOT EXISTS (SELECT 1 FROM pg_class cl WHERE cl.oid = h.relid);
END
$fn$;
DO $do$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'electric_schema_history') THEN
    CREATE EVENT TRIGGER electric_schema_history ON ddl_command_end
      WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
      EXECUTE FUNCTION electric.schema_history();
  END IF;
END $do$;
-- Tables the history does not know yet (created before it existed).
INSERT INTO electric.columns (relid, attnum, name, type)
SELECT a.attrelid, a.attnum, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class cl ON cl.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace
WHERE cl.relkind IN ('r', 'p') AND NOT cl.relispartition AND cl.relpersistence = 'p'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'electric')
  AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast%'
  AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
  AND NOT EXISTS (SELECT 1 FROM electric.columns h WHERE h.relid = a.attrelid)
ON CONFLICT DO NOTHING;`

// ensureHistory installs (or updates) the schema history: its table, its
// functions and its event trigger, and records the tables it does not know.
func (s *Source) ensureHistory(ctx context.Context, conn *pgx.Conn) error {
	q := strings.NewReplacer("{{ROWS}}", strconv.Itoa(ddlChunkRows), "{{BYTES}}", strconv.Itoa(ddlChunkBytes), "{{PREFIX}}", ddlPrefix).Replace(historySQL)
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// Concurrent setups (two engines' tests on one cluster) serialise.
		if _, err := tx.Exec(ctx, "SELECT pg_catalog.pg_advisory_xact_lock(72656364)"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, q)
		return err
	}); err != nil {
		return fmt.Errorf("installing the schema history (event trigger electric_schema_history): %w", err)
	}
	return nil
}
