// Package pgcluster creates, starts and stops local Postgres clusters with the
// system's initdb and pg_ctl. It is shared by the dev environment and by the
// integration tests. It owns nothing but the cluster's data directory and
// process; it never touches a cluster it did not create.
//
// Postgres refuses to run as root, so when the caller is root the server
// binaries run as the unprivileged "postgres" system user and the data
// directory is handed to that user.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Defaults of every cluster made here: the superuser, its password and the
// database that the dev environment and the tests use.
const (
	DefaultUser     = "electric"
	DefaultPassword = "password"
	DefaultDatabase = "electric"
)

// ErrNoServer is returned when Postgres server binaries cannot be found.
var ErrNoServer = errors.New("postgres server binaries (initdb, pg_ctl) not found: install PostgreSQL 15 (Debian/Ubuntu: apt-get install -y postgresql) or set PG_BIN")

// Cluster is one local Postgres instance.
type Cluster struct {
	Dir      string // data directory
	Port     int
	BinDir   string
	LogFile  string
	Settings map[string]string // extra postgresql.conf settings

	cred *syscall.Credential // set when running the server as another user
	uid  int
	gid  int
}

// FindBinDir finds the directory holding initdb and pg_ctl: $PG_BIN when set,
// else the Debian location of Postgres 15, then PATH.
func FindBinDir() (string, error) {
	// An explicit PG_BIN that is wrong is reported, not silently replaced.
	if d := os.Getenv("PG_BIN"); d != "" {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
		return "", fmt.Errorf("PG_BIN=%s holds no initdb and pg_ctl: %w", d, ErrNoServer)
	}
	if d := "/usr/lib/postgresql/15/bin"; isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) {
		return d, nil
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		real, err := filepath.EvalSymlinks(p)
		if err == nil {
			p = real
		}
		d := filepath.Dir(p)
		if isExec(filepath.Join(d, "initdb")) {
			return d, nil
		}
	}
	return "", ErrNoServer
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// New describes a cluster in dir listening on 127.0.0.1:port. Nothing is
// created until Init.
func New(dir string, port int) (*Cluster, error) {
	bin, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", dir, err)
	}
	c := &Cluster{Dir: abs, Port: port, BinDir: bin, LogFile: abs + ".log", uid: -1, gid: -1}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the unprivileged 'postgres' user to run the server (useradd --system postgres): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.uid, c.gid = uid, gid
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	return c, nil
}

// Initialized reports whether the data directory already holds a cluster.
func (c *Cluster) Initialized() bool {
	_, err := os.Stat(filepath.Join(c.Dir, "PG_VERSION"))
	return err == nil
}

// Init runs initdb with the electric superuser and writes the settings that
// logical replication needs. It is a no-op when the cluster exists.
func (c *Cluster) Init(ctx context.Context) error {
	if c.Initialized() {
		return nil
	}
	parent := filepath.Dir(c.Dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", parent, err)
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", c.Dir, err)
	}
	if err := c.chown(c.Dir); err != nil {
		return err
	}
	if err := c.CheckReachable(); err != nil {
		return err
	}
	pwfile := filepath.Join(parent, "."+filepath.Base(c.Dir)+".pw")
	if err := os.WriteFile(pwfile, []byte(DefaultPassword+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing password file: %w", err)
	}
	defer os.Remove(pwfile)
	if err := c.chown(pwfile); err != nil {
		return err
	}
	out, err := c.run(ctx, "initdb", "-D", c.Dir, "-U", DefaultUser, "--pwfile", pwfile,
		"--auth-local=trust", "--auth-host=md5", "-E", "UTF8", "--locale=C", "--no-sync")
	if err != nil {
		return fmt.Errorf("initdb %s: %w\n%s", c.Dir, err, out)
	}
	conf := map[string]string{
		"listen_addresses":                "'127.0.0.1'",
		"port":                            strconv.Itoa(c.Port),
		"unix_socket_directories":         "''",
		"wal_level":                       "logical",
		"max_replication_slots":           "20",
		"max_wal_senders":                 "20",
		"max_logical_replication_workers": "8",
		"max_worker_processes":            "16",
		"wal_sender_timeout":              "60s",
		"shared_buffers":                  "64MB",
		"log_line_prefix":                 "'%m [%p] %q%a '",
		"log_min_messages":                "warning",
		"max_connections":                 "50",
		"logical_decoding_work_mem":       "64MB",
		"track_commit_timestamp":          "on",
	}
	for k, v := range c.Settings {
		conf[k] = v
	}
	var b strings.Builder
	b.WriteString("\n# written by electric\n")
	for k, v := range conf {
		fmt.Fprintf(&b, "%s = %s\n", k, v)
	}
	f, err := os.OpenFile(filepath.Join(c.Dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("opening postgresql.conf: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(b.String()); err != nil {
		return fmt.Errorf("writing postgresql.conf: %w", err)
	}
	return nil
}

// CheckReachable makes sure the server user can reach the data directory:
// a root-owned 0700 ancestor would make initdb fail with an obscure error.
// Every ancestor of the data directory must exist.
func (c *Cluster) CheckReachable() error {
	if c.cred == nil {
		return nil
	}
	for d := filepath.Dir(c.Dir); d != "/" && d != "."; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("checking %s: %w", d, err)
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if ok && int(sys.Uid) == c.uid {
			continue
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("the postgres user cannot enter %s (mode %v): choose a state directory under a world-traversable path, or chmod o+x %s", d, st.Mode().Perm(), d)
		}
	}
	return nil
}

func (c *Cluster) chown(path string) error {
	if c.cred == nil {
		return nil
	}
	if err := os.Chown(path, c.uid, c.gid); err != nil {
		return fmt.Errorf("giving %s to the postgres user: %w", path, err)
	}
	return nil
}

func (c *Cluster) run(ctx context.Context, tool string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.BinDir, tool), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
		cmd.Dir = "/"
	}
	return cmd.CombinedOutput()
}

// SetPort changes the port of an initialized, stopped cluster: the setting is
// appended to postgresql.conf, where the last occurrence wins.
func (c *Cluster) SetPort(port int) error {
	if c.Running() {
		return fmt.Errorf("changing the port of %s: the server is running", c.Dir)
	}
	f, err := os.OpenFile(filepath.Join(c.Dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("opening postgresql.conf: %w", err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "port = %d\n", port); err != nil {
		return fmt.Errorf("writing postgresql.conf: %w", err)
	}
	c.Port = port
	return nil
}

// ConfiguredPort reads the port that postgresql.conf gives the server (the
// last uncommented "port" setting), or 0 when there is none.
func (c *Cluster) ConfiguredPort() (int, error) {
	b, err := os.ReadFile(filepath.Join(c.Dir, "postgresql.conf"))
	if err != nil {
		return 0, fmt.Errorf("reading postgresql.conf: %w", err)
	}
	port := 0
	for _, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != "port" {
			continue
		}
		if p, err := strconv.Atoi(strings.Trim(strings.TrimSpace(v), "'")); err == nil {
			port = p
		}
	}
	return port, nil
}

// RunningPort returns the port the running postmaster listens on, as recorded
// in postmaster.pid, or 0 when the server is not running.
func (c *Cluster) RunningPort() int {
	if !c.Running() {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(c.Dir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	// Line 4 of postmaster.pid is the port (see Postgres' pidfile.h).
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0
	}
	p, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err != nil {
		return 0
	}
	return p
}

// Start starts the server and waits until it accepts connections.
func (c *Cluster) Start(ctx context.Context) error {
	if c.Running() {
		return nil
	}
	if err := PortFree(c.Port); err != nil {
		return err
	}
	if _, err := os.Stat(c.LogFile); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(c.LogFile, nil, 0o644); err != nil {
			return fmt.Errorf("creating log file: %w", err)
		}
	}
	if err := c.chown(c.LogFile); err != nil {
		return err
	}
	out, err := c.run(ctx, "pg_ctl", "-D", c.Dir, "-l", c.LogFile, "-w", "-t", "60", "start")
	if err != nil {
		return fmt.Errorf("starting postgres in %s: %w\n%s(see %s)", c.Dir, err, out, c.LogFile)
	}
	return c.WaitReady(ctx)
}

// Stop stops the server (fast mode). Stopping a stopped cluster is fine.
func (c *Cluster) Stop(ctx context.Context) error {
	if !c.Running() {
		return nil
	}
	out, err := c.run(ctx, "pg_ctl", "-D", c.Dir, "-m", "fast", "-w", "-t", "60", "stop")
	if err != nil && c.Running() {
		return fmt.Errorf("stopping postgres in %s: %w\n%s", c.Dir, err, out)
	}
	return nil
}

// Restart stops and starts the server.
func (c *Cluster) Restart(ctx context.Context) error {
	if err := c.Stop(ctx); err != nil {
		return err
	}
	return c.Start(ctx)
}

// PID returns the postmaster pid, or 0 when the server is not running.
func (c *Cluster) PID() int {
	b, err := os.ReadFile(filepath.Join(c.Dir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0
	}
	return pid
}

// Running reports whether the postmaster is alive.
func (c *Cluster) Running() bool { return c.PID() != 0 }

// URI is the connection string for the electric superuser.
func (c *Cluster) URI() string {
	return fmt.Sprintf("postgresql://%s:%s@127.0.0.1:%d/%s", DefaultUser, DefaultPassword, c.Port, DefaultDatabase)
}

// WaitReady polls until the server answers a query, creating the electric
// database on first start.
func (c *Cluster) WaitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		conn, err := pgx.Connect(ctx, fmt.Sprintf("postgresql://%s:%s@127.0.0.1:%d/postgres", DefaultUser, DefaultPassword, c.Port))
		if err == nil {
			var exists bool
			err = conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", DefaultDatabase).Scan(&exists)
			if err == nil && !exists {
				_, err = conn.Exec(ctx, "CREATE DATABASE "+DefaultDatabase)
				// The user is called electric like the engine's schema, so the
				// default search_path ("$user", public) would put unqualified
				// new tables into electric.*, which is never replicated.
				if err == nil {
					_, err = conn.Exec(ctx, "ALTER DATABASE "+DefaultDatabase+" SET search_path TO public")
				}
			}
			conn.Close(ctx)
			if err == nil {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("postgres on port %d not ready after 60s: %w", c.Port, last)
}

// ErrPortInUse is returned by Start (wrapped) when something listens on the
// cluster's port.
var ErrPortInUse = errors.New("already in use")

// PortFree returns an error naming the port when something listens on it.
func PortFree(port int) error {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return fmt.Errorf("port %d is %w: stop what listens there or choose another port", port, ErrPortInUse)
	}
	return l.Close()
}

// FreePort asks the kernel for an unused TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreePorts asks the kernel for n distinct unused TCP ports on 127.0.0.1.
// Every listener stays open until all are picked: closing each before asking
// for the next can hand the same port out twice.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
