package engine

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/electric-sql/electric-go/engine/config"
)

// TestAddrs: with ports 0 the engine binds free ports, reports each under
// its role, and serves the status API on the status one.
func TestAddrs(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"OFFSET_STORAGE_FILE": filepath.Join(dir, "state"),
		"MIGRATIONS_DIR":      filepath.Join(dir, "migrations"),
	}
	cfg, errs := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	cfg.ReplicationPort, cfg.WebsocketPort, cfg.StatusPort = 0, 0, 0
	e, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	a := e.Addrs()
	ports := map[int]string{}
	for role, addr := range map[string]net.Addr{"publisher": a.Publisher, "websocket": a.Websocket, "status": a.Status} {
		p := addr.(*net.TCPAddr).Port
		if p == 0 || ports[p] != "" {
			t.Fatalf("%s listens on port %d (also %q)", role, p, ports[p])
		}
		ports[p] = role
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine: %v", err)
		}
	}()
	resp, err := http.Get("http://" + a.Status.String() + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/status on the status address: %s %s", resp.Status, body)
	}
}
