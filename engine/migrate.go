package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/engine/connector"
	"github.com/electric-sql/electric-go/engine/pgsource"
	"github.com/electric-sql/electric-go/engine/publisher"
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
	list, err := c.applied.Applied(ctx)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	return &list[0], nil
}

// Refused logs what the handler refuses alone (no such migration file).
func (m migrationController) Refused(origin, vsn string, err error) {
	log := m.e.log.With("connector", origin, "vsn", vsn)
	log.Error("failed to migrate to version", "err", err)
	log.Error("bad migration", "err", err)
}

func (m migrationController) Applied(ctx context.Context, origin string) ([]migrations.Applied, error) {
	c, ok := m.e.byName[origin]
	if !ok {
		return nil, migrations.ErrUnknownOrigin
	}
	list, err := c.applied.Applied(ctx)
	if errors.Is(err, migrations.ErrNoMigrationsTable) {
		return nil, nil
	}
	return list, err
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
	if !(c.source.Ready() && c.sub.Status().Ready()) {
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
	// A client that gives up must not leave a migration half way (paused
	// replication, no backfill): finish it whatever the request does.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
	defer cancel()
	log := e.log.With("connector", origin, "vsn", mig.Name)
	event := func(msg string) {
		e.events.Publish(status.Event{Kind: status.KindMigration, Connector: origin, Message: msg})
	}
	log.Info("migration: prepare to migrate to vsn")
	event("migrating to " + mig.Name)
	before := c.sub.View()

	conn, err := connect(ctx, c.cfg.URI)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	// Already applied: refuse without pausing replication (Apply checks
	// again in its transaction).
	if err := migrations.CheckNotApplied(ctx, conn, mig); err != nil {
		log.Error("failed to migrate to version", "err", err)
		event("migration " + mig.Name + " refused: " + err.Error())
		return err
	}
	log.Info("about to stop postgresql replication and subscriptions")
	resumed := false
	defer func() {
		// A failed migration must not leave the connector without
		// replication.
		if resumed {
			return
		}
		if rerr := c.sub.Resume(context.Background(), conn); rerr != nil {
			log.Error("resuming the subscription after the migration", "err", rerr)
			if err == nil {
				err = rerr
			}
		}
	}()
	if err := c.sub.Pause(ctx, conn); err != nil {
		return err
	}
	log.Info("about to apply migration")
	var tables []schema.Table // the schema the migration left, read in its transaction
	err = migrations.ApplyThen(ctx, conn, mig, func(ctx context.Context, tx pgx.Tx) error {
		// Every replicated table needs full old rows to tell which columns
		// an update changed (DESIGN.md "Conflict semantics"). The
		// subscription is enabled in the same transaction: the connector
		// never sees the new schema with replication paused (it could not
		// refresh the subscription then).
		var err error
		if tables, err = replicaIdentityFull(ctx, tx); err != nil {
			return err
		}
		return c.sub.Resume(ctx, tx)
	})
	if err != nil {
		log.Error("failed to migrate to version", "err", err)
		if errors.Is(err, migrations.ErrBadStatements) {
			log.Error("bad migration", "err", err)
		}
		event("migration " + mig.Name + " failed: " + err.Error())
		return err
	}
	resumed = true
	// Right after the commit: the schema it left, for the Satellite
	// bundle. A crash in between leaves this migration unrecorded here; the
	// next connector to apply it records it, and otherwise the next
	// recorded migration's entry covers its changes too.
	if err := e.recordSchema(ctx, origin, mig, tables); err != nil {
		log.Error("recording the schema after the migration failed", "err", err)
		event("migration " + mig.Name + ": recording its schema for Satellites failed: " + err.Error())
		return fmt.Errorf("migration %s applied, but recording its schema for Satellites failed: %w", mig.Name, err)
	}
	// The connector picks up the new schema (triggers, subscription
	// refresh); then the tables and columns it gained get the rows the
	// log holds for them.
	want, err := connector.ReplicatedTables(ctx, conn) // the schema as the connector sees it
	if err != nil {
		return err
	}
	after, err := waitForSchema(ctx, c, want)
	if err != nil {
		return err
	}
	if gained := gainedTables(before, after); len(gained) > 0 {
		if err := e.pub.Backfill(c.cfg.Name, gained); err != nil {
			log.Error("backfill after the migration failed", "err", err)
			return fmt.Errorf("migration %s applied, but backfilling %v failed: %w", mig.Name, gained, err)
		}
	}
	// The connector may be the one Satellites' tables are read from: a
	// published schema it now has more of is sent to connected clients.
	e.sat.TablesChanged()
	log.Info("successfully migrated to version")
	// The migration may have removed what the withheld rows failed on.
	e.retryWithheldAfterMigration(ctx, origin)
	// The seed re-initialised the connector after each migration and its
	// end-to-end tests wait for this line.
	log.Info("Successfully initialized origin " + origin)
	event("migrated to " + mig.Name)
	return nil
}

// replicaIdentityFull gives every keyed table REPLICA IDENTITY FULL in the
// migration's transaction (tables without a key are not replicated into),
// and returns the tables as the migration left them.
func replicaIdentityFull(ctx context.Context, tx pgx.Tx) ([]schema.Table, error) {
	tables, err := schema.Introspect(ctx, tx)
	if err != nil {
		return nil, err
	}
	for i := range tables {
		if len(tables[i].PrimaryKey) == 0 {
			continue
		}
		if _, err := pgsource.ReplicaIdentityFull(ctx, tx, &tables[i]); err != nil {
			return nil, err
		}
	}
	return tables, nil
}

// waitForSchema waits until the connector's view lists every keyed table of
// want, subscribed, with the same columns, and returns that view.
func waitForSchema(ctx context.Context, c *conn, want []schema.Table) (*publisher.View, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		if v := c.sub.View(); v != nil && v.Refreshed && viewCovers(v.Tables, v.Subscribed, want) {
			return v, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("connector %s did not pick up the new schema within 60s", c.cfg.Name)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
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
		if !ok || !subscribed[w.QualifiedName()] || !sameColumnNames(h, &w) {
			return false
		}
	}
	return true
}

// sameColumnNames compares the column sets by name and type: a migration
// that only changes a type is picked up (and its values read back) before
// the next one pauses the subscription.
func sameColumnNames(have, want *schema.Table) bool {
	if len(have.Columns) != len(want.Columns) || !reflect.DeepEqual(columnNames(have), columnNames(want)) {
		return false
	}
	for i := range have.Columns {
		if have.Columns[i].TypeName != want.Columns[i].TypeName {
			return false
		}
	}
	return true
}

// gainedTables are the subscribed tables of after that before did not have
// subscribed, or had with other columns: the log entries written before they
// were subscribed did not reach them.
func gainedTables(before, after *publisher.View) []string {
	old := map[string]*schema.Table{}
	if before != nil {
		for i := range before.Tables {
			if q := before.Tables[i].QualifiedName(); before.Subscribed[q] {
				old[q] = &before.Tables[i]
			}
		}
	}
	var out []string
	for i := range after.Tables {
		t := &after.Tables[i]
		q := t.QualifiedName()
		if !after.Subscribed[q] {
			continue
		}
		if o, ok := old[q]; !ok || !reflect.DeepEqual(columnNames(o), columnNames(t)) {
			out = append(out, q)
		}
	}
	sort.Strings(out)
	return out
}

func columnNames(t *schema.Table) []string {
	out := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		out[i] = c.Name
	}
	return out
}

// backfill gets the merged rows of tables that one connector's Postgres just
// gained (a new table, or new columns) into it: the publisher dropped what
// that Postgres lacked from the entries it already sent, so replicas converge
// only once the merged rows are copied in. The publisher sends them inside
// the subscription's stream, in order with the entries around them.
func (e *Engine) backfill(connector string, tables []string) {
	c := e.byName[connector]
	c.mu.Lock()
	migrating := c.migrating
	c.mu.Unlock()
	if migrating {
		// The migration backfills what it changed once the connector has
		// picked it up, and only then reports success.
		e.log.Debug("backfill left to the running migration", "connector", connector, "tables", tables)
		return
	}
	if err := e.pub.Backfill(connector, tables); err != nil {
		e.log.Error("backfill failed", "connector", connector, "tables", tables, "err", err)
		e.events.Publish(status.Event{Kind: status.KindError, Connector: connector, Message: "backfill failed: " + err.Error()})
	}
}
