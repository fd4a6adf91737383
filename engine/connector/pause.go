package connector

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/electric-sql/electric-go/engine/schema"
)

// Execer runs SQL on a connection or in the caller's transaction
// (*pgx.Conn, pgx.Tx).
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// pauseTimeout bounds the wait for the apply worker to exit after DISABLE.
const pauseTimeout = 30 * time.Second

// Pause disables the subscription and waits until its apply worker has
// exited: DISABLE only asks the worker to stop, and what it applies
// afterwards would race the caller. What the worker had received but not
// applied is sent again on Resume: it restarts from its replication origin's
// position. conn must not be in a transaction (the worker only sees DISABLE
// once it commits). While paused, Run leaves the subscription alone and picks
// up schema changes once it is enabled again.
func (c *Connector) Pause(ctx context.Context, conn *pgx.Conn) error {
	if err := c.setEnabled(ctx, conn, false); err != nil {
		return err
	}
	deadline := time.Now().Add(pauseTimeout)
	for {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_catalog.pg_stat_subscription WHERE subname = $1 AND pid IS NOT NULL`, c.opts.Name).Scan(&n); err != nil {
			return fmt.Errorf("waiting for the apply worker of %s to stop: %w", c.opts.Name, err)
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the apply worker of subscription %s did not stop within %s of DISABLE", c.opts.Name, pauseTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Resume enables the subscription. q may be the caller's transaction: the
// subscription is then enabled if and when that transaction commits, so a
// migration can resume replication atomically with its schema change.
func (c *Connector) Resume(ctx context.Context, q Execer) error {
	return c.setEnabled(ctx, q, true)
}

func (c *Connector) setEnabled(ctx context.Context, q Execer, enabled bool) error {
	verb, doing := "DISABLE", "disabling"
	if enabled {
		verb, doing = "ENABLE", "enabling"
	}
	if _, err := q.Exec(ctx, "ALTER SUBSCRIPTION "+schema.QuoteIdent(c.opts.Name)+" "+verb); err != nil {
		return fmt.Errorf("%s subscription %s: %w", doing, c.opts.Name, err)
	}
	return nil
}
