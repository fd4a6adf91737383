package merge

// Snapshot rows
//
// OpSnapshot carries a row read from a source's table (not from its log):
// a row that existed before replication saw it, read after streaming had
// started. It must never overwrite what the log says, so it is merged by
// these rules:
//
//   - no row state for the key (never written, not even a tombstone): the
//     row is inserted with every cell at SnapshotEff (lower than any logged
//     write's eff, so any logged write to a cell beats it) and the tag
//     (Origin, SnapshotEff): the origin's later delete covers it (the
//     origin's own entries count as seen), and so does any delete whose
//     context includes the snapshot's entry;
//   - a row state exists, live or deleted: the snapshot only fills cells
//     the state does not know yet (at SnapshotEff) and adds no tag, so it
//     never resurrects a deleted row and never changes a known value.
//
// So identical rows read from two sources merge into one, and differing ones
// resolve by log order: the first snapshot merged wins, and the merged entry
// is what every replica receives. A write of the source between slot
// creation and the read reaches the log through the stream as well, and
// beats the snapshot's cells whichever is merged first; a row deleted on the
// source after its read is deleted by the streamed delete (merged after:
// the delete covers the tag; merged before: the tombstone stops the
// snapshot row).
//
// Unlike every other op, snapshot ops are not order-independent: which of
// two differing snapshot rows wins depends on which the log merged first.
// Every replica follows the log, so they still converge.

// SnapshotEff is the effective timestamp of snapshot cells and tags: the
// lowest a written cell can have (0 marks old-image cells).
const SnapshotEff uint64 = 1

// snapshot merges a snapshot row into r and reports whether it changed r.
// A value it brings for a cell the state holds with another value is
// reported as a conflict it lost (two Postgres held differing rows).
func (m *merger) snapshot(id rowID, r *Row, op *Op) bool {
	if len(r.Cells) == 0 && len(r.Tags) == 0 { // a tombstone keeps its cells
		r.Cells = make(map[string]Cell, len(op.Columns))
		for col, v := range op.Columns {
			r.Cells[col] = Cell{Value: v, Eff: SnapshotEff, Origin: m.origin, Offset: m.offset}
		}
		r.Tags = append(r.Tags, Tag{Origin: m.origin, Eff: SnapshotEff, Offset: m.offset})
		return true
	}
	changed := false
	for col, v := range op.Columns {
		cur, ok := r.Cells[col]
		if !ok {
			r.Cells[col] = Cell{Value: v, Eff: SnapshotEff, Origin: m.origin, Offset: m.offset}
			changed = true
			continue
		}
		if compareValues(cur.Value, v) != 0 {
			m.conflicts = append(m.conflicts, Conflict{Table: id.table, Key: id.key, Column: col,
				Winner: cur, Loser: Cell{Value: v, Eff: SnapshotEff, Origin: m.origin, Offset: m.offset}})
		}
	}
	return changed
}
