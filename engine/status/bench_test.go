package status

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkEventsPublish: the cost a component pays per Publish, with 0
// (baseline), 10 and 100 live subscribers draining their channels. (A tight
// loop outruns the drainers, which are then cut off, as designed: Publish
// never blocks.)
func BenchmarkEventsPublish(b *testing.B) {
	var base float64
	for _, subs := range []int{0, 10, 100} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			ev := NewEvents(0, nil)
			for i := 0; i < subs; i++ {
				_, live, cancel := ev.Subscribe(0)
				defer cancel()
				go func() {
					for range live {
					}
				}()
			}
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				ev.Publish(Event{Kind: KindConnector, Connector: "postgres_1", Message: "state ready"})
			}
			ns := float64(time.Since(start).Nanoseconds()) / float64(b.N)
			if subs == 0 {
				base = ns
			} else if base > 0 {
				b.ReportMetric(ns/base, "x_vs_no_subscribers")
			}
		})
	}
}

// BenchmarkScrape: one /metrics scrape (engine metrics plus Go and process
// collectors) with 10 connectors and 100 sessions, against /api/log as the
// baseline of one small JSON snapshot.
func BenchmarkScrape(b *testing.B) {
	p := sampleProvider()
	c0 := p.connectors[0]
	p.connectors = nil
	for i := 0; i < 10; i++ {
		c := c0
		c.Name = fmt.Sprintf("postgres_%d", i)
		p.connectors = append(p.connectors, c)
	}
	s0 := p.sessions[0]
	p.sessions = nil
	for i := 0; i < 100; i++ {
		s := s0
		s.ClientID = fmt.Sprintf("client-%d", i)
		p.sessions = append(p.sessions, s)
	}
	srv, err := New(Options{Provider: p})
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	run := func(b *testing.B, path string) float64 {
		b.ReportAllocs()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
			if w.Code != 200 {
				b.Fatalf("%s: %d", path, w.Code)
			}
			_, _ = io.Copy(io.Discard, w.Body)
		}
		return float64(time.Since(start).Nanoseconds()) / float64(b.N)
	}
	var base float64
	b.Run("api_log", func(b *testing.B) { base = run(b, "/api/log") })
	b.Run("api_sessions", func(b *testing.B) {
		if ns := run(b, "/api/sessions"); base > 0 {
			b.ReportMetric(ns/base, "x_vs_api_log")
		}
	})
	b.Run("metrics", func(b *testing.B) {
		if ns := run(b, "/metrics"); base > 0 {
			b.ReportMetric(ns/base, "x_vs_api_log")
		}
	})
}
