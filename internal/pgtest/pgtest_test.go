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
