// The details view: every field of the selected item of the focused pane.

package dashboard

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/electric-sql/electric-go/tui/common"
)

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
			if sn := c.Snapshot; sn != nil {
				what := "done"
				if sn.Active {
					what = "reading " + sn.Table
				}
				fields = append(fields, kv{"existing rows", fmt.Sprintf("%s: %s rows, %d/%d tables, %s", what,
					common.Count(sn.Rows), sn.Tables, sn.TablesTotal, common.Seconds(sn.ElapsedSeconds))})
			}
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
	case paneAudit:
		t, f := m.auditDetails()
		title = t
		for _, x := range f {
			fields = append(fields, kv{x[0], x[1]})
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
