// Package common holds what every part of the dashboard shares: the
// terminal size, styles, key map and clock, and the formatting of numbers,
// sizes and times so columns read the same everywhere.
package common

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/electric-sql/electric-go/tui/keymap"
	"github.com/electric-sql/electric-go/tui/styles"
)

// Common is passed to every page and component.
type Common struct {
	Width, Height int
	Styles        *styles.Styles
	KeyMap        *keymap.KeyMap
	// Now is the clock for relative times ("5m ago"); tests fix it.
	Now func() time.Time
	// Location is where wall-clock times are shown.
	Location *time.Location
}

// Count formats n with thousands separators: 1234567 → "1,234,567".
func Count(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= 3 {
		return s
	}
	out := make([]byte, 0, len(s)+len(s)/3)
	for i, c := range []byte(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, c)
	}
	return string(out)
}

// Bytes formats a size in binary units: 1536 → "1.5 KiB".
func Bytes(n int64) string {
	if n < 0 {
		return "-" + Bytes(-n)
	}
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= 1024
		if v < 1024 || u == "TiB" {
			return fmt.Sprintf("%.1f %s", v, u)
		}
	}
	return ""
}

// Rate formats a per-second rate compactly: 0 → "0", 12.34 → "12.3", 4200 → "4.2k".
func Rate(v float64) string {
	switch {
	case v <= 0 || math.IsNaN(v):
		return "0"
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

// Seconds formats a duration in seconds: 0.25 → "0.25s", 75 → "1m15s".
func Seconds(s float64) string {
	switch {
	case s <= 0 || math.IsNaN(s):
		return "0s"
	case s < 10:
		return fmt.Sprintf("%.2fs", s)
	default:
		return Duration(time.Duration(s * float64(time.Second)))
	}
}

// Duration formats d with its two largest units: "3s", "5m12s", "2h5m", "3d4h".
func Duration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
}

// Ago formats how long before now t was: "5m12s ago"; "never" for zero.
func (c *Common) Ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return Duration(c.Now().Sub(t)) + " ago"
}

// Clock formats t as a wall-clock time in the dashboard's location.
func (c *Common) Clock(t time.Time) string {
	return t.In(c.Location).Format("15:04:05")
}
