package tui

import (
	"context"
	"fmt"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/tui/pages/dashboard"
)

// BenchmarkView: one frame with 2 connectors, 2 sessions and 5 events at
// 80×24 (baseline), 200×50, and 200×50 with 50 connectors, 500 sessions and
// 500 events (the page draws only what fits, so big data must stay cheap).
func BenchmarkView(b *testing.B) {
	p := trafficProvider()
	small := dashboard.Snapshot{Connectors: p.connectors(11), Log: p.log(11), Sessions: p.sessions}
	big := dashboard.Snapshot{Log: small.Log}
	for i := 0; i < 50; i++ {
		c := small.Connectors[i%2]
		c.Name = fmt.Sprintf("postgres_%02d", i)
		big.Connectors = append(big.Connectors, c)
	}
	for i := 0; i < 500; i++ {
		s := small.Sessions[i%2]
		s.ClientID = fmt.Sprintf("client-%03d", i)
		big.Sessions = append(big.Sessions, s)
	}
	var base float64
	for _, tc := range []struct {
		name   string
		w, h   int
		snap   dashboard.Snapshot
		events int
	}{
		{"80x24", 80, 24, small, 5},
		{"200x50", 200, 50, small, 5},
		{"200x50_big", 200, 50, big, 500},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m, err := New(context.Background(), Options{URL: "http://engine.test:5050", Renderer: plainRenderer(),
				Now: func() time.Time { return t0 }, Location: time.UTC})
			if err != nil {
				b.Fatal(err)
			}
			m.Update(tea.WindowSizeMsg{Width: tc.w, Height: tc.h})
			for i := 0; i < 60; i++ { // a minute of history
				m.page.SetSnapshot(tc.snap)
			}
			for i := 1; i <= tc.events; i++ {
				m.page.AddEvent(status.Event{ID: uint64(i), Time: t0, Kind: status.KindSession, Session: "c", Message: "connected"})
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				_ = m.View()
			}
			ns := float64(time.Since(start).Nanoseconds()) / float64(b.N)
			if tc.name == "80x24" {
				base = ns
			} else if base > 0 {
				b.ReportMetric(ns/base, "x_vs_80x24")
			}
		})
	}
}
