package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/migrations"
)

// migrationController runs the seed's migration flow (spec §4.6) for the
// migrations API: pause the connector's subscription, apply the file with its
// electric.migrations row in one transaction, let the connector pick up the
// new schema (refresh, triggers, backfill), resume.
type migrationController struct{ e *Engine }

func (m migrationController) Origins() []string {
	out := make([]string, 0, len(m.e.conns))
	for _, c := range m.e.conns {
		out = append(out, c.cfg.Name)
	}
	return out
}

func (m migrationController) Latest(ctx context.Context, origin string) (*migrations.Applied, error) {
	c, ok := m.e.byName[origin]
	if !ok {
		return nil, migrations.ErrUnknownOrigin
	}
	conn, err := connect(ctx, c.cfg.URI)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	list, err := migrations.AppliedList(ctx, conn)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	return &list[0], nil
}

func connect(ctx context.Context, uri string) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, uri)
	if err != nil {
		return nil, fmt.Errorf("connecting to postgres: %w", err)
	}
	return conn, nil
}

func (m migrationController) Migrate(ctx context.Context, origin string, mig migrations.Migration) (err error) {
	e := m.e
	c, ok := e.byName[origin]
	if !ok {
		return migrations.ErrUnknownOrigin
	}
	c.mu.Lock()
	if c.migrating {
		c.mu.Unlock()
		return fmt.Errorf("%w: a migration is already running", migrations.ErrNotReady)
	}
	if !(c.source.Ready() && c.sub.Status().State == "ready") {
		c.mu.Unlock()
		return migrations.ErrNotReady
	}
	c.migrating = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.migrating = false
		c.mu.Unlock()
	}()
	log := e.log.With("connector", origin, "vsn", mig.Name)
	event := func(msg string) {
		e.events.Publish(status.Event{Kind: status.KindMigration, Connector: origin, Message: msg})
	}
	log.Info("migration: prepare to migrate to vsn")
	event("migrating to " + mig.Name)

	conn, err := connect(ctx, c.cfg.URI)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	sub := schema.QuoteIdent(origin)
	log.Info("about to stop postgresql replication and subscriptions")
	if _, err := conn.Exec(ctx, "ALTER SUBSCRIPTION "+sub+" DISABLE"); err != nil {
		return fmt.Errorf("pausing subscription %s: %w", origin, err)
	}
	// Resume whatever happens: a failed migration must not leave the
	// connector without replication.
	defer func() {
		if _, rerr := conn.Exec(context.Background(), "ALTER SUBSCRIPTION "+sub+" ENABLE"); rerr != nil {
			log.Error("resuming the subscription after the migration", "err", rerr)
			if err == nil {
				err = fmt.Errorf("resuming subscription %s: %w", origin, rerr)
			}
		}
	}()
	log.Info("about to apply migration")
	if err := migrations.Apply(ctx, conn, mig); err != nil {
		log.Error("failed to migrate to version", "err", err)
		if errors.Is(err, migrations.ErrBadStatements) {
			log.Error("bad migration", "err", err)
		}
		event("migration " + mig.Name + " failed: " + err.Error())
		return err
	}
	// Every replicated table needs full old rows to tell which columns an
	// update changed (DESIGN.md "Conflict semantics").
	if err := replicaIdentityFull(ctx, conn); err != nil {
		return err
	}
	// Wait until the connector has seen the new schema (it refreshes the
	// subscription, installs triggers and backfills) before resuming.
	want, err := schema.Introspect(ctx, conn)
	if err != nil {
		return err
	}
	if err := waitForSchema(ctx, c, want); err != nil {
		return err
	}
	log.Info("successfully migrated to version")
	event("migrated to " + mig.Name)
	return nil
}

func replicaIdentityFull(ctx context.Context, conn *pgx.Conn) error {
	tables, err := schema.Introspect(ctx, conn)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if len(t.PrimaryKey) > 0 && t.ReplicaIdentity != 'f' {
			if _, err := conn.Exec(ctx, "ALTER TABLE "+t.Quoted()+" REPLICA IDENTITY FULL"); err != nil {
				return fmt.Errorf("setting replica identity full on %s: %w", t.QualifiedName(), err)
			}
		}
	}
	return nil
}

// waitForSchema waits until the connector's view lists every keyed table of
// want with the same columns.
func waitForSchema(ctx context.Context, c *conn, want []schema.Table) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		if v := c.sub.View(); v != nil && v.Refreshed && viewCovers(v.Tables, v.Subscribed, want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("connector %s did not pick up the new schema within 60s", c.cfg.Name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func viewCovers(have []schema.Table, subscribed map[string]bool, want []schema.Table) bool {
	idx := map[string]*schema.Table{}
	for i := range have {
		idx[have[i].QualifiedName()] = &have[i]
	}
	for _, w := range want {
		if len(w.PrimaryKey) == 0 {
			continue
		}
		h, ok := idx[w.QualifiedName()]
		if !ok || !subscribed[w.QualifiedName()] || len(h.Columns) != len(w.Columns) {
			return false
		}
	}
	return true
}

// BackfillOrigin is the replication origin of the engine's backfill writes:
// ingest drops transactions with it, like echoes, so they are not merged again.
const BackfillOrigin = "electric_backfill"

// backfill writes the merged state of tables into one connector's Postgres:
// a table or column it just gained has missed the log entries written before
// (the publisher drops what a Postgres lacks), so replicas converge only once
// the merged rows are copied in.
func (e *Engine) backfill(connector string, tables []string) {
	c := e.byName[connector]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := e.backfillTables(ctx, c, tables); err != nil {
		e.log.Error("backfill failed", "connector", connector, "tables", tables, "err", err)
		e.events.Publish(status.Event{Kind: status.KindError, Connector: connector, Message: "backfill failed: " + err.Error()})
		return
	}
}

func (e *Engine) backfillTables(ctx context.Context, c *conn, tables []string) error {
	v := c.sub.View()
	if v == nil {
		return errors.New("connector schema unknown")
	}
	byName := map[string]*schema.Table{}
	for i := range v.Tables {
		byName[v.Tables[i].QualifiedName()] = &v.Tables[i]
	}
	conn, err := connect(ctx, c.cfg.URI)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `SELECT pg_replication_origin_create($1) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_origin WHERE roname = $1)`, BackfillOrigin); err != nil {
		return fmt.Errorf("creating the backfill origin: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_replication_origin_session_setup($1)`, BackfillOrigin); err != nil {
		return fmt.Errorf("marking the backfill session: %w", err)
	}
	total := 0
	for _, name := range tables {
		t, ok := byName[name]
		if !ok || len(t.PrimaryKey) == 0 {
			continue
		}
		n, err := e.backfillTable(ctx, conn, t)
		if err != nil {
			return fmt.Errorf("backfilling %s: %w", name, err)
		}
		total += n
	}
	if total > 0 {
		e.log.Info("backfilled from the merged state", "connector", c.cfg.Name, "tables", tables, "rows", total)
	}
	return nil
}

func (e *Engine) backfillTable(ctx context.Context, conn *pgx.Conn, t *schema.Table) (int, error) {
	cols := make([]string, len(t.Columns))
	params := make([]string, len(t.Columns))
	var sets []string
	for i, col := range t.Columns {
		cols[i] = schema.QuoteIdent(col.Name)
		params[i] = fmt.Sprintf("$%d::text::%s", i+1, col.TypeName)
		if !t.IsKey(col.Name) {
			sets = append(sets, cols[i]+" = EXCLUDED."+cols[i])
		}
	}
	keys := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		keys[i] = schema.QuoteIdent(k)
	}
	action := "DO NOTHING"
	if len(sets) > 0 {
		action = "DO UPDATE SET " + strings.Join(sets, ", ")
	}
	q := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) %s",
		t.Quoted(), strings.Join(cols, ", "), strings.Join(params, ", "), strings.Join(keys, ", "), action)
	batch := &pgx.Batch{}
	n := 0
	flush := func() error {
		if batch.Len() == 0 {
			return nil
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx) //nolint:errcheck
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return err
		}
		batch = &pgx.Batch{}
		return tx.Commit(ctx)
	}
	err := e.txlog.Rows(t.QualifiedName(), func(_ string, r *merge.Row) error {
		if !r.Live() {
			return nil
		}
		img := r.Image()
		args := make([]any, len(t.Columns))
		for i, col := range t.Columns {
			v, ok := img[col.Name]
			if !ok || v.Null {
				args[i] = nil
			} else {
				args[i] = v.Text
			}
		}
		batch.Queue(q, args...)
		n++
		if batch.Len() >= 1000 {
			return flush()
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	return n, flush()
}
