package migrations

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrReaderClosed is returned by an AppliedReader after Close.
var ErrReaderClosed = errors.New("migrations reader is closed")

// readerConnectTimeout bounds opening the reader's connection.
const readerConnectTimeout = 15 * time.Second

// AppliedReader reads one Postgres's electric.migrations for the migrations
// API over a single connection kept between calls, so that polling
// GET /api/migrations does not open a connection per request. Calls take
// turns on the connection; a broken one is replaced on the next call.
type AppliedReader struct {
	uri string
	// turn holds the right to use conn: a channel rather than a mutex so a
	// caller waiting for its turn gives up when its context ends.
	turn   chan struct{}
	conn   *pgx.Conn
	closed bool
}

// NewAppliedReader makes a reader for the Postgres at uri; it connects on
// first use.
func NewAppliedReader(uri string) *AppliedReader {
	r := &AppliedReader{uri: uri, turn: make(chan struct{}, 1)}
	r.turn <- struct{}{}
	return r
}

// Applied is AppliedList on the reader's connection: electric.migrations,
// newest first (ErrNoMigrationsTable when it does not exist).
func (r *AppliedReader) Applied(ctx context.Context) ([]Applied, error) {
	select {
	case <-r.turn:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { r.turn <- struct{}{} }()
	if r.closed {
		return nil, ErrReaderClosed
	}
	reused := r.conn != nil && !r.conn.IsClosed()
	list, err := r.applied(ctx)
	if err != nil && reused && r.conn == nil && ctx.Err() == nil {
		// The kept connection broke since the last call (Postgres
		// restarted, an idle timeout): one fresh try, as a connection per
		// request would have had.
		list, err = r.applied(ctx)
	}
	return list, err
}

// applied runs one AppliedList, connecting first if needed. It drops the
// connection on any failure but Postgres answering an ordinary error.
func (r *AppliedReader) applied(ctx context.Context) ([]Applied, error) {
	if r.conn == nil || r.conn.IsClosed() {
		r.conn = nil
		cctx, cancel := context.WithTimeout(ctx, readerConnectTimeout)
		conn, err := pgx.Connect(cctx, r.uri)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("connecting to postgres: %w", err)
		}
		r.conn = conn
	}
	list, err := AppliedList(ctx, r.conn)
	if err != nil && !keepsConn(err) || r.conn.IsClosed() {
		r.conn.Close(context.Background())
		r.conn = nil
	}
	return list, err
}

// Close closes the connection, waiting for a call in progress; later calls
// fail with ErrReaderClosed.
func (r *AppliedReader) Close() error {
	<-r.turn
	defer func() { r.turn <- struct{}{} }()
	r.closed = true
	if r.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.conn.Close(ctx)
	r.conn = nil
	return err
}

// keepsConn reports whether the connection is still good after err: Postgres
// answered with an error of the statement, not one ending the session
// (FATAL, e.g. the backend was terminated) or a broken socket.
func keepsConn(err error) bool {
	if errors.Is(err, ErrNoMigrationsTable) {
		return true
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Severity == "ERROR"
}
