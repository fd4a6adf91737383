// Package pane draws a bordered box with a title in its top border, the
// frame of every dashboard panel. The focused pane gets a heavy border so
// focus is visible without colour.
package pane

import (
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/electric-sql/electric-go/tui/styles"
)

// Render draws lines inside a width×height box (borders included), cutting
// or padding lines to fit. Lines may carry styles.
func Render(st *styles.Styles, title string, lines []string, width, height int, focused bool) string {
	if width < 4 || height < 2 {
		return ""
	}
	b, bs, ts := lipgloss.RoundedBorder(), st.Border, st.Title
	if focused {
		b, bs, ts = lipgloss.ThickBorder(), st.BorderFocused, st.TitleFocused
	}
	inner := width - 2
	title = ansi.Truncate(title, max(inner-4, 0), "…")
	var top string
	if title == "" {
		top = bs.Render(b.TopLeft + strings.Repeat(b.Top, inner) + b.TopRight)
	} else {
		fill := inner - 3 - ansi.StringWidth(title)
		top = bs.Render(b.TopLeft+b.Top+" ") + ts.Render(title) + bs.Render(" "+strings.Repeat(b.Top, max(fill, 0))+b.TopRight)
	}
	out := make([]string, 0, height)
	out = append(out, top)
	for i := 0; i < height-2; i++ {
		l := ""
		if i < len(lines) {
			l = Fit(lines[i], inner)
		} else {
			l = strings.Repeat(" ", inner)
		}
		out = append(out, bs.Render(b.Left)+l+bs.Render(b.Right))
	}
	out = append(out, bs.Render(b.BottomLeft+strings.Repeat(b.Bottom, inner)+b.BottomRight))
	return strings.Join(out, "\n")
}

// Fit cuts s to width cells (with an ellipsis) or pads it with spaces.
func Fit(s string, width int) string {
	if width <= 0 {
		return ""
	}
	w := ansi.StringWidth(s)
	if w > width {
		s = ansi.Truncate(s, width, "…")
		w = ansi.StringWidth(s)
	}
	return s + strings.Repeat(" ", width-w)
}
