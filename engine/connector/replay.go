package connector

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// A Replay applies rows to this Postgres the way its subscription's apply
// worker would (session_replication_role = replica, so the upsert triggers
// fire and foreign-key triggers do not), one savepoint per row, inside a
// transaction that is always rolled back: it finds which rows the
// subscriber cannot apply, and why, without changing anything.
type Replay struct {
	c    *Connector
	conn *pgx.Conn
	n    int
}

// ErrNotReady is returned by BeginReplay before the connector knows the
// schema of its Postgres.
var ErrNotReady = errors.New("the connector's schema is not known yet")

// BeginReplay opens a replay; Close rolls it back.
func (c *Connector) BeginReplay(ctx context.Context) (*Replay, error) {
	if c.View() == nil {
		return nil, ErrNotReady
	}
	conn, err := pgx.Connect(ctx, c.opts.URI)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s to replay rows: %w", c.opts.Name, err)
	}
	// Bounded: a row lock held by a local transaction must not hang the
	// diagnosis (the apply worker would wait; its row then counts as failing).
	for _, q := range []string{
		"BEGIN",
		"SET LOCAL session_replication_role = replica",
		"SET LOCAL statement_timeout = '10s'",
		"SET LOCAL lock_timeout = '5s'",
		"SET LOCAL search_path = ''",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			conn.Close(ctx)
			return nil, fmt.Errorf("starting a replay on %s: %w", c.opts.Name, err)
		}
	}
	return &Replay{c: c, conn: conn}, nil
}

// Apply applies rows in order, each in a savepoint of its own; errs[i] is
// why rows[i] failed (nil: applied, and kept for the rows after it). err is
// a failure of the replay itself.
func (r *Replay) Apply(ctx context.Context, rows []txlog.RowChange) (errs []error, err error) {
	v := r.c.View()
	if v == nil {
		return nil, ErrNotReady
	}
	errs = make([]error, len(rows))
	for i, ch := range rows {
		t := v.Table(ch.Table)
		if t == nil {
			errs[i] = fmt.Errorf("table %s does not exist on %s", ch.Table, r.c.opts.Name)
			continue
		}
		r.n++
		sp := "electric_replay_" + strconv.Itoa(r.n)
		if _, err := r.conn.Exec(ctx, "SAVEPOINT "+sp); err != nil {
			return nil, fmt.Errorf("replaying on %s: %w", r.c.opts.Name, err)
		}
		_, rowErr := r.conn.Exec(ctx, rowSQL(t, ch), pgx.QueryExecModeSimpleProtocol)
		if rowErr == nil {
			if _, err := r.conn.Exec(ctx, "RELEASE SAVEPOINT "+sp); err != nil {
				return nil, fmt.Errorf("replaying on %s: %w", r.c.opts.Name, err)
			}
			continue
		}
		var pgErr *pgconn.PgError
		if !errors.As(rowErr, &pgErr) {
			return nil, fmt.Errorf("replaying on %s: %w", r.c.opts.Name, rowErr)
		}
		errs[i] = fmt.Errorf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
		if _, err := r.conn.Exec(ctx, "ROLLBACK TO SAVEPOINT "+sp); err != nil {
			return nil, fmt.Errorf("replaying on %s: %w", r.c.opts.Name, err)
		}
	}
	return errs, nil
}

// Close rolls the replay back and closes its connection.
func (r *Replay) Close(ctx context.Context) {
	r.conn.Exec(ctx, "ROLLBACK") //nolint:errcheck // closing discards it anyway
	r.conn.Close(ctx)
}

// rowSQL is the statement applying ch as the apply worker does: an insert
// of every column the table has (absent values NULL: what the publisher
// sends), which the upsert trigger turns into an upsert, or a delete by
// key. Values are literals of unknown type, converted by the column type's
// input function as the apply worker's text values are.
func rowSQL(t *schema.Table, ch txlog.RowChange) string {
	lit := func(col string) string {
		v, ok := ch.Row[col]
		if !ok || v.Null {
			return "NULL"
		}
		return schema.QuoteLiteral(v.Text)
	}
	if ch.Deleted {
		var conds []string
		for _, k := range t.PrimaryKey {
			conds = append(conds, schema.QuoteIdent(k)+" = "+lit(k))
		}
		return "DELETE FROM " + t.Quoted() + " WHERE " + strings.Join(conds, " AND ")
	}
	cols := make([]string, len(t.Columns))
	vals := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = schema.QuoteIdent(c.Name)
		vals[i] = lit(c.Name)
	}
	return "INSERT INTO " + t.Quoted() + " (" + strings.Join(cols, ", ") + ") VALUES (" + strings.Join(vals, ", ") + ")"
}

// AppliedOffset is the log offset up to which the subscription has applied
// the publisher's stream: its replication origin's position, which the
// apply worker restarts from (0 when it has applied nothing).
func (c *Connector) AppliedOffset(ctx context.Context) (uint64, error) {
	oid := c.SubscriptionOID()
	if oid == 0 {
		return 0, fmt.Errorf("subscription %s is not set up", c.opts.Name)
	}
	conn, err := pgx.Connect(ctx, c.opts.URI)
	if err != nil {
		return 0, fmt.Errorf("connecting to %s: %w", c.opts.Name, err)
	}
	defer conn.Close(ctx)
	var lsn *string
	err = conn.QueryRow(ctx, `SELECT (s.remote_lsn - '0/0'::pg_catalog.pg_lsn)::text
FROM pg_catalog.pg_replication_origin_status s WHERE s.external_id = $1`, "pg_"+strconv.FormatUint(uint64(oid), 10)).Scan(&lsn)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && lsn == nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the replication origin of subscription %s: %w", c.opts.Name, err)
	}
	n, err := strconv.ParseUint(*lsn, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("reading the replication origin of subscription %s: %q: %w", c.opts.Name, *lsn, err)
	}
	return txlog.OffsetOfLSN(n), nil
}

// Skip makes the subscription skip the remote transaction whose finish
// (commit) LSN is lsn: ALTER SUBSCRIPTION … SKIP, for a failure no row
// could be blamed for.
func (c *Connector) Skip(ctx context.Context, lsn uint64) error {
	conn, err := pgx.Connect(ctx, c.opts.URI)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", c.opts.Name, err)
	}
	defer conn.Close(ctx)
	q := fmt.Sprintf("ALTER SUBSCRIPTION %s SKIP (lsn = '%X/%X')", schema.QuoteIdent(c.opts.Name), lsn>>32, uint32(lsn))
	if _, err := conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("skipping a transaction on subscription %s: %w", c.opts.Name, err)
	}
	return nil
}
