package engine_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/electric-sql/electric-go/migrations"
)

// The engine records the schema each migration leaves when a connector first
// applies it, builds its bundle entry once, and keeps the bundle and the
// published migration in its state across a restart (issue 15 points 1, 2).
func TestMigrationsRecordSchemaAndPublish(t *testing.T) {
	c := newCluster(t, 2, migrations.TableDDL)
	dir := t.TempDir()
	writeMigration(t, dir, migInit, migInitSQL)
	writeMigration(t, dir, migAddColumn, migAddColumnSQL)
	c.start(dir)
	ctx := context.Background()
	cl := &migrations.Client{BaseURL: c.statusURL()}

	c.migrate("postgres_1", migInit)
	b1, err := cl.Bundle(ctx)
	if err != nil || len(b1) != 1 || b1[0].Name != migInit || !strings.Contains(strings.Join(b1[0].SatelliteBody, "\n"), "items") {
		t.Fatalf("bundle after the first migration: %+v %v", b1, err)
	}
	c.migrate("postgres_2", migInit)
	// The second migration first on the other connector; the first one
	// has a column more by then, added outside any migration: it is told.
	c.migrate("postgres_2", migAddColumn)
	c.exec("postgres_1", "ALTER TABLE public.items ADD COLUMN local_only text")
	from := c.logLen()
	c.migrate("postgres_1", migAddColumn)
	c.logOrder(from, "differs from the one recorded on another connector")
	b2, err := cl.Bundle(ctx)
	if err != nil || len(b2) != 2 || !reflect.DeepEqual(b2[0], b1[0]) || b2[1].Name != migAddColumn ||
		!strings.Contains(strings.Join(b2[1].SatelliteBody, "\n"), "added_column") ||
		strings.Contains(strings.Join(b2[1].SatelliteBody, "\n"), "local_only") {
		t.Fatalf("bundle after the second migration: %+v %v", b2, err)
	}

	if p, err := cl.Published(ctx); err != nil || p.Name != "" || len(p.Tables) != 0 {
		t.Fatalf("nothing published yet, and migrations are recorded: %+v %v", p, err)
	}
	if p, err := cl.Publish(ctx, migInit); err != nil || p.Name != migInit || !reflect.DeepEqual(p.Tables, []string{"public.items"}) {
		t.Fatalf("publish: %+v %v", p, err)
	}

	// Durable: a restarted engine serves the same bundle and publish.
	c.stop()
	c.start(dir)
	if b, err := cl.Bundle(ctx); err != nil || !reflect.DeepEqual(b, b2) {
		t.Fatalf("bundle after a restart: %+v %v", b, err)
	}
	if p, err := cl.Published(ctx); err != nil || p.Name != migInit {
		t.Fatalf("published after a restart: %+v %v", p, err)
	}
}
