package pgsource

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/electric-sql/electric-go/engine/schema"
)

// connectSide opens an ordinary connection (catalog reads, setup DDL).
func (s *Source) connectSide(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(s.opts.URI)
	if err != nil {
		return nil, fmt.Errorf("parsing connector URI: %w", err)
	}
	delete(cfg.RuntimeParams, "replication")
	cfg.RuntimeParams["application_name"] = "electric-" + s.opts.Name
	// DDL on a busy table must not stall ingest forever.
	cfg.RuntimeParams["lock_timeout"] = "10s"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to postgres: %w", err)
	}
	return conn, nil
}

// connectReplication opens a replication=database connection.
func (s *Source) connectReplication(ctx context.Context) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(s.opts.URI)
	if err != nil {
		return nil, fmt.Errorf("parsing connector URI: %w", err)
	}
	cfg.RuntimeParams["replication"] = "database"
	cfg.RuntimeParams["application_name"] = "electric-" + s.opts.Name
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to postgres for replication: %w", err)
	}
	return conn, nil
}

// catalog is the connector's view of the source schema, owned by the
// stream's goroutine.
type catalog struct {
	s      *Source
	conn   *pgx.Conn
	tables map[string]*schema.Table // by qualified name
	subOID uint32                   // oid of our subscription, 0 when none
	others map[uint32]bool          // pg_<oid> origins known not to be ours
}

// setup makes sure the publication and the slot exist, that every
// replicated table has REPLICA IDENTITY FULL, and reads the schema. It is
// idempotent. It returns the slot's confirmed_flush_lsn.
func (s *Source) setup(ctx context.Context, cat *catalog, rconn *pgconn.PgConn) (pglogrepl.LSN, error) {
	conn := cat.conn
	var walLevel string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil {
		return 0, fmt.Errorf("reading wal_level: %w", err)
	}
	if walLevel != "logical" {
		return 0, fmt.Errorf("postgres has wal_level = %s: set wal_level = logical and restart it", walLevel)
	}

	if err := s.ensurePublication(ctx, conn); err != nil {
		return 0, err
	}

	confirmed, found, err := s.readSlot(ctx, conn)
	if err != nil {
		return 0, err
	}
	lost := false
	if found {
		if lost, err = s.dropLostSlot(ctx, conn, confirmed); err != nil {
			return 0, err
		}
		found = !lost
	}
	lostAt := confirmed
	if !found {
		_, err := pglogrepl.CreateReplicationSlot(ctx, rconn, s.opts.Slot, "pgoutput",
			pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "NOEXPORT_SNAPSHOT"})
		if err != nil && !isDuplicate(err) {
			return 0, fmt.Errorf("creating replication slot %s: %w", s.opts.Slot, err)
		}
		if err == nil {
			s.log.Info("created replication slot", "slot", s.opts.Slot)
		}
		if confirmed, found, err = s.readSlot(ctx, conn); err != nil {
			return 0, err
		}
		if !found {
			return 0, fmt.Errorf("replication slot %s vanished right after its creation", s.opts.Slot)
		}
		if lost {
			s.noteSlotRecreated(lostAt, confirmed)
		}
	}

	if err := s.ensureHistory(ctx, conn); err != nil {
		s.log.Warn("could not install the schema history (needs a superuser): a column renamed, or given values by a default or a type change, is not seen by the merged rows and may be sent as NULL", "err", err)
	}
	if err := s.ensureIdentityTrigger(ctx, conn); err != nil {
		s.log.Warn("could not install the event trigger that sets REPLICA IDENTITY FULL on new tables (needs a superuser): updates of a new table count as writing every column until the connector sees it", "err", err)
	}
	if err := cat.refresh(ctx, true); err != nil {
		return 0, err
	}
	if err := cat.lookupSubscription(ctx); err != nil {
		return 0, err
	}
	return confirmed, nil
}

// identityTriggerSQL installs an event trigger that gives every new table
// REPLICA IDENTITY FULL in the transaction that creates it. Without it a
// table created while the connector runs only gets FULL once its first
// change is streamed, and updates committed before that lack the old row.
const identityTriggerSQL = `
CREATE SCHEMA IF NOT EXISTS electric;
CREATE OR REPLACE FUNCTION electric.replica_identity_full() RETURNS event_trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT c.oid FROM pg_catalog.pg_event_trigger_ddl_commands() d
    JOIN pg_catalog.pg_class c ON c.oid = d.objid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND c.relreplident <> 'f'
      AND n.nspname <> 'electric'
  LOOP
    EXECUTE pg_catalog.format('ALTER TABLE %s REPLICA IDENTITY FULL', r.oid::pg_catalog.regclass);
  END LOOP;
END
$fn$;
CREATE EVENT TRIGGER electric_replica_identity_full ON ddl_command_end
  WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
  EXECUTE FUNCTION electric.replica_identity_full();`

func (s *Source) ensureIdentityTrigger(ctx context.Context, conn *pgx.Conn) error {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'electric_replica_identity_full')`).Scan(&exists); err != nil {
		return fmt.Errorf("reading event triggers: %w", err)
	}
	if exists {
		return nil
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("installing the replica identity trigger: %w", err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, identityTriggerSQL); err != nil {
		if isDuplicate(err) {
			return nil // installed concurrently
		}
		return fmt.Errorf("installing the replica identity trigger: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("installing the replica identity trigger: %w", err)
	}
	s.log.Info("installed event trigger electric_replica_identity_full: new tables get REPLICA IDENTITY FULL")
	return nil
}

// readSlot reads the slot's confirmed position and checks it is ours to use.
func (s *Source) readSlot(ctx context.Context, conn *pgx.Conn) (pglogrepl.LSN, bool, error) {
	var (
		plugin, slotType, db string
		confirmed            *string
		sameDB               bool
	)
	err := conn.QueryRow(ctx, `
SELECT coalesce(plugin, ''), slot_type, coalesce(database::text, ''), confirmed_flush_lsn::text,
       coalesce(database = current_database(), false)
FROM pg_replication_slots WHERE slot_name = $1`, s.opts.Slot).Scan(&plugin, &slotType, &db, &confirmed, &sameDB)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("reading replication slot %s: %w", s.opts.Slot, err)
	}
	if slotType != "logical" || plugin != "pgoutput" {
		return 0, false, fmt.Errorf("replication slot %s is a %s slot with plugin %q: electric needs a logical pgoutput slot; drop it or choose another slot name", s.opts.Slot, slotType, plugin)
	}
	if !sameDB {
		return 0, false, fmt.Errorf("replication slot %s belongs to database %q, not the connector's", s.opts.Slot, db)
	}
	var lsn pglogrepl.LSN
	if confirmed != nil {
		if lsn, err = pglogrepl.ParseLSN(*confirmed); err != nil {
			return 0, false, fmt.Errorf("reading replication slot %s: %w", s.opts.Slot, err)
		}
	}
	return lsn, true, nil
}

// refresh re-reads the schema; at setup (all=true) it also reports every
// table's state, later only tables that are new or changed.
func (c *catalog) refresh(ctx context.Context, all bool) error {
	tables, err := schema.Introspect(ctx, c.conn)
	if err != nil {
		return err
	}
	prev := c.tables
	c.tables = make(map[string]*schema.Table, len(tables))
	var identityFull []string
	for i := range tables {
		t := &tables[i]
		name := t.QualifiedName()
		c.tables[name] = t
		old, known := prev[name]
		isNew := all || !known || old.OID != t.OID || !sameKey(old, t)
		if len(t.PrimaryKey) == 0 {
			reason := "no primary key: its changes are ignored; add a primary key to replicate it"
			c.s.setSkipped(name, reason)
			if isNew {
				c.s.warnOnce("nopk:"+name+":"+strconv.FormatUint(uint64(t.OID), 10), "table has no primary key: its changes are ignored; add a primary key to replicate it", "table", name)
			}
		} else {
			c.s.setSkipped(name, "")
			if len(t.GeneratedKey) > 0 && isNew {
				c.s.warnOnce("genkey:"+name+":"+strconv.FormatUint(uint64(t.OID), 10),
					"table's primary key comes from a sequence or identity: two Postgres minting the same ids would merge unrelated rows; prefer uuids or disjoint ranges",
					"table", name, "columns", strings.Join(t.GeneratedKey, ","))
			}
		}
		// Every table gets FULL, with or without a key: the all-tables
		// publication makes UPDATE and DELETE fail on a table without a
		// replica identity, and the old row is how updates show what changed.
		set, err := ReplicaIdentityFull(ctx, c.conn, t)
		if err != nil {
			// Not fatal: updates without the old row count as writing every
			// column, and the next refresh tries again.
			c.s.log.Warn("could not set REPLICA IDENTITY FULL: updates of this table count as writing every column", "table", name, "err", err)
			continue
		}
		if set {
			identityFull = append(identityFull, name)
		}
	}
	if len(identityFull) > 0 {
		c.s.log.Info("set REPLICA IDENTITY FULL so updates carry the old row", "tables", strings.Join(identityFull, ","))
	}
	return nil
}

// Execer runs SQL on a connection or in the caller's transaction
// (*pgx.Conn, pgx.Tx).
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// ReplicaIdentityFull gives table t REPLICA IDENTITY FULL unless it has it
// already (per t.ReplicaIdentity, which it updates), and reports whether it
// changed it. A full old row is how an update shows which columns it changed
// (DESIGN.md "Conflict semantics"), and the all-tables publication refuses
// UPDATE and DELETE on a table without a replica identity. q may be the
// caller's transaction: a migration sets it in the transaction that changes
// the schema.
func ReplicaIdentityFull(ctx context.Context, q Execer, t *schema.Table) (bool, error) {
	if t.ReplicaIdentity == 'f' {
		return false, nil
	}
	if _, err := q.Exec(ctx, "ALTER TABLE "+t.Quoted()+" REPLICA IDENTITY FULL"); err != nil {
		return false, fmt.Errorf("setting replica identity full on %s: %w", t.QualifiedName(), err)
	}
	t.ReplicaIdentity = 'f'
	return true, nil
}

func sameKey(a, b *schema.Table) bool {
	if len(a.PrimaryKey) != len(b.PrimaryKey) || len(a.Columns) != len(b.Columns) {
		return false
	}
	for i := range a.PrimaryKey {
		if a.PrimaryKey[i] != b.PrimaryKey[i] {
			return false
		}
	}
	return true
}

// lookupSubscription finds the oid of the subscription named after the
// connector (created by the publisher side; absent until then).
func (c *catalog) lookupSubscription(ctx context.Context) error {
	var oid uint32
	err := c.conn.QueryRow(ctx, `
SELECT s.oid FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid
WHERE s.subname = $1 AND d.datname = current_database()`, c.s.opts.Name).Scan(&oid)
	if errors.Is(err, pgx.ErrNoRows) {
		oid = 0
	} else if err != nil {
		return fmt.Errorf("reading subscription %s: %w", c.s.opts.Name, err)
	}
	if oid != c.subOID && oid != 0 {
		c.s.log.Info("found the connector's subscription: its transactions are echoes", "subscription", c.s.opts.Name, "origin", "pg_"+strconv.FormatUint(uint64(oid), 10))
	}
	c.subOID = oid
	c.others = map[uint32]bool{}
	return nil
}

// isEcho reports whether a replication origin name is our subscription's.
func (c *catalog) isEcho(ctx context.Context, origin string) (bool, error) {
	n, ok := strings.CutPrefix(origin, "pg_")
	if !ok {
		return false, nil
	}
	v, err := strconv.ParseUint(n, 10, 32)
	if err != nil {
		return false, nil
	}
	oid := uint32(v)
	if c.subOID != 0 && oid == c.subOID {
		return true, nil
	}
	if c.others[oid] {
		return false, nil
	}
	// An origin we have not seen: our subscription may be new.
	if err := c.lookupSubscription(ctx); err != nil {
		return false, err
	}
	if oid == c.subOID {
		return true, nil
	}
	c.others[oid] = true
	return false, nil
}

// resolve maps a Relation message to a relation, re-reading the schema when
// the table is unknown or has changed.
func (c *catalog) resolve(ctx context.Context, m *pglogrepl.RelationMessage) (*relation, error) {
	name := m.Namespace + "." + m.RelationName
	rel := &relation{id: m.RelationID, table: name}
	for _, col := range m.Columns {
		rel.cols = append(rel.cols, col.Name)
	}
	if m.Namespace == "electric" {
		rel.electric = true
		return rel, nil
	}
	t := c.tables[name]
	// pgoutput resends a Relation after DDL on the table: re-read the schema
	// when the stream has columns we do not know, or when the table had no
	// key (one may have been added).
	if t == nil || t.OID != m.RelationID || !hasColumns(t, rel.cols) || len(t.PrimaryKey) == 0 {
		if err := c.refresh(ctx, false); err != nil {
			return nil, fmt.Errorf("re-reading the schema for %s: %w", name, err)
		}
		t = c.tables[name]
	}
	if t == nil {
		// Dropped or renamed since: its changes cannot be keyed.
		c.s.warnOnce("gone:"+name, "table of a change is no longer in the catalog: its changes are ignored", "table", name)
		rel.skip = true
		return rel, nil
	}
	if len(t.PrimaryKey) == 0 {
		rel.skip = true
		return rel, nil
	}
	for _, k := range t.PrimaryKey {
		idx := -1
		for i, col := range rel.cols {
			if col == k {
				idx = i
			}
		}
		if idx < 0 {
			c.s.warnOnce("keycol:"+name+":"+k, "primary key column missing from the replication stream: changes ignored", "table", name, "column", k)
			rel.skip = true
			return rel, nil
		}
		rel.keyIdx = append(rel.keyIdx, idx)
	}
	return rel, nil
}

// hasColumns reports whether t knows every streamed column (it may know
// more: generated columns are not streamed, dropped ones do not matter).
func hasColumns(t *schema.Table, cols []string) bool {
	for _, c := range cols {
		if _, ok := t.Column(c); !ok {
			return false
		}
	}
	return true
}

func isDuplicate(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42710"
}

// readStats reads the slot's retained WAL and lag on a side connection.
func (s *Source) readStats(ctx context.Context, conn *pgx.Conn) {
	var retained, lag *int64
	var walStatus *string
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := conn.QueryRow(ctx, `
SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint,
       pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint,
       wal_status
FROM pg_replication_slots WHERE slot_name = $1`, s.opts.Slot).Scan(&retained, &lag, &walStatus)
	if err == nil && walStatus != nil {
		s.noteWALStatus(*walStatus)
		if *walStatus == walLost {
			// Invalidated under us: the stream cannot go on; setup
			// recreates the slot on the next connection.
			s.mu.Lock()
			if s.streamCancel != nil {
				s.streamCancel()
			}
			s.mu.Unlock()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if !s.rateAt.IsZero() {
		if d := now.Sub(s.rateAt).Seconds(); d > 0 {
			s.rate = float64(s.txs-s.rateTxs) / d
		}
	}
	s.rateAt, s.rateTxs = now, s.txs
	if err != nil {
		s.retained, s.lagBytes = -1, -1
		return
	}
	s.retained, s.lagBytes = -1, -1
	if retained != nil {
		s.retained = *retained
	}
	if lag != nil {
		s.lagBytes = *lag
	}
}
