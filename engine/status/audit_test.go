package status

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

type fakeAudit struct {
	got     []AuditFilter
	events  []AuditEvent
	retried []AuditEvent
}

func (f *fakeAudit) Query(_ context.Context, q AuditFilter) ([]AuditEvent, error) {
	f.got = append(f.got, q)
	return f.events, nil
}

func (f *fakeAudit) Retry(_ context.Context, q AuditFilter) ([]AuditEvent, error) {
	f.got = append(f.got, q)
	return f.retried, nil
}

func (f *fakeAudit) Stats() AuditStats {
	return AuditStats{Recorded: map[string]map[string]uint64{"conflict": {"public.items": 3}}, Dropped: 2}
}

func auditServer(t *testing.T, token string, a AuditLog) (*httptest.Server, *Client) {
	t.Helper()
	s, err := New(Options{Provider: sampleProvider(), Token: token, Audit: a})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	c, err := NewClient(hs.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return hs, c.WithToken(token)
}

func TestAuditRoutes(t *testing.T) {
	v := "b"
	fa := &fakeAudit{
		events:  []AuditEvent{{ID: 2, Kind: AuditConflict, Table: "public.items", Column: "v", Winner: &AuditWrite{Origin: "db_a", Eff: 2}, Loser: &AuditWrite{Origin: "db_b", Value: &v, Eff: 1}}},
		retried: []AuditEvent{{ID: 5, Kind: AuditWithheld, State: "retry"}},
	}
	_, c := auditServer(t, testToken, fa)
	ctx := context.Background()
	evs, err := c.Conflicts(ctx, AuditQuery{Table: "public.items", Origin: "db_b", Limit: 5, Since: "2026-01-02T03:04:05Z"})
	if err != nil || !reflect.DeepEqual(evs, fa.events) {
		t.Fatalf("conflicts = %+v, %v", evs, err)
	}
	want := AuditFilter{Kinds: []string{AuditConflict}, Table: "public.items", Origin: "db_b", Limit: 5, Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	if !reflect.DeepEqual(fa.got[0], want) {
		t.Errorf("filter = %+v, want %+v", fa.got[0], want)
	}
	if _, err := c.Rejected(ctx, AuditQuery{Connector: "db_a", Kind: AuditWithheld}); err != nil {
		t.Fatal(err)
	}
	if f := fa.got[1]; f.Connector != "db_a" || !reflect.DeepEqual(f.Kinds, []string{AuditWithheld}) {
		t.Errorf("rejected filter = %+v", f)
	}
	if _, err := c.Rejected(ctx, AuditQuery{}); err != nil {
		t.Fatal(err)
	}
	if f := fa.got[2]; !reflect.DeepEqual(f.Kinds, rejectionKinds) {
		t.Errorf("rejected kinds = %v", f.Kinds)
	}
	r, err := c.RetryRejected(ctx, AuditQuery{Table: "public.items"})
	if err != nil || len(r) != 1 || r[0].ID != 5 {
		t.Fatalf("retry = %+v, %v", r, err)
	}
	// Bad filters are a 400 that says which.
	for _, q := range []AuditQuery{{Limit: 100000}, {Since: "yesterday"}, {Kind: "conflict"}, {Table: strings.Repeat("t", 600)}} {
		if _, err := c.Rejected(ctx, q); err == nil || !strings.Contains(err.Error(), "400") {
			t.Errorf("%+v: err = %v, want a 400", q, err)
		}
	}
}

func TestAuditRoutesAreGuarded(t *testing.T) {
	hs, _ := auditServer(t, testToken, &fakeAudit{})
	for _, m := range []struct{ method, path string }{{"GET", "/api/conflicts"}, {"GET", "/api/rejected"}, {"POST", "/api/rejected/retry"}} {
		req, _ := http.NewRequest(m.method, hs.URL+m.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s without the token = %d, want 401", m.method, m.path, resp.StatusCode)
		}
	}
}

func TestAuditMetricsAndNoAudit(t *testing.T) {
	hs, _ := auditServer(t, "", &fakeAudit{})
	_, _, body := getBody(t, "GET", hs.URL+"/metrics")
	for _, want := range []string{`electric_audit_events_total{kind="conflict",table="public.items"} 3`, `electric_audit_events_lost_total{reason="dropped"} 2`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	hs, _ = auditServer(t, "", nil)
	if code, _, _ := getBody(t, "GET", hs.URL+"/api/conflicts"); code != http.StatusNotFound {
		t.Errorf("without an audit log: %d, want 404", code)
	}
}

func TestParseAuditFilterSinceDuration(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	f, err := ParseAuditFilter(url.Values{"since": {"90m"}}, now, nil)
	if err != nil || !f.Since.Equal(now.Add(-90*time.Minute)) {
		t.Fatalf("since = %v, %v", f.Since, err)
	}
}
