package txlog

import "github.com/electric-sql/electric-go/engine/merge"

// Batch is one atomic write: new entries, row states and source positions.
// After Commit the Log owns the entries; they must not be modified.
type Batch struct {
	// Entries must have offsets Head()+1, Head()+2, … in order.
	Entries   []*Entry
	Rows      []RowState
	Positions map[string][]byte
}

// RowState sets (Row != nil) or deletes (Row == nil) the state of a row. A
// deleted row's state is normally kept as a tombstone (a Row with no live
// tags); nil removes the state altogether.
type RowState struct {
	Table, Key string
	Row        *merge.Row
}

// Append adds an entry to the batch.
func (b *Batch) Append(e *Entry) { b.Entries = append(b.Entries, e) }

// SetRow sets the state of a row; nil deletes it. A later call for the same
// row wins.
func (b *Batch) SetRow(table, key string, r *merge.Row) {
	b.Rows = append(b.Rows, RowState{Table: table, Key: key, Row: r})
}

// SetPosition records source's position.
func (b *Batch) SetPosition(source string, pos []byte) {
	if b.Positions == nil {
		b.Positions = map[string][]byte{}
	}
	b.Positions[source] = pos
}

// Empty reports whether the batch writes nothing.
func (b *Batch) Empty() bool {
	return len(b.Entries) == 0 && len(b.Rows) == 0 && len(b.Positions) == 0
}
