package connector

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// A subscription that is set up can still apply nothing: its apply worker
// fails on every transaction (a constraint the replicated row violates, a
// missing column, a permission) and Postgres restarts it every
// wal_retrieve_retry_interval (5 s by default), or it is not running at all.
// The connector reads this from the subscriber's own statistics and reports
// it in Status.Failing, which makes the engine report the connector not
// ready.
const (
	// ApplyErrorWindow is how long after the last apply error the
	// subscription counts as failing: a worker failing in a loop errs again
	// well within it, one that recovered is ready again after it.
	ApplyErrorWindow = 20 * time.Second
	// NoWorkerGrace is how long an enabled subscription may be without an
	// apply worker (starting, restarting after an error) before it counts
	// as failing.
	NoWorkerGrace = 15 * time.Second
)

// applyHealth is what checkApply remembers between polls.
type applyHealth struct {
	errors     int64     // apply_error_count at the last poll
	lastError  time.Time // when the count last grew
	noWorker   time.Time // since when no apply worker runs; zero while one does
	statsKnown bool      // errors was read at least once this session
}

func (h *applyHealth) reset() { *h = applyHealth{} }

// checkApply reads the apply worker and its error count and updates
// Status.Failing and Status.ApplyErrors.
func (c *Connector) checkApply(ctx context.Context, conn *pgx.Conn, h *applyHealth) error {
	oid := c.SubscriptionOID()
	if oid == 0 {
		return nil
	}
	var workers int
	var errs *int64
	// pg_stat_subscription_stats is Postgres 15+: to_regclass keeps the
	// query valid before.
	err := conn.QueryRow(ctx, `SELECT
  (SELECT count(*) FROM pg_catalog.pg_stat_subscription WHERE subid = $1 AND relid IS NULL AND pid IS NOT NULL)::int,
  CASE WHEN pg_catalog.to_regclass('pg_catalog.pg_stat_subscription_stats') IS NOT NULL
       THEN (SELECT (pg_catalog.row_to_json(s)->>'apply_error_count')::bigint
             FROM pg_catalog.pg_stat_subscription_stats s WHERE s.subid = $1) END`, oid).Scan(&workers, &errs)
	if err != nil {
		return fmt.Errorf("reading the apply worker of subscription %s: %w", c.opts.Name, err)
	}
	now := time.Now()
	var count int64
	if errs != nil {
		count = *errs
	}
	if h.statsKnown && count > h.errors {
		h.lastError = now
	}
	h.errors, h.statsKnown = count, true
	if workers > 0 {
		h.noWorker = time.Time{}
	} else if h.noWorker.IsZero() {
		h.noWorker = now
	}

	var failing string
	switch {
	case !h.lastError.IsZero() && now.Sub(h.lastError) < ApplyErrorWindow:
		failing = fmt.Sprintf("the apply worker of subscription %s is failing (%d apply errors so far, the last %s ago): see the Postgres log of %s",
			c.opts.Name, count, now.Sub(h.lastError).Round(time.Second), c.opts.Name)
	case !h.noWorker.IsZero() && now.Sub(h.noWorker) >= NoWorkerGrace:
		failing = fmt.Sprintf("subscription %s has had no apply worker for %s: see the Postgres log of %s",
			c.opts.Name, now.Sub(h.noWorker).Round(time.Second), c.opts.Name)
	}
	prev := c.Status().Failing
	c.setStatus(func(s *Status) { s.Failing = failing; s.ApplyErrors = count })
	if failing != "" && prev == "" {
		c.log.Warn("subscription not applying", "reason", failing)
	} else if failing == "" && prev != "" {
		c.log.Info("subscription applying again")
	}
	return nil
}
