package pgsource

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/electric-sql/electric-go/engine/merge"
)

// relation is what the decoder knows about one relation id of the stream.
type relation struct {
	id       uint32
	table    string   // "schema.name"
	cols     []string // in the order of the tuples
	keyIdx   []int    // positions in cols of the primary key, in key order
	electric bool     // in the electric schema: never replicated
	skip     bool     // not replicated (no primary key, ...): changes are ignored
}

// resolver turns a Relation message into what the decoder needs. It may
// consult (and refresh) the schema, and it logs why a table is skipped.
type resolver interface {
	resolve(ctx context.Context, m *pglogrepl.RelationMessage) (*relation, error)
}

// warner reports a problem with one change that does not stop the stream.
type warner interface {
	warnChange(table, msg string)
}

// sourceTx is one decoded source transaction, before the echo and electric
// rules decide what becomes of it.
type sourceTx struct {
	xid        uint32
	endLSN     pglogrepl.LSN
	commitTime time.Time
	origin     string        // replication origin name, "" for local writes
	originLSN  pglogrepl.LSN // the origin's commit LSN
	ops        []merge.Op
	electric   bool // touched an electric.* table
	rows       int  // row changes seen, replicated or not
}

// decoder assembles pgoutput v1 messages into transactions. It is not safe
// for concurrent use; one decoder lives as long as one replication
// connection, since relation ids are only valid within a stream.
type decoder struct {
	res  resolver
	warn warner
	rels map[uint32]*relation
	cur  *sourceTx
}

func newDecoder(res resolver, warn warner) *decoder {
	return &decoder{res: res, warn: warn, rels: map[uint32]*relation{}}
}

// inTx reports whether a transaction is open (between Begin and Commit).
func (d *decoder) inTx() bool { return d.cur != nil }

// handle decodes one pgoutput message; it returns the transaction when the
// message was its Commit.
func (d *decoder) handle(ctx context.Context, data []byte) (*sourceTx, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("decoding pgoutput message: empty message")
	}
	msg, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("decoding pgoutput message %q: %w", data[0], err)
	}
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		if d.cur != nil {
			return nil, fmt.Errorf("decoding pgoutput: Begin of xid %d inside xid %d", m.Xid, d.cur.xid)
		}
		d.cur = &sourceTx{xid: m.Xid, commitTime: m.CommitTime}
		return nil, nil
	case *pglogrepl.CommitMessage:
		if d.cur == nil {
			return nil, fmt.Errorf("decoding pgoutput: Commit without Begin")
		}
		tx := d.cur
		d.cur = nil
		tx.endLSN = m.TransactionEndLSN
		tx.commitTime = m.CommitTime
		return tx, nil
	case *pglogrepl.OriginMessage:
		if d.cur == nil {
			return nil, fmt.Errorf("decoding pgoutput: Origin outside a transaction")
		}
		d.cur.origin = m.Name
		d.cur.originLSN = m.CommitLSN
		return nil, nil
	case *pglogrepl.RelationMessage:
		rel, err := d.res.resolve(ctx, m)
		if err != nil {
			return nil, err
		}
		d.rels[m.RelationID] = rel
		return nil, nil
	case *pglogrepl.TypeMessage:
		// Values stay in text form: the type's name is not needed.
		return nil, nil
	case *pglogrepl.LogicalDecodingMessage:
		// The schema history's messages (history.go), in the DDL's
		// transaction; any other is not ours.
		if m.Prefix != ddlPrefix || !m.Transactional || d.cur == nil {
			return nil, nil
		}
		ops, table, note, err := ddlOps(m.Content)
		if err != nil {
			// The DDL happened: its values are not in the merged rows.
			d.warn.warnChange(table, "schema change not understood, its values are not merged: "+err.Error())
			return nil, nil
		}
		if note != "" {
			d.warn.warnChange(table, note)
		}
		d.cur.ops = append(d.cur.ops, ops...)
		return nil, nil
	case *pglogrepl.InsertMessage:
		rel, err := d.change(m.RelationID)
		if err != nil || rel == nil {
			return nil, err
		}
		vals, err := tupleCells(rel, m.Tuple, false)
		if err != nil {
			return nil, err
		}
		key, ok := keyOf(rel, vals)
		if !ok {
			d.warn.warnChange(rel.table, "insert without primary key values: change ignored")
			return nil, nil
		}
		d.cur.ops = append(d.cur.ops, merge.Op{Kind: merge.OpInsert, Table: rel.table, Key: key, Columns: rowOf(rel, vals)})
		return nil, nil
	case *pglogrepl.UpdateMessage:
		rel, err := d.change(m.RelationID)
		if err != nil || rel == nil {
			return nil, err
		}
		return nil, d.update(rel, m)
	case *pglogrepl.DeleteMessage:
		rel, err := d.change(m.RelationID)
		if err != nil || rel == nil {
			return nil, err
		}
		old, err := tupleCells(rel, m.OldTuple, m.OldTupleType == pglogrepl.DeleteMessageTupleTypeKey)
		if err != nil {
			return nil, err
		}
		key, ok := keyOf(rel, old)
		if !ok {
			d.warn.warnChange(rel.table, "delete without the old key (replica identity nothing?): change ignored")
			return nil, nil
		}
		d.cur.ops = append(d.cur.ops, merge.Op{Kind: merge.OpDelete, Table: rel.table, Key: key, Old: rowOf(rel, old)})
		return nil, nil
	case *pglogrepl.TruncateMessage:
		if d.cur == nil {
			return nil, fmt.Errorf("decoding pgoutput: Truncate outside a transaction")
		}
		for _, id := range m.RelationIDs {
			rel, err := d.change(id)
			if err != nil {
				return nil, err
			}
			if rel != nil {
				d.cur.ops = append(d.cur.ops, merge.Op{Kind: merge.OpTruncate, Table: rel.table})
			}
		}
		return nil, nil
	default:
		return nil, fmt.Errorf("decoding pgoutput: unexpected message %q", data[0])
	}
}

// parse wraps pglogrepl.Parse, which indexes past the end of some truncated
// messages: a malformed message must be an error (and a reconnect), not a
// crash of the engine.
func parse(data []byte) (msg pglogrepl.Message, err error) {
	if err := checkTupleLengths(data); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			msg, err = nil, fmt.Errorf("malformed message (%d bytes): %v", len(data), r)
		}
	}()
	return pglogrepl.Parse(data)
}

// checkTupleLengths checks that every value of the tuples of an Insert,
// Update or Delete, and the relation ids of a Truncate, fit in the message:
// pglogrepl allocates what a length field declares before reading it, so a
// 14-byte message declaring a 4 GiB value would allocate 4 GiB.
func checkTupleLengths(data []byte) error {
	if len(data) < 6 {
		return nil // too short to hold a tuple: pglogrepl reports it
	}
	// Type byte and relation id, then a tuple kind byte before each tuple
	// ('K' or 'O' then 'N' for an Update).
	var tuples int
	switch data[0] {
	case 'T':
		// Relation count, options byte, then the relation ids: pglogrepl
		// makes the id slice first.
		n := uint64(binary.BigEndian.Uint32(data[1:]))
		if 4*n > uint64(len(data)-6) {
			return fmt.Errorf("malformed message: truncate of %d relations in %d bytes", n, len(data))
		}
		return nil
	case 'I', 'D':
		tuples = 1
	case 'U':
		tuples = 2
	default:
		return nil
	}
	b := data[5:]
	for i := 0; i < tuples && len(b) > 0; i++ {
		if data[0] == 'U' && b[0] == 'N' {
			i++ // no old tuple: this is the last one
		}
		b = b[1:]
		if len(b) < 2 {
			return nil
		}
		ncols := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		for c := 0; c < ncols && len(b) > 0; c++ {
			kind := b[0]
			b = b[1:]
			if kind != pglogrepl.TupleDataTypeText && kind != pglogrepl.TupleDataTypeBinary {
				continue
			}
			if len(b) < 4 {
				return nil
			}
			n := uint64(binary.BigEndian.Uint32(b))
			b = b[4:]
			if n > uint64(len(b)) {
				return fmt.Errorf("malformed message: column %d declares %d bytes, %d left in the message", c, n, len(b))
			}
			b = b[n:]
		}
	}
	return nil
}

// change checks a row change's context and returns its relation, or nil when
// the change is to be ignored (electric schema or a skipped table).
func (d *decoder) change(id uint32) (*relation, error) {
	if d.cur == nil {
		return nil, fmt.Errorf("decoding pgoutput: change to relation %d outside a transaction", id)
	}
	rel, ok := d.rels[id]
	if !ok {
		return nil, fmt.Errorf("decoding pgoutput: change to relation %d without a Relation message", id)
	}
	d.cur.rows++
	if rel.electric {
		d.cur.electric = true
		return nil, nil
	}
	if rel.skip {
		return nil, nil
	}
	return rel, nil
}

// cell is one decoded tuple value.
type cell struct {
	v       merge.Value
	known   bool // false: unchanged TOAST, or a column a key-only tuple lacks
	toasted bool // the 'u' marker: the value did not change
}

func tupleCells(rel *relation, td *pglogrepl.TupleData, keyOnly bool) ([]cell, error) {
	if td == nil {
		return nil, nil
	}
	if len(td.Columns) != len(rel.cols) {
		return nil, fmt.Errorf("decoding pgoutput: tuple of %s has %d columns, its Relation message %d", rel.table, len(td.Columns), len(rel.cols))
	}
	// One string for all the text values of the tuple, sliced per column:
	// one allocation per row instead of one per column.
	n := 0
	for _, c := range td.Columns {
		if c.DataType == pglogrepl.TupleDataTypeText {
			n += len(c.Data)
		}
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, c := range td.Columns {
		if c.DataType == pglogrepl.TupleDataTypeText {
			sb.Write(c.Data)
		}
	}
	all := sb.String()
	at := 0
	out := make([]cell, len(td.Columns))
	for i, c := range td.Columns {
		switch c.DataType {
		case pglogrepl.TupleDataTypeText:
			out[i] = cell{v: merge.Value{Text: all[at : at+len(c.Data)]}, known: true}
			at += len(c.Data)
		case pglogrepl.TupleDataTypeNull:
			out[i] = cell{v: merge.Value{Null: true}, known: true}
		case pglogrepl.TupleDataTypeToast:
			out[i] = cell{toasted: true}
		default:
			return nil, fmt.Errorf("decoding pgoutput: column %s.%s has unexpected tuple data type %q", rel.table, rel.cols[i], c.DataType)
		}
	}
	if keyOnly {
		// A key tuple sends the other columns as NULL: they are unknown.
		for i := range out {
			out[i].known = false
		}
		for _, k := range rel.keyIdx {
			out[k].known = td.Columns[k].DataType != pglogrepl.TupleDataTypeToast
		}
	}
	return out, nil
}

// keyOf encodes the primary key of a tuple; false when a key value is unknown.
func keyOf(rel *relation, vals []cell) (string, bool) {
	if vals == nil {
		return "", false
	}
	kv := make([]merge.Value, len(rel.keyIdx))
	for i, k := range rel.keyIdx {
		if !vals[k].known {
			return "", false
		}
		kv[i] = vals[k].v
	}
	return merge.EncodeKey(kv), true
}

// rowOf maps the known values of a tuple by column name.
func rowOf(rel *relation, vals []cell) map[string]merge.Value {
	if vals == nil {
		return nil
	}
	m := make(map[string]merge.Value, len(vals))
	for i, c := range vals {
		if c.known {
			m[rel.cols[i]] = c.v
		}
	}
	return m
}

func (d *decoder) update(rel *relation, m *pglogrepl.UpdateMessage) error {
	newVals, err := tupleCells(rel, m.NewTuple, false)
	if err != nil {
		return err
	}
	if newVals == nil {
		return fmt.Errorf("decoding pgoutput: update of %s without a new tuple", rel.table)
	}
	var oldVals []cell
	switch m.OldTupleType {
	case pglogrepl.UpdateMessageTupleTypeOld:
		oldVals, err = tupleCells(rel, m.OldTuple, false)
	case pglogrepl.UpdateMessageTupleTypeKey:
		oldVals, err = tupleCells(rel, m.OldTuple, true)
	}
	if err != nil {
		return err
	}
	// An unchanged TOAST value in the new tuple is the old value when the old
	// tuple carries it (REPLICA IDENTITY FULL flattens it into the WAL).
	full := make([]cell, len(newVals))
	copy(full, newVals)
	for i := range full {
		if full[i].toasted && oldVals != nil && oldVals[i].known {
			full[i] = cell{v: oldVals[i].v, known: true}
		}
	}
	newKey, ok := keyOf(rel, full)
	if !ok {
		d.warn.warnChange(rel.table, "update without the new key values: change ignored")
		return nil
	}
	oldKey := newKey
	if k, ok := keyOf(rel, oldVals); ok {
		oldKey = k
	}
	oldRow := rowOf(rel, oldVals)
	if oldKey != newKey {
		// A key change is a different row: delete the old, insert the new.
		d.cur.ops = append(d.cur.ops,
			merge.Op{Kind: merge.OpDelete, Table: rel.table, Key: oldKey, Old: oldRow},
			merge.Op{Kind: merge.OpInsert, Table: rel.table, Key: newKey, Columns: rowOf(rel, full)})
		return nil
	}
	cols := make(map[string]merge.Value)
	for i, c := range newVals {
		if !c.known {
			continue // unchanged TOAST: not written
		}
		if oldVals != nil && oldVals[i].known && oldVals[i].v == c.v {
			continue
		}
		cols[rel.cols[i]] = c.v
	}
	d.cur.ops = append(d.cur.ops, merge.Op{Kind: merge.OpUpdate, Table: rel.table, Key: newKey, Columns: cols, Old: oldRow})
	return nil
}
