package main

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/migrations"
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
