package merge

// Conflict is one cell a concurrent write lost: two writes of the same
// column where neither had seen the other, and the one that lost. It is a
// report for the operator (package audit keeps them); the merge result does
// not depend on it.
//
// Only concurrent losses are conflicts: an update over a value its origin
// had seen (its context covers that write) is an ordinary overwrite, and
// cells known only from an old row image (Eff 0) are never written values.
// Two concurrent writes of the same value lose nothing and are not
// reported. A delete concurrent with an update is not a column conflict
// (add-wins liveness keeps the row) and is not reported either.
type Conflict struct {
	Table, Key, Column string
	Winner, Loser      Cell
}

// noteConflict records in m.conflicts that cur and w met on col, when they
// are concurrent writes with different values: whichever of the two loses
// is the loser. w is the cell the transaction being merged writes.
func (m *merger) noteConflict(id rowID, col string, cur, w Cell, curWins bool) {
	if cur.Eff == 0 || (cur.Origin == w.Origin && cur.Eff == w.Eff) {
		return // an old-image cell, or an earlier op of this transaction
	}
	if compareValues(cur.Value, w.Value) == 0 {
		return
	}
	if !curWins && m.seenWrite(cur.Origin, cur.Offset) {
		return // the transaction had seen cur: an ordinary overwrite
	}
	c := Conflict{Table: id.table, Key: id.key, Column: col, Winner: w, Loser: cur}
	if curWins {
		c.Winner, c.Loser = cur, w
	}
	m.conflicts = append(m.conflicts, c)
}
