// Package dashboard is the dashboard's one screen: panes for connectors,
// the log, Satellite sessions and recent events, with focus, scrolling,
// filtering, a details view and help. It only presents: data arrives
// through SetSnapshot, SetUnreachable, AddEvent and SetStream, and the
// client-side history behind the sparklines is kept here.
package dashboard

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/tui/common"
	"github.com/electric-sql/electric-go/tui/components/pane"
	"github.com/electric-sql/electric-go/tui/components/sparkline"
	"github.com/electric-sql/electric-go/tui/components/table"
)

// Focusable panes, in tab order.
const (
	paneConnectors = iota
	paneLog
	paneSessions
	paneEvents
	paneCount
)

const (
	historyLen = 120 // samples of tx/s kept per connector
	maxEvents  = 500
	// Smallest terminal the panes are laid out in.
	minWidth, minHeight = 60, 16
)

// Snapshot is one poll of the snapshot endpoints.
type Snapshot struct {
	Connectors []status.Connector
	Log        status.Log
	Sessions   []status.Session
}

// Model is the dashboard page.
type Model struct {
	c   *common.Common
	url string
	// poll is how often the engine is asked, shown while it is unreachable.
	poll time.Duration

	haveData    bool
	snap        Snapshot
	connHistory map[string][]float64
	logHistory  []float64
	downErr     string
	downSince   time.Time
	streamLive  bool
	events      []status.Event // newest first
	lastEventID uint64

	focus       int
	tables      [paneCount]*table.Model // nil for the log pane
	filtering   bool
	input       []rune // the filter being typed
	showHelp    bool
	showDetails bool
	help        help.Model
}

// New makes the page for the engine at url, polled every poll.
func New(c *common.Common, url string, poll time.Duration) *Model {
	st := c.Styles
	h := help.New()
	h.Styles = help.Styles{
		ShortKey: st.Key, ShortDesc: st.Footer, ShortSeparator: st.Footer,
		FullKey: st.Key, FullDesc: st.Footer, FullSeparator: st.Footer, Ellipsis: st.Footer,
	}
	m := &Model{c: c, url: url, poll: poll, connHistory: map[string][]float64{}, help: h}
	m.tables[paneConnectors] = table.New([]table.Column{
		{Title: "NAME", Width: 10, Flex: 10},
		{Title: "STATE", Width: 9},
		{Title: "SLOT", Width: 12, Flex: 8, Priority: 6},
		{Title: "CONFIRMED", Width: 11, Align: table.Right, Priority: 4},
		{Title: "FLUSHED", Width: 11, Align: table.Right, Priority: 7},
		{Title: "WAL", Width: 9, Align: table.Right, Priority: 8},
		{Title: "LAG", Width: 9, Align: table.Right, Priority: 1},
		{Title: "DELAY", Width: 6, Align: table.Right, Priority: 2},
		{Title: "LAST TX", Width: 9, Align: table.Right, Priority: 5},
		{Title: "TX/S", Width: 6, Align: table.Right, Priority: 1},
		{Title: "ACTIVITY", Width: 10, Flex: 20, Priority: 3},
		{Title: "SUB", Width: 9, Priority: 5},
		{Title: "APPLIED", Width: 8, Align: table.Right, Priority: 2},
		{Title: "SUB LAG", Width: 7, Align: table.Right, Priority: 2},
	}, "no connectors")
	m.tables[paneSessions] = table.New([]table.Column{
		{Title: "CLIENT", Width: 12, Flex: 24},
		{Title: "USER", Width: 8, Flex: 6, Priority: 1},
		{Title: "ADDRESS", Width: 15, Flex: 6, Priority: 4},
		{Title: "SINCE", Width: 6, Align: table.Right, Priority: 2},
		{Title: "STATE", Width: 11, Priority: 5},
		{Title: "IN LSN", Width: 10, Align: table.Right, Priority: 6},
		{Title: "OUT LSN", Width: 10, Align: table.Right, Priority: 6},
		{Title: "TX IN", Width: 6, Align: table.Right, Priority: 3},
		{Title: "TX OUT", Width: 6, Align: table.Right, Priority: 3},
		{Title: "LAG", Width: 6, Align: table.Right, Priority: 1},
	}, "no Satellite sessions")
	m.tables[paneEvents] = table.New([]table.Column{
		{Title: "TIME", Width: 8},
		{Title: "KIND", Width: 9, Priority: 1},
		{Title: "SOURCE", Width: 14, Priority: 2},
		{Title: "MESSAGE", Width: 20, Flex: 400},
	}, "no events yet")
	m.refreshTables()
	return m
}

// Capturing reports whether keys go to a text input, so the caller must
// not treat them as commands (q types a q while filtering).
func (m *Model) Capturing() bool { return m.filtering }

// SetSnapshot shows a fresh poll and records one history sample.
func (m *Model) SetSnapshot(s Snapshot) {
	m.haveData = true
	m.snap = s
	m.downErr = ""
	seen := map[string]bool{}
	for _, c := range s.Connectors {
		seen[c.Name] = true
		m.connHistory[c.Name] = appendSample(m.connHistory[c.Name], c.TxPerSecond)
	}
	for name := range m.connHistory {
		if !seen[name] {
			delete(m.connHistory, name)
		}
	}
	m.logHistory = appendSample(m.logHistory, s.Log.EntriesPerSecond)
	m.refreshTables()
}

func appendSample(h []float64, v float64) []float64 {
	h = append(h, v)
	if len(h) > historyLen {
		h = h[len(h)-historyLen:]
	}
	return h
}

// SetUnreachable records that the engine could not be polled.
func (m *Model) SetUnreachable(err string) {
	if m.downErr == "" {
		m.downSince = m.c.Now()
	}
	m.downErr = err
	m.refreshTables()
}

// SetStream records whether the event stream is connected.
func (m *Model) SetStream(live bool) { m.streamLive = live }

// AddEvent adds an event from the stream; events already seen (after a
// reconnect) are ignored.
func (m *Model) AddEvent(ev status.Event) {
	if ev.ID != 0 && ev.ID <= m.lastEventID {
		return
	}
	m.lastEventID = max(m.lastEventID, ev.ID)
	m.events = append([]status.Event{ev}, m.events...)
	if len(m.events) > maxEvents {
		m.events = m.events[:maxEvents]
	}
	m.refreshEvents()
}

// Update handles keys and window sizes.
func (m *Model) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.c.Width, m.c.Height = msg.Width, msg.Height
		m.help.Width = msg.Width
		return nil
	case tea.KeyMsg:
		return m.key(msg)
	}
	return nil
}

func (m *Model) key(msg tea.KeyMsg) tea.Cmd {
	k := m.c.KeyMap
	t := m.tables[m.focus]
	if m.filtering {
		switch msg.Type {
		case tea.KeyEnter:
			m.filtering = false
			return nil
		case tea.KeyEsc:
			m.filtering = false
			m.input = nil
		case tea.KeyBackspace:
			if len(m.input) > 0 {
				m.input = m.input[:len(m.input)-1]
			}
		case tea.KeyCtrlU:
			m.input = nil
		case tea.KeyRunes, tea.KeySpace:
			if len(m.input) < 64 {
				m.input = append(m.input, msg.Runes...)
			}
		}
		t.SetFilter(string(m.input))
		return nil
	}
	if m.showHelp || m.showDetails {
		if key.Matches(msg, k.Back, k.Help, k.Details) {
			m.showHelp, m.showDetails = false, false
		}
		return nil
	}
	page := max(1, m.c.Height/3)
	switch {
	case key.Matches(msg, k.NextPane):
		m.focus = (m.focus + 1) % paneCount
	case key.Matches(msg, k.PrevPane):
		m.focus = (m.focus + paneCount - 1) % paneCount
	case key.Matches(msg, k.Help):
		m.showHelp = true
	case key.Matches(msg, k.Details):
		m.showDetails = m.focus == paneLog || (t != nil && t.Len() > 0)
	case key.Matches(msg, k.Filter):
		if t != nil {
			m.filtering = true
			m.input = []rune(t.Filter())
		}
	case key.Matches(msg, k.Back):
		if t != nil && t.Filter() != "" {
			t.SetFilter("")
		}
	case t == nil:
	case key.Matches(msg, k.Up):
		t.Move(-1)
	case key.Matches(msg, k.Down):
		t.Move(1)
	case key.Matches(msg, k.PageUp):
		t.Move(-page)
	case key.Matches(msg, k.PageDown):
		t.Move(page)
	case key.Matches(msg, k.Top):
		t.Top()
	case key.Matches(msg, k.Bottom):
		t.Bottom()
	}
	return nil
}

// level is how alarming a value is.
type level int

const (
	levelOK level = iota
	levelWarn
	levelCrit
)

func levelOf(v, warn, crit float64) level {
	switch {
	case v >= crit:
		return levelCrit
	case v >= warn:
		return levelWarn
	}
	return levelOK
}

// Lag thresholds: what an operator should notice (warn) and act on (crit).
const (
	lagBytesWarn, lagBytesCrit     = 1 << 20, 64 << 20
	lagSecondsWarn, lagSecondsCrit = 1, 10
	lagEntriesWarn, lagEntriesCrit = 100, 10000
)

// levelCell colours a value by level; without colour it appends "!" marks
// so the threshold still shows.
func (m *Model) levelCell(text string, l level) table.Cell {
	st := m.c.Styles
	if st.NoColor {
		text += [...]string{"", "!", "!!"}[l]
		return table.Cell{Text: text}
	}
	s := [...]lipgloss.Style{st.OK, st.Warn, st.Crit}[l]
	return table.Cell{Text: text, Style: &s}
}

func (m *Model) stateCell(state string) table.Cell {
	l := levelWarn
	switch state {
	case string(status.StateReady), "streaming", "replicating":
		l = levelOK
	case string(status.StateError), string(status.StateStopped):
		l = levelCrit
	}
	if m.c.Styles.NoColor {
		return table.Cell{Text: state}
	}
	return m.levelCell(state, l)
}

func (m *Model) refreshTables() {
	st := m.c.Styles
	var rows []table.Row
	for _, c := range m.snap.Connectors {
		hist := m.connHistory[c.Name]
		lastTx := "never"
		if c.LastTxTime != nil {
			lastTx = m.c.Ago(*c.LastTxTime)
		}
		spark := st.Spark
		rows = append(rows, table.Row{
			Key:    c.Name,
			Search: strings.Join([]string{c.Name, string(c.State), c.Slot, c.Subscriber.State, c.Error}, " "),
			Cells: []table.Cell{
				{Text: c.Name},
				m.stateCell(string(c.State)),
				{Text: c.Slot},
				{Text: c.ConfirmedLSN.String()},
				{Text: c.FlushedLSN.String()},
				{Text: common.Bytes(c.WALRetainedBytes)},
				m.levelCell(common.Bytes(c.SourceLagBytes), levelOf(float64(c.SourceLagBytes), lagBytesWarn, lagBytesCrit)),
				m.levelCell(common.Seconds(c.SourceLagSeconds), levelOf(c.SourceLagSeconds, lagSecondsWarn, lagSecondsCrit)),
				{Text: strings.TrimSuffix(lastTx, " ago")},
				{Text: common.Rate(c.TxPerSecond)},
				{Style: &spark, Fill: func(w int) string { return sparkline.Render(hist, w) }},
				m.stateCell(c.Subscriber.State),
				{Text: common.Count(c.Subscriber.AppliedOffset)},
				m.levelCell(common.Count(c.Subscriber.LagEntries), levelOf(float64(c.Subscriber.LagEntries), lagEntriesWarn, lagEntriesCrit)),
			},
		})
	}
	m.tables[paneConnectors].SetRows(rows)
	if !m.haveData {
		m.tables[paneConnectors].Empty = m.waiting()
	} else {
		m.tables[paneConnectors].Empty = "no connectors"
	}

	rows = nil
	for _, s := range m.snap.Sessions {
		rows = append(rows, table.Row{
			Key:    s.ClientID,
			Search: strings.Join([]string{s.ClientID, s.User, s.RemoteAddr, s.State}, " "),
			Cells: []table.Cell{
				{Text: s.ClientID},
				{Text: s.User},
				{Text: s.RemoteAddr},
				{Text: common.Duration(m.c.Now().Sub(s.ConnectedSince))},
				m.stateCell(s.State),
				{Text: s.InboundLSN},
				{Text: s.OutboundLSN},
				{Text: common.Count(s.TxIn)},
				{Text: common.Count(s.TxOut)},
				m.levelCell(common.Count(s.LagEntries), levelOf(float64(s.LagEntries), lagEntriesWarn, lagEntriesCrit)),
			},
		})
	}
	m.tables[paneSessions].SetRows(rows)
	if !m.haveData {
		m.tables[paneSessions].Empty = m.waiting()
	} else {
		m.tables[paneSessions].Empty = "no Satellite sessions"
	}
	m.refreshEvents()
}

func (m *Model) waiting() string {
	if m.downErr != "" {
		return "engine unreachable"
	}
	return "waiting for the engine…"
}

func (m *Model) refreshEvents() {
	rows := make([]table.Row, 0, len(m.events))
	for _, e := range m.events {
		src := e.Connector
		if src == "" {
			src = e.Session
		}
		msg := table.Cell{Text: e.Message}
		if e.Kind == status.KindError && !m.c.Styles.NoColor {
			crit := m.c.Styles.Crit
			msg.Style = &crit
		}
		rows = append(rows, table.Row{
			Key:    fmt.Sprint(e.ID),
			Search: strings.Join([]string{e.Kind, e.Connector, e.Session, e.Message}, " "),
			Cells:  []table.Cell{{Text: m.c.Clock(e.Time)}, {Text: e.Kind}, {Text: src}, msg},
		})
	}
	// Newest first: a cursor at the top follows new events instead of
	// staying on the row it was on.
	t := m.tables[paneEvents]
	follow := t.Cursor() == 0
	t.SetRows(rows)
	if follow {
		t.Top()
	}
}

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
	ev := pane.Render(m.c.Styles, evTitle, m.tables[paneEvents].View(m.c.Styles, w-2, evH-2, m.focus == paneEvents), w, evH, m.focus == paneEvents)
	mid := lipgloss.JoinHorizontal(lipgloss.Top, logPane, sess)
	return strings.Join([]string{conn, mid, ev}, "\n")
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

// details describes the selected item of the focused pane, one field a line.
func (m *Model) details(w int) (string, []string) {
	type kv struct{ k, v string }
	var title string
	var fields []kv
	switch m.focus {
	case paneLog:
		l := m.snap.Log
		title = "Log"
		fields = []kv{{"head offset", common.Count(l.Head)}, {"size on disk", common.Bytes(l.SizeBytes)},
			{"entries/s", common.Rate(l.EntriesPerSecond)}, {"healthy", fmt.Sprint(l.Healthy)}}
	case paneConnectors:
		r, _ := m.tables[paneConnectors].Selected()
		for _, c := range m.snap.Connectors {
			if c.Name != r.Key {
				continue
			}
			title = "Connector " + c.Name
			last := "never"
			if c.LastTxTime != nil {
				last = m.c.Clock(*c.LastTxTime) + " (" + m.c.Ago(*c.LastTxTime) + ")"
			}
			fields = []kv{{"state", string(c.State)}, {"error", c.Error}, {"slot", c.Slot},
				{"confirmed lsn", c.ConfirmedLSN.String()}, {"flushed lsn", c.FlushedLSN.String()},
				{"wal retained", common.Bytes(c.WALRetainedBytes)}, {"source lag", common.Bytes(c.SourceLagBytes)},
				{"source delay", common.Seconds(c.SourceLagSeconds)}, {"last transaction", last},
				{"transactions", common.Count(c.Transactions)}, {"tx/s", common.Rate(c.TxPerSecond)},
				{"subscriber", c.Subscriber.State}, {"applied offset", common.Count(c.Subscriber.AppliedOffset)},
				{"applied lsn", c.Subscriber.AppliedLSN.String()}, {"subscriber lag", common.Count(c.Subscriber.LagEntries) + " entries"}}
		}
	case paneSessions:
		r, _ := m.tables[paneSessions].Selected()
		for _, s := range m.snap.Sessions {
			if s.ClientID != r.Key {
				continue
			}
			title = "Session " + s.ClientID
			fields = []kv{{"user", s.User}, {"remote address", s.RemoteAddr},
				{"connected since", m.c.Clock(s.ConnectedSince) + " (" + m.c.Ago(s.ConnectedSince) + ")"},
				{"state", s.State}, {"inbound lsn", s.InboundLSN}, {"outbound lsn", s.OutboundLSN},
				{"outbound offset", common.Count(s.OutboundOffset)}, {"transactions in", common.Count(s.TxIn)},
				{"transactions out", common.Count(s.TxOut)}, {"lag", common.Count(s.LagEntries) + " entries, " + common.Seconds(s.LagSeconds)}}
		}
	case paneEvents:
		r, _ := m.tables[paneEvents].Selected()
		for _, e := range m.events {
			if fmt.Sprint(e.ID) != r.Key {
				continue
			}
			title = fmt.Sprintf("Event %d", e.ID)
			fields = []kv{{"time", e.Time.In(m.c.Location).Format(time.RFC3339)}, {"kind", e.Kind},
				{"connector", e.Connector}, {"session", e.Session}, {"message", e.Message}}
		}
	}
	if title == "" {
		return "Details", []string{" the selected item is gone"}
	}
	lines := []string{""}
	for _, f := range fields {
		if f.v == "" {
			continue
		}
		label := m.c.Styles.Label.Render(fmt.Sprintf(" %-18s", f.k))
		// Long values (errors, messages) wrap under their label.
		for i, part := range strings.Split(ansi.Wordwrap(f.v, max(w-20, 10), " ,/"), "\n") {
			if i > 0 {
				label = strings.Repeat(" ", 19)
			}
			lines = append(lines, label+part)
		}
	}
	return title, lines
}

// Snapshot is the last poll shown.
func (m *Model) Snapshot() Snapshot { return m.snap }
