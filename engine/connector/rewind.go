// A subscriber ahead of the log: its replication origin says it applied
// entries the log does not hold. That happens when the engine starts on an
// older state than the one that fed the subscriber (a restored backup, a
// state directory reset or lost). Left alone, the publisher refuses it
// until the log head passes that position, and then it resumes after it,
// skipping the entries written in between: new writes, taken for ones it
// already applied. So at its first setup the connector rewinds such an
// origin to the log head the engine started with, which is where the
// entries new to this log begin.

package connector

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/engine/txlog"
)

// originName is the replication origin a subscription applies under.
func originName(subOID uint32) string { return "pg_" + strconv.FormatUint(uint64(subOID), 10) }

// originOffset is the log offset the subscription's origin says it has
// applied (0: none).
func originOffset(ctx context.Context, conn *pgx.Conn, subOID uint32) (uint64, pglogrepl.LSN, error) {
	var lsn string
	err := conn.QueryRow(ctx, `SELECT coalesce(remote_lsn, '0/0')::text FROM pg_catalog.pg_replication_origin_status
WHERE external_id = $1`, originName(subOID)).Scan(&lsn)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("reading the replication origin of subscription %d: %w", subOID, err)
	}
	l, err := pglogrepl.ParseLSN(lsn)
	if err != nil {
		return 0, 0, fmt.Errorf("reading the replication origin of subscription %d: %w", subOID, err)
	}
	return txlog.OffsetOfLSN(uint64(l)), l, nil
}

// rewindIfAhead checks, once per engine start, that the subscriber has not
// applied beyond the head the engine started with; if it has, it disables
// the subscription, moves its origin back to that head and enables it.
func (c *Connector) rewindIfAhead(ctx context.Context, conn *pgx.Conn, subOID uint32) error {
	if c.originChecked.Load() {
		return nil
	}
	applied, lsn, err := originOffset(ctx, conn, subOID)
	if err != nil {
		return err
	}
	head := c.opts.StartHead
	if applied <= head {
		c.originChecked.Store(true)
		return nil
	}
	to := pglogrepl.LSN(txlog.LSN(head))
	c.log.Error("this Postgres applied log entries the engine's state does not hold: the state is older than the one that fed it (restored from a backup, or reset); "+
		"rewinding its subscription to the log head so that it receives every entry written from now on. "+
		"The changes it applied after that head stay in this Postgres and are not in the log: see README, Backup and restore",
		"subscription", c.opts.Name, "applied_offset", applied, "applied_lsn", lsn.String(), "log_head", head, "rewound_to", to.String())
	c.setStatus(func(s *Status) {
		s.Rewound = fmt.Sprintf("subscriber had applied log offset %d, beyond the log head %d the engine started with: rewound to %d", applied, head, head)
	})
	if err := c.setEnabled(ctx, conn, false); err != nil {
		return err
	}
	// The origin can only be moved once the apply worker has let go of it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var busy bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_subscription WHERE subid = $1 AND pid IS NOT NULL)`, subOID).Scan(&busy); err != nil {
			return fmt.Errorf("waiting for the apply worker of %s to stop: %w", c.opts.Name, err)
		}
		if !busy {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rewinding subscription %s: its apply worker did not stop within 30 s", c.opts.Name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if _, err := conn.Exec(ctx, `SELECT pg_catalog.pg_replication_origin_advance($1, $2::text::pg_lsn)`, originName(subOID), to.String()); err != nil {
		return fmt.Errorf("rewinding the replication origin of %s to %s: %w", c.opts.Name, to, err)
	}
	c.originChecked.Store(true)
	return c.setEnabled(ctx, conn, true)
}
