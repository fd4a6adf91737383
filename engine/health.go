package engine

import (
	"fmt"
	"time"
)

// ApplyLagLimit is how long a log entry may stay unapplied by a connector's
// subscriber before the connector counts as lagging, and so not ready. The
// subscriber reports its position at least every 10 s
// (wal_receiver_status_interval) and the publisher's keepalives move it over
// entries it skips, so a healthy subscriber stays well within it.
const ApplyLagLimit = 30 * time.Second

// lagMark measures a subscriber's apply lag: offset is the log head when
// the subscriber was last seen behind it with the previous mark applied, at
// since. A subscriber that has not applied an entry which was at the head
// ApplyLagLimit ago is lagging. Zero while the subscriber is caught up.
type lagMark struct {
	offset uint64
	since  time.Time
	head   uint64 // for the reason
}

// update moves the mark for a subscriber that has applied up to applied,
// the head being head.
func (m *lagMark) update(head, applied uint64, now time.Time) {
	switch {
	case applied >= head:
		*m = lagMark{}
	case m.since.IsZero() || applied >= m.offset:
		*m = lagMark{offset: head, since: now, head: head}
	default:
		m.head = head
	}
}

// reason says why the subscriber counts as lagging; empty when it does not.
func (m *lagMark) reason(now time.Time) string {
	if m.since.IsZero() || now.Sub(m.since) < ApplyLagLimit {
		return ""
	}
	return fmt.Sprintf("the subscriber lags: log entry %d, the head %s ago, is not applied yet (log head %d)",
		m.offset, now.Sub(m.since).Round(time.Second), m.head)
}

// watchLag updates every connector's lag mark from the publisher's view of
// its subscriber. A paused subscriber (migration) does not lag.
func (e *Engine) watchLag(now time.Time) {
	head := e.txlog.Head()
	applied := map[string]uint64{}
	for _, pc := range e.pub.Status().Connectors {
		applied[pc.Connector] = pc.AppliedOffset
	}
	for _, c := range e.conns {
		c.mu.Lock()
		if c.migrating {
			c.lag = lagMark{}
		} else {
			c.lag.update(head, applied[c.cfg.Name], now)
		}
		c.mu.Unlock()
	}
}
