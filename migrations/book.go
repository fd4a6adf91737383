// The engine's record of the Satellite side of migrations: the Postgres
// schema after each migration, the client bundle entry built from it once,
// and which migration's schema Satellites are served.

package migrations

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/migrations/bundle"
)

// Errors of the Satellite side of migrations.
var (
	// ErrNotRecorded: the engine has no recorded schema for that migration
	// (not applied through this engine, or applied before it recorded
	// schemas).
	ErrNotRecorded = errors.New("no recorded schema for this migration")
	// ErrClientCannotFollow: the migration changed the schema in a way the
	// Satellite client cannot follow (a type change, a table losing its
	// key, a name it cannot quote): it has no bundle entry, and neither has
	// any migration after it.
	ErrClientCannotFollow = errors.New("the Satellite client cannot follow this migration")
	// ErrNothingRecorded: no migration has a recorded schema yet.
	ErrNothingRecorded = errors.New("no migration has a recorded schema yet: apply one with 'electric migrate apply'")
)

// Record is one migration as the engine recorded it when it first applied
// it: the schema of the replicated tables after it and the client bundle
// entry built from the previous record's schema to this one. Entry never
// changes once recorded: a 0.4.3 client refuses an altered migration.
type Record struct {
	Name       string           `json:"name"`
	Connector  string           `json:"connector"` // where it was first applied
	RecordedAt time.Time        `json:"recorded_at"`
	Schema     bundle.Schema    `json:"schema"`
	Entry      bundle.Migration `json:"entry"`
	// Error is why the client cannot follow this migration ("" when it
	// can); Entry is then empty.
	Error string `json:"error,omitempty"`
}

// Publish is one `electric migrate publish`: from log offset Offset on,
// Satellites are served the schema of migration Name.
type Publish struct {
	Name   string    `json:"name"`
	Offset uint64    `json:"offset"` // the log head when it was published
	At     time.Time `json:"at"`
}

// Book is every Record in the order recorded and every Publish in the order
// made. It is pure data: the engine keeps it durably and serializes its
// changes.
type Book struct {
	Records   []Record  `json:"records"`
	Publishes []Publish `json:"publishes,omitempty"`
}

// LoadBook decodes a stored book; nil or empty is an empty book.
func LoadBook(b []byte) (*Book, error) {
	bk := &Book{}
	if len(b) == 0 {
		return bk, nil
	}
	if err := json.Unmarshal(b, bk); err != nil {
		return nil, fmt.Errorf("decoding the recorded migration schemas: %w", err)
	}
	return bk, nil
}

// Marshal encodes the book for storage.
func (b *Book) Marshal() []byte {
	out, _ := json.Marshal(b) // plain data: cannot fail
	return out
}

// Clone is a deep copy, to change without touching b.
func (b *Book) Clone() *Book {
	c, _ := LoadBook(b.Marshal())
	return c
}

// Find returns the record of migration name, nil if none.
func (b *Book) Find(name string) *Record {
	for i := range b.Records {
		if b.Records[i].Name == name {
			return &b.Records[i]
		}
	}
	return nil
}

// SchemaOf is the Satellite-relevant schema of the introspected tables: the
// tables the engine replicates (those with a primary key), columns by
// attnum.
func SchemaOf(tables []schema.Table) bundle.Schema {
	var s bundle.Schema
	for _, t := range tables {
		if len(t.PrimaryKey) == 0 {
			continue // not replicated, so never streamed to clients
		}
		bt := bundle.Table{Schema: t.Schema, Name: t.Name}
		for _, c := range t.Columns {
			pk := 0
			for i, k := range t.PrimaryKey {
				if k == c.Name {
					pk = i + 1
				}
			}
			bt.Columns = append(bt.Columns, bundle.Column{Num: int(c.Num), Name: c.Name, Type: c.TypeName, NotNull: c.NotNull, PrimaryKey: pk})
		}
		s.Tables = append(s.Tables, bt)
	}
	return s
}

// Add records migration name with the schema after it, unless it is
// recorded already. The entry is built from the last record's schema (an
// empty schema for the first record: migrations applied before the engine
// recorded schemas have no entry, and the first recorded one creates every
// table there was). A migration the client cannot follow is recorded with
// its error, and so is every later one. It reports whether it added a
// record; for a known name, differs tells whether s differs from what was
// recorded (the connectors disagree on the schema after it).
func (b *Book) Add(name, title, connector string, s bundle.Schema, now time.Time) (added, differs bool) {
	if r := b.Find(name); r != nil {
		return false, !reflect.DeepEqual(r.Schema, s)
	}
	r := Record{Name: name, Connector: connector, RecordedAt: now.UTC(), Schema: s}
	var prev bundle.Schema
	if n := len(b.Records); n > 0 {
		last := b.Records[n-1]
		prev = last.Schema
		if last.Error != "" {
			r.Error = fmt.Sprintf("follows %s, which the client cannot follow", last.Name)
		}
	}
	if r.Error == "" {
		body, err := bundle.Body(prev, s)
		if err != nil {
			r.Error = err.Error()
		} else {
			r.Entry = bundle.NewMigration(name, title, body)
		}
	}
	b.Records = append(b.Records, r)
	return true, false
}

// Bundle is the client bundle: one entry per record, in order. It fails
// with ErrNothingRecorded, or ErrClientCannotFollow naming the first
// migration the client cannot follow.
func (b *Book) Bundle() ([]bundle.Migration, error) {
	if len(b.Records) == 0 {
		return nil, ErrNothingRecorded
	}
	out := make([]bundle.Migration, 0, len(b.Records))
	for _, r := range b.Records {
		if r.Error != "" {
			return nil, fmt.Errorf("%w: %s: %s", ErrClientCannotFollow, r.Name, r.Error)
		}
		out = append(out, r.Entry)
	}
	return out, nil
}

// Published is the record whose schema Satellites are served, nil when
// nothing was published.
func (b *Book) Published() *Record {
	if n := len(b.Publishes); n > 0 {
		return b.Find(b.Publishes[n-1].Name)
	}
	return nil
}

// Publish makes migration name the one whose schema Satellites are served,
// from log offset head on.
func (b *Book) Publish(name string, head uint64, now time.Time) error {
	r := b.Find(name)
	if r == nil {
		return fmt.Errorf("%w: %s", ErrNotRecorded, name)
	}
	if r.Error != "" {
		return fmt.Errorf("%w: %s: %s", ErrClientCannotFollow, name, r.Error)
	}
	if p := b.Published(); p != nil && p.Name == name {
		return nil // published already: publishing again changes nothing
	}
	b.Publishes = append(b.Publishes, Publish{Name: name, Offset: head, At: now.UTC()})
	return nil
}

// PublishedBefore is the schema a client that has the log up to offset
// after was served: the last publish before that offset (a publish at
// offset after itself may have come after the client left). Empty when
// there was none.
func (b *Book) PublishedBefore(after uint64) bundle.Schema {
	for i := len(b.Publishes) - 1; i >= 0; i-- {
		if b.Publishes[i].Offset < after {
			if r := b.Find(b.Publishes[i].Name); r != nil {
				return r.Schema
			}
		}
	}
	return bundle.Schema{}
}

// Gained lists the qualified names of the tables of next that prev lacks or
// that have columns (by name) prev lacks.
func Gained(prev, next bundle.Schema) []string {
	old := map[string]map[string]bool{}
	for _, t := range prev.Tables {
		cols := map[string]bool{}
		for _, c := range t.Columns {
			cols[c.Name] = true
		}
		old[t.Schema+"."+t.Name] = cols
	}
	var out []string
	for _, t := range next.Tables {
		cols, ok := old[t.Schema+"."+t.Name]
		gained := !ok
		for _, c := range t.Columns {
			gained = gained || !cols[c.Name]
		}
		if gained {
			out = append(out, t.Schema+"."+t.Name)
		}
	}
	return out
}

// Title is the title of a migration: its template's "-- title:" line, else
// the name.
func Title(m Migration) string {
	for _, line := range strings.SplitN(m.SQL, "\n", 20) {
		if t, ok := strings.CutPrefix(strings.TrimSpace(line), "-- title:"); ok && strings.TrimSpace(t) != "" {
			return strings.TrimSpace(t)
		}
	}
	return m.Name
}
