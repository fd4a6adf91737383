// Screening of a client transaction before it is merged: the ownership
// rule, then every value checked by the Validator (the Postgres that will
// hold it). A transaction with a value some Postgres cannot hold is refused
// whole; refused rows are recorded (Options.Rejected), the transaction is
// acked, and the client is sent the server's state of the rows it touched.

package satellite

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/electric-sql/electric-go/engine/merge"
)

// Validator checks client values before they are merged (the engine's is
// engine/pgcheck on the connectors' Postgres). Check returns the values a
// Postgres cannot hold; an error means they could not be checked (no
// Postgres reachable, a timeout) and nothing is merged.
type Validator interface {
	Check(ctx context.Context, cells []Cell) ([]InvalidCell, error)
}

// Cell is one client value: Table is schema-qualified.
type Cell struct {
	Table, Column string
	Value         merge.Value
}

// InvalidCell is a value some Postgres cannot hold.
type InvalidCell struct {
	Cell      int    // index in the cells given to Check
	Connector string // the Postgres that refused it
	Code      string // SQLSTATE
	Err       string
}

// Kinds of Rejection.
const (
	RejectInvalidValue = "invalid_value"
	RejectOwnership    = "ownership"
)

// MaxRejectedValueBytes bounds Rejection.Value, Key and Err.
const MaxRejectedValueBytes = 256

// Rejection is one client row refused (Options.Rejected).
type Rejection struct {
	Time     time.Time
	ClientID string
	UserID   string
	Table    string // schema-qualified
	Key      string // the primary key values, comma-separated
	// Column and Value name the offending value (invalid_value); Value is
	// truncated to MaxRejectedValueBytes. Empty for a row refused with its
	// transaction because of another row's value, and for ownership.
	Column    string
	Value     string
	Kind      string // RejectInvalidValue or RejectOwnership
	Connector string // the Postgres that refused the value
	Err       string
}

// compRow is a row the client is sent back after a refusal.
type compRow struct {
	table, key string
	keyVals    map[string]merge.Value
}

// screened is what screen decided for a transaction.
type screened struct {
	ops  []merge.Op  // to merge
	comp []compRow   // to send back once the transaction is acked
	held error       // non-nil: the values could not be checked; take nothing
	refs []Rejection // refused rows, reported once the decision is final
}

// screen applies the ownership rule and checks the values of what is left.
func (s *session) screen(ops []merge.Op) (screened, error) {
	var out screened
	kept := make([]merge.Op, 0, len(ops))
	for _, op := range ops {
		why, err := s.ownershipRefusal(op)
		if err != nil {
			return screened{}, err
		}
		if why == "" {
			kept = append(kept, op)
			continue
		}
		out.refs = append(out.refs, s.rejection(op, RejectOwnership, why))
		out.comp = append(out.comp, s.compRowOf(op))
	}
	v := s.srv.opts.Validator
	if v == nil || len(kept) == 0 {
		out.ops = kept
		return out, nil
	}
	cells, owner := cellsOf(kept)
	bad, err := v.Check(s.ctx, cells)
	if err != nil {
		return screened{held: err}, nil
	}
	if len(bad) == 0 {
		out.ops = kept
		return out, nil
	}
	// One bad value refuses the whole transaction: merging part of it would
	// break its atomicity.
	first := bad[0]
	byOp := map[int]InvalidCell{}
	for _, b := range bad {
		if _, ok := byOp[owner[b.Cell]]; !ok {
			byOp[owner[b.Cell]] = b
		}
	}
	for i, op := range kept {
		r := s.rejection(op, RejectInvalidValue, "")
		if b, ok := byOp[i]; ok {
			r.Column, r.Value = cells[b.Cell].Column, truncate(cells[b.Cell].Value)
			r.Connector, r.Err = b.Connector, truncateText(fmt.Sprintf("%s (SQLSTATE %s)", b.Err, b.Code))
		} else {
			r.Connector = first.Connector
			r.Err = truncateText(fmt.Sprintf("refused with its transaction: column %s of %s: %s", cells[first.Cell].Column, cells[first.Cell].Table, first.Err))
		}
		out.refs = append(out.refs, r)
		out.comp = append(out.comp, s.compRowOf(op))
	}
	return out, nil
}

// cellsOf lists the values to check: every written column, and the key of
// a delete (which the subscribers look up by it). owner maps a cell to its
// op.
func cellsOf(ops []merge.Op) (cells []Cell, owner []int) {
	for i, op := range ops {
		vals := op.Columns
		if op.Kind == merge.OpDelete {
			vals = op.Old
		}
		for col, v := range vals {
			cells = append(cells, Cell{Table: op.Table, Column: col, Value: v})
			owner = append(owner, i)
		}
	}
	return cells, owner
}

// maxRefusalLogLines bounds the log lines of one transaction's refusals;
// the rest are summed up in one line (all are counted and recorded).
const maxRefusalLogLines = 10

// report records refused rows: counted, logged, and handed to
// Options.Rejected.
func (s *session) report(refs []Rejection) {
	if n := len(refs) - maxRefusalLogLines; n > 0 {
		s.log.Warn("satellite writes refused, not logged one by one", "client", s.clientID, "user", s.userID, "rows", n)
	}
	for i, r := range refs {
		s.rejected.Add(1)
		s.srv.stats.rejectedOps.Add(1)
		switch r.Kind {
		case RejectInvalidValue:
			s.srv.stats.invalidRows.Add(1)
		case RejectOwnership:
			s.srv.stats.ownershipRows.Add(1)
		}
		if i < maxRefusalLogLines {
			s.log.Warn("satellite write refused", "client", s.clientID, "user", s.userID, "kind", r.Kind,
				"table", r.Table, "key", r.Key, "column", r.Column, "connector", r.Connector, "err", r.Err)
		}
		if h := s.srv.opts.Rejected; h != nil {
			h(r)
		}
	}
}

func (s *session) rejection(op merge.Op, kind, why string) Rejection {
	key := op.Key
	if vals, err := merge.DecodeKey(op.Key); err == nil {
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = truncate(v)
		}
		key = strings.Join(parts, ",")
	}
	return Rejection{Time: time.Now(), ClientID: s.clientID, UserID: s.userID, Table: op.Table, Key: key, Kind: kind, Err: why}
}

// truncate bounds a value for a Rejection, on a rune boundary.
func truncate(v merge.Value) string {
	if v.Null {
		return "NULL"
	}
	return truncateText(v.Text)
}

// truncateText bounds a text of a Rejection (Postgres' messages quote the
// value), on a rune boundary.
func truncateText(t string) string {
	if len(t) <= MaxRejectedValueBytes {
		return t
	}
	t = t[:MaxRejectedValueBytes]
	for len(t) > 0 && !utf8.ValidString(t) {
		t = t[:len(t)-1]
	}
	return t + "…"
}

// compRowOf is the row an op touched, named by its key columns.
func (s *session) compRowOf(op merge.Op) compRow {
	vals := op.Columns
	if op.Kind == merge.OpDelete {
		vals = op.Old
	}
	kv := map[string]merge.Value{}
	if t := s.srv.tableSet().byID[op.Table]; t != nil {
		for _, k := range t.PrimaryKey {
			kv[k] = vals[k]
		}
	}
	return compRow{table: op.Table, key: op.Key, keyVals: kv}
}

// holdUnchecked keeps a transaction whose values could not be checked:
// neither merged nor acked, nor any later one (an ack of a later one would
// delete it from the client's oplog). After HoldRetry the client's stream is
// restarted and 0.4.3 re-sends them.
func (s *session) holdUnchecked(err error) {
	s.srv.stats.heldTx.Add(1)
	if !s.waiting.CompareAndSwap(false, true) {
		return
	}
	s.log.Warn("client transactions held (not merged, not acked): no Postgres could check their values; retrying",
		"client", s.clientID, "retry_in", s.srv.opts.HoldRetry, "err", err)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(s.srv.opts.HoldRetry)
		defer t.Stop()
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		_ = s.kick("retrying transactions held for a value check")
		s.waiting.Store(false)
	}()
}
