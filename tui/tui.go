// Package tui is `electric dashboard`: a bubbletea program that renders an
// engine's status API live. This package owns the program and the data
// flow (polling the snapshot endpoints, following the event stream,
// retrying while the engine is unreachable); presentation is in pages/dashboard.
package tui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/term"
	"github.com/muesli/termenv"

	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/tui/common"
	"github.com/electric-sql/electric-go/tui/keymap"
	"github.com/electric-sql/electric-go/tui/pages/dashboard"
	"github.com/electric-sql/electric-go/tui/styles"
)

// DefaultPollInterval is how often the snapshot endpoints are polled, and
// how often an unreachable engine is retried.
const DefaultPollInterval = time.Second

// auditRows is how many conflicts and how many rejections each poll reads.
const auditRows = 50

// fetchTimeout bounds one poll of the snapshot endpoints.
const fetchTimeout = 3 * time.Second

// Options configures the dashboard.
type Options struct {
	URL          string       // the engine's status API, e.g. http://127.0.0.1:5050
	Token        string       // bearer token (STATUS_API_TOKEN); empty: none
	HTTPClient   *http.Client // nil: a client with no overall timeout
	PollInterval time.Duration
	// Now and Location are the clock and time zone shown; tests fix them.
	Now      func() time.Time
	Location *time.Location
	// Renderer draws the styles; nil: one for stdout, without colour when
	// NO_COLOR is set.
	Renderer *lipgloss.Renderer
}

// Model is the dashboard program's root model.
type Model struct {
	ctx    context.Context
	cancel context.CancelFunc
	client *status.Client
	opts   Options
	page   *dashboard.Model
	c      *common.Common

	fetching, refetch bool
	// msgs carries what the event-stream goroutine learns to Update.
	msgs chan tea.Msg
}

type (
	snapshotMsg struct {
		snap dashboard.Snapshot
		err  error
	}
	tickMsg   struct{}
	eventMsg  struct{ ev status.Event }
	streamMsg struct{ live bool }
)

// New makes the root model. The event-stream goroutine it starts in Init
// stops when ctx is done or the user quits.
func New(ctx context.Context, opts Options) (*Model, error) {
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.Renderer == nil {
		opts.Renderer = lipgloss.NewRenderer(os.Stdout)
		if os.Getenv("NO_COLOR") != "" {
			opts.Renderer.SetColorProfile(termenv.Ascii)
		}
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	client, err := status.NewClient(opts.URL, opts.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("starting dashboard: %w", err)
	}
	client = client.WithToken(opts.Token)
	c := &common.Common{
		Styles:   styles.New(opts.Renderer, opts.Renderer.ColorProfile() == termenv.Ascii),
		KeyMap:   keymap.Default(),
		Now:      opts.Now,
		Location: opts.Location,
	}
	ctx, cancel := context.WithCancel(ctx)
	return &Model{
		ctx: ctx, cancel: cancel, client: client, opts: opts, c: c,
		page: dashboard.New(c, client.URL(), opts.PollInterval),
		msgs: make(chan tea.Msg, 64),
	}, nil
}

// Run runs the dashboard for the engine at url, authenticating with token
// (may be empty), in the terminal until the user quits or ctx is done.
func Run(ctx context.Context, url, token string) error {
	m, err := New(ctx, Options{URL: url, Token: token})
	if err != nil {
		return err
	}
	defer m.cancel()
	if !term.IsTerminal(os.Stdout.Fd()) || !term.IsTerminal(os.Stdin.Fd()) {
		return fmt.Errorf("starting dashboard: it needs a terminal; scripts can read the JSON API instead: curl %s/api/connectors", m.client.URL())
	}
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx))
	if _, err := p.Run(); err != nil && !errors.Is(err, tea.ErrProgramKilled) {
		return fmt.Errorf("running dashboard: %w", err)
	}
	return nil
}

// Init starts polling and the event stream.
func (m *Model) Init() tea.Cmd {
	m.fetching = true
	return tea.Batch(m.fetch(), m.tick(), m.streamEvents(), m.next())
}

// Update handles data, ticks and keys.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if m.ctx.Err() != nil {
		// Quitting: what background work reports now (fetches and streams
		// cut short by our own cancel) is not news about the engine.
		switch msg.(type) {
		case snapshotMsg, eventMsg, streamMsg, tickMsg:
			return m, nil
		}
	}
	switch msg := msg.(type) {
	case tea.KeyMsg:
		k := m.c.KeyMap
		switch {
		case msg.Type == tea.KeyCtrlC, !m.page.Capturing() && key.Matches(msg, k.Quit):
			m.cancel()
			return m, tea.Quit
		case !m.page.Capturing() && key.Matches(msg, k.Refresh):
			return m, m.startFetch()
		}
		return m, m.page.Update(msg)
	case tickMsg:
		return m, tea.Batch(m.startFetch(), m.tick())
	case snapshotMsg:
		m.fetching = false
		if msg.err != nil {
			m.page.SetUnreachable(describe(msg.err))
		} else {
			m.page.SetSnapshot(msg.snap)
		}
		if m.refetch {
			m.refetch = false
			return m, m.startFetch()
		}
		return m, nil
	case eventMsg:
		m.page.AddEvent(msg.ev)
		return m, m.next()
	case streamMsg:
		m.page.SetStream(msg.live)
		return m, m.next()
	}
	return m, m.page.Update(msg)
}

// View draws the page.
func (m *Model) View() string { return m.page.View() }

func (m *Model) startFetch() tea.Cmd {
	if m.fetching {
		m.refetch = true
		return nil
	}
	m.fetching = true
	return m.fetch()
}

func (m *Model) tick() tea.Cmd {
	return tea.Tick(m.opts.PollInterval, func(time.Time) tea.Msg { return tickMsg{} })
}

func (m *Model) fetch() tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(m.ctx, fetchTimeout)
		defer cancel()
		var s dashboard.Snapshot
		var err error
		if s.Connectors, err = m.client.Connectors(ctx); err != nil {
			return snapshotMsg{err: err}
		}
		if s.Log, err = m.client.Log(ctx); err != nil {
			return snapshotMsg{err: err}
		}
		if s.Sessions, err = m.client.Sessions(ctx); err != nil {
			return snapshotMsg{err: err}
		}
		// An engine without the audit routes (an older one) still shows
		// everything else; the pane says why it is empty.
		q := status.AuditQuery{Limit: auditRows}
		conflicts, err := m.client.Conflicts(ctx, q)
		var rejected []status.AuditEvent
		if err == nil {
			rejected, err = m.client.Rejected(ctx, q)
		}
		if err != nil {
			s.AuditErr = describe(err)
		} else {
			s.Audit = dashboard.MergeAudit(conflicts, rejected)
		}
		return snapshotMsg{snap: s}
	}
}

// next waits for the event-stream goroutine's next message.
func (m *Model) next() tea.Cmd {
	return func() tea.Msg {
		select {
		case msg := <-m.msgs:
			return msg
		case <-m.ctx.Done():
			return nil
		}
	}
}

// streamEvents follows /api/events for the program's life, reconnecting
// after the last event seen so nothing is shown twice or missed while the
// ring still holds it.
func (m *Model) streamEvents() tea.Cmd {
	return func() tea.Msg {
		send := func(msg tea.Msg) bool {
			select {
			case m.msgs <- msg:
				return true
			case <-m.ctx.Done():
				return false
			}
		}
		var last uint64
		for m.ctx.Err() == nil {
			s, err := m.client.OpenEvents(m.ctx, last)
			if err == nil {
				if !send(streamMsg{live: true}) {
					s.Close()
					return nil
				}
				for {
					ev, err := s.Next()
					if err != nil {
						break
					}
					last = ev.ID
					if !send(eventMsg{ev: ev}) {
						break
					}
				}
				s.Close()
			}
			if !send(streamMsg{live: false}) {
				return nil
			}
			select {
			case <-time.After(m.opts.PollInterval):
			case <-m.ctx.Done():
			}
		}
		return nil
	}
}

// describe shortens a request error to what an operator needs: the
// url.Error wrapper repeats the URL already in the header.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}
