package merge

import (
	"fmt"
	"slices"
)

// Schema changes
//
// Cells are keyed by column name, so a source's DDL must reach the row
// states through the log, in the order of the source's writes, or a
// rename reads as a new, empty column and a default its table filled in
// without writing a row (fast defaults, table rewrites) is never seen. The
// source reports them as ops of the DDL's own transaction:
//
//   - OpRenameColumn: in every live row of Table, the cell Column is
//     copied to NewName unless NewName holds a cell that beats it (the
//     cell keeps the eff and origin of the write that set it, so two
//     sources renaming the same column resolve by their writes, not by
//     when each renamed). Column is kept: another source may still have
//     the column under its old name.
//   - OpRewrite: the values a table rewrite (ALTER COLUMN ... TYPE ...
//     USING) left in a row, a write of the transaction (eff, origin) to an
//     existing live row; a value the rewrite left as it was keeps its
//     cell. It never creates nor resurrects a row: the row's
//     insert is its own op.
//   - OpDefault: cells a live row does not know yet, at the transaction's
//     eff (a column added with a default: a later write beats it). A cell
//     the row knows is left alone, so the second source to add the same
//     column does not overwrite values written since the first.
//     OpDefaultAll does it in every live row of Table (a constant default).
//
// None of them adds a tag: liveness is untouched. Rows that gain nothing
// give no Change.

func (m *merger) schemaOp(op *Op) error {
	if op.Kind == OpRenameColumn && (op.Column == "" || op.NewName == "" || op.Column == op.NewName) {
		return fmt.Errorf("%w: rename of %q to %q", ErrInvalidTx, op.Column, op.NewName)
	}
	if op.Kind == OpRewrite || op.Kind == OpDefault {
		return m.schemaRow(op, op.Key)
	}
	keys, err := m.s.Keys(op.Table)
	if err != nil {
		return fmt.Errorf("list keys of %s: %w", op.Table, err)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := m.schemaRow(op, k); err != nil {
			return err
		}
	}
	// Rows this transaction created, not in the store yet.
	for _, t := range m.rows {
		if t.id.table == op.Table && !slices.Contains(keys, t.id.key) {
			if m.schemaApply(t.row, op) {
				t.skip = false
			}
		}
	}
	return nil
}

func (m *merger) schemaRow(op *Op, key string) error {
	_, seen := m.index[rowID{op.Table, key}]
	t, err := m.row(op.Table, key)
	if err != nil {
		return err
	}
	if m.schemaApply(t.row, op) {
		t.skip = false
	} else if !seen {
		t.skip = true // nothing to persist or send
	}
	return nil
}

// schemaApply applies one schema op to a row and reports whether it
// changed it.
func (m *merger) schemaApply(r *Row, op *Op) bool {
	if !r.Live() {
		return false
	}
	changed := false
	switch op.Kind {
	case OpRenameColumn:
		from, ok := r.Cells[op.Column]
		if !ok {
			return false
		}
		if to, ok := r.Cells[op.NewName]; !ok || cellBeats(from, to) {
			r.Cells[op.NewName] = from
			changed = true
		}
	case OpRewrite:
		w := Cell{Eff: m.eff, Origin: m.origin, Offset: m.offset}
		for col, v := range op.Columns {
			w.Value = v
			old, ok := r.Cells[col]
			if ok && (old.Value == v || cellBeats(old, w)) {
				continue // unchanged by the rewrite, or written since
			}
			r.Cells[col] = w
			changed = true
		}
	case OpDefault, OpDefaultAll:
		for col, v := range op.Columns {
			if _, ok := r.Cells[col]; !ok {
				r.Cells[col] = Cell{Value: v, Eff: m.eff, Origin: m.origin, Offset: m.offset}
				changed = true
			}
		}
	}
	return changed
}
