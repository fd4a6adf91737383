package tui

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/charmbracelet/lipgloss"

	"github.com/electric-sql/electric-go/engine/status"
)

// The dashboard sends Options.Token (the --token flag or STATUS_API_TOKEN)
// to an engine that requires one, and shows a refusal as such.
func TestDashboardSendsToken(t *testing.T) {
	const token = "dashboard-token-0123456789"
	s, err := status.New(status.Options{Provider: &fixedProvider{}, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fetch := func(token string) error {
		m, err := New(ctx, Options{URL: srv.URL, Token: token, Renderer: lipgloss.NewRenderer(io.Discard)})
		if err != nil {
			t.Fatal(err)
		}
		defer m.cancel()
		return m.fetch()().(snapshotMsg).err
	}
	if err := fetch(""); !errors.Is(err, status.ErrRefused) {
		t.Fatalf("without a token: %v, want ErrRefused", err)
	}
	if err := fetch(token); err != nil {
		t.Fatalf("with the token: %v", err)
	}
}
