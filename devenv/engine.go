package devenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/electric-sql/electric-go/engine/config"
	"github.com/electric-sql/electric-go/engine/tlsconf"
)

// Files of the engine under the state directory.
const (
	engineLog     = "engine.log"
	enginePIDFile = "engine.pid"
	engineWorkDir = "engine" // the engine's working directory and data
	offsetFile    = "offset_storage_data.dat"
	tlsDir        = "tls" // the local certificate of --tls
)

// listenAddress is where the dev engine listens: this machine only.
const listenAddress = "127.0.0.1"

func (e *Env) engineCommand() ([]string, error) {
	if len(e.opts.EngineCommand) > 0 {
		return e.opts.EngineCommand, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the electric executable to run the engine: %w", err)
	}
	return []string{exe, "serve"}, nil
}

// engineEnv is the engine's configuration: both clusters as connectors and
// everything it writes under the state directory.
func (e *Env) engineEnv() []string {
	// The engine runs inside the state directory, so a relative
	// MIGRATIONS_DIR (or the default ./migrations) is resolved here, where
	// 'electric migrate new' writes it.
	migDir := os.Getenv(config.EnvMigrationsDir)
	if migDir == "" {
		migDir = config.DefaultMigrationsDir
	}
	if abs, err := filepath.Abs(migDir); err == nil {
		migDir = abs
	}
	env := append(os.Environ(),
		config.EnvListenAddress+"="+listenAddress,
		config.EnvMigrationsDir+"="+migDir,
		config.EnvConnectors+"="+e.Connectors(),
		config.EnvElectricHost+"=127.0.0.1",
		config.EnvOffsetStorageFile+"="+e.path(engineWorkDir+"/"+offsetFile),
		config.EnvWebsocketPort+"="+strconv.Itoa(e.state.WebsocketPort),
		config.EnvStatusPort+"="+strconv.Itoa(e.state.StatusPort),
		config.EnvReplicationPort+"="+strconv.Itoa(e.state.ReplicationPort),
	)
	if e.state.TLS {
		env = append(env,
			config.EnvTLSCertFile+"="+e.path(tlsDir+"/"+tlsconf.LocalCertFile),
			config.EnvTLSKeyFile+"="+e.path(tlsDir+"/"+tlsconf.LocalKeyFile))
	} else {
		// A certificate in the caller's environment is not for this engine.
		env = append(env, config.EnvTLSCertFile+"=", config.EnvTLSKeyFile+"=")
	}
	return env
}

// StatusURL is the engine's status API endpoint.
func (e *Env) StatusURL() string {
	scheme := "http"
	if e.state.TLS {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s:%d/api/status", scheme, listenAddress, e.state.StatusPort)
}

// CertFile is the certificate the engine serves when started with TLS ("" when not).
func (e *Env) CertFile() string {
	if !e.state.TLS {
		return ""
	}
	return e.path(tlsDir + "/" + tlsconf.LocalCertFile)
}

func (e *Env) engineInfo(pid int) *EngineInfo {
	scheme := "ws"
	if e.state.TLS {
		scheme = "wss"
	}
	return &EngineInfo{
		PID:             pid,
		WebsocketURL:    fmt.Sprintf("%s://%s:%d/ws", scheme, listenAddress, e.state.WebsocketPort),
		StatusURL:       e.StatusURL(),
		ReplicationPort: e.state.ReplicationPort,
		Log:             e.path(engineLog),
		CertFile:        e.CertFile(),
	}
}

// httpClient talks to the engine, trusting its local certificate when it
// serves TLS.
func (e *Env) httpClient() (*http.Client, error) {
	if !e.state.TLS {
		return http.DefaultClient, nil
	}
	pool, err := tlsconf.CertPool(e.CertFile())
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, nil
}

// enginePID returns the pid of the engine this environment started, or 0.
// A pid file whose process is gone, or now runs another program, is stale.
func (e *Env) enginePID() int {
	b, err := os.ReadFile(e.path(enginePIDFile))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !processAlive(pid) {
		return 0
	}
	if len(e.state.EngineCommand) > 0 {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			return 0
		}
		argv0, _, _ := bytes.Cut(cmdline, []byte{0})
		if string(argv0) != e.state.EngineCommand[0] {
			return 0
		}
	}
	return pid
}

func (e *Env) engineAlive() bool { return e.enginePID() != 0 }

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which may hold spaces and parens.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return true
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

// statusAnswers reports whether the engine's status API answers 200.
func (e *Env) statusAnswers(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.StatusURL(), nil)
	if err != nil {
		return false
	}
	client, err := e.httpClient()
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// upEngine starts `electric serve` detached and waits for its status API.
// An engine that exits at once (it is not built yet, or its configuration is
// refused) is reported as a warning with its last log line: Postgres stays up.
func (e *Env) upEngine(ctx context.Context) (*EngineInfo, string, error) {
	if pid := e.enginePID(); pid != 0 {
		state := "status " + e.StatusURL()
		if !e.statusAnswers(ctx) {
			state = "its status API does not answer, see " + e.path(engineLog)
		}
		if e.opts.TLS && !e.state.TLS {
			state += "; it runs without TLS: 'electric dev down' first to restart it with --tls"
		}
		e.prog.line("✓", "engine already running", fmt.Sprintf("pid %d, %s", pid, state), "")
		return e.engineInfo(pid), "", nil
	}
	e.state.TLS = false
	if e.opts.TLS {
		err := e.prog.step("tls certificate", func() (string, error) {
			cert, _, created, err := tlsconf.EnsureLocal(e.path(tlsDir), time.Now())
			if err != nil {
				return "", fmt.Errorf("making the local certificate: %w", err)
			}
			if created {
				return "created " + cert, nil
			}
			return "reused " + cert, nil
		})
		if err != nil {
			return nil, "", err
		}
		e.state.TLS = true
	}
	var info *EngineInfo
	var note string
	err := e.prog.step("start engine", func() (string, error) {
		argv, err := e.engineCommand()
		if err != nil {
			return "", err
		}
		if err := os.MkdirAll(e.path(engineWorkDir), 0o755); err != nil {
			return "", fmt.Errorf("creating the engine directory: %w", err)
		}
		logf, err := os.OpenFile(e.path(engineLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return "", fmt.Errorf("opening the engine log: %w", err)
		}
		fmt.Fprintf(logf, "--- %s electric dev up: starting %s ---\n", time.Now().Format(time.RFC3339), strings.Join(argv, " "))
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = e.engineEnv()
		cmd.Dir = e.path(engineWorkDir)
		cmd.Stdout, cmd.Stderr = logf, logf
		// Its own session: the engine outlives this command and does not
		// get the terminal's signals.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		err = cmd.Start()
		logf.Close()
		if err != nil {
			return "", fmt.Errorf("starting the engine (%s): %w", argv[0], err)
		}
		pid := cmd.Process.Pid
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		e.state.EngineCommand = argv
		if err := e.saveState(); err != nil {
			return "", err
		}
		if err := os.WriteFile(e.path(enginePIDFile), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
			return "", fmt.Errorf("writing the engine pid file: %w", err)
		}
		deadline := time.Now().Add(e.opts.EngineTimeout)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case err := <-exited:
				os.Remove(e.path(enginePIDFile))
				last := lastLine(e.path(engineLog))
				if last == "" || strings.HasPrefix(last, "--- ") {
					last = "exited: " + err.Error()
				}
				note = "not available: " + last
				return "", warning{"not available, Postgres is up: " + last}
			case <-ctx.Done():
				return "", fmt.Errorf("waiting for the engine (pid %d, still running; 'electric dev down' stops it): %w", pid, ctx.Err())
			case <-tick.C:
			}
			if e.statusAnswers(ctx) {
				info = e.engineInfo(pid)
				return fmt.Sprintf("pid %d, status %s", pid, e.StatusURL()), nil
			}
			if time.Now().After(deadline) {
				return "", fmt.Errorf("the engine (pid %d) is running but its status API %s did not answer within %s: see %s ('electric dev down' stops it)", pid, e.StatusURL(), e.opts.EngineTimeout, e.path(engineLog))
			}
		}
	})
	return info, note, err
}

// stopEngine sends SIGTERM to the engine's process group, then SIGKILL after
// the stop timeout. It returns the pid it stopped (0 when none ran).
func (e *Env) stopEngine(ctx context.Context) (int, error) {
	pid := e.enginePID()
	if pid == 0 {
		os.Remove(e.path(enginePIDFile))
		return 0, nil
	}
	signal := func(sig syscall.Signal) {
		// The engine leads its own session, so -pid reaches its children too.
		if err := syscall.Kill(-pid, sig); err != nil {
			syscall.Kill(pid, sig)
		}
	}
	signal(syscall.SIGTERM)
	if !waitGone(ctx, pid, e.opts.StopTimeout) {
		signal(syscall.SIGKILL)
		if !waitGone(ctx, pid, 10*time.Second) {
			return pid, fmt.Errorf("stopping the engine: pid %d survived SIGKILL", pid)
		}
	}
	os.Remove(e.path(enginePIDFile))
	return pid, nil
}

func waitGone(ctx context.Context, pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return true
}

// lastLine returns the last non-empty line of a file.
func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if s := strings.TrimSpace(lines[i]); s != "" {
			return s
		}
	}
	return ""
}
