package status

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// GET /healthz is liveness: 200 "ok" while the log store runs, whatever the
// connectors' readiness; 503 with the reason otherwise.
func TestHealthz(t *testing.T) {
	p := sampleProvider()
	p.status.Connectors["postgres_2"] = StateError // not ready: liveness does not care
	_, hs, _ := newTestServer(t, p, nil)

	code, _, body := getBody(t, http.MethodGet, hs.URL+"/healthz")
	if code != http.StatusOK || body != "ok\n" {
		t.Fatalf("healthy: %d %q, want 200 \"ok\\n\"", code, body)
	}

	p.mu.Lock()
	p.log.Healthy = false
	p.mu.Unlock()
	code, _, body = getBody(t, http.MethodGet, hs.URL+"/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "log store is not running") {
		t.Fatalf("log store down: %d %q, want 503 naming the log store", code, body)
	}

	p.mu.Lock()
	p.err = errors.New("boom")
	p.mu.Unlock()
	code, _, body = getBody(t, http.MethodGet, hs.URL+"/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "boom") {
		t.Fatalf("provider error: %d %q, want 503 with the error", code, body)
	}
}
