// Package devenv owns the local development environment of `electric dev`:
// two Postgres 15 clusters (db_a and db_b) made with the system's initdb and
// pg_ctl, and an `electric serve` engine running detached in the background,
// all under one state directory. It never touches a process or a directory
// that it did not create: the engine is identified by the pid file and command
// line it recorded, the clusters by their data directories, and reset only
// deletes a directory that carries its state file.
package devenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/electric-sql/electric-go/engine/config"
	"github.com/electric-sql/electric-go/internal/pgcluster"
)

// Names of the parts of the environment.
const (
	DBA    = "db_a"
	DBB    = "db_b"
	Engine = "engine"
)

// Defaults of the environment; the engine's ports are the seed's defaults.
const (
	DefaultDir             = ".electric/dev"
	DefaultDBAPort         = 54321
	DefaultDBBPort         = 54322
	DefaultWebsocketPort   = config.DefaultWebsocketPort
	DefaultStatusPort      = config.DefaultStatusPort
	DefaultReplicationPort = config.DefaultReplicationPort
	DefaultEngineTimeout   = 30 * time.Second
	DefaultStopTimeout     = 10 * time.Second
)

// EnvDir is the variable that names the state directory of `electric dev`
// when --dir is not given (DefaultDir when unset).
const EnvDir = "ELECTRIC_DEV_DIR"

// stateFile marks a directory as an environment made by devenv and records
// the ports chosen at `up`, so that later commands need no flags.
const stateFile = "state.json"

// Options configure an environment. Zero ports mean "the port recorded by the
// last up in this directory, else the default".
type Options struct {
	Dir string // state directory; DefaultDir when empty

	DBAPort, DBBPort int

	// Engine ports, passed to `electric serve` as WEBSOCKET_PORT, STATUS_PORT
	// and POSTGRES_REPLICATION_PORT.
	WebsocketPort, StatusPort, ReplicationPort int

	// NoEngine makes Up start only the clusters.
	NoEngine bool
	// TLS makes Up start the engine with a self-signed certificate for
	// localhost (made once under the state directory, then reused), so that
	// it serves wss and https.
	TLS bool
	// EngineCommand is the argv of the engine; by default the running
	// executable with "serve".
	EngineCommand []string
	// EngineTimeout bounds the wait for the engine's status API.
	EngineTimeout time.Duration
	// StopTimeout is how long Down waits after SIGTERM before SIGKILL.
	StopTimeout time.Duration

	// PostgresSettings are extra postgresql.conf settings for new clusters.
	PostgresSettings map[string]string

	// Out receives results (connection strings, status tables); Progress
	// receives one line per step. TTY turns on the spinner on Progress.
	Out      io.Writer
	Progress io.Writer
	TTY      bool
}

// Env is one development environment.
type Env struct {
	opts     Options
	dir      string
	clusters map[string]*pgcluster.Cluster
	state    state
	prog     *progress
}

// state is what state.json holds.
type state struct {
	DBAPort         int      `json:"db_a_port"`
	DBBPort         int      `json:"db_b_port"`
	WebsocketPort   int      `json:"websocket_port"`
	StatusPort      int      `json:"status_port"`
	ReplicationPort int      `json:"replication_port"`
	EngineCommand   []string `json:"engine_command,omitempty"`
	// TLS records that the engine was started with the local certificate.
	TLS bool `json:"tls,omitempty"`
}

// New describes the environment in opts.Dir. It creates nothing; it fails
// when the Postgres server binaries cannot be found.
func New(opts Options) (*Env, error) {
	if opts.Dir == "" {
		opts.Dir = DefaultDir
	}
	if opts.EngineTimeout <= 0 {
		opts.EngineTimeout = DefaultEngineTimeout
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", opts.Dir, err)
	}
	e := &Env{opts: opts, dir: dir, clusters: map[string]*pgcluster.Cluster{}, prog: &progress{w: opts.Progress, tty: opts.TTY}}
	saved, err := e.loadState()
	if err != nil {
		return nil, err
	}
	pick := func(flag, saved, def int) int {
		switch {
		case flag != 0:
			return flag
		case saved != 0:
			return saved
		}
		return def
	}
	e.state = state{
		DBAPort:         pick(opts.DBAPort, saved.DBAPort, DefaultDBAPort),
		DBBPort:         pick(opts.DBBPort, saved.DBBPort, DefaultDBBPort),
		WebsocketPort:   pick(opts.WebsocketPort, saved.WebsocketPort, DefaultWebsocketPort),
		StatusPort:      pick(opts.StatusPort, saved.StatusPort, DefaultStatusPort),
		ReplicationPort: pick(opts.ReplicationPort, saved.ReplicationPort, DefaultReplicationPort),
		EngineCommand:   saved.EngineCommand,
		TLS:             saved.TLS,
	}
	if err := e.validatePorts(); err != nil {
		return nil, err
	}
	for name, port := range map[string]int{DBA: e.state.DBAPort, DBB: e.state.DBBPort} {
		c, err := pgcluster.New(filepath.Join(dir, name), port)
		if err != nil {
			return nil, err
		}
		c.Settings = opts.PostgresSettings
		e.clusters[name] = c
	}
	return e, nil
}

// validatePorts refuses out-of-range ports and two parts on one port.
func (e *Env) validatePorts() error {
	ports := []struct {
		what string
		port int
	}{
		{DBA, e.state.DBAPort}, {DBB, e.state.DBBPort},
		{"engine websocket", e.state.WebsocketPort}, {"engine status", e.state.StatusPort},
		{"engine replication", e.state.ReplicationPort},
	}
	seen := map[int]string{}
	for _, p := range ports {
		if p.port < 1 || p.port > 65535 {
			return fmt.Errorf("port %d for %s is out of range (1-65535)", p.port, p.what)
		}
		if other, ok := seen[p.port]; ok {
			return fmt.Errorf("port %d is given to both %s and %s: choose distinct ports", p.port, other, p.what)
		}
		seen[p.port] = p.what
	}
	return nil
}

// Dir is the absolute state directory.
func (e *Env) Dir() string { return e.dir }

// URI is the connection string of a cluster (db_a or db_b).
func (e *Env) URI(name string) string { return e.clusters[name].URI() }

// Connectors is the CONNECTORS value naming both clusters.
func (e *Env) Connectors() string {
	return fmt.Sprintf("%s=%s;%s=%s", DBA, e.URI(DBA), DBB, e.URI(DBB))
}

// Ports returns the port of each part; the engine's is its status port.
func (e *Env) Ports() map[string]int {
	return map[string]int{DBA: e.state.DBAPort, DBB: e.state.DBBPort, Engine: e.state.StatusPort}
}

func (e *Env) path(name string) string { return filepath.Join(e.dir, name) }

func (e *Env) loadState() (state, error) {
	var s state
	b, err := os.ReadFile(e.path(stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("reading %s: %w", e.path(stateFile), err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("reading %s: %w (delete it, or run 'electric dev reset')", e.path(stateFile), err)
	}
	return s, nil
}

func (e *Env) saveState() error {
	b, err := json.MarshalIndent(e.state, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding state: %w", err)
	}
	tmp := e.path(stateFile + ".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	if err := os.Rename(tmp, e.path(stateFile)); err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	return nil
}

// checkName validates a part name given on the command line.
func checkName(name string, engineOK bool) error {
	switch name {
	case DBA, DBB:
		return nil
	case Engine:
		if engineOK {
			return nil
		}
		return fmt.Errorf("%q is not a database: want %s or %s", name, DBA, DBB)
	}
	if engineOK {
		return fmt.Errorf("unknown part %q: want %s, %s or %s", name, DBA, DBB, Engine)
	}
	return fmt.Errorf("unknown database %q: want %s or %s", name, DBA, DBB)
}

// clusterNames returns the cluster names in display order.
func (e *Env) clusterNames() []string {
	names := make([]string, 0, len(e.clusters))
	for n := range e.clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
