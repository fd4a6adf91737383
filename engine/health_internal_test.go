package engine

import (
	"strings"
	"testing"
	"time"
)

// The lag mark: a subscriber that has not applied an entry which was the
// head ApplyLagLimit ago lags; one that keeps passing its marks under steady
// load, or is caught up, does not.
func TestLagMark(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	type step struct {
		sec           int
		head, applied uint64
		lagging       bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"caught up", []step{{0, 10, 10, false}, {100, 20, 20, false}}},
		{"stuck", []step{{0, 10, 5, false}, {29, 12, 5, false}, {30, 12, 5, true}, {60, 15, 9, true}}},
		{"steady 10 s behind", []step{{0, 10, 5, false}, {10, 20, 10, false}, {20, 30, 20, false}, {30, 40, 30, false}, {40, 50, 40, false}}},
		{"recovers", []step{{0, 10, 5, false}, {40, 10, 5, true}, {41, 10, 10, false}}},
		{"passes the mark late", []step{{0, 10, 5, false}, {35, 20, 12, false}, {64, 25, 19, false}, {65, 25, 19, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m lagMark
			for _, s := range tc.steps {
				m.update(s.head, s.applied, at(s.sec))
				r := m.reason(at(s.sec))
				if (r != "") != s.lagging {
					t.Fatalf("at %ds (head %d, applied %d): reason %q, want lagging=%v", s.sec, s.head, s.applied, r, s.lagging)
				}
				if r != "" && !strings.Contains(r, "the subscriber lags") {
					t.Fatalf("reason %q", r)
				}
			}
		})
	}
}
