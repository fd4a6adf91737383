package pgcluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPortsAndMove(t *testing.T) {
	base, err := os.MkdirTemp("", "electric-pgcluster-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(filepath.Join(base, "data"), port)
	if err != nil {
		t.Fatal(err)
	}
	c.Settings = map[string]string{"fsync": "off"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Init(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Stop(context.Background())
	if p, err := c.ConfiguredPort(); err != nil || p != port {
		t.Fatalf("configured port = %d, %v; want %d", p, err, port)
	}
	if p := c.RunningPort(); p != 0 {
		t.Fatalf("running port of a stopped cluster = %d", p)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if p := c.RunningPort(); p != port {
		t.Fatalf("running port = %d, want %d", p, port)
	}
	if err := c.SetPort(port + 1); err == nil || !strings.Contains(err.Error(), "running") {
		t.Fatalf("SetPort on a running cluster: err = %v", err)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	moved, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetPort(moved); err != nil {
		t.Fatal(err)
	}
	if p, err := c.ConfiguredPort(); err != nil || p != moved {
		t.Fatalf("configured port after move = %d, %v; want %d", p, err, moved)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if p := c.RunningPort(); p != moved {
		t.Fatalf("running port after move = %d, want %d", p, moved)
	}
}

func TestCheckReachable(t *testing.T) {
	base, err := os.MkdirTemp("", "electric-pgcluster-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	locked := filepath.Join(base, "locked")
	if err := os.Mkdir(locked, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := New(filepath.Join(locked, "data"), 1)
	if err != nil {
		t.Fatal(err)
	}
	err = c.CheckReachable()
	if os.Geteuid() == 0 {
		if err == nil || !strings.Contains(err.Error(), "postgres user cannot enter "+locked) {
			t.Fatalf("as root: err = %v, want one naming %s", err, locked)
		}
	} else if err != nil {
		t.Fatalf("as uid %d the server runs as the caller: err = %v", os.Geteuid(), err)
	}
}

func TestFindBinDirBadPGBin(t *testing.T) {
	empty := t.TempDir()
	t.Setenv("PG_BIN", empty)
	_, err := FindBinDir()
	if !errors.Is(err, ErrNoServer) || !strings.Contains(err.Error(), "PG_BIN="+empty) || !strings.Contains(err.Error(), "apt-get install -y postgresql") {
		t.Fatalf("err = %v, want ErrNoServer naming PG_BIN and the package", err)
	}
}
