// Package satinterop runs the published Satellite client, electric-sql@0.4.3
// on Node with better-sqlite3, as a test peer: one client per process,
// driven by driver.mjs over JSON lines. It is test support only; the client
// itself is installed by `npm ci` in this folder and never committed.
package satinterop

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Dir is this folder. It fails the test when the client is not installed:
// the interop tests are part of the suite and must not be skipped.
func Dir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("locating the interop folder")
	}
	dir := filepath.Dir(file)
	for _, p := range []string{"node_modules/electric-sql/package.json", "node_modules/better-sqlite3/build/Release/better_sqlite3.node"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Fatalf("the published Satellite client is not installed (%v): run `npm ci` in %s", err, dir)
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is needed for the interop tests (Node 20): %v", err)
	}
	return dir
}

// Table describes a client table; Open builds the client's migrations
// bundle from it (table, trigger settings, the four oplog triggers).
type Table struct {
	Name    string   `json:"name"`
	Columns []Column `json:"columns"`
}

// Column is a SQLite column: Type is the declared type with constraints.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
	PK   bool   `json:"pk,omitempty"`
}

// Client is one driver process.
type Client struct {
	t      testing.TB
	Name   string
	DB     string
	cmd    *exec.Cmd
	in     io.WriteCloser
	lines  chan string
	exited chan struct{}
	stderr *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	if len(s) > 4000 {
		s = "…" + s[len(s)-4000:]
	}
	return s
}

// Start starts a driver process for the SQLite file db; Open connects it.
// Set SATCLIENT_LOG_DIR to keep each client's log in a file.
func Start(t testing.TB, name, db string) *Client {
	t.Helper()
	dir := Dir(t)
	cmd := exec.Command("node", filepath.Join(dir, "driver.mjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SATCLIENT_DEBUG=1")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{t: t, Name: name, DB: db, cmd: cmd, in: in, lines: make(chan string, 16),
		exited: make(chan struct{}), stderr: &lockedBuffer{}}
	cmd.Stderr = c.stderr
	if d := os.Getenv("SATCLIENT_LOG_DIR"); d != "" {
		f, err := os.Create(filepath.Join(d, filepath.Base(t.Name())+"-"+name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.Close() })
		cmd.Stderr = io.MultiWriter(c.stderr, f)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		_ = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(c.Kill)
	return c
}

// Kill ends the process (a no-op once it has exited).
func (c *Client) Kill() {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Kill()
	<-c.exited
}

// Do runs one driver command and returns its reply; a client error, a
// crash or a minute without answer fails the test with the client's log.
func (c *Client) Do(cmd map[string]any) map[string]any {
	c.t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := c.in.Write(append(b, '\n')); err != nil {
		c.t.Fatalf("%s: writing %v: %v\n%s", c.Name, cmd["op"], err, c.stderr.tail())
	}
	select {
	case line := <-c.lines:
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			c.t.Fatalf("%s: bad reply %q", c.Name, line)
		}
		if r["ok"] != true {
			c.t.Fatalf("%s: %v failed: %v\nclient log:\n%s", c.Name, cmd["op"], r["error"], c.stderr.tail())
		}
		return r
	case <-c.exited:
		c.t.Fatalf("%s: client exited (%v) during %v\nclient log:\n%s", c.Name, c.cmd.ProcessState, cmd["op"], c.stderr.tail())
	case <-time.After(60 * time.Second):
		c.t.Fatalf("%s: no answer to %v\nclient log:\n%s", c.Name, cmd["op"], c.stderr.tail())
	}
	return nil
}

// Open electrifies the database against ws://127.0.0.1:port/ws with token
// and waits until both replication streams are active; it returns the
// client id.
func (c *Client) Open(port int, token string, tables ...Table) string {
	c.t.Helper()
	r := c.Do(map[string]any{"op": "open", "db": c.DB, "host": "127.0.0.1", "port": port, "token": token, "tables": tables})
	return r["clientId"].(string)
}

// OpenBundle is Open with a given migrations bundle (config.migrations, e.g.
// from migrations/bundle) instead of one built from tables.
func (c *Client) OpenBundle(port int, token string, migrations any) string {
	c.t.Helper()
	r := c.Do(map[string]any{"op": "open", "db": c.DB, "host": "127.0.0.1", "port": port, "token": token, "migrations": migrations})
	return r["clientId"].(string)
}

// Exec runs a write through the electrified database.
func (c *Client) Exec(sql string, args ...any) {
	c.t.Helper()
	if args == nil {
		args = []any{}
	}
	c.Do(map[string]any{"op": "exec", "sql": sql, "args": args})
}

// Query returns rows as JSON objects.
func (c *Client) Query(sql string, args ...any) []map[string]any {
	c.t.Helper()
	if args == nil {
		args = []any{}
	}
	r := c.Do(map[string]any{"op": "query", "sql": sql, "args": args})
	rows, _ := r["rows"].([]any)
	out := make([]map[string]any, len(rows))
	for i, row := range rows {
		out[i] = row.(map[string]any)
	}
	return out
}

// RowsJSON renders a query's rows canonically (keys sorted).
func (c *Client) RowsJSON(sql string) string {
	c.t.Helper()
	b, _ := json.Marshal(c.Query(sql))
	return string(b)
}

// EventuallyRows polls sql until it renders as want (up to 30 s).
func (c *Client) EventuallyRows(sql, want string) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := c.RowsJSON(sql)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: %s\n got %s\nwant %s\nclient log:\n%s", c.Name, sql, got, want, c.stderr.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Meta returns _electric_meta plus the oplog length and the unacked count.
func (c *Client) Meta() map[string]any {
	c.t.Helper()
	return c.Do(map[string]any{"op": "meta"})["meta"].(map[string]any)
}

// WaitAcked waits until the server has acked every local write.
func (c *Client) WaitAcked() { c.t.Helper(); c.Do(map[string]any{"op": "wait_acked"}) }

// Reconnect closes the socket and connects again, as the client does on a
// connectivity change (it does not notice a server-side close itself).
func (c *Client) Reconnect() { c.t.Helper(); c.Do(map[string]any{"op": "reconnect"}) }

// Exit stops the client cleanly.
func (c *Client) Exit() {
	c.t.Helper()
	c.Do(map[string]any{"op": "exit"})
	<-c.exited
}

func (c *Client) String() string { return fmt.Sprintf("client %s (%s)", c.Name, c.DB) }
