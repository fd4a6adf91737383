package devenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/electric-sql/electric-go/internal/pgcluster"
)

// Down stops the engine (SIGTERM, then SIGKILL after the stop timeout) and
// both clusters (pg_ctl stop, fast mode). Stopping what is stopped is fine.
func (e *Env) Down(ctx context.Context) error {
	var errs []error
	err := e.prog.step("stop engine", func() (string, error) {
		pid, err := e.stopEngine(ctx)
		if err != nil {
			return "", err
		}
		if pid == 0 {
			return "not running", nil
		}
		return fmt.Sprintf("pid %d", pid), nil
	})
	errs = append(errs, err)
	var running []string
	for _, n := range e.clusterNames() {
		if e.clusters[n].Running() {
			running = append(running, n)
		} else {
			e.prog.line("✓", "stop "+n, "not running", "")
		}
	}
	if len(running) > 0 {
		err := e.prog.step("stop "+strings.Join(running, ", "), func() (string, error) {
			return "", e.parallel(ctx, running, func(ctx context.Context, c *pgcluster.Cluster) error { return c.Stop(ctx) })
		})
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// PartStatus is the state of one part of the environment.
type PartStatus struct {
	Name  string `json:"name"`
	State string `json:"state"` // running, stopped, not created
	PID   int    `json:"pid,omitempty"`
	Port  int    `json:"port"`
	URI   string `json:"uri,omitempty"`
	Log   string `json:"log"`
	// Detail says more when the state alone would mislead.
	Detail string `json:"detail,omitempty"`
}

// Status is the state of the whole environment.
type Status struct {
	Dir        string       `json:"dir"`
	Parts      []PartStatus `json:"parts"`
	Connectors string       `json:"connectors"`
}

// Status inspects every part without changing anything.
func (e *Env) Status(ctx context.Context) Status {
	st := Status{Dir: e.dir, Connectors: e.Connectors()}
	for _, n := range e.clusterNames() {
		c := e.clusters[n]
		p := PartStatus{Name: n, Port: c.Port, URI: c.URI(), Log: c.LogFile}
		switch {
		case !c.Initialized():
			p.State = "not created"
		case c.Running():
			p.State, p.PID = "running", c.PID()
			if rp := c.RunningPort(); rp != 0 {
				p.Port = rp
			}
		default:
			p.State = "stopped"
		}
		st.Parts = append(st.Parts, p)
	}
	eng := PartStatus{Name: Engine, Port: e.state.StatusPort, Log: e.path(engineLog), State: "stopped"}
	if pid := e.enginePID(); pid != 0 {
		eng.State, eng.PID, eng.URI = "running", pid, e.StatusURL()
		if !e.statusAnswers(ctx) {
			eng.Detail = "status API not answering"
		}
	} else if _, err := os.Stat(e.path(engineLog)); err == nil {
		if last := lastLine(e.path(engineLog)); last != "" && !strings.HasPrefix(last, "--- ") {
			eng.Detail = "last log line: " + last
		}
	}
	st.Parts = append(st.Parts, eng)
	return st
}

// WriteStatus prints the status as a table, or as JSON.
func (e *Env) WriteStatus(ctx context.Context, w io.Writer, asJSON bool) error {
	st := e.Status(ctx)
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(w, "state directory %s\n", st.Dir)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PART\tSTATE\tPID\tPORT\tCONNECT")
	for _, p := range st.Parts {
		pid := "-"
		if p.PID != 0 {
			pid = fmt.Sprint(p.PID)
		}
		connect := p.URI
		if p.Detail != "" {
			connect = strings.TrimSpace(connect + " (" + p.Detail + ")")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", p.Name, p.State, pid, p.Port, connect)
	}
	return tw.Flush()
}

// Reset stops everything and deletes the state directory. It refuses a
// directory without the state file, so that a mistyped --dir cannot delete
// something that devenv did not make. It returns what it removed.
func (e *Env) Reset(ctx context.Context) ([]string, error) {
	if _, err := os.Stat(e.dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if _, err := os.Stat(e.path(stateFile)); err != nil {
		return nil, fmt.Errorf("refusing to delete %s: it has no %s, so it was not made by 'electric dev up'", e.dir, stateFile)
	}
	if err := e.Down(ctx); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(e.dir)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", e.dir, err)
	}
	var removed []string
	for _, ent := range entries {
		removed = append(removed, filepath.Join(e.dir, ent.Name()))
	}
	if err := os.RemoveAll(e.dir); err != nil {
		return nil, fmt.Errorf("deleting %s: %w", e.dir, err)
	}
	return append(removed, e.dir), nil
}

// LogPath is the log file of a part.
func (e *Env) LogPath(name string) (string, error) {
	if err := checkName(name, true); err != nil {
		return "", err
	}
	if name == Engine {
		return e.path(engineLog), nil
	}
	return e.clusters[name].LogFile, nil
}

// Logs prints the last lines (all when lines <= 0) of the named parts' logs
// (every part when names is empty), then with follow keeps printing what is
// appended until ctx is done. With several logs each line is prefixed by
// its part's name.
func (e *Env) Logs(ctx context.Context, w io.Writer, names []string, lines int, follow bool) error {
	if len(names) == 0 {
		names = []string{DBA, DBB, Engine}
	}
	type tail struct {
		name, path string
		off        int64
		partial    string
	}
	var tails []*tail
	for _, n := range names {
		p, err := e.LogPath(n)
		if err != nil {
			return err
		}
		tails = append(tails, &tail{name: n, path: p})
	}
	prefix := func(t *tail) string {
		if len(tails) == 1 {
			return ""
		}
		return fmt.Sprintf("%-6s | ", t.name)
	}
	found := false
	for _, t := range tails {
		b, err := os.ReadFile(t.path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", t.path, err)
		}
		found = true
		t.off = int64(len(b))
		text := string(b)
		if follow {
			// A line still being written is completed by the follow loop.
			i := strings.LastIndexByte(text, '\n')
			text, t.partial = text[:i+1], text[i+1:]
		}
		text = strings.TrimSuffix(text, "\n")
		if text == "" {
			continue
		}
		ls := strings.Split(text, "\n")
		if lines > 0 && len(ls) > lines {
			ls = ls[len(ls)-lines:]
		}
		for _, l := range ls {
			fmt.Fprintln(w, prefix(t)+l)
		}
	}
	if !found && !follow {
		return fmt.Errorf("no logs in %s: run 'electric dev up' first", e.dir)
	}
	if !follow {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
		for _, t := range tails {
			f, err := os.Open(t.path)
			if err != nil {
				continue
			}
			st, err := f.Stat()
			if err == nil && st.Size() < t.off {
				t.off = 0 // truncated or recreated
			}
			if _, err := f.Seek(t.off, io.SeekStart); err == nil {
				b, _ := io.ReadAll(f)
				t.off += int64(len(b))
				chunk := t.partial + string(b)
				ls := strings.Split(chunk, "\n")
				t.partial = ls[len(ls)-1]
				for _, l := range ls[:len(ls)-1] {
					fmt.Fprintln(w, prefix(t)+l)
				}
			}
			f.Close()
		}
	}
}

// Psql returns the psql executable, its arguments connected to the named
// cluster (extra arguments follow), and its environment with PGPASSWORD.
func (e *Env) Psql(name string, extra []string) (path string, argv []string, env []string, err error) {
	if err := checkName(name, false); err != nil {
		return "", nil, nil, err
	}
	c := e.clusters[name]
	if !c.Running() {
		return "", nil, nil, fmt.Errorf("%s is not running: start it with 'electric dev up'", name)
	}
	path, err = exec.LookPath("psql")
	if err != nil {
		path = filepath.Join(c.BinDir, "psql")
		if _, statErr := os.Stat(path); statErr != nil {
			return "", nil, nil, errors.New("psql not found in PATH nor next to the server binaries: install it (Debian/Ubuntu: apt-get install -y postgresql-client)")
		}
	}
	conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s application_name=electric-dev", c.Port, pgcluster.DefaultUser, pgcluster.DefaultDatabase)
	argv = append([]string{"psql", conninfo}, extra...)
	env = append(os.Environ(), "PGPASSWORD="+pgcluster.DefaultPassword)
	return path, argv, env, nil
}
