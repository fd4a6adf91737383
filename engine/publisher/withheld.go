// Rows withheld from a subscriber that cannot apply them, and their resend:
// the publisher asks Options.Withhold for every row it sends and leaves out
// what it holds back; a retry queues rows to send again (Resend).

package publisher

import (
	"sort"

	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// Withholder says which rows are held back from a connector (package
// withhold's Set).
type Withholder interface {
	// Held reports whether the version of row (table, key) written by the
	// entry at offset is withheld from connector.
	Held(connector, table, key string, offset uint64) bool
	// HeldAny reports whether row (table, key) is withheld from connector
	// at any offset: a backfill leaves it to the retry.
	HeldAny(connector, table, key string) bool
}

// ResendRow is a row to send again to a connector with its current merged
// state; Done is called once the subscriber confirmed it (or the row has no
// live state left to send).
type ResendRow struct {
	Table, Key string
	Done       func()
}

// Resend queues rows to send to connector with their current merged state,
// in a transaction of their own before its next entries, like a backfill.
// The request waits for the connector's next stream when none is active.
func (s *Server) Resend(connector string, rows []ResendRow) error {
	if s.opts.Row == nil {
		return ErrOptions
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resend[connector] = append(s.resend[connector], rows...)
	if k, ok := s.kick[connector]; ok {
		select {
		case k <- struct{}{}:
		default:
		}
	}
	return nil
}

// putBackResend queues rows again without waking the stream: they wait
// for its next backfill, or the next stream.
func (s *Server) putBackResend(connector string, rows []ResendRow) {
	if len(rows) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resend[connector] = append(s.resend[connector], rows...)
}

// Pending returns, without taking them, the tables to backfill and the
// rows to resend queued for connector: what its next stream sends first.
func (s *Server) Pending(connector string) (tables []string, rows []ResendRow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.backfill[connector] {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	rows = append(rows, s.resend[connector]...)
	return tables, rows
}

// takeResend removes and returns the pending resends of a connector.
func (s *Server) takeResend(connector string) []ResendRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	rows := s.resend[connector]
	delete(s.resend, connector)
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Table != rows[j].Table {
			return rows[i].Table < rows[j].Table
		}
		return rows[i].Key < rows[j].Key
	})
	return rows
}

// held reports whether this stream leaves out row ch of the entry at offset.
func (st *stream) held(ch *txlog.RowChange, offset uint64) bool {
	w := st.se.srv.opts.Withhold
	return w != nil && w.Held(st.se.connector, ch.Table, ch.Key, offset)
}

// heldAny reports whether a backfill leaves out row (table, key).
func (st *stream) heldAny(table, key string) bool {
	w := st.se.srv.opts.Withhold
	return w != nil && w.HeldAny(st.se.connector, table, key)
}

// confirmResent calls the Done of the resent rows the subscriber confirmed
// flushing.
func (st *stream) confirmResent() {
	if len(st.resentPending) == 0 || st.flushedLSN.Load() < st.backfillLSN {
		return
	}
	for _, r := range st.resentPending {
		if r.Done != nil {
			r.Done()
		}
	}
	st.resentPending = nil
}

// SentRows returns the row changes of e that a stream of connector with
// view v sends (the order they are sent in, keys completed as sent), rows a
// Withholder holds back included: what a subscriber applies for e.
func SentRows(v *View, connector string, e *txlog.Entry) []txlog.RowChange {
	if v == nil || (e.EchoSafe && e.Origin == connector) {
		return nil
	}
	var out []txlog.RowChange
	for i := range e.Changes {
		ch := &e.Changes[i]
		if !v.Subscribed[ch.Table] {
			continue
		}
		t := v.Table(ch.Table)
		if t == nil || len(t.PrimaryKey) == 0 {
			continue
		}
		row, ok := rowWithKey(&relState{pk: t.PrimaryKey}, ch)
		if !ok {
			continue
		}
		out = append(out, txlog.RowChange{Table: ch.Table, Key: ch.Key, Deleted: ch.Deleted, Row: row})
	}
	return out
}

// Table returns the table of v by qualified name, nil when v has none.
func (v *View) Table(qualified string) *schema.Table {
	for i := range v.Tables {
		if v.Tables[i].QualifiedName() == qualified {
			return &v.Tables[i]
		}
	}
	return nil
}
