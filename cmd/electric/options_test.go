package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/electric-sql/electric-go/devenv"
	"github.com/electric-sql/electric-go/migrations"
)

// parseCase is one command line and what its flag parsing must give: the
// options the runner receives, or an error containing wantErr (the runner is
// then not called).
type parseCase struct {
	name    string
	env     map[string]string
	args    []string
	want    any
	wantErr string
}

// runParseCases runs each case through the command newCmd builds with
// runners that only record their options. Variables in clear are unset for
// every case unless the case sets them.
func runParseCases(t *testing.T, clear []string, newCmd func(record func(any) error) *cobra.Command, cases []parseCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range clear {
				t.Setenv(k, "")
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var got any
			calls := 0
			cmd := newCmd(func(o any) error { got = o; calls++; return nil })
			out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
			cmd.SetOut(out)
			cmd.SetErr(errOut)
			cmd.SetArgs(tc.args)
			err := cmd.ExecuteContext(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%q: error %v, want one containing %q", tc.args, err, tc.wantErr)
				}
				if calls != 0 {
					t.Fatalf("%q: runner called with %+v after a parse error", tc.args, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("%q: %v", tc.args, err)
			}
			if calls != 1 {
				t.Fatalf("%q: runner called %d times, want once", tc.args, calls)
			}
			got = normalizeDevOptions(t, got, out, errOut)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%q:\n got %#v\nwant %#v", tc.args, got, tc.want)
			}
		})
	}
}

func TestMigrateFlags(t *testing.T) {
	def := migrateOptions{Dir: "migrations", Suffix: "/postgres.sql", URL: "http://127.0.0.1:5050"}
	custom := migrateOptions{Dir: "d", Suffix: ".sql", URL: "http://h:1"}
	runParseCases(t, []string{"MIGRATIONS_DIR", "MIGRATIONS_FILE_NAME_SUFFIX", "STATUS_PORT"},
		func(record func(any) error) *cobra.Command {
			return newMigrateCmdWith(migrateRunners{
				new:     func(_ *cobra.Command, o migrateNewOptions) error { return record(o) },
				list:    func(_ *cobra.Command, o migrateListOptions) error { return record(o) },
				apply:   func(_ *cobra.Command, o migrateApplyOptions) error { return record(o) },
				build:   func(_ *cobra.Command, o migrateBuildOptions) error { return record(o) },
				publish: func(_ *cobra.Command, o migratePublishOptions) error { return record(o) },
			})
		},
		[]parseCase{
			{name: "build with defaults", args: []string{"build"},
				want: migrateBuildOptions{migrateOptions: def, Out: "dist/electric"}},
			{name: "build elsewhere", args: []string{"build", "--out", "app/gen", "--url", "http://h:1", "--dir", "d", "--suffix", ".sql"},
				want: migrateBuildOptions{migrateOptions: custom, Out: "app/gen"}},
			{name: "build takes no name", args: []string{"build", "1_x"}, wantErr: "unknown command"},
			{name: "publish a migration", args: []string{"publish", "1_x", "--json"},
				want: migratePublishOptions{migrateOptions: def, Name: "1_x", JSON: true}},
			{name: "publish without a name shows", args: []string{"publish"},
				want: migratePublishOptions{migrateOptions: def}},
			{name: "publish two names", args: []string{"publish", "1_x", "2_y"}, wantErr: "accepts at most 1 arg(s), received 2"},
			{name: "new with defaults", args: []string{"new", "add items"},
				want: migrateNewOptions{migrateOptions: def, Title: "add items"}},
			{name: "environment", env: map[string]string{"MIGRATIONS_DIR": "/m", "MIGRATIONS_FILE_NAME_SUFFIX": ".sql", "STATUS_PORT": "6050"},
				args: []string{"list"},
				want: migrateListOptions{migrateOptions: migrateOptions{Dir: "/m", Suffix: ".sql", URL: "http://127.0.0.1:6050"}}},
			{name: "flags beat the environment", env: map[string]string{"MIGRATIONS_DIR": "/m", "STATUS_PORT": "6050"},
				args: []string{"list", "--dir", "d", "--suffix", ".sql", "--url", "http://h:1", "--json"},
				want: migrateListOptions{migrateOptions: custom, JSON: true}},
			{name: "shared flags before the subcommand", args: []string{"--dir", "d", "--suffix", ".sql", "--url", "http://h:1", "new", "x"},
				want: migrateNewOptions{migrateOptions: custom, Title: "x"}},
			{name: "apply with defaults", args: []string{"apply", "1_x"},
				want: migrateApplyOptions{migrateOptions: def, Name: "1_x", Wait: 30 * time.Second}},
			{name: "apply to some connectors", args: []string{"apply", "1_x", "--connector", "a", "--connector", "b,c", "--wait", "2m", "--json"},
				want: migrateApplyOptions{migrateOptions: def, Name: "1_x", Connectors: []string{"a", "b", "c"}, Wait: 2 * time.Minute, JSON: true}},
			{name: "apply without a name", args: []string{"apply"}, wantErr: "accepts 1 arg(s), received 0"},
			{name: "new with two titles", args: []string{"new", "a", "b"}, wantErr: "accepts 1 arg(s), received 2"},
			{name: "list with an argument", args: []string{"list", "x"}, wantErr: "unknown command"},
			{name: "bad wait", args: []string{"apply", "1_x", "--wait", "soon"}, wantErr: `invalid argument "soon" for "--wait"`},
		})
}

func TestTokenFlags(t *testing.T) {
	const key, iss = "00000000000000000000000000000000", "my.electric.server"
	env := map[string]string{"SATELLITE_AUTH_SIGNING_KEY": key, "SATELLITE_AUTH_SIGNING_ISS": iss}
	fromEnv := tokenAuth{Key: key, Issuer: iss}
	year := 8760 * time.Hour
	runParseCases(t, []string{"SATELLITE_AUTH_SIGNING_KEY", "SATELLITE_AUTH_SIGNING_ISS"},
		func(record func(any) error) *cobra.Command {
			return newTokenCmdWith(tokenRunners{
				gen:    func(_ *cobra.Command, o tokenGenOptions) error { return record(o) },
				verify: func(_ *cobra.Command, o tokenVerifyOptions) error { return record(o) },
			})
		},
		[]parseCase{
			{name: "gen with defaults", env: env, args: []string{"gen", "alice", "bob"},
				want: tokenGenOptions{tokenAuth: fromEnv, TTL: year, Format: "text", Users: []string{"alice", "bob"}}},
			{name: "gen without key: refused later, by the runner", args: []string{"gen", "alice"},
				want: tokenGenOptions{TTL: year, Format: "text", Users: []string{"alice"}}},
			{name: "flags beat the environment", env: env, args: []string{"gen", "alice", "--key", "k", "--issuer", "i"},
				want: tokenGenOptions{tokenAuth: tokenAuth{Key: "k", Issuer: "i"}, TTL: year, Format: "text", Users: []string{"alice"}}},
			{name: "output defaults to csv", env: env, args: []string{"gen", "alice", "-o", "t.csv"},
				want: tokenGenOptions{tokenAuth: fromEnv, TTL: year, Format: "csv", Output: "t.csv", Users: []string{"alice"}}},
			{name: "output with a format", env: env, args: []string{"gen", "alice", "--output", "t.json", "--format", "json"},
				want: tokenGenOptions{tokenAuth: fromEnv, TTL: year, Format: "json", Output: "t.json", Users: []string{"alice"}}},
			{name: "ttl in seconds", env: env, args: []string{"gen", "alice", "--ttl", "3600"},
				want: tokenGenOptions{tokenAuth: fromEnv, TTL: time.Hour, Format: "text", Users: []string{"alice"}}},
			{name: "ttl in days", env: env, args: []string{"gen", "alice", "--ttl", "30d"},
				want: tokenGenOptions{tokenAuth: fromEnv, TTL: 30 * 24 * time.Hour, Format: "text", Users: []string{"alice"}}},
			{name: "ttl as a duration", env: env, args: []string{"gen", "alice", "--ttl", "90m"},
				want: tokenGenOptions{tokenAuth: fromEnv, TTL: 90 * time.Minute, Format: "text", Users: []string{"alice"}}},
			{name: "bad format", env: env, args: []string{"gen", "alice", "--format", "xml"}, wantErr: `token gen: invalid format "xml": use text, csv or json`},
			{name: "bad format before bad ttl", env: env, args: []string{"gen", "alice", "--format", "xml", "--ttl", "x"}, wantErr: "invalid format"},
			{name: "bad ttl", env: env, args: []string{"gen", "alice", "--ttl", "soon"}, wantErr: `token gen: invalid --ttl "soon"`},
			{name: "bad days", env: env, args: []string{"gen", "alice", "--ttl", "xd"}, wantErr: `invalid --ttl "xd"`},
			{name: "negative ttl", env: env, args: []string{"gen", "alice", "--ttl", "-1h"}, wantErr: "it must be positive"},
			{name: "zero ttl", env: env, args: []string{"gen", "alice", "--ttl", "0"}, wantErr: "it must be positive"},
			{name: "user twice", env: env, args: []string{"gen", "alice", "bob", "alice"}, wantErr: `token gen: user id "alice" is given twice`},
			{name: "empty user", env: env, args: []string{"gen", " "}, wantErr: "token gen: a user id is empty"},
			{name: "no user", env: env, args: []string{"gen"}, wantErr: "requires at least 1 arg"},
			{name: "verify", env: env, args: []string{"verify", " eyJ.x.y\n"},
				want: tokenVerifyOptions{tokenAuth: fromEnv, Token: "eyJ.x.y"}},
			{name: "verify with flags", args: []string{"verify", "t", "--key", "k", "--issuer", "i"},
				want: tokenVerifyOptions{tokenAuth: tokenAuth{Key: "k", Issuer: "i"}, Token: "t"}},
			{name: "verify two tokens", args: []string{"verify", "a", "b"}, wantErr: "accepts 1 arg(s), received 2"},
		})
}

func TestDevFlags(t *testing.T) {
	base := devenv.Options{Dir: devenv.DefaultDir}
	runParseCases(t, []string{"ELECTRIC_DEV_DIR"},
		func(record func(any) error) *cobra.Command {
			return newDevCmdWith(devRunners{
				up:     func(_ *cobra.Command, o devUpOptions) error { return record(o) },
				down:   func(_ *cobra.Command, o devenv.Options) error { return record(o) },
				status: func(_ *cobra.Command, o devStatusOptions) error { return record(o) },
				psql:   func(_ *cobra.Command, o devPsqlOptions) error { return record(o) },
				logs:   func(_ *cobra.Command, o devLogsOptions) error { return record(o) },
				reset:  func(_ *cobra.Command, o devenv.Options) error { return record(o) },
			})
		},
		[]parseCase{
			// Ports not given stay 0: devenv then takes the ones recorded by
			// the last up, else its defaults.
			{name: "up with defaults", args: []string{"up"},
				want: devUpOptions{Env: devenv.Options{Dir: devenv.DefaultDir, EngineTimeout: devenv.DefaultEngineTimeout}}},
			{name: "state directory from the environment", env: map[string]string{"ELECTRIC_DEV_DIR": "/tmp/env"}, args: []string{"down"},
				want: devenv.Options{Dir: "/tmp/env"}},
			{name: "--dir beats the environment", env: map[string]string{"ELECTRIC_DEV_DIR": "/tmp/env"}, args: []string{"reset", "--dir", "d"},
				want: devenv.Options{Dir: "d"}},
			{name: "up with everything", args: []string{"up", "--dir", "d", "--db-a-port", "6001", "--db-b-port", "6002", "--ws-port", "6133",
				"--status-port", "6050", "--pg-port", "6433", "--no-engine", "--json", "--dashboard", "--engine-timeout", "5s", "--tls"},
				want: devUpOptions{Env: devenv.Options{Dir: "d", DBAPort: 6001, DBBPort: 6002, WebsocketPort: 6133, StatusPort: 6050, ReplicationPort: 6433,
					NoEngine: true, EngineTimeout: 5 * time.Second, TLS: true}, JSON: true, Dashboard: true}},
			{name: "a default port given explicitly is kept", args: []string{"up", "--db-a-port", "54321"},
				want: devUpOptions{Env: devenv.Options{Dir: devenv.DefaultDir, DBAPort: 54321, EngineTimeout: devenv.DefaultEngineTimeout}}},
			{name: "status", args: []string{"status", "--json"}, want: devStatusOptions{Env: base, JSON: true}},
			{name: "psql passes everything after the name", args: []string{"psql", "db_a", "-c", "SELECT 1", "--dir", "x"},
				want: devPsqlOptions{Env: base, DB: "db_a", Args: []string{"-c", "SELECT 1", "--dir", "x"}}},
			{name: "psql with --dir first", args: []string{"psql", "--dir", "x", "db_b"},
				want: devPsqlOptions{Env: devenv.Options{Dir: "x"}, DB: "db_b", Args: []string{}}},
			{name: "logs of every part", args: []string{"logs"}, want: devLogsOptions{Env: base, Parts: []string{}, Lines: 50}},
			{name: "logs followed", args: []string{"logs", "engine", "-f", "-n", "0"},
				want: devLogsOptions{Env: base, Parts: []string{"engine"}, Lines: 0, Follow: true}},
			{name: "up with an argument", args: []string{"up", "now"}, wantErr: `unknown command "now"`},
			{name: "bad port", args: []string{"up", "--db-a-port", "x"}, wantErr: `invalid argument "x" for "--db-a-port"`},
			{name: "psql without a name", args: []string{"psql"}, wantErr: "requires at least 1 arg"},
			{name: "logs of two parts", args: []string{"logs", "db_a", "db_b"}, wantErr: "accepts at most 1 arg(s), received 2"},
		})
}

// normalizeDevOptions checks that a dev runner's environment writes where
// the command does (results on stdout, progress on stderr, no spinner off a
// terminal) and clears those fields, so that the options compare by value.
func normalizeDevOptions(t *testing.T, got any, out, errOut *bytes.Buffer) any {
	t.Helper()
	check := func(o *devenv.Options) {
		if o.Out != out || o.Progress != errOut || o.TTY {
			t.Errorf("environment writes to %v/%v (tty %v), want the command's stdout and stderr", o.Out, o.Progress, o.TTY)
		}
		o.Out, o.Progress = nil, nil
	}
	switch o := got.(type) {
	case devenv.Options:
		check(&o)
		return o
	case devUpOptions:
		check(&o.Env)
		return o
	case devStatusOptions:
		check(&o.Env)
		return o
	case devPsqlOptions:
		check(&o.Env)
		return o
	case devLogsOptions:
		check(&o.Env)
		return o
	}
	return got
}

// runMigrateApply against a stub engine: a connector that is not ready yet is
// waited for; a refusal because the engine lacks the file gets the hint to
// point the engine at this directory, and exit status 1.
func TestRunMigrateApply(t *testing.T) {
	dir := t.TempDir()
	if _, err := migrations.Create(dir, "", "x", time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	puts := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/api/status":
			io.WriteString(w, `{"connectors":{"a":{},"b":{}}}`)
		case r.Method == http.MethodPut:
			mu.Lock()
			puts[r.URL.Path]++
			n := puts[r.URL.Path]
			mu.Unlock()
			switch {
			case strings.HasSuffix(r.URL.Path, "/a") && n > 1:
				io.WriteString(w, "ok")
			case strings.HasSuffix(r.URL.Path, "/a"):
				w.WriteHeader(http.StatusForbidden)
				io.WriteString(w, "{:invalid_state, :init}\nstarting\n")
			default:
				w.WriteHeader(http.StatusForbidden)
				io.WriteString(w, ":vsn_not_found\nmigration file not found: /elsewhere/1_x/postgres.sql\n")
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	cmd := &cobra.Command{}
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	cmd.SetContext(context.Background())
	err := runMigrateApply(cmd, migrateApplyOptions{
		migrateOptions: migrateOptions{Dir: dir, Suffix: "/postgres.sql", URL: srv.URL},
		Name:           "1_x", Wait: time.Minute,
	})
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("runMigrateApply = %v, want exit status 1", err)
	}
	wantOut := "a: applying 1_x … ok\nb: applying 1_x … failed: the engine has no such migration in its MIGRATIONS_DIR (migration file not found: /elsewhere/1_x/postgres.sql)\n"
	if out.String() != wantOut {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, wantOut)
	}
	wantErr := "electric: 1_x exists here but not in the engine's MIGRATIONS_DIR: start the engine with MIGRATIONS_DIR=" + dir + "\n" +
		"electric: 1_x failed on 1 of 2 connectors\n"
	if errOut.String() != wantErr {
		t.Errorf("stderr:\n%s\nwant:\n%s", errOut, wantErr)
	}
	if puts["/api/migrations/a"] != 2 || puts["/api/migrations/b"] != 1 {
		t.Errorf("PUTs %v: want a tried again once it was not ready, b once", puts)
	}
}
