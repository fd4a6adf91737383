package engine

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/engine/sequencer"
	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/migrations"
	"github.com/electric-sql/electric-go/migrations/bundle"
)

// bookSource is where the engine keeps its migrations.Book: a position of
// the log's state under a name no source can have (connector names have no
// ':', Satellite sources are "satellite:<client id>"). The log's state is
// the engine's one durable store, written through the single writer, and
// what Satellites are served is decided from the log, so the published
// schema belongs with it: it is there whether or not a Postgres is up.
const bookSource = "electric:satellite_schemas"

// satSchemas is the engine's Satellite schema book, cached in memory.
type satSchemas struct {
	mu     sync.Mutex
	book   *migrations.Book // nil until loaded
	warned bool             // "nothing published" was logged
}

// loadBook returns the book (loaded from the log's state once). The caller
// holds e.sats.mu.
func (e *Engine) loadBook() (*migrations.Book, error) {
	if e.sats.book != nil {
		return e.sats.book, nil
	}
	raw, err := e.txlog.Position(bookSource)
	if err != nil {
		return nil, fmt.Errorf("reading the recorded migration schemas: %w", err)
	}
	b, err := migrations.LoadBook(raw)
	if err != nil {
		return nil, err
	}
	e.sats.book = b
	return b, nil
}

// saveBook makes b durable and then the engine's book. The caller holds
// e.sats.mu.
func (e *Engine) saveBook(ctx context.Context, b *migrations.Book) error {
	if _, err := e.seq.Submit(ctx, sequencer.Item{Source: bookSource, Position: b.Marshal()}); err != nil {
		return fmt.Errorf("storing the recorded migration schemas: %w", err)
	}
	e.sats.book = b
	return nil
}

// recordSchema records the schema the migration left (tables, read in its
// own transaction) unless that migration is recorded already: the first
// connector to apply it decides its bundle entry, once.
func (e *Engine) recordSchema(ctx context.Context, origin string, m migrations.Migration, tables []schema.Table) error {
	e.sats.mu.Lock()
	defer e.sats.mu.Unlock()
	b, err := e.loadBook()
	if err != nil {
		return err
	}
	nb := b.Clone()
	added, differs := nb.Add(m.Name, migrations.Title(m), origin, migrations.SchemaOf(tables), time.Now())
	log := e.log.With("connector", origin, "vsn", m.Name)
	if differs {
		r := b.Find(m.Name)
		log.Warn("the schema after this migration differs from the one recorded on another connector; Satellites keep the recorded one", "recorded_on", r.Connector)
		e.events.Publish(status.Event{Kind: status.KindMigration, Connector: origin,
			Message: fmt.Sprintf("schema after %s differs from the one recorded on %s", m.Name, r.Connector)})
	}
	if !added {
		return nil
	}
	if err := e.saveBook(ctx, nb); err != nil {
		return err
	}
	if r := nb.Find(m.Name); r.Error != "" {
		log.Warn("Satellite clients cannot follow this migration: it has no bundle entry, nor will later ones", "why", r.Error)
		e.events.Publish(status.Event{Kind: status.KindError, Connector: origin,
			Message: "Satellite clients cannot follow " + m.Name + ": " + r.Error})
	} else {
		log.Info("recorded the schema after the migration for Satellites", "tables", len(r.Schema.Tables))
	}
	return nil
}

// The migrations API's Satellite side (migrations.SatelliteController).

func (m migrationController) Bundle(ctx context.Context) ([]bundle.Migration, error) {
	e := m.e
	e.sats.mu.Lock()
	defer e.sats.mu.Unlock()
	b, err := e.loadBook()
	if err != nil {
		return nil, err
	}
	return b.Bundle()
}

func (m migrationController) Published(ctx context.Context) (migrations.PublishedStatus, error) {
	return m.e.publishedStatus()
}

func (m migrationController) Publish(ctx context.Context, name string) (migrations.PublishedStatus, error) {
	e := m.e
	e.sats.mu.Lock()
	b, err := e.loadBook()
	if err != nil {
		e.sats.mu.Unlock()
		return migrations.PublishedStatus{}, err
	}
	nb := b.Clone()
	if err := nb.Publish(name, e.txlog.Head(), time.Now()); err != nil {
		e.sats.mu.Unlock()
		return migrations.PublishedStatus{}, err
	}
	if err := e.saveBook(ctx, nb); err != nil {
		e.sats.mu.Unlock()
		return migrations.PublishedStatus{}, err
	}
	e.sats.mu.Unlock()
	e.log.Info("Satellites are served the schema of a migration", "vsn", name)
	e.events.Publish(status.Event{Kind: status.KindMigration, Message: "Satellites are served the schema of " + name})
	if len(e.cfg.SatelliteTables) == 0 {
		e.sat.TablesChanged() // connected clients get what they gained now
	}
	return e.publishedStatus()
}

func (e *Engine) publishedStatus() (migrations.PublishedStatus, error) {
	e.sats.mu.Lock()
	b, err := e.loadBook()
	var name string
	if err == nil {
		if r := b.Published(); r != nil {
			name = r.Name
		}
	}
	e.sats.mu.Unlock()
	if err != nil {
		return migrations.PublishedStatus{}, err
	}
	p := migrations.PublishedStatus{Name: name, Tables: []string{}, Override: len(e.cfg.SatelliteTables) > 0}
	for _, t := range e.satelliteTables() {
		p.Tables = append(p.Tables, t.QualifiedName())
	}
	return p, nil
}

// satelliteTables are the tables streamed to Satellites, with the columns
// the clients have:
//   - SATELLITE_TABLES when set (an explicit override);
//   - else the schema of the published migration (`electric migrate
//     publish`): its tables and columns, as far as the live schema still
//     has them (fewer columns are safe for a client, more crash it);
//   - else, when no migration has a recorded schema (a deployment that does
//     not migrate through the engine), every replicated table;
//   - else nothing, until a migration is published.
//
// The live schema is the first connector's with a known schema.
func (e *Engine) satelliteTables() []schema.Table {
	var live []schema.Table
	for _, c := range e.conns {
		if v := c.sub.View(); v != nil && v.Ready {
			live = v.Tables
			break
		}
	}
	if live == nil {
		return nil
	}
	if len(e.cfg.SatelliteTables) > 0 {
		var out []schema.Table
		for _, t := range live {
			if slices.Contains(e.cfg.SatelliteTables, t.QualifiedName()) {
				out = append(out, t)
			}
		}
		return out
	}
	e.sats.mu.Lock()
	defer e.sats.mu.Unlock()
	b, err := e.loadBook()
	if err != nil {
		e.log.Error("Satellites get no tables", "err", err)
		return nil
	}
	pub := b.Published()
	switch {
	case pub != nil:
		return restrictTo(live, pub.Schema)
	case len(b.Records) == 0:
		return live
	}
	if !e.sats.warned {
		e.sats.warned = true
		e.log.Warn("migrations have recorded schemas but none is published: Satellites get no tables until 'electric migrate publish NAME'")
	}
	return nil
}

// restrictTo keeps the tables and columns of live that s has, in live's
// column order.
func restrictTo(live []schema.Table, s bundle.Schema) []schema.Table {
	want := map[string]map[string]bool{}
	for _, t := range s.Tables {
		cols := map[string]bool{}
		for _, c := range t.Columns {
			cols[c.Name] = true
		}
		want[t.Schema+"."+t.Name] = cols
	}
	var out []schema.Table
	for _, t := range live {
		cols, ok := want[t.QualifiedName()]
		if !ok {
			continue
		}
		nt := t
		nt.Columns = nil
		for _, c := range t.Columns {
			if cols[c.Name] {
				nt.Columns = append(nt.Columns, c)
			}
		}
		out = append(out, nt)
	}
	return out
}

// satelliteGained names the tables a Satellite resuming after log offset
// after gains with the published schema: those the schema it was served
// then lacked, or whose columns it lacked. Nil with SATELLITE_TABLES.
func (e *Engine) satelliteGained(after uint64) []string {
	if len(e.cfg.SatelliteTables) > 0 {
		return nil
	}
	e.sats.mu.Lock()
	defer e.sats.mu.Unlock()
	b, err := e.loadBook()
	if err != nil {
		return nil
	}
	pub := b.Published()
	if pub == nil {
		return nil
	}
	return migrations.Gained(b.PublishedBefore(after), pub.Schema)
}
