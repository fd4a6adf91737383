package pgtest

import (
	"context"
	"testing"
)

func TestStartLogical(t *testing.T) {
	c := Start(t)
	conn := c.Connect()
	var level string
	if err := conn.QueryRow(context.Background(), "SHOW wal_level").Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level != "logical" {
		t.Fatalf("wal_level = %q, want logical", level)
	}
}

// An unqualified table lands in public even though the user and the engine's
// schema share the name electric.
func TestUnqualifiedTablesGoToPublic(t *testing.T) {
	c := Start(t)
	c.Exec("CREATE SCHEMA electric; CREATE TABLE items (id int primary key)")
	var schema string
	if err := c.Connect().QueryRow(context.Background(), "SELECT schemaname FROM pg_tables WHERE tablename = 'items'").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if schema != "public" {
		t.Fatalf("items created in %s", schema)
	}
}
