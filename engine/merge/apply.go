package merge

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalidTx is wrapped by every error Apply returns for a malformed
// transaction (as opposed to an error of the Store).
var ErrInvalidTx = errors.New("invalid transaction")

// Apply merges one source transaction into the row states held by s and
// returns the new states of every row it touched. originLast is the highest
// effective timestamp of tx.Origin's earlier entries (0 if none). Apply does
// not modify the rows s returns: every changed row is a fresh copy in
// Result.Changes, which the caller persists. Transactions must be applied
// in log order (Tx.Offset increasing).
//
// The rules (DESIGN.md "Conflict semantics"; "seen" is defined in the
// package comment, "Causal context"):
//
//   - eff = max(Bound(CommitTime, Now), 1 + ContextEff, 1 + originLast).
//     The origin's own earlier writes count as seen by the transaction. An
//     eff beyond MaxTimestamp refuses the transaction (see the package
//     comment, "Bounded clocks").
//   - insert/update: every written column becomes the cell (value, eff,
//     Origin) unless the row holds a cell with a greater (eff, origin)
//     (origins compared as strings; within one transaction the later op
//     wins); the row gets the tag (Origin, eff, Offset).
//   - Op.Old fills only columns the row does not know from a write; such
//     cells carry Eff 0, never beat a written cell, and among themselves
//     the greater (origin, value) wins, so arrival order does not matter.
//   - delete: removes every tag the transaction has seen (its own earlier
//     ops included, so insert-then-delete in one transaction removes the
//     row).
//   - truncate: a delete of every live row of the table that the store or
//     this transaction holds. Dead rows are left alone and give no Change.
//   - snapshot: a row that existed before replication; it never overwrites
//     what the row state knows (see snapshot.go) and gives no Change when it
//     adds nothing.
//
// Several ops on one row apply in order; Result.Changes has one Change per
// row in first-touch order. Cells are kept after a delete: a concurrent
// update that resurrects the row brings back the whole image, and
// State.Image() of a dead row is its last image.
//
// With these rules the same transactions give the same rows in every order
// the log could have had them in: each origin's transactions in sequence,
// each transaction after what it had seen and with a context that is a
// prefix of the log before it. A TRUNCATE only knows the rows that arrived
// before it, which such orders keep the same.
func Apply(s Store, originLast uint64, tx Tx) (Result, error) {
	if tx.Origin == "" {
		return Result{}, fmt.Errorf("apply: %w: empty origin", ErrInvalidTx)
	}
	if tx.Offset == 0 || tx.Context >= tx.Offset {
		return Result{}, fmt.Errorf("apply: %w: %s: context offset %d is not before the transaction's offset %d",
			ErrInvalidTx, tx.Origin, tx.Context, tx.Offset)
	}
	eff, err := effective(tx, originLast)
	if err != nil {
		return Result{}, err
	}
	m := merger{
		s:      s,
		origin: tx.Origin,
		eff:    eff,
		offset: tx.Offset,
		ctx:    tx.Context,
		index:  make(map[rowID]int, len(tx.Ops)),
		slab:   make([]touched, 0, len(tx.Ops)),
	}
	for i := range tx.Ops {
		if err := m.apply(&tx.Ops[i]); err != nil {
			return Result{}, fmt.Errorf("apply op %d of %s: %w", i, tx.Origin, err)
		}
	}
	res := Result{Eff: eff, Changes: make([]Change, 0, len(m.rows)), Conflicts: m.conflicts}
	for _, r := range m.rows {
		if r.skip {
			continue
		}
		c := Change{Table: r.id.table, Key: r.id.key, State: r.row, Live: r.row.Live()}
		if c.Live {
			c.Image = r.row.Image()
		}
		res.Changes = append(res.Changes, c)
	}
	return res, nil
}

// Effective returns the effective timestamp Apply gives tx.
func Effective(tx Tx, originLast uint64) (uint64, error) { return effective(tx, originLast) }

func effective(tx Tx, originLast uint64) (uint64, error) {
	eff := Bound(tx.CommitTime, tx.Now)
	for _, seen := range [2]uint64{tx.ContextEff, originLast} {
		if seen >= MaxTimestamp {
			return 0, fmt.Errorf("apply: %w: timestamp overflow: %s has seen the effective timestamp %d and no eff may exceed %d (year 9999); the log holds a poisoned clock",
				ErrInvalidTx, tx.Origin, seen, MaxTimestamp)
		}
		eff = max(eff, seen+1)
	}
	return eff, nil
}

type rowID struct{ table, key string }

type touched struct {
	id    rowID
	row   *Row // &state
	state Row
	// skip: loaded by a truncate that left it alone (it was dead); no
	// Change unless a later op of the transaction touches it.
	skip bool
}

type merger struct {
	s      Store
	origin string
	eff    uint64
	offset uint64 // of the transaction's entry
	ctx    uint64 // Tx.Context
	rows   []*touched
	index  map[rowID]int
	slab   []touched // preallocated touched rows, one per op
	// conflicts: cells lost to a concurrent write (see conflict.go)
	conflicts []Conflict
}

// newTouched takes a touched row from the slab (one allocation per
// transaction instead of one per row; truncates may need more).
func (m *merger) newTouched() *touched {
	if len(m.slab) == cap(m.slab) {
		return &touched{}
	}
	m.slab = m.slab[:len(m.slab)+1]
	return &m.slab[len(m.slab)-1]
}

func (m *merger) apply(op *Op) error {
	if op.Table == "" {
		return fmt.Errorf("%w: empty table", ErrInvalidTx)
	}
	switch op.Kind {
	case OpInsert, OpUpdate:
		t, err := m.row(op.Table, op.Key)
		if err != nil {
			return err
		}
		m.write(t.id, t.row, op)
		t.skip = false
	case OpDelete:
		t, err := m.row(op.Table, op.Key)
		if err != nil {
			return err
		}
		m.fillOld(t.row, op.Old)
		m.del(t.row)
		t.skip = false
	case OpTruncate:
		return m.truncate(op.Table)
	case OpSnapshot:
		_, seen := m.index[rowID{op.Table, op.Key}]
		t, err := m.row(op.Table, op.Key)
		if err != nil {
			return err
		}
		if m.snapshot(t.id, t.row, op) {
			t.skip = false
		} else if !seen {
			t.skip = true // nothing to persist or send
		}
	case OpRenameColumn, OpRewrite, OpDefault, OpDefaultAll:
		return m.schemaOp(op)
	default:
		return fmt.Errorf("%w: unknown op kind %d", ErrInvalidTx, op.Kind)
	}
	return nil
}

// row returns the working copy of a row, loading it on first touch.
func (m *merger) row(table, key string) (*touched, error) {
	id := rowID{table, key}
	if i, ok := m.index[id]; ok {
		return m.rows[i], nil
	}
	r, err := m.s.Row(table, key)
	if err != nil {
		return nil, fmt.Errorf("load row %s %q: %w", table, key, err)
	}
	t := m.newTouched()
	t.id = id
	t.row = &t.state
	if r != nil {
		r.cloneInto(t.row)
	}
	if t.row.Cells == nil {
		t.row.Cells = make(map[string]Cell)
	}
	m.index[id] = len(m.rows)
	m.rows = append(m.rows, t)
	return t, nil
}

func (m *merger) write(id rowID, r *Row, op *Op) {
	w := Cell{Eff: m.eff, Origin: m.origin, Offset: m.offset}
	for col, v := range op.Columns {
		w.Value = v
		old, ok := r.Cells[col]
		wins := !ok || !cellBeats(old, w)
		if wins {
			r.Cells[col] = w
		}
		if ok {
			m.noteConflict(id, col, old, w, !wins)
		}
	}
	m.fillOld(r, op.Old)
	m.addTag(r)
}

// fillOld records values from a source's old row image for columns the row
// knows only from old images or not at all. Old-image cells carry Eff 0 and
// the origin that reported them; among themselves they are ordered by
// (origin, value) so that the result does not depend on arrival order.
func (m *merger) fillOld(r *Row, old map[string]Value) {
	for col, v := range old {
		c := Cell{Value: v, Origin: m.origin}
		if cur, ok := r.Cells[col]; !ok || cellBeats(c, cur) {
			r.Cells[col] = c
		}
	}
}

// cellBeats reports whether a wins over b. Written cells (Eff > 0) compare
// by (Eff, Origin); equal keys are the same transaction, where the later op
// wins, so a does not beat b. Old-image cells (Eff 0) lose to every written
// cell and compare by (Origin, Value) among themselves.
func cellBeats(a, b Cell) bool {
	if a.Eff != b.Eff {
		return a.Eff > b.Eff
	}
	if a.Origin != b.Origin {
		return a.Origin > b.Origin
	}
	if a.Eff != 0 {
		return false
	}
	return compareValues(a.Value, b.Value) > 0
}

// compareValues orders NULL before every text value.
func compareValues(a, b Value) int {
	switch {
	case a.Null && b.Null:
		return 0
	case a.Null:
		return -1
	case b.Null:
		return 1
	}
	return strings.Compare(a.Text, b.Text)
}

func (m *merger) addTag(r *Row) {
	t := Tag{Origin: m.origin, Eff: m.eff, Offset: m.offset}
	// One tag per origin is enough: a delete that has seen an origin's
	// later tag has seen its earlier ones too, so only the latest decides
	// liveness.
	for i, have := range r.Tags {
		if have.Origin == t.Origin {
			if t.Offset >= have.Offset {
				r.Tags[i] = t
			}
			return
		}
	}
	r.Tags = append(r.Tags, t)
}

// seen reports whether the transaction has seen the write that added t:
// it is within the context offset, or an earlier write of the same origin
// (this transaction's own earlier ops included).
func (m *merger) seen(t Tag) bool { return m.seenWrite(t.Origin, t.Offset) }

// seenWrite reports whether the transaction has seen the write of origin
// at offset.
func (m *merger) seenWrite(origin string, offset uint64) bool {
	return offset <= m.ctx || origin == m.origin
}

// del removes the tags the transaction has seen. Nothing else is kept: in
// the log's total order no tag it has seen can arrive after it (see the
// package comment, "Causal context").
func (m *merger) del(r *Row) {
	kept := r.Tags[:0]
	for _, t := range r.Tags {
		if !m.seen(t) {
			kept = append(kept, t)
		}
	}
	clear(r.Tags[len(kept):])
	r.Tags = kept
}

// truncate deletes every live row of table (the tags of each that the
// transaction has seen). Rows already dead keep their state and give no
// Change: a truncate of a table full of tombstones must not rewrite them
// all.
func (m *merger) truncate(table string) error {
	keys, err := m.s.Keys(table)
	if err != nil {
		return fmt.Errorf("list keys of %s: %w", table, err)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, seen := m.index[rowID{table, k}]; seen {
			continue // handled below with this transaction's rows
		}
		t, err := m.row(table, k)
		if err != nil {
			return err
		}
		if !t.row.Live() {
			t.skip = true
			continue
		}
		m.del(t.row)
	}
	// Rows this transaction touched before, some not in the store yet.
	for _, t := range m.rows {
		if t.id.table == table && !t.skip {
			m.del(t.row)
		}
	}
	return nil
}

// Live reports whether the row exists: a tag no delete has seen remains.
func (r *Row) Live() bool { return r != nil && len(r.Tags) > 0 }

// Image returns every known column of the row, whether or not it is live: for
// a deleted row it is the last merged image, which sinks use to name the row.
func (r *Row) Image() map[string]Value {
	if r == nil {
		return nil
	}
	img := make(map[string]Value, len(r.Cells))
	for col, c := range r.Cells {
		img[col] = c.Value
	}
	return img
}

// Clone returns a deep copy of r.
func (r *Row) Clone() *Row {
	if r == nil {
		return nil
	}
	c := &Row{}
	r.cloneInto(c)
	return c
}

func (r *Row) cloneInto(c *Row) {
	if r.Cells != nil {
		c.Cells = make(map[string]Cell, len(r.Cells))
		for k, v := range r.Cells {
			c.Cells[k] = v
		}
	}
	if r.Tags != nil {
		c.Tags = slices.Clone(r.Tags)
	}
}
