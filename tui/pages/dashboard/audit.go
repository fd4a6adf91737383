// The conflicts and rejections pane: what the engine's audit log recorded
// last (GET /api/conflicts and /api/rejected), newest first.

package dashboard

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/tui/components/table"
)

func newAuditTable() *table.Model {
	return table.New([]table.Column{
		{Title: "TIME", Width: 8},
		{Title: "KIND", Width: 13, Priority: 2},
		{Title: "TABLE", Width: 12, Flex: 6, Priority: 1},
		{Title: "WHAT", Width: 20, Flex: 400},
	}, "no conflicts or rejections")
}

// auditWhat is the one-line summary of an event: winner over loser for a
// conflict, who and why for a rejection.
func auditWhat(e status.AuditEvent) string {
	if e.Kind == status.AuditConflict {
		return fmt.Sprintf("%s: %s beat %s", e.Column, auditSide(e.Winner), auditSide(e.Loser))
	}
	who := e.Origin
	if e.Connector != "" {
		who += " → " + e.Connector
	}
	s := strings.TrimSpace(who + ": " + e.Error)
	if e.State != "" && e.State != "withheld" {
		s += " [" + e.State + "]"
	}
	return s
}

func auditSide(w *status.AuditWrite) string {
	if w == nil {
		return "?"
	}
	if w.Value == nil {
		return w.Origin + "=NULL"
	}
	v := *w.Value
	if r := []rune(v); len(r) > 24 {
		v = string(r[:23]) + "…"
	}
	return w.Origin + "=" + strconv.Quote(v)
}

func (m *Model) refreshAudit() {
	t := m.tables[paneAudit]
	rows := make([]table.Row, 0, len(m.snap.Audit))
	for _, e := range m.snap.Audit {
		what := auditWhat(e)
		cell := table.Cell{Text: what}
		if e.Kind != status.AuditConflict && !m.c.Styles.NoColor {
			warn := m.c.Styles.Warn
			cell.Style = &warn
		}
		rows = append(rows, table.Row{
			Key:    auditKey(e),
			Search: strings.Join([]string{e.Kind, e.Table, e.Key, e.Column, e.Origin, e.Connector, what}, " "),
			Cells:  []table.Cell{{Text: m.c.Clock(e.Time)}, {Text: e.Kind}, {Text: e.Table}, cell},
		})
	}
	follow := t.Cursor() == 0
	t.SetRows(rows)
	if follow {
		t.Top()
	}
	switch {
	case m.snap.AuditErr != "":
		t.Empty = "audit log unavailable: " + m.snap.AuditErr
	default:
		t.Empty = m.emptyText("no conflicts or rejections")
	}
}

// auditKey tells conflicts from rejections: they are numbered in one
// sequence by the engine, but the key must stay unique if that changes.
func auditKey(e status.AuditEvent) string { return e.Kind + ":" + strconv.FormatUint(e.ID, 10) }

// auditDetails are the fields of the selected event.
func (m *Model) auditDetails() (string, [][2]string) {
	r, _ := m.tables[paneAudit].Selected()
	for _, e := range m.snap.Audit {
		if auditKey(e) != r.Key {
			continue
		}
		f := [][2]string{{"time", e.Time.In(m.c.Location).Format(time.RFC3339)}, {"kind", e.Kind},
			{"table", e.Table}, {"key", e.Key}, {"column", e.Column}}
		if e.Winner != nil {
			f = append(f, [2]string{"winner", auditSide(e.Winner) + " eff " + strconv.FormatUint(e.Winner.Eff, 10)})
		}
		if e.Loser != nil {
			f = append(f, [2]string{"loser", auditSide(e.Loser) + " eff " + strconv.FormatUint(e.Loser.Eff, 10)})
		}
		if e.Offset > 0 {
			f = append(f, [2]string{"log offset", strconv.FormatUint(e.Offset, 10)})
		}
		if e.Value != nil {
			f = append(f, [2]string{"value", *e.Value})
		}
		f = append(f, [2]string{"origin", e.Origin}, [2]string{"connector", e.Connector},
			[2]string{"state", e.State}, [2]string{"error", e.Error})
		return fmt.Sprintf("%s %d", strings.ReplaceAll(e.Kind, "_", " "), e.ID), f
	}
	return "", nil
}

// MergeAudit lists conflicts and rejections together, newest first.
func MergeAudit(conflicts, rejected []status.AuditEvent) []status.AuditEvent {
	out := make([]status.AuditEvent, 0, len(conflicts)+len(rejected))
	i, j := 0, 0
	for i < len(conflicts) || j < len(rejected) {
		if j >= len(rejected) || i < len(conflicts) && !conflicts[i].Time.Before(rejected[j].Time) {
			out = append(out, conflicts[i])
			i++
		} else {
			out = append(out, rejected[j])
			j++
		}
	}
	return out
}
