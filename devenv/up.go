package devenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/engine/config"
	"github.com/electric-sql/electric-go/internal/pgcluster"
	"github.com/electric-sql/electric-go/migrations"
)

// Summary is what Up brought up.
type Summary struct {
	Dir        string            `json:"dir"`
	URIs       map[string]string `json:"uris"`
	Connectors string            `json:"connectors"`
	Engine     *EngineInfo       `json:"engine,omitempty"` // nil when not running
	EngineNote string            `json:"engine_note,omitempty"`
}

// EngineInfo describes a running engine.
type EngineInfo struct {
	PID             int    `json:"pid"`
	WebsocketURL    string `json:"websocket_url"`
	StatusURL       string `json:"status_url"`
	ReplicationPort int    `json:"replication_port"`
	Log             string `json:"log"`
	// CertFile is the self-signed certificate a client must trust to reach
	// an engine started with TLS.
	CertFile string `json:"cert_file,omitempty"`
}

// Up brings the environment up: preflight, initdb of missing clusters (in
// parallel), start of stopped ones (in parallel), the electric schema, and
// the engine unless NoEngine. Everything already up is reported and left
// alone.
func (e *Env) Up(ctx context.Context) (*Summary, error) {
	start := time.Now()
	if err := e.prog.step("preflight", func() (string, error) { return e.preflight(ctx) }); err != nil {
		return nil, err
	}
	var toInit, toStart []string
	for _, n := range e.clusterNames() {
		c := e.clusters[n]
		if !c.Initialized() {
			toInit = append(toInit, n)
		}
		if !c.Running() {
			toStart = append(toStart, n)
		}
	}
	if len(toInit) > 0 {
		err := e.prog.step("initdb "+strings.Join(toInit, ", "), func() (string, error) {
			return "", e.parallel(ctx, toInit, func(ctx context.Context, c *pgcluster.Cluster) error {
				if ents, _ := os.ReadDir(c.Dir); len(ents) > 0 {
					return fmt.Errorf("%s holds files but no cluster: move it away, or run 'electric dev reset'", c.Dir)
				}
				if err := c.Init(ctx); err != nil {
					// A half-made cluster (initdb interrupted) would
					// look initialized to the next up: start afresh.
					os.RemoveAll(c.Dir)
					return err
				}
				return nil
			})
		})
		if err != nil {
			return nil, err
		}
	}
	// A cluster made before with another port follows the requested one.
	for _, n := range toStart {
		c := e.clusters[n]
		if p, err := c.ConfiguredPort(); err == nil && p != c.Port {
			want := c.Port
			if err := c.SetPort(want); err != nil {
				return nil, fmt.Errorf("moving %s to port %d: %w", n, want, err)
			}
		}
	}
	for _, n := range e.clusterNames() {
		if !slices.Contains(toStart, n) {
			c := e.clusters[n]
			e.prog.line("✓", n+" already running", fmt.Sprintf("pid %d, port %d", c.PID(), c.Port), "")
		}
	}
	if len(toStart) > 0 {
		var parts []string
		for _, n := range toStart {
			parts = append(parts, fmt.Sprintf("%s :%d", n, e.clusters[n].Port))
		}
		err := e.prog.step("start "+strings.Join(parts, ", "), func() (string, error) {
			return "", e.parallel(ctx, toStart, func(ctx context.Context, c *pgcluster.Cluster) error { return c.Start(ctx) })
		})
		if err != nil {
			return nil, err
		}
	}
	err := e.prog.step("schema electric.migrations", func() (string, error) {
		return "db_a, db_b", e.parallel(ctx, e.clusterNames(), func(ctx context.Context, c *pgcluster.Cluster) error {
			return bootstrap(ctx, c.URI())
		})
	})
	if err != nil {
		return nil, err
	}
	sum := &Summary{
		Dir:        e.dir,
		URIs:       map[string]string{DBA: e.URI(DBA), DBB: e.URI(DBB)},
		Connectors: e.Connectors(),
	}
	if !e.opts.NoEngine {
		info, note, err := e.upEngine(ctx)
		if err != nil {
			return nil, err
		}
		sum.Engine, sum.EngineNote = info, note
		if info != nil {
			if err := e.connectorsStep(ctx); err != nil {
				return nil, err
			}
		}
	}
	e.prog.line("✓", "up in "+elapsed(time.Since(start)), "", "")
	return sum, nil
}

// preflight checks everything that would otherwise fail halfway with an
// obscure message, and prepares the state directory.
func (e *Env) preflight(ctx context.Context) (string, error) {
	bin := e.clusters[DBA].BinDir
	version := ""
	if out, err := exec.CommandContext(ctx, filepath.Join(bin, "pg_ctl"), "--version").Output(); err == nil {
		// "pg_ctl (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
		if f := strings.Fields(string(out)); len(f) >= 3 {
			version = "postgres " + f[2]
		}
	}
	for _, n := range e.clusterNames() {
		c := e.clusters[n]
		if !c.Running() {
			if err := pgcluster.PortFree(c.Port); err != nil {
				return "", fmt.Errorf("port %d for %s is already in use by another process: stop it or choose another port (electric dev up --%s-port)", c.Port, n, strings.ReplaceAll(n, "_", "-"))
			}
			continue
		}
		if rp := c.RunningPort(); rp != 0 && rp != c.Port {
			return "", fmt.Errorf("%s is running on port %d, not %d: run 'electric dev down' first to change its port", n, rp, c.Port)
		}
	}
	if !e.opts.NoEngine && !e.engineAlive() {
		for _, p := range []struct {
			what, flag string
			port       int
		}{
			{"engine websocket", "ws-port", e.state.WebsocketPort},
			{"engine status", "status-port", e.state.StatusPort},
			{"engine replication", "pg-port", e.state.ReplicationPort},
		} {
			if err := pgcluster.PortFree(p.port); err != nil {
				return "", fmt.Errorf("port %d for the %s is already in use by another process: stop it, choose another port (electric dev up --%s), or use --no-engine", p.port, p.what, p.flag)
			}
		}
	}
	// The topmost directory this creates, removed again if the check fails.
	top := ""
	for d := e.dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) || d == filepath.Dir(d) {
			break
		}
		top = d
	}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return "", fmt.Errorf("creating the state directory %s: %w", e.dir, err)
	}
	if top != "" {
		// Whatever the umask, the postgres user must be able to enter it.
		if err := os.Chmod(e.dir, 0o755); err != nil {
			return "", fmt.Errorf("opening up the state directory %s: %w", e.dir, err)
		}
	}
	for _, n := range e.clusterNames() {
		if err := e.clusters[n].CheckReachable(); err != nil {
			if top != "" {
				os.RemoveAll(top)
			}
			return "", fmt.Errorf("state directory %s: %w", e.dir, err)
		}
	}
	if err := e.saveState(); err != nil {
		return "", err
	}
	if version == "" {
		version = "postgres"
	}
	return fmt.Sprintf("%s in %s, state in %s", version, bin, e.dir), nil
}

// parallel runs fn on the named clusters at once and joins their errors.
func (e *Env) parallel(ctx context.Context, names []string, fn func(context.Context, *pgcluster.Cluster) error) error {
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx, e.clusters[n]); err != nil {
				errs[i] = fmt.Errorf("%s: %w", n, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func bootstrap(ctx context.Context, uri string) error {
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		return fmt.Errorf("connecting to install the electric schema: %w", err)
	}
	defer conn.Close(context.Background())
	// What the engine expects in every database (spec §4.1).
	if err := migrations.EnsureTable(ctx, conn); err != nil {
		return fmt.Errorf("installing the electric schema: %w", err)
	}
	return nil
}

// Write prints the connection strings and the CONNECTORS value.
func (s *Summary) Write(w io.Writer) {
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-7s %s\n", DBA, s.URIs[DBA])
	fmt.Fprintf(w, "%-7s %s\n", DBB, s.URIs[DBB])
	switch {
	case s.Engine != nil:
		fmt.Fprintf(w, "%-7s %s  status %s  replication port %d  (pid %d, log %s)\n", Engine,
			s.Engine.WebsocketURL, s.Engine.StatusURL, s.Engine.ReplicationPort, s.Engine.PID, s.Engine.Log)
		if s.Engine.CertFile != "" {
			fmt.Fprintf(w, "%-7s certificate %s (self-signed: trust it in your client)\n", "", s.Engine.CertFile)
		}
	case s.EngineNote != "":
		fmt.Fprintf(w, "%-7s %s\n", Engine, s.EngineNote)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, config.EnvConnectors+"=%q\n", s.Connectors)
}
