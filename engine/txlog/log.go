// Package txlog is the log contract (DESIGN.md "The one big change" and
// "Beyond one machine"): what every implementation of the engine's durable
// state promises, and what the sequencer (the single writer) and every
// reader (publisher, Satellite sessions, Postgres sources' position
// lookups, the status API) depend on. It holds the Log interface, the
// entry and batch types, the sentinel errors, the synthetic LSN mapping and
// the versioned entry codec; it holds no storage. The embedded Pebble store
// (package txlog/pebblelog) is one implementation; a shared log on NATS
// JetStream is planned as a sibling. Package txlog/logtest is the
// conformance suite every implementation runs.
//
// The contract:
//
//   - An entry is one merged transaction: its offset (1, 2, 3, … with no
//     gaps), its origin (connector name or "satellite:<client id>"), its
//     effective timestamp, the source's commit time, the highest
//     effective timestamp of the entries up to it (MaxEff), and per changed
//     row the merged full row image or a delete (with the last image, so
//     sinks can name the row). Its size does not depend on the number of
//     origins: a causal context is an offset (the one the origin had
//     applied, for a Satellite the one it had acknowledged) and MaxEff is
//     all the merge needs of the log at that offset (package merge,
//     "Causal context").
//   - Origins: the log keeps each origin's highest entry Eff (OriginEff),
//     written with the entries of each Commit.
//   - Order and durability: offsets are the one total order. One Commit
//     writes a Batch (entries, the merged row states they leave, source
//     positions and source owners) atomically and returns only once all of it is durable
//     (fsynced); after a crash a batch is there entirely or not at all.
//   - Owners: a source may be bound to the user that owns it (a Satellite
//     client id to the user who first authenticated with it). A binding is
//     durable like a position and kept in the log's state, so every engine
//     that shares the log sees it; the single writer refuses to rebind a
//     source to another user, the log itself stores what it is given.
//   - Readers start after any offset up to the head and then follow the
//     head (NewReader); or they start from a Snapshot (the merged row state
//     consistent with one offset) and then read the tail after that offset.
//   - Tombstones: a deleted row keeps its merged row state (its cells with
//     their timestamps and origins, no live tags) so that a late concurrent
//     write still resolves the same way on every replica. Rows, Keys and Snapshot list tombstones too. Compaction
//     (later) is to keep them key-only for a retention time.
//   - Format: an implementation stores a format version with its state. At
//     Open, state of an older known format is upgraded in place (one step
//     per version, in one atomic write, logged); state of a newer or unknown
//     format is refused with ErrFormatTooNew, state that is not a log with
//     ErrForeignDir. Entries carry their own codec version (AppendEntry).
//
// Changes meant to stay inside this contract: snapshots served from
// compacted state, spilling huge transactions, and a second implementation
// on NATS JetStream.
package txlog

import (
	"context"
	"errors"

	"github.com/electric-sql/electric-go/engine/merge"
)

// Errors callers act on.
var (
	// ErrClosed is returned by every call on a closed Log, Reader or
	// Snapshot.
	ErrClosed = errors.New("txlog closed")
	// ErrNoEntry is returned for an offset that is not in the log.
	ErrNoEntry = errors.New("no such log entry")
	// ErrBeyondHead is returned by a Reader asked to start after the head:
	// the caller holds an offset this log never wrote (another data
	// directory, or state lost), and following it would skip entries.
	ErrBeyondHead = errors.New("offset beyond the log head")
	// ErrForeignDir is returned by Open for state that is not a txlog
	// (other files, or a store written by something else).
	ErrForeignDir = errors.New("not a txlog data directory")
	// ErrFormatTooNew is returned by Open for state written in a format
	// this binary does not know (a newer electric wrote it).
	ErrFormatTooNew = errors.New("txlog state written by a newer format")
)

// Log is the durable, totally ordered log of merged transactions plus the
// merged row state and each source's position. Reads are safe from any
// goroutine; Commit calls are serialized by the log (one writer is the
// design: package sequencer).
type Log interface {
	// Head is the offset of the last committed entry (0 when empty).
	Head() uint64
	// Entry returns the entry at offset (ErrNoEntry outside 1..Head). The
	// entry is shared with readers and must not be modified.
	Entry(offset uint64) (*Entry, error)
	// NewReader returns a reader of the entries with Offset > after,
	// following the head. If after is beyond the head, Next returns
	// ErrBeyondHead.
	NewReader(after uint64) Reader
	// Row returns the merged state of a row (a tombstone for a deleted
	// row), nil when there is none. The row is the caller's own copy.
	Row(table, key string) (*merge.Row, error)
	// Keys lists the keys of every row state of table, in key order.
	Keys(table string) ([]string, error)
	// Rows calls fn for every row state of table, in key order, until fn
	// returns an error, which Rows returns.
	Rows(table string, fn func(key string, r *merge.Row) error) error
	// Position returns the position last committed for source, nil if none.
	Position(source string) ([]byte, error)
	// Owner returns the user source is bound to, "" if none.
	Owner(source string) (string, error)
	// OriginEff returns the highest Eff of origin's entries, 0 if none.
	// The log keeps it from the entries it commits (the merge needs it for
	// an origin's next transaction: merge.Apply's originLast).
	OriginEff(origin string) (uint64, error)
	// Snapshot returns a consistent view of the merged row state at one
	// offset; the caller then reads the tail with NewReader(s.Offset()).
	Snapshot() (Snapshot, error)
	// Commit writes the batch atomically and returns once it is durable.
	// Readers are woken afterwards. On error nothing of the batch is
	// visible.
	Commit(b *Batch) error
	// Stats returns current figures for the status API.
	Stats() Stats
	// Close closes the log; readers blocked in Next return ErrClosed.
	Close() error
}

// Reader replays the log in order from an offset and then follows the head.
type Reader interface {
	// Next returns the next entry, blocking until it is committed or ctx is
	// done. Entries are shared with other readers and must not be modified.
	Next(ctx context.Context) (*Entry, error)
	// Close releases the reader and wakes a Next blocked on it.
	Close()
}

// Snapshot is the merged row state exactly as it was after the entry at
// Offset: no later commit shows through it. It must be closed.
type Snapshot interface {
	// Offset is the head the snapshot was taken at.
	Offset() uint64
	// Tables lists the tables with row states, in order.
	Tables() ([]string, error)
	Row(table, key string) (*merge.Row, error)
	Keys(table string) ([]string, error)
	Rows(table string, fn func(key string, r *merge.Row) error) error
	// Position is the position of source at Offset.
	Position(source string) ([]byte, error)
	Close() error
}

// Stats is a snapshot for the status API. Figures an implementation does not
// have are zero.
type Stats struct {
	Head           uint64
	SizeBytes      int64   // on disk
	EntriesPerSec  float64 // over the last ~10 s
	RowsPerSec     float64 // row changes over the last ~10 s
	Readers        int     // open readers
	RowCacheBytes  int
	KeyFilterBytes int // memory of the in-memory filter of row keys
}
