package migrations_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/internal/pgtest"
	"github.com/electric-sql/electric-go/migrations"
)

// The reader keeps one connection across calls (GET /api/migrations must not
// open one per request), replaces it when it breaks, and closes it on Close.
func TestAppliedReaderReusesOneConnection(t *testing.T) {
	pg := pgtest.Start(t)
	pg.Exec(migrations.TableDDL)
	uri := pg.URI()
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	r := migrations.NewAppliedReader(uri + sep + "application_name=applied_reader_test")
	backends := func() []string {
		return pg.Rows(t, "SELECT pid FROM pg_stat_activity WHERE application_name = 'applied_reader_test'")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var pid []string
	for i := 0; i < 5; i++ {
		list, err := r.Applied(ctx)
		if err != nil || len(list) != 1 || list[0].Version != "1" {
			t.Fatalf("read %d: %+v %v", i, list, err)
		}
		got := backends()
		if len(got) != 1 || pid != nil && got[0] != pid[0] {
			t.Fatalf("read %d: reader backends %v, want the same one as before (%v)", i, got, pid)
		}
		pid = got
	}

	// Postgres drops the connection: the next read reconnects.
	pg.Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'applied_reader_test'")
	if list, err := r.Applied(ctx); err != nil || len(list) != 1 {
		t.Fatalf("read after the backend was terminated: %+v %v", list, err)
	}
	if got := backends(); len(got) != 1 || got[0] == pid[0] {
		t.Fatalf("after reconnecting: backends %v (old %v)", got, pid)
	}

	// A Postgres answer (no table) keeps the connection.
	pg.Exec("DROP TABLE electric.migrations")
	if _, err := r.Applied(ctx); !errors.Is(err, migrations.ErrNoMigrationsTable) {
		t.Fatalf("read without the table: %v, want ErrNoMigrationsTable", err)
	}
	if got := backends(); len(got) != 1 {
		t.Fatalf("after a Postgres error: backends %v", got)
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Applied(ctx); !errors.Is(err, migrations.ErrReaderClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(backends()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("reader connection still open after Close: %v", backends())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
