// Backfills: when the tables or columns streamed to clients grow (a schema
// published with `electric migrate publish`), a client already holds the
// rows of those tables without the new columns, and the log entries that
// carried their values were sent before it had them. It gets the merged
// rows of the tables it gained as one transaction of full-row updates (an
// upsert for 0.4.3, notes §3.5), after the SatRelation re-announcing them
// with their new columns.

package satellite

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/satellite/satpb"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// RowLister is implemented by a Log that lists a table's merged rows
// (txlog.Log does, through TxlogSource): backfills need it, and a Log
// without it gets none.
type RowLister interface {
	Rows(table string, fn func(key string, r *merge.Row) error) error
}

func (s txlogSource) Rows(table string, fn func(key string, r *merge.Row) error) error {
	return s.l.Rows(table, fn)
}

// TablesChanged makes the server read Options.Tables now, and every
// session's stream check whether its client gained tables or columns (and
// then backfill them) without waiting for the next log entry. The engine
// calls it after a publish.
func (s *Server) TablesChanged() {
	s.tablesMu.Lock()
	s.tablesAt = time.Time{}
	s.tablesMu.Unlock()
	s.tableSet()
	s.mu.Lock()
	defer s.mu.Unlock()
	for sess := range s.sessions {
		select {
		case sess.tablesKick <- struct{}{}:
		default:
		}
	}
}

// gainedTables lists the tables of next that prev lacks, or whose columns
// (by name) prev lacks.
func gainedTables(prev, next *tableIndex) []string {
	var out []string
	for _, t := range next.src {
		old := prev.byID[t.QualifiedName()]
		if old == nil {
			out = append(out, t.QualifiedName())
			continue
		}
		for _, c := range t.Columns {
			if _, ok := old.Column(c.Name); !ok {
				out = append(out, t.QualifiedName())
				break
			}
		}
	}
	return out
}

// kickableReader reads the log and gives way when the server's tables
// change (TablesChanged), so a stream waiting for the next entry notices.
type kickableReader struct {
	rd     Reader
	mu     sync.Mutex
	cancel context.CancelFunc
	kicked bool
}

// watch turns kicks into the end of the pending read until ctx ends.
func (k *kickableReader) watch(ctx context.Context, kick <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		}
		k.mu.Lock()
		k.kicked = true
		if k.cancel != nil {
			k.cancel()
		}
		k.mu.Unlock()
	}
}

// next returns the next entry, or (nil, nil) after a kick.
func (k *kickableReader) next(ctx context.Context) (*txlog.Entry, error) {
	k.mu.Lock()
	if k.kicked {
		k.kicked = false
		k.mu.Unlock()
		return nil, nil
	}
	rctx, cancel := context.WithCancel(ctx)
	k.cancel = cancel
	k.mu.Unlock()
	e, err := k.rd.Next(rctx)
	k.mu.Lock()
	k.cancel = nil
	kicked := k.kicked
	k.kicked = false
	k.mu.Unlock()
	cancel()
	if err != nil && ctx.Err() == nil && kicked {
		return nil, nil
	}
	return e, err
}

// backfill sends the client the merged rows of tables it may see, as one
// transaction at the log offset it has processed (so its stored position
// stays right: it resumes after that offset, whose later entries follow).
// The rows are the newest state, so entries after that offset may carry
// older images of some of them; they are applied in order and end on the
// newest again.
func (s *session) backfill(ctx context.Context, tables *tableIndex, names []string) error {
	lister, ok := s.srv.opts.Log.(RowLister)
	if !ok || len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	var ts uint64 // the newest cell among the rows sent, in ms
	var ops []*satpb.SatTransOp
	for _, name := range names {
		t := tables.byID[name]
		if t == nil {
			continue
		}
		id := tables.relID[name]
		err := lister.Rows(name, func(_ string, r *merge.Row) error {
			if !r.Live() {
				return nil
			}
			img := r.Image()
			if !owned(img, s.userID) {
				return nil
			}
			for _, c := range r.Cells {
				ts = max(ts, c.Eff/1000)
			}
			vals := make([]merge.Value, len(t.Columns))
			for j, c := range t.Columns {
				v, ok := img[c.Name]
				if !ok {
					v = merge.Value{Null: true}
				}
				vals[j] = v
			}
			ops = append(ops, &satpb.SatTransOp{Op: &satpb.SatTransOp_Update{Update: &satpb.SatOpUpdate{RelationId: id, RowData: encodeRow(vals)}}})
			return nil
		})
		if err != nil {
			return fmt.Errorf("backfill of %s: reading its rows: %w", name, err)
		}
	}
	if len(ops) == 0 {
		return nil // the relations go out with the next entry that needs them
	}
	// Between two log entries and compensations (outMu), like an entry.
	s.outMu.Lock()
	defer s.outMu.Unlock()
	// Relations first: the client must know the new columns before rows.
	var frames [][]byte
	var announced []string
	for _, name := range names {
		t := tables.byID[name]
		if t == nil {
			continue
		}
		f, err := s.relation(t, tables.relID[name])
		if err != nil {
			return err
		}
		if f != nil {
			frames = append(frames, f)
			announced = append(announced, name)
		}
	}
	at := s.processed.Load()
	txFrames, err := chunkOps(ops, ServerLSN(at|uint64(s.srv.opts.Generation)<<genShift), ts)
	if err != nil {
		return err
	}
	for _, f := range append(frames, txFrames...) {
		if err := s.sendFrame(ctx, f); err != nil {
			for _, n := range announced {
				delete(s.relSent, n)
			}
			return err
		}
	}
	s.log.Info("backfilled the tables a client gained", "client", s.clientID, "tables", names, "rows", len(ops), "at_offset", at)
	s.delivered.Store(at)
	s.txOut.Add(1)
	s.srv.stats.txOut.Add(1)
	s.askAck()
	return nil
}
