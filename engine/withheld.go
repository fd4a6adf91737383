package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/electric-sql/electric-go/engine/connector"
	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/publisher"
	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/engine/withhold"
)

// withholdPoll is how often the engine looks for a subscriber whose apply
// worker failed again.
const withholdPoll = 500 * time.Millisecond

// A subscriber whose failure no row can be blamed for (the replay of what
// it is sent applies) is made to skip the entry it fails on only once it
// failed that way SkipAfterFailures times in a row over at least
// SkipAfter: a transient cause (a lock, a full disk) must not cost an
// entry.
const (
	SkipAfterFailures = 5
	SkipAfter         = 2 * time.Minute
)

// skipPolicy is when a run of unattributed failures ends in a skip.
type skipPolicy struct {
	mu       sync.Mutex
	failures int
	after    time.Duration
}

func (p *skipPolicy) get() (int, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failures == 0 {
		return SkipAfterFailures, SkipAfter
	}
	return p.failures, p.after
}

// unattributed is a connector's run of failures no row was blamed for.
type unattributed struct {
	count int
	since time.Time
}

// OnWithheld sets the hook told of every row withheld from a connector
// (the audit store of rejections). Call it before Run.
func (e *Engine) OnWithheld(fn func(withhold.Record)) { e.withheldHook = fn }

// Withheld lists the rows withheld from connector ("" for every one),
// oldest first, and the transactions skipped because no row could be blamed.
func (e *Engine) Withheld(connector string) []withhold.Record { return e.withheld.List(connector) }

// RetryWithheld replays the rows withheld from connector ("" for every
// one) and sends those that now apply (POST /api/rejected/retry).
func (e *Engine) RetryWithheld(ctx context.Context, connector string) (withhold.RetryResult, error) {
	if connector != "" {
		if _, ok := e.byName[connector]; !ok {
			return withhold.RetryResult{}, errors.New("unknown connector " + connector)
		}
	}
	return e.doctor.Retry(ctx, connector)
}

// newDoctor wires the diagnosis of failing subscribers to the log, the
// publisher and the connectors.
func (e *Engine) newDoctor() *withhold.Doctor {
	return withhold.NewDoctor(withhold.Options{
		Set: e.withheld, Entry: e.txlog.Entry, Head: e.txlog.Head,
		Current: func(table, key string) (txlog.RowChange, bool, error) {
			r, err := e.txlog.Row(table, key)
			if err != nil || !r.Live() {
				return txlog.RowChange{}, false, err
			}
			return txlog.RowChange{Table: table, Key: key, Row: r.Image()}, true, nil
		},
		Pending: func(name string) ([]string, []withhold.RowRef) {
			tables, rows := e.pub.Pending(name)
			refs := make([]withhold.RowRef, len(rows))
			for i, r := range rows {
				refs[i] = withhold.RowRef{Table: r.Table, Key: r.Key}
			}
			return tables, refs
		},
		Rows: func(table string, fn func(txlog.RowChange) error) error {
			return e.txlog.Rows(table, func(key string, r *merge.Row) error {
				if !r.Live() {
					return nil
				}
				return fn(txlog.RowChange{Table: table, Key: key, Row: r.Image()})
			})
		},
		Subscriber: func(name string) (withhold.Subscriber, bool) {
			c, ok := e.byName[name]
			if !ok {
				return nil, false
			}
			return subscriber{c.sub}, true
		},
		Resend: func(name string, recs []withhold.Record, done func(withhold.Record)) error {
			rows := make([]publisher.ResendRow, len(recs))
			for i, r := range recs {
				r := r
				rows[i] = publisher.ResendRow{Table: r.Table, Key: r.Key, Done: func() { done(r) }}
			}
			return e.pub.Resend(name, rows)
		},
		Withheld: func(r withhold.Record) {
			e.events.Publish(status.Event{Kind: status.KindConnector, Connector: r.Connector,
				Message: "row withheld: " + r.Table + " (" + r.KeyText + "): " + r.Error})
			e.recordWithheld(r)
			if e.withheldHook != nil {
				e.withheldHook(r)
			}
		},
		Logger: e.log,
	})
}

// subscriber adapts a connector to what the diagnosis needs.
type subscriber struct{ c *connector.Connector }

func (s subscriber) AppliedOffset(ctx context.Context) (uint64, error) { return s.c.AppliedOffset(ctx) }

func (s subscriber) BeginReplay(ctx context.Context) (withhold.Replayer, error) {
	return s.c.BeginReplay(ctx)
}

func (s subscriber) Skip(ctx context.Context, lsn uint64) error { return s.c.Skip(ctx, lsn) }

func (s subscriber) Sent(e *txlog.Entry) []txlog.RowChange {
	return publisher.SentRows(s.c.View(), s.c.Name(), e)
}

// watchWithheld diagnoses a connector whose apply worker failed again
// (its apply error count grew while it is failing): the rows it cannot
// apply are withheld from it, and everything else keeps streaming.
func (e *Engine) watchWithheld(ctx context.Context) error {
	t := time.NewTicker(withholdPoll)
	defer t.Stop()
	seen := map[string]int64{}
	streak := map[string]*unattributed{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for _, c := range e.conns {
			st := c.sub.Status()
			name := c.cfg.Name
			if st.Failing == "" {
				delete(streak, name)
			}
			if st.ApplyErrors <= seen[name] || st.Failing == "" {
				if st.ApplyErrors > seen[name] && seen[name] == 0 {
					seen[name] = st.ApplyErrors // errors from before: nothing to do now
				}
				continue
			}
			seen[name] = st.ApplyErrors
			e.diagnose(ctx, name, streak)
		}
	}
}

// diagnose runs one diagnosis of a failing connector and, after a long run
// of failures no row is blamed for, the skip.
func (e *Engine) diagnose(ctx context.Context, name string, streak map[string]*unattributed) {
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	recs, err := e.doctor.Diagnose(dctx, name)
	switch {
	case errors.Is(err, withhold.ErrUnattributed):
		u := streak[name]
		if u == nil {
			u = &unattributed{since: time.Now()}
			streak[name] = u
		}
		u.count++
		e.log.Warn("subscriber failing, but no row it is sent fails in a replay: see its Postgres log", "connector", name, "failures", u.count, "err", err)
		failures, after := e.skip.get()
		if u.count < failures || time.Since(u.since) < after {
			return
		}
		why := fmt.Sprintf("its apply worker failed %d times in %s and no row of it fails in a replay", u.count, time.Since(u.since).Round(time.Second))
		if _, err := e.doctor.Skip(dctx, name, why); err != nil {
			e.log.Error("skipping the entry a subscriber fails on", "connector", name, "err", err)
			return
		}
		delete(streak, name)
	case err != nil && ctx.Err() == nil:
		e.log.Error("diagnosing a failing subscriber", "connector", name, "err", err)
	case len(recs) > 0:
		delete(streak, name)
		e.log.Info("rows withheld from a failing subscriber", "connector", name, "rows", len(recs))
	}
}

// retryWithheldAfterMigration retries the rows withheld from connector: a
// migration may have removed their cause.
func (e *Engine) retryWithheldAfterMigration(ctx context.Context, name string) {
	if e.withheld.Count(name) == 0 {
		return
	}
	res, err := e.doctor.Retry(ctx, name)
	if err != nil {
		e.log.Error("retrying withheld rows after a migration", "connector", name, "err", err)
		return
	}
	e.log.Info("retried withheld rows after a migration", "connector", name, "resent", res.Resent, "still_failing", res.Still)
}
