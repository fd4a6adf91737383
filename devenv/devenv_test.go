package devenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/engine/tlsconf"
	"github.com/electric-sql/electric-go/internal/pgcluster"
	"github.com/electric-sql/electric-go/internal/testkit"
)

// fakeEngineArg, as the first argument of the test binary, makes it play the
// engine process that devenv supervises: "serve" answers the status API with
// the environment it was given and stops on SIGTERM, "stubborn" ignores
// SIGTERM, "exit" fails at once like an engine that cannot run.
const fakeEngineArg = "devenv-fake-engine"

func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == fakeEngineArg {
		os.Exit(fakeEngine(os.Args[2]))
	}
	os.Exit(m.Run())
}

func fakeEngine(mode string) int {
	switch mode {
	case "exit":
		fmt.Println("starting")
		fmt.Fprintln(os.Stderr, "electric: the replication engine is not built yet")
		return 1
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("STATUS_PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake engine:", err)
		return 1
	}
	wd, _ := os.Getwd()
	env := map[string]string{"cwd": wd}
	for _, k := range []string{"CONNECTORS", "ELECTRIC_HOST", "OFFSET_STORAGE_FILE", "WEBSOCKET_PORT", "STATUS_PORT", "POSTGRES_REPLICATION_PORT", "LISTEN_ADDRESS", "TLS_CERT_FILE", "TLS_KEY_FILE"} {
		env[k] = os.Getenv(k)
	}
	if cert := os.Getenv("TLS_CERT_FILE"); cert != "" {
		// As the engine does with TLS_CERT_FILE and TLS_KEY_FILE.
		cfg, err := tlsconf.ServerConfig(cert, os.Getenv("TLS_KEY_FILE"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "fake engine:", err)
			return 1
		}
		l = tls.NewListener(l, cfg)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/status", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(env)
	})
	fmt.Println("fake engine listening")
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go http.Serve(l, mux)
	<-term
	fmt.Println("fake engine stopping")
	return 0
}

// stateDir makes a state directory the postgres user can reach when the
// tests run as root (t.TempDir is 0700).
func stateDir(t *testing.T) string {
	t.Helper()
	base, err := os.MkdirTemp("", "electric-devenv-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	return filepath.Join(base, "dev")
}

// testOptions gives an environment free ports everywhere, so that tests
// never collide with a developer's 54321/54322 or with each other.
func testOptions(t *testing.T, dir string, prog *testkit.SyncBuffer) Options {
	p, err := pgcluster.FreePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		Dir:     dir,
		DBAPort: p[0], DBBPort: p[1],
		WebsocketPort: p[2], StatusPort: p[3], ReplicationPort: p[4],
		NoEngine:         true,
		PostgresSettings: map[string]string{"fsync": "off"},
		Progress:         prog,
		EngineTimeout:    30 * time.Second,
	}
}

func newEnv(t *testing.T, opts Options) *Env {
	t.Helper()
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// A fresh Env reads the pid file and ports as they are now.
		if e2, err := New(Options{Dir: opts.Dir, EngineCommand: opts.EngineCommand}); err == nil {
			e2.Down(ctx)
		}
		if t.Failed() {
			for _, f := range []string{"db_a.log", "db_b.log", engineLog} {
				if b, err := os.ReadFile(filepath.Join(opts.Dir, f)); err == nil {
					t.Logf("%s:\n%s", f, b)
				}
			}
		}
	})
	return e
}

func up(t *testing.T, e *Env) *Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := e.Up(ctx)
	if err != nil {
		t.Fatalf("up: %v\nprogress:\n%s", err, e.opts.Progress)
	}
	return s
}

func query(t *testing.T, uri, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		t.Fatalf("connecting to %s: %v", uri, err)
	}
	defer conn.Close(ctx)
	var out string
	if err := conn.QueryRow(ctx, sql).Scan(&out); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func partState(t *testing.T, e *Env) map[string]PartStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m := map[string]PartStatus{}
	for _, p := range e.Status(ctx).Parts {
		m[p.Name] = p
	}
	return m
}

func TestUpStatusDownReset(t *testing.T) {
	t.Parallel()
	dir := stateDir(t)
	prog := &testkit.SyncBuffer{}
	opts := testOptions(t, dir, prog)
	e := newEnv(t, opts)

	sum := up(t, e)
	for _, want := range []string{"✓ preflight", "✓ initdb db_a, db_b", "✓ start db_a", "✓ schema electric.migrations"} {
		if !strings.Contains(prog.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, prog)
		}
	}
	if strings.Contains(prog.String(), "\x1b[") {
		t.Errorf("progress in a pipe has escape sequences:\n%q", prog)
	}
	wantConn := fmt.Sprintf("db_a=postgresql://electric:password@127.0.0.1:%d/electric;db_b=postgresql://electric:password@127.0.0.1:%d/electric", opts.DBAPort, opts.DBBPort)
	if sum.Connectors != wantConn {
		t.Errorf("connectors = %q, want %q", sum.Connectors, wantConn)
	}
	var out bytes.Buffer
	sum.Write(&out)
	if !strings.Contains(out.String(), fmt.Sprintf("CONNECTORS=%q", wantConn)) {
		t.Errorf("summary lacks the CONNECTORS line:\n%s", out.String())
	}

	for _, name := range []string{DBA, DBB} {
		uri := sum.URIs[name]
		checks := []struct{ sql, want string }{
			{"SHOW wal_level", "logical"},
			{"SELECT (current_setting('max_replication_slots')::int >= 10)::text", "true"},
			{"SELECT (current_setting('max_wal_senders')::int >= 10)::text", "true"},
			{"SHOW listen_addresses", "127.0.0.1"},
			{"SELECT rolsuper::text FROM pg_roles WHERE rolname = 'electric'", "true"},
			{"SELECT current_database()", "electric"},
			{`SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable, ', ' ORDER BY ordinal_position)
			  FROM information_schema.columns WHERE table_schema = 'electric' AND table_name = 'migrations'`,
				"id integer NO, version character varying NO, hash character varying NO, applied_at timestamp with time zone YES"},
			{`SELECT count(*)::text FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
			  WHERE r.relname = 'migrations' AND c.contype IN ('p', 'u')`, "2"},
		}
		for _, c := range checks {
			if got := query(t, uri, c.sql); got != c.want {
				t.Errorf("%s: %s = %q, want %q", name, c.sql, got, c.want)
			}
		}
	}

	st := partState(t, e)
	for _, n := range []string{DBA, DBB} {
		if st[n].State != "running" || st[n].PID == 0 || st[n].Port != e.Ports()[n] {
			t.Errorf("status of %s = %+v, want running with a pid on port %d", n, st[n], e.Ports()[n])
		}
	}
	if st[Engine].State != "stopped" {
		t.Errorf("engine state = %q, want stopped (--no-engine)", st[Engine].State)
	}
	pidA := st[DBA].PID

	// Idempotent: a second up reports what runs and changes nothing.
	prog.Reset()
	up(t, e)
	if !strings.Contains(prog.String(), "db_a already running") || strings.Contains(prog.String(), "initdb") {
		t.Errorf("second up did not just report:\n%s", prog)
	}
	if pid := partState(t, e)[DBA].PID; pid != pidA {
		t.Errorf("second up restarted db_a: pid %d, was %d", pid, pidA)
	}

	// Logs come from the clusters.
	var logs bytes.Buffer
	if err := e.Logs(context.Background(), &logs, []string{DBA}, 0, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "ready to accept connections") {
		t.Errorf("db_a log lacks the ready line:\n%s", logs.String())
	}
	if err := e.Logs(context.Background(), &logs, []string{"db_c"}, 0, false); err == nil || !strings.Contains(err.Error(), "unknown part") {
		t.Errorf("logs of db_c: err = %v, want unknown part", err)
	}

	// psql as the command would exec it.
	path, argv, env, err := e.Psql(DBB, []string{"-At", "-c", "SELECT 40 + 2"})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, argv[1:]...)
	cmd.Env = env
	b, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(b)) != "42" {
		t.Errorf("psql: %v: %s", err, b)
	}

	ctx := context.Background()
	if err := e.Down(ctx); err != nil {
		t.Fatal(err)
	}
	st = partState(t, e)
	for _, n := range []string{DBA, DBB} {
		if st[n].State != "stopped" {
			t.Errorf("after down %s is %q", n, st[n].State)
		}
	}
	if _, _, _, err := e.Psql(DBA, nil); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("psql on a stopped cluster: err = %v", err)
	}

	// A warm up on other ports: the clusters follow, the state remembers.
	opts2 := opts
	p2, err := pgcluster.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	opts2.DBAPort, opts2.DBBPort = p2[0], p2[1]
	e2 := newEnv(t, opts2)
	prog.Reset()
	up(t, e2)
	if strings.Contains(prog.String(), "initdb") {
		t.Errorf("warm up ran initdb:\n%s", prog)
	}
	if got := query(t, e2.URI(DBA), "SHOW port"); got != fmt.Sprint(opts2.DBAPort) {
		t.Errorf("db_a port = %s, want %d", got, opts2.DBAPort)
	}
	e3, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if e3.Ports()[DBB] != opts2.DBBPort || e3.Ports()[Engine] != opts.StatusPort {
		t.Errorf("remembered ports = %v, want db_b %d, engine %d", e3.Ports(), opts2.DBBPort, opts.StatusPort)
	}
	var js bytes.Buffer
	if err := e3.WriteStatus(ctx, &js, true); err != nil {
		t.Fatal(err)
	}
	var decoded Status
	if err := json.Unmarshal(js.Bytes(), &decoded); err != nil || len(decoded.Parts) != 3 || decoded.Parts[0].State != "running" {
		t.Errorf("status --json = %s (%v)", js.String(), err)
	}

	removed, err := e3.Reset(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) == 0 || removed[len(removed)-1] != dir {
		t.Errorf("reset removed %v, want it to end with %s", removed, dir)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("state dir still there after reset: %v", err)
	}
}

func TestEngineLifecycle(t *testing.T) {
	t.Parallel()
	dir := stateDir(t)
	prog := &testkit.SyncBuffer{}
	opts := testOptions(t, dir, prog)
	opts.NoEngine = false
	opts.StopTimeout = 20 * time.Second
	engine := func(mode string) []string { return []string{os.Args[0], fakeEngineArg, mode} }

	// An engine that cannot run: up warns in one line and succeeds.
	opts.EngineCommand = engine("exit")
	sum := up(t, newEnv(t, opts))
	if sum.Engine != nil || !strings.Contains(sum.EngineNote, "the replication engine is not built yet") {
		t.Errorf("engine = %+v, note %q; want a note with the engine's last line", sum.Engine, sum.EngineNote)
	}
	if !strings.Contains(prog.String(), "! start engine: not available, Postgres is up: electric: the replication engine is not built yet") {
		t.Errorf("progress lacks the one-line warning:\n%s", prog)
	}

	// A working engine: started detached with the dev configuration.
	opts.EngineCommand = engine("serve")
	e := newEnv(t, opts)
	sum = up(t, e)
	if sum.Engine == nil {
		t.Fatalf("engine not started: %+v\n%s", sum, prog)
	}
	resp, err := http.Get(sum.Engine.StatusURL)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	want := map[string]string{
		"CONNECTORS":                e.Connectors(),
		"ELECTRIC_HOST":             "127.0.0.1",
		"OFFSET_STORAGE_FILE":       filepath.Join(dir, engineWorkDir, offsetFile),
		"WEBSOCKET_PORT":            fmt.Sprint(opts.WebsocketPort),
		"STATUS_PORT":               fmt.Sprint(opts.StatusPort),
		"POSTGRES_REPLICATION_PORT": fmt.Sprint(opts.ReplicationPort),
		"LISTEN_ADDRESS":            "127.0.0.1",
		"TLS_CERT_FILE":             "",
		"cwd":                       filepath.Join(dir, engineWorkDir),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("engine saw %s=%q, want %q", k, got[k], v)
		}
	}
	pid := sum.Engine.PID
	if b, _ := os.ReadFile(filepath.Join(dir, enginePIDFile)); strings.TrimSpace(string(b)) != fmt.Sprint(pid) {
		t.Errorf("engine.pid = %q, want %d", b, pid)
	}
	if sid, _ := syscall.Getpgid(pid); sid != pid {
		t.Errorf("engine process group = %d, want its own (%d): it must be detached", sid, pid)
	}
	if st := partState(t, e)[Engine]; st.State != "running" || st.PID != pid || st.Detail != "" {
		t.Errorf("engine status = %+v, want running pid %d", st, pid)
	}

	prog.Reset()
	up(t, e)
	if !strings.Contains(prog.String(), fmt.Sprintf("engine already running: pid %d", pid)) {
		t.Errorf("second up did not report the running engine:\n%s", prog)
	}

	if err := e.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	if processAlive(pid) {
		t.Errorf("engine pid %d alive after down", pid)
	}
	if _, err := os.Stat(filepath.Join(dir, enginePIDFile)); !os.IsNotExist(err) {
		t.Errorf("engine.pid left after down: %v", err)
	}
	var logs bytes.Buffer
	if err := e.Logs(context.Background(), &logs, []string{Engine}, 0, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "fake engine stopping") {
		t.Errorf("engine log lacks its SIGTERM exit:\n%s", logs.String())
	}

	// An engine that ignores SIGTERM is killed after the stop timeout.
	opts.EngineCommand = engine("stubborn")
	opts.StopTimeout = 300 * time.Millisecond
	e = newEnv(t, opts)
	sum = up(t, e)
	if sum.Engine == nil {
		t.Fatalf("stubborn engine not started: %+v", sum)
	}
	if err := e.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	if processAlive(sum.Engine.PID) {
		t.Errorf("stubborn engine pid %d survived down", sum.Engine.PID)
	}
}

// TestEngineTLS: up --tls makes a local certificate (key 0600), starts the
// engine with it, reaches its status API over https, and the next up
// reuses the certificate.
func TestEngineTLS(t *testing.T) {
	t.Parallel()
	dir := stateDir(t)
	prog := &testkit.SyncBuffer{}
	opts := testOptions(t, dir, prog)
	opts.NoEngine, opts.TLS = false, true
	opts.EngineCommand = []string{os.Args[0], fakeEngineArg, "serve"}
	e := newEnv(t, opts)
	sum := up(t, e)
	if sum.Engine == nil {
		t.Fatalf("engine not started: %+v\n%s", sum, opts.Progress)
	}
	certFile, keyFile := filepath.Join(dir, "tls", "localhost.crt"), filepath.Join(dir, "tls", "localhost.key")
	if sum.Engine.CertFile != certFile || !strings.HasPrefix(sum.Engine.StatusURL, "https://127.0.0.1:") || !strings.HasPrefix(sum.Engine.WebsocketURL, "wss://127.0.0.1:") {
		t.Errorf("engine info %+v, want https/wss with %s", sum.Engine, certFile)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	pool, err := tlsconf.CertPool(certFile)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(sum.Engine.StatusURL)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if got["TLS_CERT_FILE"] != certFile || got["TLS_KEY_FILE"] != keyFile || got["LISTEN_ADDRESS"] != "127.0.0.1" {
		t.Errorf("engine saw %v", got)
	}
	if st := partState(t, e)[Engine]; st.State != "running" || st.Detail != "" {
		t.Errorf("engine status = %+v: its https status API must answer", st)
	}

	before, _ := os.ReadFile(certFile)
	if err := e.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	prog.Reset()
	up(t, newEnv(t, opts))
	if after, _ := os.ReadFile(certFile); !bytes.Equal(before, after) || !strings.Contains(prog.String(), "reused "+certFile) {
		t.Errorf("the next up did not reuse the certificate:\n%s", prog)
	}
}

func TestPreflightPortInUse(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port

	cases := []struct {
		name string
		set  func(*Options)
		want string
	}{
		{"db_b", func(o *Options) { o.DBBPort = busy }, fmt.Sprintf("port %d for db_b is already in use by another process", busy)},
		{"engine status", func(o *Options) { o.NoEngine = false; o.StatusPort = busy }, fmt.Sprintf("port %d for the engine status is already in use", busy)},
		{"same port twice", func(o *Options) { o.DBAPort = o.DBBPort }, "is given to both db_a and db_b"},
		{"out of range", func(o *Options) { o.WebsocketPort = 70000 }, "port 70000 for engine websocket is out of range"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := stateDir(t)
			opts := testOptions(t, dir, &testkit.SyncBuffer{})
			c.set(&opts)
			e, err := New(opts)
			if err == nil {
				_, err = e.Up(context.Background())
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if _, statErr := os.Stat(filepath.Join(dir, "db_a")); statErr == nil {
				t.Errorf("a failed preflight created a cluster")
			}
		})
	}
}

func TestPreflightUnreachableDir(t *testing.T) {
	t.Parallel()
	base := stateDir(t)
	locked := filepath.Join(filepath.Dir(base), "locked")
	if err := os.Mkdir(locked, 0o700); err != nil {
		t.Fatal(err)
	}
	opts := testOptions(t, filepath.Join(locked, "dev"), &testkit.SyncBuffer{})
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.preflight(context.Background())
	if os.Geteuid() == 0 {
		// Root runs the server as postgres, who cannot enter a 0700 root dir.
		if err == nil || !strings.Contains(err.Error(), "the postgres user cannot enter "+locked) {
			t.Fatalf("as root: err = %v, want one naming %s", err, locked)
		}
		if _, err := os.Stat(filepath.Join(locked, "dev")); !os.IsNotExist(err) {
			t.Errorf("the failed preflight left the state directory it created: %v", err)
		}
	} else if err != nil {
		// Otherwise the server runs as the caller, who owns the directory.
		t.Fatalf("as uid %d: err = %v, want none", os.Geteuid(), err)
	}
}

func TestResetRefusesForeignDir(t *testing.T) {
	t.Parallel()
	dir := stateDir(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "precious.txt"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Reset(context.Background()); err == nil || !strings.Contains(err.Error(), "refusing to delete") {
		t.Fatalf("reset of a foreign dir: err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "precious.txt")); err != nil {
		t.Fatalf("reset touched a foreign dir: %v", err)
	}
}

func TestProgress(t *testing.T) {
	t.Parallel()
	for _, tty := range []bool{false, true} {
		var b testkit.SyncBuffer
		p := &progress{w: &b, tty: tty}
		p.step("quick", func() (string, error) { time.Sleep(250 * time.Millisecond); return "detail", nil })
		p.step("warned", func() (string, error) { return "", warning{"heads up"} })
		err := p.step("broken", func() (string, error) { return "", fmt.Errorf("boom") })
		if err == nil || err.Error() != "boom" {
			t.Errorf("tty=%v: step error = %v, want boom", tty, err)
		}
		raw := b.String()
		out := regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]").ReplaceAllString(raw, "")
		if tty && !strings.Contains(raw, "\x1b[32m✓\x1b[0m quick") {
			t.Errorf("tty: the done mark is not green: %q", raw)
		}
		for _, want := range []string{"✓ quick: detail (0.", "! warned: heads up (", "✗ broken: failed ("} {
			if !strings.Contains(out, want) {
				t.Errorf("tty=%v: output lacks %q:\n%q", tty, want, out)
			}
		}
		if tty != strings.Contains(raw, "\r\x1b[K") {
			t.Errorf("tty=%v: line rewriting present=%v:\n%q", tty, !tty, out)
		}
		if tty && !strings.ContainsAny(out, strings.Join(spinnerFrames, "")) {
			t.Errorf("tty: no spinner frame in %q", out)
		}
	}
}

func TestLogsFollow(t *testing.T) {
	t.Parallel()
	dir := stateDir(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, engineLog)
	if err := os.WriteFile(logPath, []byte("one\ntwo\nthree\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var last bytes.Buffer
	if err := e.Logs(context.Background(), &last, []string{Engine}, 2, false); err != nil {
		t.Fatal(err)
	}
	if last.String() != "two\nthree\n" {
		t.Errorf("last 2 lines = %q", last.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	out := &testkit.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- e.Logs(ctx, out, nil, 1, true) }()
	waitFor := func(want string) {
		testkit.Until(30*time.Second, func() bool { return out.String() == want })
	}
	waitFor("engine | three\n")
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A line written in two pieces comes out whole.
	f.WriteString("fo")
	time.Sleep(300 * time.Millisecond)
	f.WriteString("ur\n")
	f.Close()
	want := "engine | three\nengine | four\n"
	waitFor(want)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if out.String() != want {
		t.Errorf("followed output = %q, want %q", out.String(), want)
	}
}

func TestForeignDataDirKept(t *testing.T) {
	t.Parallel()
	dir := stateDir(t)
	if err := os.MkdirAll(filepath.Join(dir, DBA), 0o755); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(dir, DBA, "notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, testOptions(t, dir, &testkit.SyncBuffer{}))
	_, err := e.Up(context.Background())
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, DBA)+" holds files but no cluster") {
		t.Fatalf("up over a foreign data dir: err = %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("up touched a foreign file: %v", err)
	}
}
