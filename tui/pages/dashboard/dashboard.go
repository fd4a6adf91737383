// Package dashboard is the dashboard's one screen: panes for connectors,
// the log, Satellite sessions, recent events and conflicts and rejections, with focus, scrolling,
// filtering, a details view and help. It only presents: data arrives
// through SetSnapshot, SetUnreachable, AddEvent and SetStream, and the
// client-side history behind the sparklines is kept here.
package dashboard

import (
	"time"

	"github.com/charmbracelet/bubbles/help"

	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/tui/common"
	"github.com/electric-sql/electric-go/tui/components/table"
)

// Focusable panes, in tab order.
const (
	paneConnectors = iota
	paneLog
	paneSessions
	paneEvents
	paneAudit
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
	// Audit is the newest conflicts and rejections; AuditErr says why
	// they could not be read (the rest of the snapshot is still shown).
	Audit    []status.AuditEvent
	AuditErr string
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
	m.tables[paneAudit] = newAuditTable()
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

// Snapshot is the last poll shown.
func (m *Model) Snapshot() Snapshot { return m.snap }
