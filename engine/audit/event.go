// Package audit keeps what the operator must be able to see after the fact:
// the cells concurrent writes lost (conflicts) and the writes or rows the
// engine refused or held back (rejections: invalid client values, ownership
// refusals, rows withheld from one subscriber). It owns a small Pebble
// database of its own under the engine's state directory, with a bounded
// retention (by count and by age) and bounded values.
//
// Recording never blocks replication: Record queues the event and returns;
// when the queue is full (the disk is slower than the conflicts arrive) the
// event is dropped, counted (Stats.Dropped) and logged, so the merged log
// always goes on. It does not merge, apply or retry anything itself: Retry
// marks withheld rows and calls the hook the engine gives it.
package audit

import (
	"github.com/electric-sql/electric-go/engine/merge"
	"time"
	"unicode/utf8"
)

// Kind is what an event records.
type Kind string

// Event kinds.
const (
	// KindConflict: a concurrent write lost one column (Winner, Loser).
	KindConflict Kind = "conflict"
	// KindInvalidValue: a client write refused for a value the column does
	// not take (Origin wrote Value; Error says why).
	KindInvalidValue Kind = "invalid_value"
	// KindOwnership: a client write to a row of another user, refused.
	KindOwnership Kind = "ownership"
	// KindWithheld: a row held back from the subscriber Connector, which
	// could not apply it (Error is its error). See State.
	KindWithheld Kind = "withheld"
)

// RejectionKinds are the kinds GET /api/rejected lists.
var RejectionKinds = []Kind{KindInvalidValue, KindOwnership, KindWithheld}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	switch k {
	case KindConflict, KindInvalidValue, KindOwnership, KindWithheld:
		return true
	}
	return false
}

// State of a withheld row.
const (
	StateWithheld = "withheld" // held back, waiting for its cause to go
	StateRetry    = "retry"    // an operator asked for a retry (Store.Retry)
	StateResolved = "resolved" // applied after all, or superseded
)

// Write is one side of a conflict: a write of one column.
type Write struct {
	Origin string  `json:"origin"`
	Value  *string `json:"value"` // nil: NULL
	// Eff is the write's effective timestamp (µs since the Unix epoch).
	Eff uint64 `json:"eff"`
}

// Event is one recorded conflict or rejection. Which fields are set depends
// on Kind.
type Event struct {
	ID     uint64    `json:"id"` // assigned by the store, increasing
	Kind   Kind      `json:"kind"`
	Time   time.Time `json:"time"` // when the engine recorded it
	Table  string    `json:"table,omitempty"`
	Key    string    `json:"key,omitempty"` // canonical key encoding
	Column string    `json:"column,omitempty"`
	// Offset is the log entry of a conflict (the losing or winning write
	// that was merged last), or the entry a withheld row belongs to.
	Offset uint64 `json:"offset,omitempty"`
	// Winner and Loser of a conflict.
	Winner *Write `json:"winner,omitempty"`
	Loser  *Write `json:"loser,omitempty"`
	// Origin wrote the refused value or row (rejections).
	Origin string  `json:"origin,omitempty"`
	Value  *string `json:"value,omitempty"`
	// Connector a withheld row is held back from.
	Connector string `json:"connector,omitempty"`
	Error     string `json:"error,omitempty"`
	// State of a withheld row: withheld, retry or resolved.
	State     string `json:"state,omitempty"`
	Truncated bool   `json:"truncated,omitempty"` // a value or text was cut to MaxValueBytes
}

// Bounds of one event's texts.
const (
	// MaxValueBytes bounds a value or error text kept in an event.
	MaxValueBytes = 1024
	// MaxNameBytes bounds names (table, column, origin, connector, key).
	MaxNameBytes = 512
)

// bound cuts every text of ev to its bound, on a rune boundary, and says so
// in Truncated.
func (ev *Event) bound() {
	cut := func(s *string, n int) {
		if len(*s) <= n {
			return
		}
		i := n
		for i > 0 && !utf8.RuneStart((*s)[i]) {
			i--
		}
		*s = (*s)[:i]
		ev.Truncated = true
	}
	for _, s := range []*string{&ev.Table, &ev.Key, &ev.Column, &ev.Origin, &ev.Connector, &ev.State} {
		cut(s, MaxNameBytes)
	}
	cut(&ev.Error, MaxValueBytes)
	if ev.Value != nil {
		v := *ev.Value
		cut(&v, MaxValueBytes)
		ev.Value = &v
	}
	for _, w := range []*Write{ev.Winner, ev.Loser} {
		if w == nil {
			continue
		}
		cut(&w.Origin, MaxNameBytes)
		if w.Value != nil {
			v := *w.Value
			cut(&v, MaxValueBytes)
			w.Value = &v
		}
	}
}

// Filter selects events, newest first. Zero fields select everything.
type Filter struct {
	Kinds []Kind
	Table string
	// Connector: a withheld row's subscriber, or a side of a conflict
	// written by that connector.
	Connector string
	// Origin: the writer of a rejection, or either side of a conflict.
	Origin string
	Since  time.Time // events recorded at or after
	Limit  int       // at most this many (0: DefaultLimit)
	// States selects withheld rows by state (empty: any).
	States []string
}

// Limits of a query.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

func (f Filter) match(ev *Event) bool {
	if len(f.Kinds) > 0 && !contains(f.Kinds, ev.Kind) {
		return false
	}
	if f.Table != "" && ev.Table != f.Table {
		return false
	}
	if !f.Since.IsZero() && ev.Time.Before(f.Since) {
		return false
	}
	if len(f.States) > 0 && !contains(f.States, ev.State) {
		return false
	}
	side := func(name string) bool {
		return ev.Winner != nil && ev.Winner.Origin == name || ev.Loser != nil && ev.Loser.Origin == name
	}
	if f.Connector != "" && ev.Connector != f.Connector && !side(f.Connector) {
		return false
	}
	if f.Origin != "" && ev.Origin != f.Origin && !side(f.Origin) {
		return false
	}
	return true
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Conflict is the event of a cell a concurrent write lost in the log entry
// at offset.
func Conflict(offset uint64, c merge.Conflict) Event {
	w := func(c merge.Cell) *Write {
		wr := &Write{Origin: c.Origin, Eff: c.Eff}
		if !c.Value.Null {
			v := c.Value.Text
			wr.Value = &v
		}
		return wr
	}
	return Event{Kind: KindConflict, Table: c.Table, Key: c.Key, Column: c.Column, Offset: offset,
		Winner: w(c.Winner), Loser: w(c.Loser)}
}
