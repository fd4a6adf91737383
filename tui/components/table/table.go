// Package table is the dashboard's scrollable, filterable table: aligned
// columns that drop by priority when the terminal is narrow, a cursor that
// stays on the same row (by key) across refreshes, and a text marker on the
// selected row so selection shows without colour.
package table

import (
	"sort"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/electric-sql/electric-go/tui/components/pane"
	"github.com/electric-sql/electric-go/tui/styles"
)

// Align is a column's alignment.
type Align int

// Alignments.
const (
	Left Align = iota
	Right
)

// Column describes one column.
type Column struct {
	Title string
	Width int   // minimum width
	Flex  int   // extra width it may take when there is room
	Align Align // numbers are right-aligned
	// Priority: columns with the highest value are dropped first when the
	// table is too narrow; 0 is never dropped.
	Priority int
}

// Cell is one value. Fill, when set, draws the cell for the width the
// column got (sparklines); otherwise Text is cut or padded.
type Cell struct {
	Text  string
	Style *lipgloss.Style
	Fill  func(width int) string
}

// Row is one line of the table; Key identifies it across refreshes and
// Search is what the filter matches against.
type Row struct {
	Key    string
	Cells  []Cell
	Search string
}

const gutter = 2 // "> " before the selected row

// Model is a table's state.
type Model struct {
	Columns []Column
	Empty   string // shown when there are no rows at all

	rows    []Row
	visible []int // indexes into rows that pass the filter
	filter  string
	cursor  int // index into visible
	offset  int
}

// New makes a table.
func New(cols []Column, empty string) *Model { return &Model{Columns: cols, Empty: empty} }

// SetRows replaces the rows, keeping the cursor on the row with the same key.
func (m *Model) SetRows(rows []Row) {
	key, ok := m.selectedKey()
	m.rows = rows
	m.refilter()
	if ok {
		for i, ri := range m.visible {
			if m.rows[ri].Key == key {
				m.cursor = i
				return
			}
		}
	}
	m.clamp()
}

// SetFilter keeps only rows whose Search contains s (case-insensitive).
func (m *Model) SetFilter(s string) {
	key, ok := m.selectedKey()
	m.filter = s
	m.refilter()
	m.cursor = 0
	if ok {
		for i, ri := range m.visible {
			if m.rows[ri].Key == key {
				m.cursor = i
			}
		}
	}
	m.clamp()
}

// Filter is the current filter.
func (m *Model) Filter() string { return m.filter }

// Len is the number of rows passing the filter; Total the number of rows.
func (m *Model) Len() int   { return len(m.visible) }
func (m *Model) Total() int { return len(m.rows) }

// Cursor is the index of the selected row among the filtered rows.
func (m *Model) Cursor() int { return m.cursor }

// Selected is the row under the cursor.
func (m *Model) Selected() (Row, bool) {
	if m.cursor < 0 || m.cursor >= len(m.visible) {
		return Row{}, false
	}
	return m.rows[m.visible[m.cursor]], true
}

// Move moves the cursor by n rows (negative: up), staying in range.
func (m *Model) Move(n int) { m.cursor += n; m.clamp() }

// Top and Bottom jump to the first and last row.
func (m *Model) Top()    { m.cursor = 0; m.clamp() }
func (m *Model) Bottom() { m.cursor = len(m.visible) - 1; m.clamp() }

func (m *Model) selectedKey() (string, bool) {
	r, ok := m.Selected()
	return r.Key, ok
}

func (m *Model) refilter() {
	m.visible = m.visible[:0]
	f := strings.ToLower(m.filter)
	for i, r := range m.rows {
		if f == "" || strings.Contains(strings.ToLower(r.Search), f) {
			m.visible = append(m.visible, i)
		}
	}
}

func (m *Model) clamp() {
	m.cursor = min(m.cursor, len(m.visible)-1)
	m.cursor = max(m.cursor, 0)
}

// layout picks the columns that fit width and their widths, in column order.
func (m *Model) layout(width int) (idx []int, widths []int) {
	avail := width - gutter - 1 // one cell of margin before the border
	order := make([]int, len(m.Columns))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return m.Columns[order[a]].Priority < m.Columns[order[b]].Priority })
	used := 0
	keep := map[int]bool{}
	for _, i := range order {
		need := m.Columns[i].Width
		if len(keep) > 0 {
			need++ // separator
		}
		if used+need > avail && m.Columns[i].Priority > 0 {
			continue
		}
		keep[i] = true
		used += need
	}
	for i := range m.Columns {
		if keep[i] {
			idx = append(idx, i)
			widths = append(widths, m.Columns[i].Width)
		}
	}
	extra := avail - used
	for k, i := range idx {
		if extra <= 0 {
			break
		}
		add := min(m.Columns[i].Flex, extra)
		widths[k] += add
		extra -= add
	}
	return idx, widths
}

// View draws the header and as many rows as fit in height lines (header
// included), scrolled so the cursor is visible. focused marks the cursor row.
func (m *Model) View(st *styles.Styles, width, height int, focused bool) []string {
	if height <= 0 || width <= gutter {
		return nil
	}
	idx, widths := m.layout(width)
	var head strings.Builder
	head.WriteString(strings.Repeat(" ", gutter))
	for k, i := range idx {
		if k > 0 {
			head.WriteByte(' ')
		}
		head.WriteString(align(m.Columns[i].Title, widths[k], m.Columns[i].Align))
	}
	// Trailing padding is trimmed before fitting so only real text gets an ellipsis.
	lines := []string{st.ColumnHeader.Render(pane.Fit(strings.TrimRight(head.String(), " "), width))}
	rowsH := height - 1
	if len(m.visible) == 0 {
		msg := m.Empty
		if len(m.rows) > 0 {
			msg = "no rows match “" + m.filter + "”"
		}
		if rowsH > 0 {
			lines = append(lines, st.Dim.Render(pane.Fit(strings.Repeat(" ", gutter)+msg, width)))
		}
		return lines
	}
	if m.cursor < m.offset {
		m.offset = m.cursor
	}
	if m.cursor >= m.offset+rowsH {
		m.offset = m.cursor - rowsH + 1
	}
	m.offset = max(0, min(m.offset, len(m.visible)-rowsH))
	for n := m.offset; n < len(m.visible) && n < m.offset+rowsH; n++ {
		r := m.rows[m.visible[n]]
		sel := focused && n == m.cursor
		var b strings.Builder
		if sel {
			b.WriteString("> ")
		} else {
			b.WriteString(strings.Repeat(" ", gutter))
		}
		for k, i := range idx {
			if k > 0 {
				b.WriteByte(' ')
			}
			var c Cell
			if i < len(r.Cells) {
				c = r.Cells[i]
			}
			text := c.Text
			if c.Fill != nil {
				text = c.Fill(widths[k])
			}
			text = align(text, widths[k], m.Columns[i].Align)
			if c.Style != nil && !sel {
				text = c.Style.Render(text)
			}
			b.WriteString(text)
		}
		line := pane.Fit(strings.TrimRight(b.String(), " "), width)
		if sel {
			line = st.Selected.Render(ansi.Strip(line))
		}
		lines = append(lines, line)
	}
	return lines
}

func align(s string, w int, a Align) string {
	sw := ansi.StringWidth(s)
	if sw > w {
		return ansi.Truncate(s, w, "…")
	}
	if a == Right {
		return strings.Repeat(" ", w-sw) + s
	}
	return s + strings.Repeat(" ", w-sw)
}
