package status

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// AuditLog is what the engine implements for the conflicts and rejections
// routes (its adapter of package audit).
type AuditLog interface {
	// Query lists the events f selects, newest first.
	Query(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	// Retry marks the withheld rows f selects to be retried and returns them.
	Retry(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	// Stats are the counters behind /metrics.
	Stats() AuditStats
}

// Audit event kinds, as package audit names them.
const (
	AuditConflict     = "conflict"
	AuditInvalidValue = "invalid_value"
	AuditOwnership    = "ownership"
	AuditWithheld     = "withheld"
)

// AuditWrite is one side of a conflict.
type AuditWrite struct {
	Origin string  `json:"origin"`
	Value  *string `json:"value"` // nil: NULL
	Eff    uint64  `json:"eff"`   // effective timestamp, µs since the Unix epoch
}

// AuditEvent is a conflict (a concurrent write that lost one column) or a
// rejection (a client write refused, a row withheld from a subscriber).
type AuditEvent struct {
	ID        uint64      `json:"id"`
	Kind      string      `json:"kind"`
	Time      time.Time   `json:"time"`
	Table     string      `json:"table,omitempty"`
	Key       string      `json:"key,omitempty"`
	Column    string      `json:"column,omitempty"`
	Offset    uint64      `json:"offset,omitempty"`
	Winner    *AuditWrite `json:"winner,omitempty"`
	Loser     *AuditWrite `json:"loser,omitempty"`
	Origin    string      `json:"origin,omitempty"`
	Value     *string     `json:"value,omitempty"`
	Connector string      `json:"connector,omitempty"`
	Error     string      `json:"error,omitempty"`
	State     string      `json:"state,omitempty"`
	Truncated bool        `json:"truncated,omitempty"`
}

// AuditFilter selects events; zero fields select everything.
type AuditFilter struct {
	Kinds     []string // set by the route: conflicts, or the rejection kinds
	Table     string
	Connector string
	Origin    string
	Since     time.Time
	Limit     int
}

// AuditStats are the audit counters: events recorded by kind and table,
// and events lost before reaching the disk.
type AuditStats struct {
	Recorded map[string]map[string]uint64
	Dropped  uint64
	Failed   uint64
}

// AuditResponse is the body of GET /api/conflicts and GET /api/rejected.
type AuditResponse struct {
	Events []AuditEvent `json:"events"`
}

// RetryResponse is the body of POST /api/rejected/retry.
type RetryResponse struct {
	Retried []AuditEvent `json:"retried"`
}

// Bounds of the filters a client sends.
const (
	maxFilterBytes = 512
	maxAuditLimit  = 10000
)

// ParseAuditFilter reads the filters table, connector, origin, kind (only
// where allowed), limit and since (RFC 3339 time, or a duration back from
// now such as 1h) from q.
func ParseAuditFilter(q url.Values, now time.Time, kinds []string) (AuditFilter, error) {
	f := AuditFilter{Kinds: kinds}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"table", &f.Table}, {"connector", &f.Connector}, {"origin", &f.Origin}} {
		v := q.Get(p.name)
		if len(v) > maxFilterBytes {
			return f, fmt.Errorf("%s is longer than %d bytes", p.name, maxFilterBytes)
		}
		*p.dst = v
	}
	if k := q.Get("kind"); k != "" {
		ok := false
		for _, allowed := range kinds {
			ok = ok || k == allowed
		}
		if !ok {
			return f, fmt.Errorf("kind %q is not one of %v", truncate(k, 64), kinds)
		}
		f.Kinds = []string{k}
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxAuditLimit {
			return f, fmt.Errorf("limit %q is not a number from 1 to %d", truncate(l, 64), maxAuditLimit)
		}
		f.Limit = n
	}
	if s := q.Get("since"); s != "" {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			f.Since = t
		} else if d, err := time.ParseDuration(s); err == nil && d >= 0 {
			f.Since = now.Add(-d)
		} else {
			return f, fmt.Errorf("since %q is neither an RFC 3339 time nor a duration such as 1h", truncate(s, 64))
		}
	}
	return f, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// rejectionKinds are the kinds /api/rejected lists.
var rejectionKinds = []string{AuditInvalidValue, AuditOwnership, AuditWithheld}

func (s *Server) handleAudit(kinds []string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Audit == nil {
			http.Error(w, "Not found: this engine keeps no audit log", http.StatusNotFound)
			return
		}
		f, err := ParseAuditFilter(r.URL.Query(), time.Now(), kinds)
		if err != nil {
			http.Error(w, "Bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		evs, err := s.opts.Audit.Query(r.Context(), f)
		if err != nil {
			s.fail(w, "listing audit events", err)
			return
		}
		if evs == nil {
			evs = []AuditEvent{}
		}
		writeJSON(w, AuditResponse{Events: evs})
	}
}

func (s *Server) handleRetry(w http.ResponseWriter, r *http.Request) {
	if s.opts.Audit == nil {
		http.Error(w, "Not found: this engine keeps no audit log", http.StatusNotFound)
		return
	}
	f, err := ParseAuditFilter(r.URL.Query(), time.Now(), []string{AuditWithheld})
	if err != nil {
		http.Error(w, "Bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	evs, err := s.opts.Audit.Retry(r.Context(), f)
	if err != nil {
		s.fail(w, "retrying withheld rows", err)
		return
	}
	if evs == nil {
		evs = []AuditEvent{}
	}
	writeJSON(w, RetryResponse{Retried: evs})
}

// AuditQuery is what a client asks of /api/conflicts or /api/rejected.
type AuditQuery struct {
	Table, Connector, Origin string
	Kind                     string // rejected only: invalid_value, ownership or withheld
	Since                    string // RFC 3339 time or a duration back from now
	Limit                    int
}

func (q AuditQuery) values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("table", q.Table)
	set("connector", q.Connector)
	set("origin", q.Origin)
	set("kind", q.Kind)
	set("since", q.Since)
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// Conflicts reads GET /api/conflicts.
func (c *Client) Conflicts(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	var r AuditResponse
	err := c.do(ctx, http.MethodGet, "/api/conflicts", q.values(), &r)
	return r.Events, err
}

// Rejected reads GET /api/rejected.
func (c *Client) Rejected(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	var r AuditResponse
	err := c.do(ctx, http.MethodGet, "/api/rejected", q.values(), &r)
	return r.Events, err
}

// RetryRejected calls POST /api/rejected/retry and returns the rows marked.
func (c *Client) RetryRejected(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	var r RetryResponse
	err := c.do(ctx, http.MethodPost, "/api/rejected/retry", q.values(), &r)
	return r.Retried, err
}
