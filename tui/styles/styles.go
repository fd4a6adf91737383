// Package styles owns every lipgloss style of the dashboard, built from one
// renderer so that NO_COLOR (an Ascii profile) turns all colour off at once.
package styles

import "github.com/charmbracelet/lipgloss"

// Styles are the dashboard's styles.
type Styles struct {
	// NoColor is set when the renderer cannot show colour: widgets then add
	// textual markers where colour alone would carry meaning.
	NoColor bool

	App, Header, HeaderURL, Clock lipgloss.Style
	Live, Down, Banner            lipgloss.Style

	Border, BorderFocused lipgloss.Style
	Title, TitleFocused   lipgloss.Style

	ColumnHeader, Selected, Dim lipgloss.Style
	OK, Warn, Crit              lipgloss.Style
	Spark                       lipgloss.Style

	Key, Footer, Label lipgloss.Style
}

// New builds the styles for r.
func New(r *lipgloss.Renderer, noColor bool) *Styles {
	// The 16 ANSI colours follow the user's terminal theme on dark and
	// light backgrounds alike, so nothing has to ask the terminal for its
	// background (an OSC 11 query that stalls start-up where nobody answers).
	green := lipgloss.Color("2")
	yellow := lipgloss.Color("3")
	red := lipgloss.Color("1")
	accent := lipgloss.Color("5")
	dim := lipgloss.Color("8")
	s := &Styles{NoColor: noColor}
	s.App = r.NewStyle()
	s.Header = r.NewStyle().Bold(true).Foreground(accent)
	s.HeaderURL = r.NewStyle().Foreground(dim)
	s.Clock = r.NewStyle().Foreground(dim)
	s.Live = r.NewStyle().Foreground(green)
	s.Down = r.NewStyle().Bold(true).Foreground(red)
	s.Banner = r.NewStyle().Bold(true).Foreground(red)
	s.Border = r.NewStyle().Foreground(dim)
	s.BorderFocused = r.NewStyle().Foreground(accent)
	s.Title = r.NewStyle().Bold(true)
	s.TitleFocused = r.NewStyle().Bold(true).Foreground(accent)
	s.ColumnHeader = r.NewStyle().Bold(true).Foreground(dim)
	s.Selected = r.NewStyle().Reverse(true)
	s.Dim = r.NewStyle().Foreground(dim)
	s.OK = r.NewStyle().Foreground(green)
	s.Warn = r.NewStyle().Foreground(yellow)
	s.Crit = r.NewStyle().Bold(true).Foreground(red)
	s.Spark = r.NewStyle().Foreground(accent)
	s.Key = r.NewStyle().Bold(true)
	s.Footer = r.NewStyle().Foreground(dim)
	s.Label = r.NewStyle().Foreground(dim)
	return s
}
