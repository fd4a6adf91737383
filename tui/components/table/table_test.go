package table

import (
	"io"
	"strings"
	"testing"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/electric-sql/electric-go/tui/styles"
)

func plain() *styles.Styles {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	return styles.New(r, true)
}

func rows(names ...string) []Row {
	var out []Row
	for i, n := range names {
		out = append(out, Row{Key: n, Search: n, Cells: []Cell{{Text: n}, {Text: strings.Repeat("9", i+1)}, {Text: "extra"}}})
	}
	return out
}

func TestLayoutDropsByPriority(t *testing.T) {
	m := New([]Column{
		{Title: "NAME", Width: 6, Flex: 4},
		{Title: "N", Width: 4, Align: Right, Priority: 1},
		{Title: "EXTRA", Width: 8, Priority: 2},
	}, "none")
	m.SetRows(rows("a", "b"))
	for _, tc := range []struct {
		width int
		want  []string
	}{
		// gutter 2 + NAME 6 + 1 + N 4 + 1 + EXTRA 8 + margin 1 = 23
		{23, []string{"  NAME      N EXTRA    ", "  a         9 extra    ", "  b        99 extra    "}},
		{16, []string{"  NAME        N ", "  a           9 ", "  b          99 "}},
		// Extra room goes to the flex column, up to its Flex.
		{30, []string{"  NAME          N EXTRA       ", "  a             9 extra       ", "  b            99 extra       "}},
		// Too narrow for anything but priority 0: cut, never wrapped.
		{6, []string{"  NAME", "  a   ", "  b   "}},
		{5, []string{"  NA…", "  a  ", "  b  "}},
	} {
		got := m.View(plain(), tc.width, 10, false)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("width %d:\n got %q\nwant %q", tc.width, got, tc.want)
		}
	}
}

func TestCursorFilterAndScroll(t *testing.T) {
	st := plain()
	m := New([]Column{{Title: "NAME", Width: 8}}, "none")
	if got := m.View(st, 20, 3, true); len(got) != 2 || !strings.Contains(got[1], "none") {
		t.Fatalf("empty table: %q", got)
	}
	m.SetRows(rows("alpha", "beta", "gamma", "delta", "eps"))
	m.Move(3)
	if r, _ := m.Selected(); r.Key != "delta" {
		t.Fatalf("selected %q", r.Key)
	}
	// Height 3: header + 2 rows, scrolled so the cursor shows.
	got := m.View(st, 20, 3, true)
	if len(got) != 3 || !strings.HasPrefix(got[2], "> delta") || !strings.HasPrefix(got[1], "  gamma") {
		t.Fatalf("scrolled view %q", got)
	}
	// The cursor stays on its row when rows are replaced in another order.
	m.SetRows(rows("delta", "alpha", "beta"))
	if r, _ := m.Selected(); r.Key != "delta" || m.Cursor() != 0 {
		t.Fatalf("after refresh selected %q at %d", r.Key, m.Cursor())
	}
	m.SetRows(rows("alpha", "beta")) // the selected row went away
	if r, ok := m.Selected(); !ok || r.Key != "alpha" {
		t.Fatalf("after removal selected %q %v", r.Key, ok)
	}
	m.Bottom()
	m.SetFilter("ALP")
	if m.Len() != 1 || m.Total() != 2 {
		t.Fatalf("filter: %d of %d", m.Len(), m.Total())
	}
	if got := m.View(st, 20, 5, true); !strings.HasPrefix(got[1], "> alpha") {
		t.Fatalf("filtered view %q", got)
	}
	m.SetFilter("zzz")
	if got := m.View(st, 30, 5, true); !strings.Contains(got[1], "no rows match “zzz”") {
		t.Fatalf("no match view %q", got)
	}
	if _, ok := m.Selected(); ok {
		t.Fatal("selection with no visible rows")
	}
	m.Move(5)
	m.Top()
	m.SetFilter("")
	if m.Len() != 2 {
		t.Fatalf("cleared filter: %d rows", m.Len())
	}
	// Unfocused: no cursor mark.
	if got := m.View(st, 20, 5, false); strings.Contains(strings.Join(got, ""), ">") {
		t.Fatalf("unfocused view has a cursor: %q", got)
	}
}
