// Input: window sizes and keys. While filtering, keys go to the filter text;
// while help or details are shown, only the keys that close them count.

package dashboard

import (
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

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
