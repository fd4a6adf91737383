package pebblelog

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// Entry returns the entry at offset. The entry is shared with readers and
// must not be modified.
func (l *Log) Entry(offset uint64) (*txlog.Entry, error) {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return nil, txlog.ErrClosed
	}
	if offset == 0 || offset > l.head {
		head := l.head
		l.mu.RUnlock()
		return nil, fmt.Errorf("read entry %d (head %d): %w", offset, head, txlog.ErrNoEntry)
	}
	if e := l.tailEntry(offset); e != nil {
		l.mu.RUnlock()
		return e, nil
	}
	l.mu.RUnlock()
	v, err := l.get(entryKey(offset))
	if err != nil {
		return nil, fmt.Errorf("read entry %d: %w", offset, err)
	}
	if v == nil {
		return nil, fmt.Errorf("read entry %d: %w", offset, txlog.ErrNoEntry)
	}
	e, err := txlog.DecodeEntry(v)
	if err != nil {
		return nil, fmt.Errorf("read entry %d: %w", offset, err)
	}
	if e.Offset != offset {
		return nil, fmt.Errorf("read entry %d: stored entry says offset %d", offset, e.Offset)
	}
	return e, nil
}

// tailEntry returns the cached entry at offset or nil; l.mu must be held.
func (l *Log) tailEntry(offset uint64) *txlog.Entry {
	if len(l.tail) == 0 {
		return nil
	}
	first := l.tail[0].Offset
	if offset < first || offset > l.tail[len(l.tail)-1].Offset {
		return nil
	}
	return l.tail[offset-first]
}

// Row returns the merged state of a row, nil when there is none. The
// returned row is the caller's own copy.
func (l *Log) Row(table, key string) (*merge.Row, error) {
	k := rowKey(table, key)
	if !l.keys.mayContain(k) {
		if l.isClosed() {
			return nil, txlog.ErrClosed
		}
		return nil, nil
	}
	v, gen, ok := l.rows.get(k)
	if !ok {
		var err error
		v, err = l.get(k)
		if err != nil {
			return nil, fmt.Errorf("read row %s %q: %w", table, key, err)
		}
		if v == nil {
			return nil, nil
		}
		l.rows.fill(k, v, gen)
	}
	r, err := merge.UnmarshalRow(v)
	if err != nil {
		return nil, fmt.Errorf("read row %s %q: %w", table, key, err)
	}
	return r, nil
}

func (l *Log) isClosed() bool {
	l.storeMu.RLock()
	defer l.storeMu.RUnlock()
	return l.storeClosed
}

// get reads from the store unless the log is closed.
func (l *Log) get(k []byte) ([]byte, error) {
	l.storeMu.RLock()
	defer l.storeMu.RUnlock()
	if l.storeClosed {
		return nil, txlog.ErrClosed
	}
	return l.store.get(k)
}

// scan scans the store unless the log is closed.
func (l *Log) scan(lower, upper []byte, fn func(k, v []byte) error) error {
	l.storeMu.RLock()
	defer l.storeMu.RUnlock()
	if l.storeClosed {
		return txlog.ErrClosed
	}
	return l.store.scan(lower, upper, fn)
}

// Keys lists the keys of every row state of table, in key order.
func (l *Log) Keys(table string) ([]string, error) { return readKeys(l.scan, table) }

// Rows calls fn for every row state of table, in key order, until fn
// returns an error, which Rows returns.
func (l *Log) Rows(table string, fn func(key string, r *merge.Row) error) error {
	return readRows(l.scan, table, fn)
}

// scanFunc is kvReader.scan of the store or of a snapshot.
type scanFunc func(lower, upper []byte, fn func(k, v []byte) error) error

func readKeys(scan scanFunc, table string) ([]string, error) {
	var keys []string
	p := tablePrefix(table)
	err := scanPrefix(scan, p, func(k, _ []byte) error {
		keys = append(keys, string(k[len(p):]))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list keys of %s: %w", table, err)
	}
	return keys, nil
}

func readRows(scan scanFunc, table string, fn func(key string, r *merge.Row) error) error {
	p := tablePrefix(table)
	return scanPrefix(scan, p, func(k, v []byte) error {
		r, err := merge.UnmarshalRow(v)
		if err != nil {
			return fmt.Errorf("read rows of %s: key %q: %w", table, k[len(p):], err)
		}
		return fn(string(k[len(p):]), r)
	})
}

func scanPrefix(scan scanFunc, p []byte, fn func(k, v []byte) error) error {
	upper := bytes.Clone(p)
	upper[len(upper)-1]++ // p ends in 0
	return scan(p, upper, fn)
}

// Position returns the position last committed for source, nil if none.
func (l *Log) Position(source string) ([]byte, error) {
	v, err := l.get(positionKey(source))
	if err != nil {
		return nil, fmt.Errorf("read position of %s: %w", source, err)
	}
	return v, nil
}

// Owner returns the user source is bound to, "" if none.
func (l *Log) Owner(source string) (string, error) {
	v, err := l.get(ownerKey(source))
	if err != nil {
		return "", fmt.Errorf("read owner of %s: %w", source, err)
	}
	return string(v), nil
}

// OriginEff returns the highest Eff of origin's entries, 0 if none.
func (l *Log) OriginEff(origin string) (uint64, error) {
	v, err := l.get(originEffKey(origin))
	if err != nil {
		return 0, fmt.Errorf("read the last eff of %s: %w", origin, err)
	}
	if v == nil {
		return 0, nil
	}
	eff, n := binary.Uvarint(v)
	if n != len(v) {
		return 0, fmt.Errorf("read the last eff of %s: malformed value %x", origin, v)
	}
	return eff, nil
}
