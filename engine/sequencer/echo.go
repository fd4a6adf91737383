package sequencer

import "github.com/electric-sql/electric-go/engine/merge"

// touch is the last entry that changed a row.
type touch struct {
	offset uint64
	origin string
	safe   bool // that entry was EchoSafe
}

// touchMap remembers the last touch of recently changed rows, bounded by
// generations: when cur holds max rows it becomes prev and prev is dropped.
// A dropped row is unknown, which the echo check treats as unsafe.
type touchMap struct {
	max       int
	cur, prev map[rowID]touch
}

func (m *touchMap) get(id rowID) (touch, bool) {
	if t, ok := m.cur[id]; ok {
		return t, true
	}
	t, ok := m.prev[id]
	return t, ok
}

func (m *touchMap) set(id rowID, t touch) {
	if len(m.cur) >= m.max {
		m.prev, m.cur = m.cur, make(map[rowID]touch, m.max)
	}
	m.cur[id] = t
}

// heldRow is what the origin itself holds for a row after its transaction.
type heldRow struct {
	live     bool
	cols     map[string]merge.Value
	optional bool // a snapshot row: may give no Change
}

// echoSafe reports whether the entry merged from ops need not be sent back
// to its origin (DESIGN.md: skipping the echo is allowed only where the
// origin provably already holds the merged rows). For every row changed:
//   - the merged result equals what the origin's own transaction left in
//     it: not live after a delete, else live with an image equal, column for
//     column, to the row the origin wrote (an update is only known in full
//     when its old image has every column);
//   - no entry the origin will still receive changed the row in between:
//     the row never existed before, or its last change is at or below the
//     origin's context offset (applied there), or was an echo-safe entry
//     of the origin itself. Rows not remembered count as unsafe.
//
// A truncate is never safe: its effect on rows is not spelled out per row.
// A snapshot row is held by its origin as read, so the entry is safe when
// the merged image equals it (a row inserted by the snapshot).
func (s *Sequencer) echoSafe(ctxOff uint64, origin string, ops []merge.Op, res *merge.Result) bool {
	held := make(map[rowID]heldRow, len(ops))
	for i := range ops {
		op := &ops[i]
		id := rowID{op.Table, op.Key}
		switch op.Kind {
		case merge.OpInsert:
			held[id] = heldRow{live: true, cols: op.Columns}
		case merge.OpUpdate:
			base := op.Old
			if prev, ok := held[id]; ok {
				if !prev.live {
					return false // an update of a row this transaction deleted
				}
				base = prev.cols
			}
			cols := make(map[string]merge.Value, len(base)+len(op.Columns))
			for c, v := range base {
				cols[c] = v
			}
			for c, v := range op.Columns {
				cols[c] = v
			}
			held[id] = heldRow{live: true, cols: cols}
		case merge.OpDelete:
			held[id] = heldRow{}
		case merge.OpSnapshot:
			// The origin holds the row it was read from; a snapshot row
			// that changed nothing gives no Change and needs none.
			if _, ok := held[id]; ok {
				return false
			}
			held[id] = heldRow{live: true, cols: op.Columns, optional: true}
		default:
			return false
		}
	}
	if len(held) != len(res.Changes) {
		changed := make(map[rowID]bool, len(res.Changes))
		for i := range res.Changes {
			changed[rowID{res.Changes[i].Table, res.Changes[i].Key}] = true
		}
		for id, h := range held {
			if !h.optional && !changed[id] {
				return false
			}
		}
	}
	for i := range res.Changes {
		c := &res.Changes[i]
		id := rowID{c.Table, c.Key}
		h, ok := held[id]
		if !ok || h.live != c.Live || (h.live && !sameImage(h.cols, c.Image)) {
			return false
		}
		if s.ov.absent[id] {
			continue
		}
		t, ok := s.touches.get(id)
		if !ok {
			return false
		}
		if t.offset > ctxOff && (t.origin != origin || !t.safe) {
			return false
		}
	}
	return true
}

// sameImage reports whether two rows have the same columns and values.
func sameImage(a, b map[string]merge.Value) bool {
	if len(a) != len(b) {
		return false
	}
	for c, v := range a {
		w, ok := b[c]
		if !ok || v != w {
			return false
		}
	}
	return true
}
