package engine

import (
	"context"

	"github.com/electric-sql/electric-go/engine/audit"
	"github.com/electric-sql/electric-go/engine/pgcheck"
	"github.com/electric-sql/electric-go/engine/satellite"
	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/prometheus/client_golang/prometheus"
)

// newValueChecker checks Satellite values on every connector's Postgres,
// against the tables as that connector has them.
func (e *Engine) newValueChecker() *pgcheck.Checker {
	var targets []pgcheck.Target
	for _, c := range e.conns {
		targets = append(targets, pgcheck.Target{Name: c.cfg.Name, URI: c.cfg.URI, Tables: func() []schema.Table {
			v := c.sub.View()
			if v == nil || !v.Ready {
				return nil
			}
			return v.Tables
		}})
	}
	return pgcheck.New(pgcheck.Options{Targets: targets, Logger: e.log.With("component", "pgcheck")})
}

// satValidator adapts a pgcheck.Checker to satellite.Validator.
type satValidator struct{ c *pgcheck.Checker }

func (v satValidator) Check(ctx context.Context, cells []satellite.Cell) ([]satellite.InvalidCell, error) {
	in := make([]pgcheck.Cell, len(cells))
	for i, c := range cells {
		in[i] = pgcheck.Cell{Table: c.Table, Column: c.Column, Value: c.Value}
	}
	bad, err := v.c.Check(ctx, in)
	if err != nil {
		return nil, err
	}
	out := make([]satellite.InvalidCell, len(bad))
	for i, b := range bad {
		out[i] = satellite.InvalidCell{Cell: b.Cell, Connector: b.Connector, Code: b.Code, Err: b.Err}
	}
	return out, nil
}

// satelliteRefusalMetrics are the counters of refused client writes.
func (e *Engine) satelliteRefusalMetrics() []prometheus.Collector {
	counter := func(name, help string, get func(satellite.Status) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "electric_" + name, Help: help},
			func() float64 { return float64(get(e.sat.Status())) })
	}
	return []prometheus.Collector{
		counter("satellite_invalid_rows_total", "Client rows refused for a value a Postgres cannot hold (acked, not merged, sent back).",
			func(s satellite.Status) uint64 { return s.InvalidRows }),
		counter("satellite_ownership_rows_total", "Client rows refused by the ownership rule (sent back).",
			func(s satellite.Status) uint64 { return s.OwnershipRows }),
		counter("satellite_held_transactions_total", "Client transactions held unacked because no Postgres could check their values.",
			func(s satellite.Status) uint64 { return s.HeldTx }),
		counter("satellite_compensated_rows_total", "Refused client rows sent back to their client as the server has them.",
			func(s satellite.Status) uint64 { return s.Compensated }),
	}
}

// OnRejected adds fn to the hooks called for each Satellite client row
// refused (an invalid value, the ownership rule). Hooks run on the
// session's read loop and must not block.
func (e *Engine) OnRejected(fn func(satellite.Rejection)) {
	e.rejectedMu.Lock()
	defer e.rejectedMu.Unlock()
	e.rejected = append(e.rejected, fn)
}

// reportRejected records a refused client row in the audit store (GET
// /api/rejected, never blocking) and calls the OnRejected hooks.
func (e *Engine) reportRejected(r satellite.Rejection) {
	if e.audit != nil {
		val := r.Value
		ev := audit.Event{Kind: audit.Kind(r.Kind), Time: r.Time, Table: r.Table, Key: r.Key, Column: r.Column,
			Origin: "satellite:" + r.ClientID, Connector: r.Connector, Error: r.Err}
		if r.Column != "" {
			ev.Value = &val
		}
		e.RecordRejection(ev)
	}
	e.rejectedMu.Lock()
	hooks := e.rejected
	e.rejectedMu.Unlock()
	for _, fn := range hooks {
		fn(r)
	}
}
