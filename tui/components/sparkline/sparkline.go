// Package sparkline renders a series of numbers as one line of block
// characters, scaled to the series' own maximum.
package sparkline

import "strings"

var levels = []rune("▁▂▃▄▅▆▇█")

// Render draws the last width values; with fewer values it pads on the left
// with spaces, so the newest value is always at the right edge. Zero and
// negative values draw as the lowest bar.
func Render(values []float64, width int) string {
	if width <= 0 {
		return ""
	}
	if len(values) > width {
		values = values[len(values)-width:]
	}
	maxV := 0.0
	for _, v := range values {
		maxV = max(maxV, v)
	}
	var b strings.Builder
	b.WriteString(strings.Repeat(" ", width-len(values)))
	for _, v := range values {
		i := 0
		if maxV > 0 && v > 0 {
			i = int(v / maxV * float64(len(levels)-1))
			i = min(max(i, 1), len(levels)-1) // any traffic shows above idle
		}
		b.WriteRune(levels[i])
	}
	return b.String()
}
