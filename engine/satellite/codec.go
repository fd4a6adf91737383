package satellite

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/satellite/satpb"
)

// ServerLSN encodes a log offset as the lsn sent to clients: 8 bytes,
// big-endian.
func ServerLSN(offset uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), offset)
}

var errBadServerLSN = errors.New("server lsn must be 8 bytes (a big-endian log offset)")

// OffsetOfServerLSN decodes a lsn made by ServerLSN.
func OffsetOfServerLSN(lsn []byte) (uint64, error) {
	if len(lsn) != 8 {
		return 0, fmt.Errorf("decoding server lsn %x: %w", lsn, errBadServerLSN)
	}
	return binary.BigEndian.Uint64(lsn), nil
}

// compareClientLSN compares two client lsns as big-endian unsigned integers
// of any length (the 0.4.3 client sends 4 bytes, other clients ASCII digits
// or 8 bytes; leading zero bytes do not matter). A nil lsn is the smallest.
func compareClientLSN(a, b []byte) int {
	a = bytes.TrimLeft(a, "\x00")
	b = bytes.TrimLeft(b, "\x00")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return bytes.Compare(a, b)
}

var errBitmask = errors.New("nulls bitmask too short")

// decodeRow turns a SatOpRow into values in column order. Bit i of the
// bitmask, MSB first within each byte, marks column i NULL.
func decodeRow(row *satpb.SatOpRow, ncols int) ([]merge.Value, error) {
	if row == nil {
		return nil, errors.New("missing row data")
	}
	if len(row.Values) != ncols {
		return nil, fmt.Errorf("row has %d values for %d columns", len(row.Values), ncols)
	}
	if len(row.NullsBitmask)*8 < ncols {
		return nil, fmt.Errorf("%w: %d bytes for %d columns", errBitmask, len(row.NullsBitmask), ncols)
	}
	vals := make([]merge.Value, ncols)
	for i, v := range row.Values {
		if row.NullsBitmask[i/8]&(0x80>>(i%8)) != 0 {
			vals[i] = merge.Value{Null: true}
		} else {
			vals[i] = merge.Value{Text: string(v)}
		}
	}
	return vals, nil
}

// encodeRow is decodeRow's inverse; the bitmask is ⌈n/8⌉ bytes, padded with
// zero bits.
func encodeRow(vals []merge.Value) *satpb.SatOpRow {
	row := &satpb.SatOpRow{
		NullsBitmask: make([]byte, (len(vals)+7)/8),
		Values:       make([][]byte, len(vals)),
	}
	for i, v := range vals {
		if v.Null {
			row.NullsBitmask[i/8] |= 0x80 >> (i % 8)
			row.Values[i] = []byte{}
		} else {
			row.Values[i] = []byte(v.Text)
		}
	}
	return row
}

// Postgres type OIDs whose name the 0.4.3 client decodes without loss.
const (
	oidInt2    = 21
	oidInt4    = 23
	oidText    = 25
	oidVarchar = 1043
	oidUUID    = 2950
)

// clientType is the type name announced for a column. The 0.4.3 client
// decodes char/text/uuid/varchar as strings and int2/int4/int8/float* as JS
// numbers, and crashes on any other name. Values are Postgres text either
// way, so everything else is announced as text, which round-trips. int8 and
// the floats are text too: a JS number loses int8 digits beyond 2^53 and
// turns NaN into NULL; SQLite's column affinity converts the text on insert.
func clientType(oid uint32) string {
	switch oid {
	case oidInt2:
		return "int2"
	case oidInt4:
		return "int4"
	case oidVarchar:
		return "varchar"
	case oidUUID:
		return "uuid"
	}
	return "text"
}
