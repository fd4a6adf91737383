package nemesis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/internal/faultproxy"
	"github.com/electric-sql/electric-go/internal/pgcluster"
	"github.com/electric-sql/electric-go/internal/pgtest"
	"github.com/electric-sql/electric-go/internal/testkit"
)

// electricBin is the engine binary built once by TestMain.
var electricBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "electric-nemesis-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "nemesis:", err)
		os.Exit(2)
	}
	electricBin = filepath.Join(dir, "electric")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	build := exec.Command(goTool, "build", "-o", electricBin, "./cmd/electric")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "nemesis: building the engine: %v\n%s", err, out)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// schemaSQL: insert-only rows with a unique id per write (nem), one counter
// row per writer that only its writer updates (counters), and a small key
// space every writer overwrites (kv: conflicts are the common case).
const schemaSQL = `
CREATE TABLE public.nem (id text PRIMARY KEY, writer text NOT NULL, seq integer NOT NULL);
CREATE TABLE public.counters (writer text PRIMARY KEY, n integer NOT NULL);
CREATE TABLE public.kv (k integer PRIMARY KEY, v text);
`

// clientNames are the run's Satellite clients.
var clientNames = []string{"client_A", "client_B"}

// postgres is one Postgres of the run and the proxies in front of it.
type postgres struct {
	name   string
	pg     *pgtest.Cluster
	ingest *faultproxy.Proxy // engine → this Postgres (CONNECTORS points here)
}

// env is the run's world: the Postgres, the engine process and the proxies.
type env struct {
	t       *testing.T
	dir     string
	stateFS string // the small filesystem holding the engine's state
	pgs     []*postgres
	// subs is in front of the engine's publisher (ELECTRIC_HOST points at
	// it); connections are tagged by their Postgres user, the connector.
	subs *faultproxy.Proxy
	ws   map[string]*faultproxy.Proxy // one per client → engine
	vars map[string]string
	log  *testkit.SyncBuffer

	// fullDiskStarts is what each engine start on a full disk did;
	// fullDiskRuns, what the running engine did while its disk was full.
	fullDiskStarts, fullDiskRuns []string

	mu      sync.Mutex
	engine  *exec.Cmd
	exited  chan struct{} // closed when the engine process ends
	killed  bool          // the test killed it (not an exit by itself)
	logMark int           // length of the log when it started
	exit    string        // how it ended
}

// stateFSBytes is the size of the engine's state filesystem: room for the
// run's log, small enough to fill in a moment.
const stateFSBytes = 256 << 20

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), log: &testkit.SyncBuffer{}}
	if os.Getenv("ENGINE_LOG") != "" {
		e.log.Tee = os.Stderr
	}
	e.mountStateFS()
	ports, err := pgcluster.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	replPort, statusPort, wsPort := ports[0], ports[1], ports[2]
	var conns []string
	for i := 1; i <= 2; i++ {
		p := &postgres{name: fmt.Sprintf("postgres_%d", i), pg: pgtest.Start(t)}
		p.pg.Exec(schemaSQL)
		// pgtest turns synchronous_commit off for speed: an immediate
		// shutdown would then lose commits Postgres acknowledged, which is
		// not the engine's fault. fsync stays off: no OS crash here.
		p.pg.Exec("ALTER SYSTEM SET synchronous_commit = on")
		p.pg.Exec("SELECT pg_reload_conf()")
		p.ingest = e.proxy(fmt.Sprintf("127.0.0.1:%d", p.pg.Port), "127.0.0.1:0", nil)
		u, err := url.Parse(p.pg.URI())
		if err != nil {
			t.Fatal(err)
		}
		u.Host = p.ingest.Addr()
		conns = append(conns, p.name+"="+u.String())
		e.pgs = append(e.pgs, p)
	}
	// The subscriptions dial ELECTRIC_HOST:POSTGRES_REPLICATION_PORT: the
	// engine listens on 127.0.0.1, the proxy on 127.0.0.2 at the same port.
	e.subs = e.proxy(fmt.Sprintf("127.0.0.1:%d", replPort), fmt.Sprintf("127.0.0.2:%d", replPort), faultproxy.PostgresUser)
	e.ws = map[string]*faultproxy.Proxy{}
	for _, c := range clientNames {
		e.ws[c] = e.proxy(fmt.Sprintf("127.0.0.1:%d", wsPort), "127.0.0.1:0", nil)
	}
	e.vars = map[string]string{
		"CONNECTORS":                strings.Join(conns, ";"),
		"ELECTRIC_HOST":             "127.0.0.2",
		"LISTEN_ADDRESS":            "127.0.0.1",
		"POSTGRES_REPLICATION_PORT": fmt.Sprint(replPort),
		"STATUS_PORT":               fmt.Sprint(statusPort),
		"WEBSOCKET_PORT":            fmt.Sprint(wsPort),
		"SATELLITE_TABLES":          "public.nem,public.counters,public.kv",
		"OFFSET_STORAGE_FILE":       filepath.Join(e.stateFS, "state"),
		"MIGRATIONS_DIR":            filepath.Join(e.dir, "migrations"),
		"LOG_LEVEL":                 "info",
	}
	t.Cleanup(func() {
		e.kill()
		if t.Failed() {
			t.Logf("engine log (tail):\n%s", e.log.Tail(30000))
		}
	})
	return e
}

func (e *env) proxy(target, listen string, h faultproxy.Handshake) *faultproxy.Proxy {
	e.t.Helper()
	p, err := faultproxy.New(listen, target, h)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(p.Close)
	return p
}

// mountStateFS mounts a small tmpfs for the engine's state, so the run can
// fill it. The suite runs as root (as every Postgres test here does); a
// machine that refuses the mount fails the test, saying so.
func (e *env) mountStateFS() {
	e.t.Helper()
	e.stateFS = filepath.Join(e.dir, "statefs")
	if err := os.MkdirAll(e.stateFS, 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", e.stateFS, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", stateFSBytes)); err != nil {
		e.t.Fatalf("mounting a %d MiB tmpfs for the engine's state (the full-disk fault needs root and CAP_SYS_ADMIN): %v", stateFSBytes>>20, err)
	}
	e.t.Cleanup(func() {
		if err := syscall.Unmount(e.stateFS, syscall.MNT_DETACH); err != nil {
			e.t.Errorf("unmounting %s: %v", e.stateFS, err)
		}
	})
}

// fillStateFS writes a file that takes every free byte of the state
// filesystem and returns a function that removes it.
func (e *env) fillStateFS() (release func()) {
	e.t.Helper()
	path := filepath.Join(e.stateFS, "nemesis-filler")
	f, err := os.Create(path)
	if err != nil {
		e.t.Fatalf("creating the filler: %v", err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				e.t.Fatalf("filling the state filesystem: %v", err)
			}
			break
		}
	}
	// The last bytes a 1 MiB write could not take.
	small := make([]byte, 4096)
	for {
		if _, err := f.Write(small); err != nil {
			break
		}
	}
	f.Close()
	return func() {
		if err := os.Remove(path); err != nil {
			e.t.Errorf("removing the filler: %v", err)
		}
	}
}

// start runs the engine binary and waits until it is ready.
func (e *env) start() {
	e.t.Helper()
	e.spawn()
	e.waitReady(90 * time.Second)
}

// startOnFullDisk starts the engine on a full state disk and records what
// it did within 30 s: ready anyway (it needed no new block), or exited
// (with its last error line, what an operator sees), or neither.
func (e *env) startOnFullDisk() {
	e.t.Helper()
	e.spawn()
	var what string
	testkit.Until(30*time.Second, func() bool {
		if x := e.exitedByItself(); x != "" {
			what = "exited (" + x + "): " + e.lastError()
			return true
		}
		if ok, _ := e.ready(); ok {
			what = "ready"
			return true
		}
		return false
	})
	if what == "" {
		what = "neither ready nor exited after 30 s (killed): " + e.lastError()
		e.kill()
	}
	e.fullDiskStarts = append(e.fullDiskStarts, what)
}

// running reports whether the engine process runs.
func (e *env) running() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.exited == nil {
		return false
	}
	select {
	case <-e.exited:
		return false
	default:
		return true
	}
}

// spawn starts the engine binary.
func (e *env) spawn() {
	e.t.Helper()
	cmd := exec.Command(electricBin, "serve")
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	for k, v := range e.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = e.log, e.log
	mark := len(e.log.String())
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("starting the engine: %v", err)
	}
	exited := make(chan struct{})
	e.mu.Lock()
	e.engine, e.exited, e.killed, e.exit, e.logMark = cmd, exited, false, "", mark
	e.mu.Unlock()
	go func() {
		err := cmd.Wait()
		e.mu.Lock()
		e.exit = fmt.Sprint(cmd.ProcessState)
		if err != nil && cmd.ProcessState == nil {
			e.exit = err.Error()
		}
		e.mu.Unlock()
		close(exited)
	}()
}

// kill SIGKILLs the engine (a no-op when it is not running).
func (e *env) kill() {
	e.mu.Lock()
	cmd, exited := e.engine, e.exited
	e.killed = true
	e.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-exited
}

// stop stops the engine with SIGTERM, as an operator would.
func (e *env) stop() {
	e.t.Helper()
	e.mu.Lock()
	cmd, exited := e.engine, e.exited
	e.killed = true
	e.mu.Unlock()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		e.t.Errorf("the engine did not stop within 30 s of SIGTERM")
		e.kill()
	}
}

// exitedByItself reports how the engine ended when it stopped without the
// test killing it ("" while it runs or after a kill).
func (e *env) exitedByItself() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-e.exited:
		if !e.killed {
			return e.exit
		}
	default:
	}
	return ""
}

func (e *env) statusURL(path string) string {
	return "http://127.0.0.1:" + e.vars["STATUS_PORT"] + path
}

// ready reports whether /api/status says every connector and the log are
// ready, and what it said.
func (e *env) ready() (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.statusURL("/api/status"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var st struct {
		Connectors map[string]any `json:"connectors"`
		Vaxine     bool           `json:"vaxine"`
	}
	if json.Unmarshal(b, &st) != nil || !st.Vaxine {
		return false, string(b)
	}
	for _, p := range e.pgs {
		if st.Connectors[p.name] != true {
			return false, string(b)
		}
	}
	return true, string(b)
}

// waitReady waits until the engine is ready; an engine that exits meanwhile
// or stays unready fails the test.
func (e *env) waitReady(d time.Duration) {
	e.t.Helper()
	var last string
	if !testkit.Until(d, func() bool {
		if x := e.exitedByItself(); x != "" {
			last = "the engine exited: " + x
			return true
		}
		ok, s := e.ready()
		last = s
		return ok
	}) || strings.HasPrefix(last, "the engine exited") {
		e.t.Fatalf("engine not ready after %v: %s", d, last)
	}
}

// getJSON reads a status API route into v.
func (e *env) getJSON(path string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.statusURL(path), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v)
}

// crashPostgres shuts p down in immediate mode (SIGQUIT to the postmaster,
// what `pg_ctl stop -m immediate` sends: no checkpoint, crash recovery at
// the next start), waits hold and starts it again.
func (e *env) crashPostgres(p *postgres, hold time.Duration) {
	e.t.Helper()
	pid := p.pg.PID()
	if pid == 0 {
		e.t.Fatalf("%s is not running", p.name)
	}
	if err := syscall.Kill(pid, syscall.SIGQUIT); err != nil {
		e.t.Fatalf("crashing %s: %v", p.name, err)
	}
	if !testkit.Until(30*time.Second, func() bool { return !p.pg.Running() }) {
		e.t.Fatalf("%s still running 30 s after an immediate shutdown", p.name)
	}
	time.Sleep(hold)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The port may be held for a moment by connections the crash left.
	var err error
	for range 50 {
		if err = p.pg.Start(ctx); err == nil || !errors.Is(err, pgcluster.ErrPortInUse) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		e.t.Fatalf("restarting %s after its crash: %v", p.name, err)
	}
}
