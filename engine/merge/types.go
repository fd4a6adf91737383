// Package merge holds the conflict semantics of the engine (DESIGN.md
// "Conflict semantics"): effective timestamps, per-column last-writer-wins and
// add-wins row liveness. It is pure: no I/O, no clocks, no goroutines. The
// caller (the sequencer) loads row states, calls Apply and persists what it
// returns.
//
// Bounded clocks. A commit timestamp is whatever the source's clock says, and
// a clock far in the future would win every later conflict and, through the
// causal terms of the effective timestamp, drag every later write with it
// until the timestamps overflow. So the commit timestamp counts as at most
// Tx.Now + MaxAhead, Now being the engine's time when the sequencer merged
// the transaction (passed in: this package reads no clock). MaxAhead is one
// second: enough for the ordinary skew of a synced clock and for a write
// that reaches us a little before our own clock catches up, and short
// enough that a writer whose clock runs ahead wins conflicts only against
// writes made in that second, never every future one. There is no lower
// bound: a timestamp in the past only loses conflicts (an offline Satellite
// writing with yesterday's time loses to what was written since, as
// last-writer-wins says) and cannot overflow anything.
//
// The causal terms (1 + the context, 1 + the origin's last) are not bounded:
// capping them would let a write lose to a write it had seen. They stay
// within the window anyway, because every stored eff was bounded when it was
// computed: the highest eff exceeds engine time + MaxAhead only by the +1
// steps of writes merged faster than one per microsecond, or while the
// engine's own clock is behind one it had earlier (a hybrid clock then
// advances by one per write until the wall clock catches up). A state
// poisoned before this bound existed is repaired by the txlog format 2
// upgrade. No eff may exceed MaxTimestamp, which Postgres timestamptz and a
// JavaScript millisecond number both hold: a transaction that would is
// refused with ErrInvalidTx, never wrapped around.
//
// Causal context. Transactions are merged in the one total order of the log
// (the sequencer is its single writer), and a source only ever applies a
// prefix of that log, so what a transaction had seen is a number: the log
// offset its origin had applied (Tx.Context; a Satellite's is the offset it
// had acknowledged, never one it merely received, so that its delete never
// removes a write it did not apply), plus the origin's own earlier writes.
// Every tag carries the offset of the entry that wrote it, and a write w is
// in the context of a transaction t iff w.Offset <= t.Context or w.Origin ==
// t.Origin. The clock rule's "1 + the highest eff in the context" is 1 +
// Tx.ContextEff, the prefix maximum eff of the log at Tx.Context, one number
// per entry. So an entry's context costs the same whatever the number of
// origins (it used to be a clock with one counter per origin ever seen).
//
// No "removed" clock is needed in a total order. A delete (or truncate) d
// removes the tags it has seen; a tag that arrives after d was written at an
// offset above d's own, so above d.Context, by another origin (d had not
// seen it) or by d's origin after d (a later write, which d did not see
// either): no tag that d had seen can arrive after d. The property test
// replays each history in every order the log could have had (each origin's
// transactions in sequence, each context a prefix of the log before it) and
// checks that they converge.
package merge

import "time"

// MaxAhead is how far past the engine's time a commit timestamp may count
// (see the package comment), in microseconds.
const MaxAhead = uint64(time.Second / time.Microsecond)

// MaxTimestamp is the largest effective timestamp: 9999-12-31
// 23:59:59.999999 UTC in microseconds since the Unix epoch. Postgres
// timestamptz (to 294276 AD), the 0.4.3 client's milliseconds (a JS number,
// exact to 2^53) and int64 microseconds all hold it with room to spare.
const MaxTimestamp uint64 = 253402300799999999

// Bound returns commit as the merge counts it for a transaction merged at
// engine time now (µs): at most now + MaxAhead, never beyond MaxTimestamp.
// now = 0 means unknown: only MaxTimestamp applies.
func Bound(commit, now uint64) uint64 {
	if now > 0 && now < MaxTimestamp-MaxAhead {
		commit = min(commit, now+MaxAhead)
	}
	return min(commit, MaxTimestamp)
}

// Value is one column value in Postgres text format. Null distinguishes SQL
// NULL from the empty string.
type Value struct {
	Text string
	Null bool
}

// OpKind is what an operation does to a row.
type OpKind uint8

const (
	OpInsert   OpKind = iota + 1 // Columns holds every column of the new row
	OpUpdate                     // Columns holds the columns the write changed
	OpDelete                     // the row is removed for every write in the context
	OpTruncate                   // a delete of every row of Table the origin had seen; Key unused
	OpSnapshot                   // Columns holds a row read from the source's table (see snapshot.go)
	// Schema changes of a source (see schemaops.go).
	OpRenameColumn // every row of Table: the cell Column is also known as NewName; Key unused
	OpRewrite      // Columns hold values a source's table rewrite gave an existing row
	OpDefault      // Columns fill cells the row Key does not know yet
	OpDefaultAll   // OpDefault for every row of Table; Key unused
)

// Op is one row operation of a source transaction.
type Op struct {
	Kind  OpKind
	Table string // schema-qualified, e.g. "public.items"
	Key   string // canonical encoding of the primary key values (see EncodeKey)
	// Columns written by this op (insert: all; update: the changed ones).
	Columns map[string]Value
	// Old holds values known from the source's old row image (update, delete
	// with REPLICA IDENTITY FULL). They never win against a written cell; they
	// only fill columns the row state does not know yet, at timestamp 0.
	Old map[string]Value
	// Column and NewName: the rename of an OpRenameColumn.
	Column, NewName string
}

// Tx is one source transaction to merge.
type Tx struct {
	Origin     string // connector name, or "satellite:<client id>"
	CommitTime uint64 // source commit time, microseconds since the Unix epoch
	// Now is the engine's time (µs since the Unix epoch) when the sequencer
	// merged the transaction: CommitTime counts as at most Now + MaxAhead
	// (see Bound). 0 leaves CommitTime unbounded but for MaxTimestamp.
	Now uint64
	// Offset is the log offset the transaction's entry gets (1, 2, 3, …):
	// the tags it writes carry it. Transactions are merged in offset order.
	Offset uint64
	// Context is the log offset the origin had applied when it committed
	// (0: none): the writes at offsets up to Context, and every earlier
	// write of Origin, are what the transaction had seen. Context < Offset.
	Context uint64
	// ContextEff is the highest effective timestamp of the log's entries
	// at offsets up to Context (txlog.Entry.MaxEff of entry Context; 0 for
	// none).
	ContextEff uint64
	Ops        []Op
}

// Cell is one column of a row state: its value and the write that set it
// (Offset: the log offset of that write's entry; 0 for a cell known only
// from an old row image, Eff 0).
type Cell struct {
	Value  Value
	Eff    uint64
	Origin string
	Offset uint64
}

// Tag marks one insert or update of a row; the row is live while a tag that no
// delete has seen remains. Offset is the log offset of the entry that wrote
// it: a delete has seen it iff Offset <= the delete's Context or the delete
// comes from the same Origin (see the package comment, "Causal context").
type Tag struct {
	Origin string
	Eff    uint64
	Offset uint64
}

// Row is the merged state of one row.
type Row struct {
	Cells map[string]Cell
	// Tags not removed by a delete that had seen them; at most one per
	// origin (its latest), which is all liveness needs. Live iff non-empty.
	Tags []Tag
}

// Store gives Apply the row states it needs. Rows that do not exist yet
// return (nil, nil).
type Store interface {
	Row(table, key string) (*Row, error)
	// Keys lists the keys of every row state of a table (for TRUNCATE).
	Keys(table string) ([]string, error)
}

// Change is the effect of a merged transaction on one row.
type Change struct {
	Table string
	Key   string
	State *Row // new state to persist
	// Live is the row's liveness after the merge; Image is the full merged
	// row (every known column) when Live, nil otherwise.
	Live  bool
	Image map[string]Value
}

// Result is what Apply returns for a transaction.
type Result struct {
	Eff     uint64   // the transaction's effective timestamp
	Changes []Change // one per distinct row touched, in first-touch order
	// Conflicts are the cells a concurrent write lost in this merge, in
	// op order (see Conflict); nil when there were none.
	Conflicts []Conflict
}
