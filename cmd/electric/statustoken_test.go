package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/migrations"
	"github.com/electric-sql/electric-go/migrations/bundle"
)

// --token, else STATUS_API_TOKEN, reaches every migrate subcommand's options
// and the dashboard's; the flag has no default, so --help never shows the
// token from the environment.
func TestStatusTokenFlags(t *testing.T) {
	def := migrateOptions{Dir: "migrations", Suffix: "/postgres.sql", URL: "http://127.0.0.1:5050"}
	withTok := func(tok string) migrateOptions { o := def; o.Token = tok; return o }
	runParseCases(t, []string{"MIGRATIONS_DIR", "MIGRATIONS_FILE_NAME_SUFFIX", "STATUS_PORT", "STATUS_API_TOKEN"},
		func(record func(any) error) *cobra.Command {
			return newMigrateCmdWith(migrateRunners{
				new:   func(_ *cobra.Command, o migrateNewOptions) error { return record(o) },
				list:  func(_ *cobra.Command, o migrateListOptions) error { return record(o) },
				apply: func(_ *cobra.Command, o migrateApplyOptions) error { return record(o) },
			})
		},
		[]parseCase{
			{name: "no token", args: []string{"list"}, want: migrateListOptions{migrateOptions: def}},
			{name: "token from the environment", env: map[string]string{"STATUS_API_TOKEN": "from-env"},
				args: []string{"list"}, want: migrateListOptions{migrateOptions: withTok("from-env")}},
			{name: "--token beats the environment", env: map[string]string{"STATUS_API_TOKEN": "from-env"},
				args: []string{"apply", "1_x", "--token", "from-flag"},
				want: migrateApplyOptions{migrateOptions: withTok("from-flag"), Name: "1_x", Wait: 30 * time.Second}},
			{name: "--token before the subcommand", args: []string{"--token", "t", "new", "x"},
				want: migrateNewOptions{migrateOptions: withTok("t"), Title: "x"}},
		})
	runParseCases(t, []string{"STATUS_PORT", "STATUS_API_TOKEN"},
		func(record func(any) error) *cobra.Command {
			return newDashboardCmdWith(func(_ *cobra.Command, o dashboardOptions) error { return record(o) })
		},
		[]parseCase{
			{name: "dashboard defaults", args: nil, want: dashboardOptions{URL: "http://127.0.0.1:5050"}},
			{name: "dashboard token from the environment", env: map[string]string{"STATUS_API_TOKEN": "from-env"},
				want: dashboardOptions{URL: "http://127.0.0.1:5050", Token: "from-env"}},
			{name: "dashboard --token", env: map[string]string{"STATUS_API_TOKEN": "from-env"},
				args: []string{"--token", "from-flag", "--url", "http://h:1"}, want: dashboardOptions{URL: "http://h:1", Token: "from-flag"}},
		})

	t.Setenv("STATUS_API_TOKEN", "secret-from-the-environment")
	for _, cmd := range []*cobra.Command{newMigrateCmd(), newDashboardCmd()} {
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetArgs([]string{"--help"})
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "--token") || strings.Contains(out.String(), "secret-from-the-environment") {
			t.Errorf("%s --help:\n%s", cmd.Name(), out.String())
		}
	}
}

// statusProvider names one ready connector, for apply's target list.
type statusProvider struct{}

func (statusProvider) Status(context.Context) (status.Status, error) {
	return status.Status{Connectors: map[string]status.ConnectorState{"db_a": status.StateReady}, LogHealthy: true}, nil
}
func (statusProvider) Connectors(context.Context) ([]status.Connector, error) { return nil, nil }
func (statusProvider) Log(context.Context) (status.Log, error)                { return status.Log{}, nil }
func (statusProvider) Sessions(context.Context) ([]status.Session, error)     { return nil, nil }

// recordingController takes every migration.
type recordingController struct {
	mu      sync.Mutex
	applied []string
}

func (c *recordingController) Origins() []string { return []string{"db_a"} }
func (c *recordingController) Latest(context.Context, string) (*migrations.Applied, error) {
	return nil, nil
}
func (c *recordingController) Applied(context.Context, string) ([]migrations.Applied, error) {
	return nil, nil
}
func (c *recordingController) Migrate(_ context.Context, _ string, m migrations.Migration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applied = append(c.applied, m.Name)
	return nil
}

// migrate apply against the status server with STATUS_API_TOKEN set: without
// the token one clear line and nothing applied; with --token or the
// environment variable, applied.
func TestMigrateApplySendsToken(t *testing.T) {
	const token = "cli-status-token-0123456789"
	dir := t.TempDir()
	m, err := migrations.Create(dir, "", "x", time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	s, err := status.New(status.Options{Provider: statusProvider{}, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	ctrl := &recordingController{}
	h := &migrations.Handler{Dir: dir, Ctrl: ctrl}
	s.Handle("/api/migrations", h)
	s.Handle("/api/migrations/", h)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	apply := func(env string, args ...string) (string, error) {
		t.Setenv("STATUS_API_TOKEN", env)
		cmd := newMigrateCmd()
		cmd.SilenceUsage, cmd.SilenceErrors = true, true // as under the root command
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append([]string{"apply", m.Name, "--dir", dir, "--url", srv.URL, "--wait", "0s"}, args...))
		err := cmd.ExecuteContext(context.Background())
		return out.String(), err
	}

	for _, tc := range []struct {
		name, env string
		args      []string
	}{
		{name: "no token"},
		{name: "wrong --token", args: []string{"--token", "wrong-token-wrong-token"}},
		{name: "wrong environment token", env: "wrong-token-wrong-token"},
	} {
		out, err := apply(tc.env, tc.args...)
		if !errors.Is(err, status.ErrRefused) {
			t.Fatalf("%s: %v (output %q), want ErrRefused", tc.name, err, out)
		}
		if msg := err.Error(); strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "the engine refused the request: set STATUS_API_TOKEN or --token") {
			t.Errorf("%s: error reads %q", tc.name, msg)
		}
		if want := "db_a: applying " + m.Name + " … refused\n"; out != want {
			t.Errorf("%s: output %q, want %q", tc.name, out, want)
		}
	}
	if len(ctrl.applied) != 0 {
		t.Fatalf("refused requests applied %v", ctrl.applied)
	}

	if out, err := apply("", "--token", token); err != nil || !strings.Contains(out, "… ok") {
		t.Fatalf("--token: %v %q", err, out)
	}
	if out, err := apply(token); err != nil || !strings.Contains(out, "… ok") {
		t.Fatalf("STATUS_API_TOKEN: %v %q", err, out)
	}
	ctrl.mu.Lock()
	defer ctrl.mu.Unlock()
	if len(ctrl.applied) != 2 {
		t.Fatalf("applied %v, want twice", ctrl.applied)
	}
}

// bookController serves the Satellite routes from a Book.
type bookController struct {
	recordingController
	book *migrations.Book
}

func (c *bookController) Bundle(context.Context) ([]bundle.Migration, error) { return c.book.Bundle() }
func (c *bookController) Published(context.Context) (migrations.PublishedStatus, error) {
	p := migrations.PublishedStatus{Tables: []string{}}
	if r := c.book.Published(); r != nil {
		p.Name, p.Tables = r.Name, []string{"public.items"}
	}
	return p, nil
}
func (c *bookController) Publish(ctx context.Context, name string) (migrations.PublishedStatus, error) {
	if err := c.book.Publish(name, 1, time.Unix(1, 0)); err != nil {
		return migrations.PublishedStatus{}, err
	}
	return c.Published(ctx)
}

// migrate build and publish send the token too; refused, they say so in one
// line, write nothing and publish nothing.
func TestMigrateBuildAndPublishSendToken(t *testing.T) {
	const token = "cli-status-token-0123456789"
	s, err := status.New(status.Options{Provider: statusProvider{}, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	ctrl := &bookController{book: &migrations.Book{}}
	ctrl.book.Add("1_items", "items", "db_a", bundle.Schema{Tables: []bundle.Table{{Schema: "public", Name: "items",
		Columns: []bundle.Column{{Num: 1, Name: "id", Type: "text", NotNull: true, PrimaryKey: 1}}}}}, time.Unix(1, 0))
	h := &migrations.Handler{Ctrl: ctrl}
	s.Handle("/api/migrations", h)
	s.Handle("/api/migrations/", h)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "bundle")
	run := func(args ...string) (string, error) {
		t.Setenv("STATUS_API_TOKEN", "")
		cmd := newMigrateCmd()
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		var buf bytes.Buffer
		cmd.SetOut(&buf)
		cmd.SetErr(&buf)
		cmd.SetArgs(append(args, "--url", srv.URL))
		err := cmd.ExecuteContext(context.Background())
		return buf.String(), err
	}
	for _, args := range [][]string{{"build", "--out", out}, {"publish", "1_items"}, {"publish"}} {
		if _, err := run(args...); !errors.Is(err, status.ErrRefused) || strings.Contains(err.Error(), "\n") ||
			!strings.Contains(err.Error(), "the engine refused the request: set STATUS_API_TOKEN or --token") {
			t.Fatalf("%v without the token: %v", args, err)
		}
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) || ctrl.book.Published() != nil {
		t.Fatalf("refused requests wrote %v or published %v", err, ctrl.book.Published())
	}
	if o, err := run("build", "--out", out, "--token", token); err != nil || !strings.Contains(o, "(1 migrations)") {
		t.Fatalf("build: %v %q", err, o)
	}
	if _, err := os.Stat(filepath.Join(out, "index.js")); err != nil {
		t.Fatal(err)
	}
	if o, err := run("publish", "1_items", "--token", token); err != nil || !strings.Contains(o, "published 1_items\nSatellites get: public.items\n") {
		t.Fatalf("publish: %v %q", err, o)
	}
}
