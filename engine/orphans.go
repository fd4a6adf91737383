package engine

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/engine/connreg"
	"github.com/electric-sql/electric-go/engine/status"
)

// orphanCheckEvery is how often an orphaned connector's slot is looked at;
// orphanWarnEvery how often the warning is logged again while it stays.
const (
	orphanCheckEvery = 30 * time.Second
	orphanWarnEvery  = time.Hour
)

// orphans are the connectors the engine's state has served (package
// connreg) that are no longer in CONNECTORS: never silently left holding
// WAL, they are logged, listed by /api/connectors as orphaned with what
// their slot holds, until `electric connectors remove` removes them.
type orphans struct {
	mu sync.Mutex
	m  map[string]*orphan
}

type orphan struct {
	entry  connreg.Entry
	check  slotCheck
	warned time.Time
}

// slotCheck is what was last read of an orphan's slot on its Postgres.
type slotCheck struct {
	at        time.Time
	err       string
	exists    bool
	activePID int32
	retained  int64 // -1 unknown
	walStatus string
}

func (o *orphans) names() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]string, 0, len(o.m))
	for n := range o.m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (o *orphans) get(name string) (orphan, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p, ok := o.m[name]
	if !ok {
		return orphan{}, false
	}
	return *p, true
}

func (o *orphans) remove(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, name)
}

// findOrphans records the configured connectors in the registry and
// reports those it knows that are not configured.
func (e *Engine) findOrphans() error {
	now := time.Now()
	configured := make([]connreg.Entry, 0, len(e.cfg.Connectors))
	for _, c := range e.cfg.Connectors {
		configured = append(configured, connreg.Entry{Name: c.Name, URI: c.URI, Slot: e.cfg.Slot, Publication: e.cfg.Publication})
	}
	if err := e.registry.Record(now, configured...); err != nil {
		return err
	}
	e.orphans = &orphans{m: map[string]*orphan{}}
	for _, en := range e.registry.List() {
		if _, ok := e.byName[en.Name]; ok {
			continue
		}
		e.orphans.m[en.Name] = &orphan{entry: en, check: slotCheck{retained: -1}, warned: now}
		e.log.Warn("connector is not in CONNECTORS but the engine's state has it: its replication slot may still hold WAL on that Postgres; remove it with the command below, or put it back in CONNECTORS",
			"connector", en.Name, "slot", en.Slot, "last_configured", en.LastSeen.UTC().Format(time.RFC3339), "remove_with", "electric connectors remove "+en.Name)
		e.events.Publish(status.Event{Kind: status.KindConnector, Connector: en.Name,
			Message: "orphaned: not in CONNECTORS; its slot may hold WAL; run electric connectors remove " + en.Name})
	}
	return nil
}

// watchOrphans reads each orphan's slot now and then, for the status and
// the repeated warning.
func (e *Engine) watchOrphans(ctx context.Context) error {
	t := time.NewTicker(orphanCheckEvery)
	defer t.Stop()
	for {
		for _, name := range e.orphans.names() {
			e.checkOrphan(ctx, name)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (e *Engine) checkOrphan(ctx context.Context, name string) {
	o, ok := e.orphans.get(name)
	if !ok {
		return
	}
	ck := readSlot(ctx, o.entry)
	if ctx.Err() != nil {
		return
	}
	e.orphans.mu.Lock()
	p, ok := e.orphans.m[name]
	if !ok {
		e.orphans.mu.Unlock()
		return
	}
	first := p.check.at.IsZero()
	p.check = ck
	warn := first || time.Since(p.warned) >= orphanWarnEvery
	if warn {
		p.warned = time.Now()
	}
	e.orphans.mu.Unlock()
	switch {
	case !warn:
	case ck.err != "":
		e.log.Warn("orphaned connector: cannot read its slot", "connector", name, "err", ck.err, "remove_with", "electric connectors remove "+name)
	case ck.exists:
		e.log.Warn("orphaned connector's slot holds WAL on its Postgres", "connector", name, "slot", o.entry.Slot,
			"wal_retained_bytes", ck.retained, "wal_status", ck.walStatus, "remove_with", "electric connectors remove "+name)
	default:
		e.log.Warn("orphaned connector has no slot left on its Postgres; forget its state", "connector", name, "remove_with", "electric connectors remove "+name)
	}
}

// readSlot reads an orphan's slot on its Postgres, within 10 s.
func readSlot(ctx context.Context, en connreg.Entry) slotCheck {
	ck := slotCheck{at: time.Now(), retained: -1}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, en.URI)
	if err != nil {
		ck.err = fmt.Sprintf("connecting: %v", err)
		return ck
	}
	defer conn.Close(context.Background())
	var pid *int32
	var retained *int64
	var ws *string
	err = conn.QueryRow(ctx, `SELECT active_pid, pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), restart_lsn)::bigint, wal_status
FROM pg_catalog.pg_replication_slots WHERE slot_name = $1 AND database = current_database()`, en.Slot).Scan(&pid, &retained, &ws)
	if err == pgx.ErrNoRows {
		return ck
	}
	if err != nil {
		ck.err = fmt.Sprintf("reading slot %s: %v", en.Slot, err)
		return ck
	}
	ck.exists = true
	if pid != nil {
		ck.activePID = *pid
	}
	if retained != nil {
		ck.retained = *retained
	}
	if ws != nil {
		ck.walStatus = *ws
	}
	return ck
}

// orphanStatuses are the orphans as /api/connectors lists them.
func (e *Engine) orphanStatuses() []status.Connector {
	var out []status.Connector
	for _, name := range e.orphans.names() {
		o, ok := e.orphans.get(name)
		if !ok {
			continue
		}
		why := "not in CONNECTORS: run electric connectors remove " + name
		switch ck := o.check; {
		case ck.at.IsZero():
			why += " (its slot is being checked)"
		case ck.err != "":
			why += " (its slot could not be read: " + ck.err + ")"
		case ck.exists:
			why += fmt.Sprintf(" (its slot %s holds %d bytes of WAL on that Postgres)", o.entry.Slot, ck.retained)
		default:
			why += " (it has no slot left on that Postgres)"
		}
		out = append(out, status.Connector{
			Name: name, State: status.StateOrphaned, NotReadyReason: why, Error: why,
			Slot: o.entry.Slot, WALRetainedBytes: o.check.retained, SourceLagBytes: -1, WALStatus: o.check.walStatus,
			Subscriber: status.Subscriber{State: "removed"},
		})
	}
	return out
}
