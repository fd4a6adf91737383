package engine_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/status"
)

// Readiness tells the truth: a connector whose subscriber keeps failing to
// apply (a CHECK constraint only that Postgres has, which the replicated row
// violates) is not ready in /api/status, with the reason in /api/connectors
// and /metrics, while the liveness probe /healthz stays 200; once the cause
// is gone it is ready again. The publication leaves electric.* out.
func TestStuckSubscriberIsNotReady(t *testing.T) {
	c := newCluster(t, 2, initSQL)
	c.start(t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl, err := status.NewClient(c.statusURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	healthz := func() (int, string) {
		t.Helper()
		resp, err := http.Get(c.statusURL() + "/healthz")
		if err != nil {
			t.Fatalf("GET /healthz: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	statusOf := func() map[string]any {
		resp, err := http.Get(c.statusURL() + "/api/status")
		if err != nil {
			t.Fatalf("GET /api/status: %v", err)
		}
		defer resp.Body.Close()
		var st struct {
			Connectors map[string]any `json:"connectors"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatalf("GET /api/status: %v", err)
		}
		return st.Connectors
	}
	if code, body := healthz(); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz on a ready engine: %d %q", code, body)
	}
	for _, n := range c.names {
		if got := c.query(n, "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = 'all_tables' AND schemaname = 'electric'"); len(got) != 0 {
			t.Errorf("publication all_tables on %s lists electric tables %v", n, got)
		}
	}

	c.exec("postgres_2", "ALTER TABLE public.entries ADD CONSTRAINT not_stuck CHECK (content <> 'stuck')")
	id := "00000000-0000-0000-0000-0000000000bb"
	c.exec("postgres_1", "INSERT INTO public.entries (id, content) VALUES ($1, 'stuck')", id)

	var last map[string]any
	c.eventually(60*time.Second, func() bool {
		last = statusOf()
		return last["postgres_2"] == false
	}, func() string { return "postgres_2 still reported ready: " + jsonString(last) })
	if last["postgres_1"] != true {
		t.Errorf("postgres_1 not ready while only postgres_2 is stuck: %v", jsonString(last))
	}
	conns, err := cl.Connectors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var stuck status.Connector
	for _, sc := range conns {
		if sc.Name == "postgres_2" {
			stuck = sc
		}
	}
	if stuck.State != status.StateError || !strings.Contains(stuck.NotReadyReason, "apply worker of subscription postgres_2 is failing") ||
		stuck.Error == "" || stuck.Subscriber.ApplyErrors == 0 {
		t.Errorf("postgres_2 in /api/connectors: %s", jsonString(stuck))
	}
	resp, err := http.Get(c.statusURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`electric_connector_ready{connector="postgres_2"} 0`, `electric_connector_ready{connector="postgres_1"} 1`, `electric_connector_apply_errors_total{connector="postgres_2"} `} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, body := healthz(); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz with a stuck subscriber: %d %q, want 200 ok (liveness, not readiness)", code, body)
	}

	// The row is withheld from postgres_2 (TestSubscriberFailureWithholdsOnlyItsRows);
	// the cause gone, a retry applies it and the connector is ready again.
	c.eventually(60*time.Second, func() bool { return len(c.eng.Withheld("postgres_2")) == 1 },
		func() string { return "the failing row was not withheld" })
	c.exec("postgres_2", "ALTER TABLE public.entries DROP CONSTRAINT not_stuck")
	if res, err := c.eng.RetryWithheld(ctx, "postgres_2"); err != nil || res.Resent != 1 {
		t.Fatalf("retry after dropping the constraint: %+v, %v", res, err)
	}
	c.waitRows("postgres_2", "SELECT content FROM public.entries WHERE id = '"+id+"'", "stuck")
	c.waitReady()
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
