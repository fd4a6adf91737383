// The rows of the table panes, built from the last snapshot and the events,
// with lag and state cells coloured by how alarming they are.

package dashboard

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/lipgloss"

	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/tui/common"
	"github.com/electric-sql/electric-go/tui/components/sparkline"
	"github.com/electric-sql/electric-go/tui/components/table"
)

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
	m.tables[paneConnectors].Empty = m.emptyText("no connectors")

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
	m.tables[paneSessions].Empty = m.emptyText("no Satellite sessions")
	m.refreshEvents()
	m.refreshAudit()
}

// emptyText is what an empty table pane says: none once the engine has
// answered, before that why there is no data yet.
func (m *Model) emptyText(none string) string {
	if !m.haveData {
		return m.waiting()
	}
	return none
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
