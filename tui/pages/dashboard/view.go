// Drawing: the header, the error banner, the panes laid out to the terminal
// size, and the footer.

package dashboard

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/electric-sql/electric-go/tui/common"
	"github.com/electric-sql/electric-go/tui/components/pane"
	"github.com/electric-sql/electric-go/tui/components/sparkline"
)

// View draws the whole screen: exactly Height lines of at most Width cells.
func (m *Model) View() string {
	w, h := m.c.Width, m.c.Height
	if w <= 0 || h <= 0 {
		return ""
	}
	if w < minWidth || h < minHeight {
		msg := fmt.Sprintf("terminal too small (%d×%d): the dashboard needs at least %d×%d", w, h, minWidth, minHeight)
		return fill(ansi.Wordwrap(msg, w, " "), w, h)
	}
	var top []string
	top = append(top, m.header(w))
	if m.downErr != "" {
		// The error is what the operator needs: up to two lines of it.
		lines := strings.Split(ansi.Wrap(m.banner(), w-1, " "), "\n")
		if len(lines) > 2 {
			lines = lines[:2]
			lines[1] = ansi.Truncate(lines[1]+" …", w-2, "…")
		}
		for i, l := range lines {
			if i > 0 {
				l = "   " + l
			}
			top = append(top, m.c.Styles.Banner.Render(pane.Fit(" "+l, w)))
		}
	}
	footer := m.footer(w)
	bodyH := h - len(top) - 1

	var body string
	switch {
	case m.showHelp:
		body = pane.Render(m.c.Styles, "Help", strings.Split(m.helpView(), "\n"), w, bodyH, true)
	case m.showDetails:
		title, lines := m.details(w - 4)
		body = pane.Render(m.c.Styles, title, lines, w, bodyH, true)
	default:
		body = m.panes(w, bodyH)
	}
	return fill(strings.Join(append(top, body, footer), "\n"), w, h)
}

// fill pads or cuts s to exactly h lines of exactly w cells.
func fill(s string, w, h int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	for i, l := range lines {
		lines[i] = pane.Fit(l, w)
	}
	return strings.Join(lines, "\n")
}

func (m *Model) header(w int) string {
	st := m.c.Styles
	left := st.Header.Render(" electric") + st.HeaderURL.Render("  "+m.url)
	var state string
	switch {
	case m.downErr != "":
		state = st.Down.Render("✕ unreachable")
	case m.haveData:
		state = st.Live.Render("● connected")
	default:
		state = st.HeaderURL.Render("… connecting")
	}
	right := state + st.Clock.Render("  "+m.c.Clock(m.c.Now())+" ")
	gap := w - ansi.StringWidth(left) - ansi.StringWidth(right)
	if gap < 1 {
		return pane.Fit(left, w)
	}
	return left + strings.Repeat(" ", gap) + right
}

func (m *Model) banner() string {
	s := fmt.Sprintf("✕ engine unreachable: %s · retrying every %s", m.downErr, m.poll)
	if m.haveData {
		s += " · showing data from before " + m.c.Clock(m.downSince)
	}
	return s
}

func (m *Model) footer(w int) string {
	if m.filtering {
		st := m.c.Styles
		cur := st.Selected.Render(" ")
		if st.NoColor {
			cur = "_"
		}
		return st.Key.Render(" filter /") + string(m.input) + cur +
			st.Footer.Render("   enter apply · esc clear")
	}
	if m.showHelp || m.showDetails {
		return m.help.ShortHelpView([]key.Binding{m.c.KeyMap.Back, m.c.KeyMap.Quit})
	}
	return " " + m.help.ShortHelpView(m.c.KeyMap.ShortHelp())
}

func (m *Model) helpView() string {
	prose := "The dashboard polls the engine's status API every " + m.poll.String() +
		" and follows its event stream. Lag is green below the warning threshold, yellow above it," +
		" red when it needs action; without colour, one ! marks a warning and !! a critical value."
	lines := []string{""}
	for _, l := range strings.Split(ansi.Wordwrap(prose, max(m.c.Width-6, 20), " "), "\n") {
		lines = append(lines, "  "+l)
	}
	lines = append(lines, "")
	for _, l := range strings.Split(m.help.FullHelpView(m.c.KeyMap.FullHelp()), "\n") {
		lines = append(lines, "  "+l)
	}
	return strings.Join(lines, "\n")
}

func (m *Model) title(name string, p int) string {
	t := m.tables[p]
	if t == nil {
		return name
	}
	s := fmt.Sprintf("%s (%d)", name, t.Total())
	if t.Filter() != "" {
		s = fmt.Sprintf("%s (%d of %d) /%s", name, t.Len(), t.Total(), t.Filter())
	}
	return s
}

func (m *Model) panes(w, h int) string {
	nConn := m.tables[paneConnectors].Len()
	nSess := m.tables[paneSessions].Len()
	// Connectors come first; events keep at least one row; when short, the
	// log/sessions row gives way first (the log pane shows its key lines).
	const evMin, midMin, connMin = 4, 5, 4
	connH := min(max(nConn, 1)+3, max(connMin, h*2/5))
	midH := min(max(7, max(nSess, 1)+3), max(7, h*3/10))
	if short := evMin - (h - connH - midH); short > 0 {
		cut := min(short, midH-midMin)
		midH -= cut
		connH = max(connMin, connH-(short-cut))
	}
	evH := h - connH - midH
	logW := 26
	if w >= 100 {
		logW = 32
	}
	sessW := w - logW

	conn := m.tablePane("Connectors", paneConnectors, w, connH)
	logPane := pane.Render(m.c.Styles, "Log", m.logLines(logW-2), logW, midH, m.focus == paneLog)
	sess := m.tablePane("Sessions", paneSessions, sessW, midH)
	evTitle := m.title("Events", paneEvents)
	if m.streamLive {
		evTitle += " · live"
	} else {
		evTitle += " · reconnecting"
	}
	// Conflicts and rejections share the bottom with the events: at most
	// half of it, at least one row when there is room for both.
	auditH := 0
	if evH >= 6 {
		auditH = min(max(m.tables[paneAudit].Len(), 1)+3, evH/2)
	}
	evH -= auditH
	ev := pane.Render(m.c.Styles, evTitle, m.tables[paneEvents].View(m.c.Styles, w-2, evH-2, m.focus == paneEvents), w, evH, m.focus == paneEvents)
	mid := lipgloss.JoinHorizontal(lipgloss.Top, logPane, sess)
	parts := []string{conn, mid, ev}
	if auditH > 0 {
		parts = append(parts, m.tablePane("Conflicts & rejections", paneAudit, w, auditH))
	}
	return strings.Join(parts, "\n")
}

func (m *Model) tablePane(name string, p, w, h int) string {
	focused := m.focus == p
	lines := m.tables[p].View(m.c.Styles, w-2, h-2, focused)
	return pane.Render(m.c.Styles, m.title(name, p), lines, w, h, focused)
}

func (m *Model) logLines(w int) []string {
	st := m.c.Styles
	if !m.haveData {
		return []string{st.Dim.Render(" " + m.waiting())}
	}
	l := m.snap.Log
	kv := func(k, v string) string {
		return st.Label.Render(fmt.Sprintf(" %-10s", k)) + v
	}
	health := st.OK.Render("healthy")
	if !l.Healthy {
		health = st.Crit.Render("UNHEALTHY")
	}
	// Most important first: a short pane cuts from the bottom.
	return []string{
		kv("head", common.Count(l.Head)),
		kv("store", health),
		kv("size", common.Bytes(l.SizeBytes)),
		kv("entries/s", common.Rate(l.EntriesPerSecond)),
		" " + st.Spark.Render(sparkline.Render(m.logHistory, w-2)),
	}
}
