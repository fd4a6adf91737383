package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/electric-sql/electric-go/engine/config"
	"github.com/electric-sql/electric-go/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite the cmp golden files of testdata/*.txtar")

// TestMain makes the test binary double as the electric command: testscript
// re-executes it under the name "electric" for `exec electric …` in scripts.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"electric": func() { os.Exit(run(os.Args[1:])) },
	})
}

// TestScripts runs every testdata/*.txtar (each command's helper adds its own:
// help_*, token_*, serve_*, dev_*, migrate_*, dashboard_*).
//
// Scripts run in parallel, each in its own $WORK, with HOME=$WORK/home and the
// test's PATH (so initdb, pg_ctl and psql are found where the system has them).
// Besides testscript's built-ins, scripts can use:
//
//	exitcode N PROG [ARGS…]   run PROG like exec and require exit status N
//	freeport VAR…             set each VAR to a free TCP port on 127.0.0.1
//	setfrom VAR FILE REGEXP   set VAR to REGEXP's first group (or whole match)
//	                          in FILE, which may be stdout or stderr
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		UpdateScripts:       *update,
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			home := env.WorkDir + "/home"
			env.Setenv("HOME", home)
			return os.MkdirAll(home, 0o755)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode": cmdExitCode,
			"freeport": cmdFreePort,
			"setfrom":  cmdSetFrom,
		},
	})
}

func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! exitcode")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exitcode N PROG [ARGS…]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %q is not a number", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exitcode: running %s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: freeport VAR…")
	}
	// Hold every listener until all ports are chosen, so they differ.
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for _, name := range args {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			ts.Fatalf("freeport: %v", err)
		}
		ls = append(ls, l)
		ts.Setenv(name, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
}

func cmdSetFrom(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: setfrom VAR FILE REGEXP")
	}
	re, err := regexp.Compile(args[2])
	if err != nil {
		ts.Fatalf("setfrom: %v", err)
	}
	m := re.FindStringSubmatch(ts.ReadFile(args[1]))
	switch {
	case m == nil:
		ts.Fatalf("setfrom: no match for %q in %s", args[2], args[1])
	case len(m) > 1:
		ts.Setenv(args[0], m[1])
	default:
		ts.Setenv(args[0], m[0])
	}
}

// serveWith runs `electric serve args…` in-process with runEngine as the engine
// and a clean configuration environment plus env.
func serveWith(t *testing.T, runEngine runEngineFunc, env map[string]string, args ...string) (chan error, *testkit.SyncBuffer) {
	t.Helper()
	for _, v := range config.Variables() {
		t.Setenv(v.Name, "")
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	cmd := newServeCmdWith(runEngine)
	stderr := &testkit.SyncBuffer{}
	cmd.SetErr(stderr)
	cmd.SetOut(io.Discard)
	cmd.SetArgs(args)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(context.Background()) }()
	return done, stderr
}

func wait[T any](t *testing.T, ch chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// TestServeRunsEngineUntilSIGTERM: flags beat the environment on the way to
// the engine, the insecure-auth warning is logged, and SIGTERM stops the
// engine through its context with exit status 0.
func TestServeRunsEngineUntilSIGTERM(t *testing.T) {
	started := make(chan config.Config, 1)
	done, stderr := serveWith(t, func(ctx context.Context, cfg config.Config, log *slog.Logger) error {
		log.Debug("engine running")
		started <- cfg
		<-ctx.Done()
		return ctx.Err()
	}, map[string]string{"WEBSOCKET_PORT": "6000", "STATUS_PORT": "6001", "VAXINE_HOST": "vaxine"},
		"--websocket-port", "7000", "--log-level", "debug")

	cfg := wait(t, started, "the engine to start")
	if cfg.WebsocketPort != 7000 || cfg.StatusPort != 6001 || cfg.LogLevel != slog.LevelDebug {
		t.Errorf("engine got websocket %d status %d level %v; want 7000 (flag), 6001 (env), DEBUG (flag)", cfg.WebsocketPort, cfg.StatusPort, cfg.LogLevel)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, done, "serve to return after SIGTERM"); err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
	log := stderr.String()
	for _, want := range []string{
		`level=WARN msg="VAXINE_HOST is set but unused`,
		`level=WARN msg="INSECURE AUTHENTICATION: every Satellite token is accepted as its user id`,
		`level=WARN msg="PLAIN TRAFFIC: no TLS on the websocket (7000), status (6001) and replication (5433) ports; set TLS_CERT_FILE and TLS_KEY_FILE`,
		`msg="starting electric"`, "auth=insecure", "websocket_port=7000", "listen_address=127.0.0.1", "tls=false",
		`level=DEBUG msg="engine running"`,
		`msg=stopped`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestServeReportsEngineFailure(t *testing.T) {
	done, stderr := serveWith(t, func(context.Context, config.Config, *slog.Logger) error {
		return errors.New("connecting to db_a: refused")
	}, map[string]string{
		"SATELLITE_AUTH_SIGNING_KEY": "00000000000000000000000000000000",
		"SATELLITE_AUTH_SIGNING_ISS": "my.electric.server",
		"LOG_LEVEL":                  "warn",
	})
	err := wait(t, done, "serve to return")
	if err == nil || err.Error() != "serve: connecting to db_a: refused" {
		t.Fatalf("serve = %v, want the engine's error", err)
	}
	if log := stderr.String(); strings.Contains(log, "INSECURE") || strings.Contains(log, "starting electric") {
		t.Errorf("JWT mode at level warn logged the insecure warning or info lines:\n%s", log)
	}
}

func TestServeInvalidConfigDoesNotStartEngine(t *testing.T) {
	done, stderr := serveWith(t, func(context.Context, config.Config, *slog.Logger) error {
		t.Error("engine started with an invalid configuration")
		return nil
	}, map[string]string{"STATUS_PORT": "x"}, "--satellite-auth-signing-iss", "iss")
	var ee exitError
	if err := wait(t, done, "serve to return"); !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("serve = %v, want exit status 2", err)
	}
	if n := strings.Count(stderr.String(), "electric: invalid configuration: "); n != 2 {
		t.Errorf("want 2 problem lines, got:\n%s", stderr)
	}
}
