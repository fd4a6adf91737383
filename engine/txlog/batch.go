package txlog

import "github.com/electric-sql/electric-go/engine/merge"

// Batch is one atomic write: new entries, row states, source positions and
// source owners. After Commit the Log owns the entries; they must not be
// modified.
type Batch struct {
	// Entries must have offsets Head()+1, Head()+2, … in order.
	Entries   []*Entry
	Rows      []RowState
	Positions map[string][]byte
	// Owners binds sources to the user that owns them (see Log.Owner).
	// The log stores what it is given; first-owner-wins is checked by the
	// single writer before it adds a binding.
	Owners map[string]string
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

// SetOwner binds source to user.
func (b *Batch) SetOwner(source, user string) {
	if b.Owners == nil {
		b.Owners = map[string]string{}
	}
	b.Owners[source] = user
}

// Empty reports whether the batch writes nothing.
func (b *Batch) Empty() bool {
	return len(b.Entries) == 0 && len(b.Rows) == 0 && len(b.Positions) == 0 && len(b.Owners) == 0
}
