package pebblelog

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// Snapshot is a Pebble snapshot of the store: the row states, positions and
// entries exactly as one commit left them. Its offset is the last entry in
// the snapshot itself (entries and the row states they leave are written in
// one batch), so no lock orders it against commits.
type Snapshot struct {
	l      *Log
	offset uint64
	snap   kvSnapshot // nil once closed; guarded by l.storeMu
}

// Snapshot returns a consistent view of the merged row state at the offset
// it reports; read the tail with NewReader(s.Offset()). Close it: an open
// snapshot keeps the store from discarding the versions it sees.
func (l *Log) Snapshot() (txlog.Snapshot, error) {
	l.storeMu.Lock()
	defer l.storeMu.Unlock()
	if l.storeClosed {
		return nil, txlog.ErrClosed
	}
	ks, err := l.store.snapshot()
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	last, err := ks.last([]byte{prefixEntry}, []byte{prefixEntry + 1})
	if err != nil || (last != nil && len(last) != 9) {
		_ = ks.close()
		if err == nil {
			err = fmt.Errorf("bad entry key %x", last)
		}
		return nil, fmt.Errorf("snapshot: find head: %w", err)
	}
	s := &Snapshot{l: l, snap: ks}
	if last != nil {
		s.offset = binary.BigEndian.Uint64(last[1:])
	}
	l.snaps[s] = struct{}{}
	return s, nil
}

// Offset is the offset of the last entry the snapshot holds.
func (s *Snapshot) Offset() uint64 { return s.offset }

// Close releases the snapshot; it is closed by the Log's Close too.
func (s *Snapshot) Close() error {
	s.l.storeMu.Lock()
	defer s.l.storeMu.Unlock()
	return s.closeLocked()
}

// closeLocked closes s; l.storeMu must be held for writing.
func (s *Snapshot) closeLocked() error {
	if s.snap == nil {
		return nil
	}
	err := s.snap.close()
	s.snap = nil
	delete(s.l.snaps, s)
	if err != nil {
		return fmt.Errorf("close snapshot: %w", err)
	}
	return nil
}

func (s *Snapshot) get(k []byte) ([]byte, error) {
	s.l.storeMu.RLock()
	defer s.l.storeMu.RUnlock()
	if s.snap == nil {
		return nil, txlog.ErrClosed
	}
	return s.snap.get(k)
}

func (s *Snapshot) scan(lower, upper []byte, fn func(k, v []byte) error) error {
	s.l.storeMu.RLock()
	defer s.l.storeMu.RUnlock()
	if s.snap == nil {
		return txlog.ErrClosed
	}
	return s.snap.scan(lower, upper, fn)
}

// Row returns the merged state of a row at the snapshot, nil when none.
func (s *Snapshot) Row(table, key string) (*merge.Row, error) {
	v, err := s.get(rowKey(table, key))
	if err != nil || v == nil {
		if err != nil {
			err = fmt.Errorf("read row %s %q at %d: %w", table, key, s.offset, err)
		}
		return nil, err
	}
	r, err := merge.UnmarshalRow(v)
	if err != nil {
		return nil, fmt.Errorf("read row %s %q at %d: %w", table, key, s.offset, err)
	}
	return r, nil
}

// Keys lists the keys of every row state of table at the snapshot.
func (s *Snapshot) Keys(table string) ([]string, error) { return readKeys(s.scan, table) }

// Rows calls fn for every row state of table at the snapshot, in key order.
func (s *Snapshot) Rows(table string, fn func(key string, r *merge.Row) error) error {
	return readRows(s.scan, table, fn)
}

// Tables lists the tables with row states at the snapshot, in order.
func (s *Snapshot) Tables() ([]string, error) {
	var tables []string
	lower, upper := []byte{prefixRow}, []byte{prefixRow + 1}
	for {
		var table []byte
		err := s.scan(lower, upper, func(k, _ []byte) error {
			i := bytes.IndexByte(k, 0)
			if i < 1 {
				return fmt.Errorf("bad row key %q", k)
			}
			table = bytes.Clone(k[1:i])
			return errStopScan
		})
		if err != nil {
			return nil, fmt.Errorf("list tables at %d: %w", s.offset, err)
		}
		if table == nil {
			return tables, nil
		}
		tables = append(tables, string(table))
		lower = tablePrefix(string(table))
		lower[len(lower)-1]++ // past every key of the table
	}
}

// Position returns the position of source at the snapshot, nil if none.
func (s *Snapshot) Position(source string) ([]byte, error) {
	v, err := s.get(positionKey(source))
	if err != nil {
		return nil, fmt.Errorf("read position of %s at %d: %w", source, s.offset, err)
	}
	return v, nil
}
