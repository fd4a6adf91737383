package engine_test

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/electric-sql/electric-go/engine"
	"github.com/electric-sql/electric-go/engine/config"
	"github.com/electric-sql/electric-go/internal/pgcluster"
)

// startupConfig is a configuration with state under dir and free ports; New
// needs no reachable Postgres (connectors only connect in Run).
func startupConfig(t *testing.T, dir string) config.Config {
	t.Helper()
	ports, err := pgcluster.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"CONNECTORS":                "postgres_1=postgresql://postgres@127.0.0.1:1/postgres",
		"ELECTRIC_HOST":             "127.0.0.1",
		"POSTGRES_REPLICATION_PORT": fmt.Sprint(ports[0]),
		"STATUS_PORT":               fmt.Sprint(ports[1]),
		"WEBSOCKET_PORT":            fmt.Sprint(ports[2]),
		"OFFSET_STORAGE_FILE":       filepath.Join(dir, "state"),
		"MIGRATIONS_DIR":            filepath.Join(dir, "migrations"),
	}
	cfg, errs := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	return cfg
}

// Every start-up failure of New is one clear error, never a panic, and
// releases what New had opened (the state directory can be opened again).
func TestNewFailsClearly(t *testing.T) {
	discard := slog.New(slog.DiscardHandler)

	t.Run("second engine on the same state", func(t *testing.T) {
		dir := t.TempDir()
		cfg := startupConfig(t, dir)
		e1, err := engine.New(cfg, discard)
		if err != nil {
			t.Fatalf("first New: %v", err)
		}
		cfg2 := startupConfig(t, dir) // other ports, same state
		_, err = engine.New(cfg2, discard)
		want := fmt.Sprintf("opening the engine state in %s: another electric process holds it (pid %d)", cfg.DataDir(), os.Getpid())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("second New: got %v, want an error containing %q", err, want)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Fatalf("error is not one line: %q", err)
		}
		engine.CloseForTest(e1)
		e3, err := engine.New(cfg2, discard)
		if err != nil {
			t.Fatalf("New after the first engine closed: %v", err)
		}
		engine.CloseForTest(e3)
	})

	for _, port := range []string{"POSTGRES_REPLICATION_PORT", "WEBSOCKET_PORT", "STATUS_PORT"} {
		t.Run(port+" in use", func(t *testing.T) {
			dir := t.TempDir()
			cfg := startupConfig(t, dir)
			ln, err := net.Listen("tcp", ":0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			busy := ln.Addr().(*net.TCPAddr).Port
			switch port {
			case "POSTGRES_REPLICATION_PORT":
				cfg.ReplicationPort = busy
			case "WEBSOCKET_PORT":
				cfg.WebsocketPort = busy
			case "STATUS_PORT":
				cfg.StatusPort = busy
			}
			_, err = engine.New(cfg, discard)
			if err == nil || !strings.Contains(err.Error(), port) || !strings.Contains(err.Error(), "address already in use") {
				t.Fatalf("New: got %v, want an error naming %s and the address in use", err, port)
			}
			// The state was released: another engine can open it.
			cfg2 := startupConfig(t, dir)
			e, err := engine.New(cfg2, discard)
			if err != nil {
				t.Fatalf("New after the failed one: %v", err)
			}
			engine.CloseForTest(e)
		})
	}

	t.Run("unreadable state directory", func(t *testing.T) {
		dir := t.TempDir()
		cfg := startupConfig(t, dir)
		// A regular file where the state directory should be.
		if err := os.WriteFile(cfg.DataDir(), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := engine.New(cfg, discard)
		if err == nil || !strings.HasPrefix(err.Error(), "opening the engine state in "+cfg.DataDir()) {
			t.Fatalf("New: got %v, want an error opening the engine state", err)
		}
	})
}
