package common

import (
	"testing"
	"time"
)

func TestFormats(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{Count(0), "0"}, {Count(999), "999"}, {Count(1000), "1,000"}, {Count(1234567), "1,234,567"},
		{Bytes(0), "0 B"}, {Bytes(1023), "1023 B"}, {Bytes(1536), "1.5 KiB"}, {Bytes(5 << 20), "5.0 MiB"},
		{Bytes(-2048), "-2.0 KiB"}, {Bytes(3 << 40), "3.0 TiB"},
		{Rate(0), "0"}, {Rate(12.34), "12.3"}, {Rate(42000), "42.0k"}, {Rate(2.5e6), "2.5M"},
		{Seconds(0), "0s"}, {Seconds(0.25), "0.25s"}, {Seconds(75), "1m15s"},
		{Duration(3 * time.Second), "3s"}, {Duration(5*time.Minute + 12*time.Second), "5m12s"},
		{Duration(2*time.Hour + 5*time.Minute), "2h05m"}, {Duration(76 * time.Hour), "3d04h"}, {Duration(-time.Second), "0s"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := &Common{Now: func() time.Time { return now }, Location: time.UTC}
	if got := c.Ago(now.Add(-90 * time.Second)); got != "1m30s ago" {
		t.Errorf("Ago = %q", got)
	}
	if got := c.Ago(time.Time{}); got != "never" {
		t.Errorf("Ago(zero) = %q", got)
	}
	if got := c.Clock(now); got != "03:04:05" {
		t.Errorf("Clock = %q", got)
	}
}
