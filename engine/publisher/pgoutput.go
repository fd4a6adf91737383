package publisher

import (
	"encoding/binary"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
)

// pgoutput protocol version 1 messages, as the stock pgoutput plugin writes
// them (src/backend/replication/logical/proto.c). Only what Electric sends to
// a subscriber is encoded here: Begin, Commit, Relation, Insert, Delete, and
// the walsender's XLogData and keepalive wrappers.

// pgEpochOffset is the number of microseconds between the Unix epoch and the
// Postgres epoch (2000-01-01 UTC).
const pgEpochOffset = 946_684_800 * 1_000_000

// pgTime converts microseconds since the Unix epoch to microseconds since the
// Postgres epoch.
func pgTime(unixMicros uint64) int64 { return int64(unixMicros) - pgEpochOffset }

// pgNow is the current time in Postgres epoch microseconds.
func pgNow() int64 { return time.Now().UnixMicro() - pgEpochOffset }

func putU16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func putU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func putU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
func putCString(b []byte, s string) []byte {
	b = append(b, s...)
	return append(b, 0)
}

// appendBegin appends a Begin message.
func appendBegin(b []byte, finalLSN uint64, commitTime int64, xid uint32) []byte {
	b = append(b, 'B')
	b = putU64(b, finalLSN)
	b = putU64(b, uint64(commitTime))
	return putU32(b, xid)
}

// appendCommit appends a Commit message. commitLSN must equal the Begin's
// final LSN: the apply worker checks it.
func appendCommit(b []byte, commitLSN, endLSN uint64, commitTime int64) []byte {
	b = append(b, 'C', 0)
	b = putU64(b, commitLSN)
	b = putU64(b, endLSN)
	return putU64(b, uint64(commitTime))
}

// relColumn is one column of a Relation message.
type relColumn struct {
	Name    string
	Key     bool
	TypeOID uint32
	TypeMod int32
}

// appendRelation appends a Relation message.
func appendRelation(b []byte, relID uint32, namespace, name string, replIdent byte, cols []relColumn) []byte {
	b = append(b, 'R')
	b = putU32(b, relID)
	b = putCString(b, namespace)
	b = putCString(b, name)
	b = append(b, replIdent)
	b = putU16(b, uint16(len(cols)))
	for _, c := range cols {
		var flags byte
		if c.Key {
			flags = 1
		}
		b = append(b, flags)
		b = putCString(b, c.Name)
		b = putU32(b, c.TypeOID)
		b = putU32(b, uint32(c.TypeMod))
	}
	return b
}

// appendRowTuple appends TupleData for a merged row image in the order of
// cols: a column the image lacks is sent as NULL; with keyOnly every non-key
// column is NULL (a 'K' tuple, as pgoutput sends for a default identity).
func appendRowTuple(b []byte, cols []relColumn, row map[string]merge.Value, keyOnly bool) []byte {
	b = putU16(b, uint16(len(cols)))
	for _, c := range cols {
		if keyOnly && !c.Key {
			b = append(b, 'n')
			continue
		}
		v, ok := row[c.Name]
		if !ok || v.Null {
			b = append(b, 'n')
			continue
		}
		b = append(b, 't')
		b = putU32(b, uint32(len(v.Text)))
		b = append(b, v.Text...)
	}
	return b
}

// appendInsert appends an Insert message with the new tuple.
func appendInsert(b []byte, relID uint32, cols []relColumn, row map[string]merge.Value) []byte {
	b = append(b, 'I')
	b = putU32(b, relID)
	b = append(b, 'N')
	return appendRowTuple(b, cols, row, false)
}

// appendDelete appends a Delete message with a 'K' tuple: the key columns,
// the others NULL. The subscriber finds the row by its primary key.
func appendDelete(b []byte, relID uint32, cols []relColumn, row map[string]merge.Value) []byte {
	b = append(b, 'D')
	b = putU32(b, relID)
	b = append(b, 'K')
	return appendRowTuple(b, cols, row, true)
}

// appendXLogData wraps a pgoutput message as the walsender does: 'w',
// start LSN, WAL end, send time, message.
func appendXLogData(b []byte, start, end uint64, sendTime int64, msg []byte) []byte {
	b = append(b, 'w')
	b = putU64(b, start)
	b = putU64(b, end)
	b = putU64(b, uint64(sendTime))
	return append(b, msg...)
}

// appendKeepalive appends a primary keepalive message.
func appendKeepalive(b []byte, walEnd uint64, sendTime int64, replyRequested bool) []byte {
	b = append(b, 'k')
	b = putU64(b, walEnd)
	b = putU64(b, uint64(sendTime))
	if replyRequested {
		return append(b, 1)
	}
	return append(b, 0)
}

// standbyStatus is a standby status update ('r') from the subscriber.
type standbyStatus struct {
	Write, Flush, Apply uint64
	Clock               int64
	Reply               bool
}

// parseStandbyStatus decodes the body of a CopyData 'r' message, type byte
// included.
func parseStandbyStatus(b []byte) (standbyStatus, bool) {
	if len(b) != 34 || b[0] != 'r' {
		return standbyStatus{}, false
	}
	return standbyStatus{
		Write: binary.BigEndian.Uint64(b[1:]),
		Flush: binary.BigEndian.Uint64(b[9:]),
		Apply: binary.BigEndian.Uint64(b[17:]),
		Clock: int64(binary.BigEndian.Uint64(b[25:])),
		Reply: b[33] != 0,
	}, true
}
