// Package merge holds the conflict semantics of the engine (DESIGN.md
// "Conflict semantics"): effective timestamps, per-column last-writer-wins and
// add-wins row liveness. It is pure: no I/O, no clocks, no goroutines. The
// caller (the sequencer) loads row states, calls Apply and persists what it
// returns.
package merge

// Value is one column value in Postgres text format. Null distinguishes SQL
// NULL from the empty string.
type Value struct {
	Text string
	Null bool
}

// Clock is a causal context: for each origin, the highest effective timestamp
// of that origin's writes that have been seen. Effective timestamps of one
// origin strictly increase, so a write (o, e) is seen by c iff e <= c[o].
type Clock map[string]uint64

// OpKind is what an operation does to a row.
type OpKind uint8

const (
	OpInsert   OpKind = iota + 1 // Columns holds every column of the new row
	OpUpdate                     // Columns holds the columns the write changed
	OpDelete                     // the row is removed for everything in the context
	OpTruncate                   // a delete of every row of Table the origin had seen; Key unused
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
}

// Tx is one source transaction to merge.
type Tx struct {
	Origin     string // connector name, or "satellite:<client id>"
	CommitTime uint64 // source commit time, microseconds since the Unix epoch
	Context    Clock  // what the origin had seen when it committed
	Ops        []Op
}

// Cell is one column of a row state: its value and the write that set it.
type Cell struct {
	Value  Value
	Eff    uint64
	Origin string
}

// Tag marks one insert or update of a row; the row is live while a tag that no
// delete has observed remains.
type Tag struct {
	Origin string
	Eff    uint64
}

// Row is the merged state of one row.
type Row struct {
	Cells map[string]Cell
	// Tags not removed by a delete that had seen them; at most one per
	// origin (its latest), which is all liveness needs. Live iff non-empty.
	Tags []Tag
	// Removed is the pointwise maximum of the contexts of every delete
	// applied (excluding each delete's own transaction): a tag it covers is
	// dead on arrival.
	Removed Clock
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
}
