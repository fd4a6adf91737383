// Package satellite serves the Satellite protocol (Electric.Satellite.v0_2)
// to local-first SQLite clients over WebSocket, wire-compatible with the
// published electric-sql@0.4.3 client. It owns the sessions: framing,
// authentication, the two replication streams of each connection, the
// ownership filter and the per-connection relation caches. It reads the
// txlog and hands client transactions to the sequencer; it never writes the
// log itself and knows nothing about Postgres.
//
// Positions. The server lsn sent to clients in SatOpBegin/SatOpCommit.lsn is
// the txlog offset of the entry as 8 bytes big-endian; a client that sends it
// back in SatInStartReplicationReq.lsn resumes with the entry after it. Client
// lsns (SatOpBegin.lsn of client transactions) are opaque bytes compared as
// big-endian unsigned integers; the last durable one is stored with the
// client's transactions as the txlog position "satellite:<client id>". A
// re-sent transaction (lsn not above the last one taken) is acked again, in
// order, and not applied; an ack never goes below the last one sent on the
// connection.
//
// Decisions for 0.4.3 (satellite-client-notes.md §6):
//   - Clients get their own transactions back: the log entry carries the
//     merged row, which can differ from what the client wrote, and 0.4.3
//     applies it as an upsert (and keeps its newer pending writes by
//     timestamp). Begin.commit_timestamp is the entry's effective timestamp
//     in ms, so the client's last-writer-wins agrees with the engine's.
//   - Updates are sent as full rows without old_row_data, deletes with the
//     full old row; only the tables and columns of Options.Tables; every
//     type as a name the client decodes: varchar, uuid, int2, int4 as such,
//     everything else as text (int8 and floats too: a JS number loses int8
//     digits and turns NaN into NULL).
//   - Relation ids are the table OIDs, stable across sessions, so the frames
//     of an entry are encoded once for all sessions that get the same rows.
//   - The causal context of a client transaction is the last log offset the
//     client acknowledged when the transaction arrived (its start lsn or a
//     SatPingResp): a write is concurrent with everything it had not
//     acknowledged. The server pings after sending transactions (at most
//     every 200 ms) to keep these acks fresh. 0.4.3 carries no causal
//     information: a backlog the client sends late can claim more than it
//     had seen.
//   - The ownership filter is per row: every user gets its own rows and the
//     unowned ones. A client write to a row owned by someone else (live, or
//     deleted: its last image is that user's), or that gives a row to
//     someone else, is dropped, recorded (Options.Rejected) and counted;
//     the rest of its transaction is applied and acked.
//   - Every value is checked by Options.Validator before merge. A
//     transaction with a value some Postgres cannot hold is refused whole,
//     recorded per row and acked (its position is stored like any other).
//     After the ack the client is sent the server's state of every refused
//     row (compensate.go), at the last offset already sent to it: the
//     merged row, or a delete carrying only the key. One that cannot be
//     checked is held, unacked, and the stream restarted after HoldRetry.
//   - 0.4.3 loses a transaction when two are queued within one push period.
//     A hole in its rowid lsns, or silence after a burst, makes the server
//     restart the client's stream (stop and start requests in one TCP
//     segment); the client then re-sends everything not yet acked.
//   - Until Options.Tables is non-empty (the engine does not know its tables
//     yet) the outbound stream waits and client transactions are held back
//     unacked, then the stream is restarted: nothing is dropped.
package satellite

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/electric-sql/electric-go/engine/authlimit"
	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// Log is what sessions read from the txlog. txlog.Log satisfies it through
// TxlogSource.
type Log interface {
	Head() uint64
	NewReader(after uint64) Reader
	Row(table, key string) (*merge.Row, error)
	Position(source string) ([]byte, error)
	// Owner is the user a client's source is bound to, "" if none.
	Owner(source string) (string, error)
}

// Reader follows the log from an offset (txlog.Reader).
type Reader interface {
	Next(ctx context.Context) (*txlog.Entry, error)
	Close()
}

// Auth validates a client's token and returns the user id it authenticates
// (engine/auth.Authenticator satisfies it).
type Auth interface {
	Validate(token string) (userID string, err error)
}

// Options configures a Server.
type Options struct {
	Log  Log
	Sink Sink
	Auth Auth
	// Tables lists the tables streamed to clients and accepted from them,
	// with the columns the clients have. A 0.4.3 client crashes on a table
	// or a column its SQLite schema lacks, so this is an explicit set.
	Tables func() []schema.Table
	// Gained, if set, names the tables (schema.table) whose streamed
	// columns grew after a client had the log up to offset after (a schema
	// published while it was away). A client resuming from after first gets
	// their merged rows. Tables gained while a client is connected are
	// backfilled when Tables() changes (see Server.TablesChanged).
	Gained func(after uint64) []string
	// ServerID is sent in SatAuthResp.id (ELECTRIC_REGIONAL_ID).
	ServerID string
	// MaxFrameBytes bounds one incoming WebSocket message (default 1 MiB).
	MaxFrameBytes int
	// PingInterval is the liveness period: a client silent for one period
	// is pinged, and closed if still silent one period later (default 5 s).
	PingInterval time.Duration
	// WriteTimeout bounds the write of one frame to the socket (default
	// 30 s); a client that does not read for that long is disconnected.
	WriteTimeout time.Duration
	// TakeoverWait is how long a connection with the id of a live session
	// waits for that session to end before it is refused (default 1 s).
	TakeoverWait time.Duration
	// ResendAfter: when a client has been quiet this long after sending
	// transactions, the server restarts the client's stream once, which
	// makes 0.4.3 re-send what it has not had acked (default 3 s; negative
	// disables). 0.4.3 drops a transaction when two are queued within one
	// push period, and would otherwise send it only after a reconnect.
	ResendAfter time.Duration
	// MaxTransactionBytes caps one client transaction while it is being
	// received (its row data plus a small overhead per op; default 256
	// MiB). A client that sends more is closed, logged and counted.
	MaxTransactionBytes int64
	// SpillAfterBytes: a client transaction larger than this (counted as
	// for MaxTransactionBytes) is held in a file under SpillDir rather than
	// in memory until its commit (default 4 MiB).
	SpillAfterBytes int64
	// Generation is the number of restores of the log (generation.go); its
	// server lsns carry it. Fences[g] is the log head at which generation
	// g+1 began; len(Fences) must be Generation.
	Generation uint16
	Fences     []uint64
	// SpillDir holds those files (default os.TempDir()); the engine uses
	// its state directory. Files left by a crash: CleanSpillDir.
	SpillDir string
	// OutboundQueue is the number of frames buffered per connection before
	// the log reader of that connection waits (default 32).
	OutboundQueue int
	// AuthLimiter counts failed token checks per remote address; a blocked
	// address is refused (AUTH_REQUIRED) before its token is checked. The
	// engine shares one with its other ports. Nil: one of the server's own
	// with the default limits (authlimit.New).
	AuthLimiter *authlimit.Limiter
	// Validator checks every client value before it is merged (the
	// engine's checks on the connectors' Postgres). A transaction with a
	// value it refuses is acked, not merged, and its rows are sent back as
	// the server has them; one it cannot check is held (not acked) and
	// retried after HoldRetry. Nil: values are not checked.
	Validator Validator
	// HoldRetry is how long transactions held for a value check wait
	// before the client's stream is restarted to retry them (default 2 s).
	HoldRetry time.Duration
	// Rejected, if set, is called for each client row refused (an invalid
	// value, the ownership rule), on the session's read loop: it must not
	// block. Refusals are logged and counted either way.
	Rejected func(Rejection)
	Logger   *slog.Logger
}

// Defaults.
const (
	DefaultMaxFrameBytes = 1 << 20
	DefaultPingInterval  = 5 * time.Second
	DefaultWriteTimeout  = 30 * time.Second
	DefaultTakeoverWait  = time.Second
	DefaultOutboundQueue = 32
	DefaultResendAfter   = 3 * time.Second
	DefaultHoldRetry     = 2 * time.Second

	DefaultMaxTransactionBytes = 256 << 20
	DefaultSpillAfterBytes     = 4 << 20
)

// Bounds on what a client names and declares, checked at the edge: over a
// bound the session ends with SatErrorResp (INVALID_REQUEST, or
// AUTH_REQUIRED for the token's user id).
const (
	MaxClientIDBytes       = 256  // SatAuthReq.id (0.4.3 sends a UUID)
	MaxUserIDBytes         = 256  // the user id a token authenticates
	MaxNameBytes           = 255  // schema, table and column names in SatRelation
	MaxRelationColumns     = 1600 // Postgres' own limit per table
	MaxRelationsPerSession = 1000 // distinct relation ids one session announces
	txOpOverhead           = 16   // bytes counted per row op besides its data
)

func (o *Options) withDefaults() Options {
	c := *o
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.TakeoverWait <= 0 {
		c.TakeoverWait = DefaultTakeoverWait
	}
	if c.ResendAfter == 0 {
		c.ResendAfter = DefaultResendAfter
	}
	if c.HoldRetry <= 0 {
		c.HoldRetry = DefaultHoldRetry
	}
	if c.MaxTransactionBytes <= 0 {
		c.MaxTransactionBytes = DefaultMaxTransactionBytes
	}
	if c.SpillAfterBytes <= 0 {
		c.SpillAfterBytes = DefaultSpillAfterBytes
	}
	if c.SpillDir == "" {
		c.SpillDir = os.TempDir()
	}
	if c.OutboundQueue <= 0 {
		c.OutboundQueue = DefaultOutboundQueue
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.AuthLimiter == nil {
		c.AuthLimiter = authlimit.New(nil)
	}
	return c
}

// TxlogSource adapts a txlog.Log to Log.
func TxlogSource(l txlog.Log) Log { return txlogSource{l} }

type txlogSource struct{ l txlog.Log }

func (s txlogSource) Head() uint64                              { return s.l.Head() }
func (s txlogSource) NewReader(after uint64) Reader             { return s.l.NewReader(after) }
func (s txlogSource) Row(table, key string) (*merge.Row, error) { return s.l.Row(table, key) }
func (s txlogSource) Position(source string) ([]byte, error)    { return s.l.Position(source) }
func (s txlogSource) Owner(source string) (string, error)       { return s.l.Owner(source) }
