package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/electric-sql/electric-go/engine/audit"
	"github.com/electric-sql/electric-go/engine/sequencer"
	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/engine/withhold"
)

// openAudit opens the conflicts and rejections store in the state
// directory. Its OnRetry replays the withheld rows of the connectors named
// by the events (RetryWithheld) in the background: a replay reads and
// writes Postgres, and the API call that asked for it must not wait.
func (e *Engine) openAudit() error {
	a, err := audit.Open(e.cfg.DataDir(), audit.Options{
		MaxEvents: e.cfg.AuditMaxEvents, MaxAge: e.cfg.AuditMaxAge,
		Logger:  e.log.With("component", "audit"),
		OnRetry: e.retryWithheldEvents,
	})
	if err != nil {
		return err
	}
	e.audit = a
	return nil
}

// recordConflicts is the sequencer's OnConflicts: it only queues (audit.Store.Record never blocks).
func (e *Engine) recordConflicts(cs []sequencer.Conflict) {
	for _, c := range cs {
		e.audit.Record(audit.Conflict(c.Offset, c.Conflict))
	}
}

// retryWithheldEvents retries, per connector named in evs, the rows
// withheld from it.
func (e *Engine) retryWithheldEvents(evs []audit.Event) {
	conns := map[string]bool{}
	for _, ev := range evs {
		if ev.Connector != "" {
			conns[ev.Connector] = true
		}
	}
	e.log.Info("audit: retry requested for withheld rows", "rows", len(evs), "connectors", len(conns))
	e.events.Publish(status.Event{Kind: status.KindConnector, Message: "retry requested for withheld rows"})
	for name := range conns {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), withheldRetryTimeout)
			defer cancel()
			res, err := e.RetryWithheld(ctx, name)
			if err != nil {
				e.log.Warn("audit: retrying withheld rows failed", "connector", name, "err", err)
				return
			}
			e.log.Info("audit: withheld rows retried", "connector", name, "result", fmt.Sprintf("%+v", res))
		}()
	}
}

// withheldRetryTimeout bounds one connector's retry of its withheld rows.
const withheldRetryTimeout = 2 * time.Minute

// recordWithheld keeps a row withheld from a connector (or a skipped
// transaction) in the audit store.
func (e *Engine) recordWithheld(r withhold.Record) {
	ev := audit.Event{Kind: audit.KindWithheld, Time: r.Time, Table: r.Table, Key: r.KeyText, Offset: r.Offset,
		Connector: r.Connector, Error: r.Error, State: audit.StateWithheld}
	if r.Skipped {
		ev.Error = "transaction skipped on the subscriber (no row could be blamed): " + r.Error
	}
	e.audit.Record(ev)
}

// RecordRejection records a refused client write or a withheld row (the
// satellite's Rejected hook and the subscriber's failing rows end here).
func (e *Engine) RecordRejection(ev audit.Event) { e.audit.Record(ev) }

// auditLog adapts the audit store to the status API.
type auditLog struct{ s *audit.Store }

var _ status.AuditLog = auditLog{}

func (a auditLog) filter(f status.AuditFilter) audit.Filter {
	out := audit.Filter{Table: f.Table, Connector: f.Connector, Origin: f.Origin, Since: f.Since, Limit: f.Limit}
	for _, k := range f.Kinds {
		out.Kinds = append(out.Kinds, audit.Kind(k))
	}
	return out
}

func (a auditLog) Query(ctx context.Context, f status.AuditFilter) ([]status.AuditEvent, error) {
	evs, err := a.s.Query(ctx, a.filter(f))
	return toStatus(evs), err
}

func (a auditLog) Retry(ctx context.Context, f status.AuditFilter) ([]status.AuditEvent, error) {
	evs, err := a.s.Retry(ctx, a.filter(f))
	return toStatus(evs), err
}

func (a auditLog) Stats() status.AuditStats {
	st := a.s.Stats()
	out := status.AuditStats{Recorded: map[string]map[string]uint64{}, Dropped: st.Dropped, Failed: st.Failed}
	for k, m := range st.Recorded {
		out.Recorded[string(k)] = m
	}
	return out
}

func toStatus(evs []audit.Event) []status.AuditEvent {
	out := make([]status.AuditEvent, len(evs))
	w := func(x *audit.Write) *status.AuditWrite {
		if x == nil {
			return nil
		}
		return &status.AuditWrite{Origin: x.Origin, Value: x.Value, Eff: x.Eff}
	}
	for i, ev := range evs {
		out[i] = status.AuditEvent{ID: ev.ID, Kind: string(ev.Kind), Time: ev.Time.UTC().Truncate(time.Microsecond),
			Table: ev.Table, Key: ev.Key, Column: ev.Column, Offset: ev.Offset, Winner: w(ev.Winner), Loser: w(ev.Loser),
			Origin: ev.Origin, Value: ev.Value, Connector: ev.Connector, Error: ev.Error, State: ev.State, Truncated: ev.Truncated}
	}
	return out
}
