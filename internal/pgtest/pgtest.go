// Package pgtest starts throwaway Postgres 15 clusters for integration tests:
// initdb into a fresh directory, a free port, wal_level=logical, stopped and
// removed by t.Cleanup. Tests that need Postgres fail (not skip) when the
// server binaries are missing: CI installs them.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/internal/pgcluster"
)

// Cluster is a running test cluster.
type Cluster struct {
	*pgcluster.Cluster
	t testing.TB
}

// Start initdbs and starts a cluster. The data lives under a world-traversable
// temporary directory so that the postgres user can reach it when tests run
// as root.
func Start(t testing.TB) *Cluster {
	t.Helper()
	base, err := os.MkdirTemp("", "electric-pgtest-")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	port, err := pgcluster.FreePort()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	c, err := pgcluster.New(filepath.Join(base, "data"), port)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	// The tests measure the engine's durability, not Postgres': skip fsync.
	c.Settings = map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Init(ctx); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	// A port the kernel called free can be taken before the server binds it
	// (another test's cluster, or an outgoing connection's ephemeral port):
	// move to another one.
	for tries := 1; ; tries++ {
		err := c.Start(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, pgcluster.ErrPortInUse) || tries == 5 {
			t.Fatalf("pgtest: %v", err)
		}
		port, err := pgcluster.FreePort()
		if err == nil {
			err = c.SetPort(port)
		}
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Logf("pgtest: %v", err)
		}
		if t.Failed() {
			if b, err := os.ReadFile(c.LogFile); err == nil && len(b) > 0 {
				if len(b) > 8000 {
					b = b[len(b)-8000:]
				}
				t.Logf("postgres log (%s):\n%s", c.LogFile, b)
			}
		}
		os.RemoveAll(base)
	})
	return &Cluster{Cluster: c, t: t}
}

// Connect opens a connection to the electric database, closed at cleanup.
func (c *Cluster) Connect() *pgx.Conn {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URI())
	if err != nil {
		c.t.Fatalf("pgtest: connecting to %s: %v", c.URI(), err)
	}
	c.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Exec runs SQL statements on the electric database and fails the test on error.
func (c *Cluster) Exec(sql string, args ...any) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URI())
	if err != nil {
		c.t.Fatalf("pgtest: connecting: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		c.t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

// Rows runs a query on the electric database and returns each row as its
// values joined by "|", NULL as "<NULL>": compact enough to compare in tests.
func (c *Cluster) Rows(t testing.TB, sql string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URI())
	if err != nil {
		t.Fatalf("pgtest: connecting to %s: %v", c.URI(), err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatalf("pgtest: %s: %v", sql, err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				parts[i] = "<NULL>"
			} else {
				parts[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
	return out
}
