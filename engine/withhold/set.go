// Package withhold owns the rows the engine holds back from one connector's
// subscriber because that Postgres cannot apply them (a CHECK, a unique
// index, NOT NULL, a type that differs there): the durable withheld set in
// the engine's state directory, the diagnosis that finds the failing rows
// of a subscriber whose apply worker keeps failing, and their retry. It
// decides what is withheld; the publisher only asks it (Set.Held) while
// encoding, and the connector runs the SQL of a replay (connector.Replay).
// It never writes to the log or to a connector's Postgres outside the
// rolled-back replay transaction.
package withhold

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
)

// File is the name of the withheld set in the engine's state directory.
const File = "withheld.json"

// MaxErrorBytes bounds the error kept per record: it comes from a peer
// (a Postgres error message).
const MaxErrorBytes = 2048

// Record is one row withheld from one connector.
type Record struct {
	Connector string `json:"connector"`
	Table     string `json:"table"` // schema-qualified
	// Key is the row's key in the merge key encoding; KeyText is it
	// readable (its values joined by ", ").
	Key     string `json:"-"`
	KeyText string `json:"key"`
	// Offset is the log entry whose version of the row is withheld; a later
	// entry writing the row replaces it (it is sent).
	Offset uint64 `json:"offset"`
	// Error is what that Postgres answered, with its SQLSTATE.
	Error string    `json:"error"`
	Time  time.Time `json:"time"`
	// Skipped marks a transaction that could not be attributed to a row
	// and was skipped on the subscriber (ALTER SUBSCRIPTION … SKIP): Table
	// and Key are empty.
	Skipped bool `json:"skipped,omitempty"`
}

// onDisk is a Record as stored: the key as bytes, since the merge encoding
// is not always valid UTF-8.
type onDisk struct {
	Record
	RawKey []byte `json:"raw_key"`
}

type rowID struct{ table, key string }

// Set is the durable withheld set. Safe for concurrent use.
type Set struct {
	path string

	mu   sync.Mutex
	recs map[string]map[rowID]Record // by connector
	// skipped are the recorded skips, kept with the records for the
	// operator; they hold nothing back.
	skipped []Record
	// held counts the records per connector for the publisher's fast path.
	held sync.Map // connector -> *atomic.Int64
}

// Open loads the set from dir (an empty set when the file does not exist).
func Open(dir string) (*Set, error) {
	s := &Set{path: filepath.Join(dir, File), recs: map[string]map[rowID]Record{}}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the withheld set: %w", err)
	}
	var list []onDisk
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("reading the withheld set %s: %w (move it away to start with an empty one)", s.path, err)
	}
	for _, d := range list {
		r := d.Record
		r.Key = string(d.RawKey)
		if r.Skipped {
			s.skipped = append(s.skipped, r)
			continue
		}
		s.put(r)
	}
	return s, nil
}

func (s *Set) counter(connector string) *atomic.Int64 {
	if c, ok := s.held.Load(connector); ok {
		return c.(*atomic.Int64)
	}
	c, _ := s.held.LoadOrStore(connector, new(atomic.Int64))
	return c.(*atomic.Int64)
}

// put adds r under the lock (or while opening).
func (s *Set) put(r Record) {
	m := s.recs[r.Connector]
	if m == nil {
		m = map[rowID]Record{}
		s.recs[r.Connector] = m
	}
	id := rowID{r.Table, r.Key}
	if _, ok := m[id]; !ok {
		s.counter(r.Connector).Add(1)
	}
	m[id] = r
}

// Count is the number of rows withheld from connector.
func (s *Set) Count(connector string) int {
	return int(s.counter(connector).Load())
}

// Held reports whether the version of row (table, key) written by the
// entry at offset is withheld from connector: the publisher's question for
// every row it sends. A later version (offset beyond the record's) is not:
// it replaces the withheld one, whose record is then removed (if it fails
// too, the diagnosis withholds it again).
func (s *Set) Held(connector, table, key string, offset uint64) bool {
	if s.counter(connector).Load() == 0 {
		return false
	}
	s.mu.Lock()
	r, ok := s.recs[connector][rowID{table, key}]
	if !ok || offset <= r.Offset {
		s.mu.Unlock()
		return ok
	}
	delete(s.recs[connector], rowID{table, key})
	s.counter(connector).Add(-1)
	// A failed save leaves the record on disk only: a restart brings it
	// back, and the later version is sent again then; nothing is lost.
	s.saveLocked() //nolint:errcheck // see above
	s.mu.Unlock()
	return false
}

// Withholds reports, without changing anything, whether the version of
// row (table, key) at offset is withheld from connector.
func (s *Set) Withholds(connector, table, key string, offset uint64) bool {
	if s.counter(connector).Load() == 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[connector][rowID{table, key}]
	return ok && offset <= r.Offset
}

// HeldAny reports whether row (table, key) is withheld from connector at
// any offset: a backfill leaves such rows to the retry.
func (s *Set) HeldAny(connector, table, key string) bool {
	if s.counter(connector).Load() == 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.recs[connector][rowID{table, key}]
	return ok
}

// Add records rows as withheld (replacing an older record of the same
// row) and stores the set durably before returning.
func (s *Set) Add(recs ...Record) error {
	if len(recs) == 0 {
		return nil
	}
	s.mu.Lock()
	for _, r := range recs {
		r.Error = bound(r.Error)
		if r.KeyText == "" {
			r.KeyText = KeyText(r.Key)
		}
		if r.Skipped {
			s.skipped = append(s.skipped, r)
			continue
		}
		s.put(r)
	}
	err := s.saveLocked()
	s.mu.Unlock()
	return err
}

// Remove drops the records of rows (connector, table, key) that are no
// longer withheld (retried and sent), with the record's offset: a record
// replaced meanwhile by a newer one stays.
func (s *Set) Remove(recs ...Record) error {
	s.mu.Lock()
	n := 0
	for _, r := range recs {
		cur, ok := s.recs[r.Connector][rowID{r.Table, r.Key}]
		if !ok || cur.Offset != r.Offset {
			continue
		}
		delete(s.recs[r.Connector], rowID{r.Table, r.Key})
		s.counter(r.Connector).Add(-1)
		n++
	}
	var err error
	if n > 0 {
		err = s.saveLocked()
	}
	s.mu.Unlock()
	return err
}

// List returns the records of connector ("" for every connector), the
// recorded skips included, oldest first.
func (s *Set) List(connector string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for c, m := range s.recs {
		if connector != "" && c != connector {
			continue
		}
		for _, r := range m {
			out = append(out, r)
		}
	}
	for _, r := range s.skipped {
		if connector == "" || r.Connector == connector {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Offset != out[j].Offset {
			return out[i].Offset < out[j].Offset
		}
		if out[i].Table != out[j].Table {
			return out[i].Table < out[j].Table
		}
		return out[i].Key < out[j].Key
	})
	return out
}

// saveLocked writes the set atomically (temporary file, fsync, rename).
func (s *Set) saveLocked() error {
	list := []onDisk{}
	for _, m := range s.recs {
		for _, r := range m {
			list = append(list, onDisk{Record: r, RawKey: []byte(r.Key)})
		}
	}
	for _, r := range s.skipped {
		list = append(list, onDisk{Record: r, RawKey: []byte(r.Key)})
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.Connector != b.Connector {
			return a.Connector < b.Connector
		}
		if a.Offset != b.Offset {
			return a.Offset < b.Offset
		}
		return a.Table+"\x00"+a.Key < b.Table+"\x00"+b.Key
	})
	b, err := json.MarshalIndent(list, "", " ")
	if err != nil {
		return fmt.Errorf("encoding the withheld set: %w", err)
	}
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("writing the withheld set: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("writing the withheld set: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing the withheld set: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing the withheld set: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("writing the withheld set: %w", err)
	}
	return nil
}

// KeyText is a merge-encoded key made readable: its values joined by ", ".
func KeyText(key string) string {
	vals, err := merge.DecodeKey(key)
	if err != nil {
		return fmt.Sprintf("%q", key)
	}
	parts := make([]string, len(vals))
	for i, v := range vals {
		if v.Null {
			parts[i] = "NULL"
		} else {
			parts[i] = v.Text
		}
	}
	return strings.Join(parts, ", ")
}

func bound(s string) string {
	if len(s) <= MaxErrorBytes {
		return s
	}
	return strings.ToValidUTF8(s[:MaxErrorBytes], "") + "…"
}
