// Package keymap owns the dashboard's key bindings and their help texts.
package keymap

import "github.com/charmbracelet/bubbles/key"

// KeyMap is every binding of the dashboard.
type KeyMap struct {
	NextPane, PrevPane             key.Binding
	Up, Down, PageUp, PageDown     key.Binding
	Top, Bottom                    key.Binding
	Filter, Details, Back, Refresh key.Binding
	Help, Quit                     key.Binding
}

// Default is the dashboard's key map.
func Default() *KeyMap {
	return &KeyMap{
		NextPane: key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next pane")),
		PrevPane: key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous pane")),
		Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		PageUp:   key.NewBinding(key.WithKeys("pgup", "ctrl+u"), key.WithHelp("pgup", "page up")),
		PageDown: key.NewBinding(key.WithKeys("pgdown", "ctrl+d"), key.WithHelp("pgdn", "page down")),
		Top:      key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("g/home", "first")),
		Bottom:   key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("G/end", "last")),
		Filter:   key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
		Details:  key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "details")),
		Back:     key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),
		Refresh:  key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "refresh")),
		Help:     key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Quit:     key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
	}
}

// ShortHelp is the footer's help line.
func (k *KeyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.NextPane, k.Down, k.Filter, k.Details, k.Help, k.Quit}
}

// FullHelp is the help screen, in columns.
func (k *KeyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.NextPane, k.PrevPane, k.Up, k.Down},
		{k.PageUp, k.PageDown, k.Top, k.Bottom},
		{k.Filter, k.Details, k.Back, k.Refresh},
		{k.Help, k.Quit},
	}
}
