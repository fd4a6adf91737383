package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/electric-sql/electric-go/devenv"
	"github.com/electric-sql/electric-go/engine/config"
	"github.com/electric-sql/electric-go/tui"
)

// devUpOptions are dev up's flags: the environment to bring up and how to
// report it.
type devUpOptions struct {
	Env       devenv.Options
	JSON      bool
	Dashboard bool
}

type devStatusOptions struct {
	Env  devenv.Options
	JSON bool
}

type devPsqlOptions struct {
	Env  devenv.Options
	DB   string   // db_a or db_b
	Args []string // passed to psql unchanged
}

type devLogsOptions struct {
	Env    devenv.Options
	Parts  []string // none: every log
	Lines  int
	Follow bool
}

// devRunners are what the dev subcommands do once their flags are parsed into
// options.
type devRunners struct {
	up     func(*cobra.Command, devUpOptions) error
	down   func(*cobra.Command, devenv.Options) error
	status func(*cobra.Command, devStatusOptions) error
	psql   func(*cobra.Command, devPsqlOptions) error
	logs   func(*cobra.Command, devLogsOptions) error
	reset  func(*cobra.Command, devenv.Options) error
}

func newDevCmd() *cobra.Command {
	return newDevCmdWith(devRunners{up: runDevUp, down: runDevDown, status: runDevStatus, psql: runDevPsql, logs: runDevLogs, reset: runDevReset})
}

// newDevCmdWith is dev with its behaviour as a parameter, so that flag
// parsing is tested apart from starting Postgres and the engine.
func newDevCmdWith(run devRunners) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Local development environment: two Postgres and the engine",
		Long: `Manage a local development environment: two Postgres 15 clusters made with the
system's initdb/pg_ctl (db_a on 127.0.0.1:54321, db_b on 127.0.0.1:54322, user
electric, password "password", database electric, wal_level=logical) and the
engine ('electric serve') running in the background. Everything lives in one
state directory (default .electric/dev, or $ELECTRIC_DEV_DIR, or --dir).`,
		Example: `  electric dev up              # start everything, print the connection strings
  electric dev status          # what runs, with pids and ports
  electric dev psql db_a       # a psql shell on db_a
  electric dev logs engine -f  # follow the engine's log
  electric dev down            # stop everything
  electric dev reset           # stop and delete the state directory`,
		// Runnable, so that a mistyped subcommand is an error, not help.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().StringVar(&dir, "dir", envOr(devenv.EnvDir, devenv.DefaultDir), "state directory (env "+devenv.EnvDir+")")
	// The environment every subcommand starts from.
	envOpts := func(cmd *cobra.Command) devenv.Options {
		progress := cmd.ErrOrStderr()
		f, isFile := progress.(*os.File)
		return devenv.Options{Dir: dir, Out: cmd.OutOrStdout(), Progress: progress, TTY: isFile && isTerminal(f)}
	}
	cmd.AddCommand(
		newDevUpCmd(envOpts, run.up),
		newDevDownCmd(envOpts, run.down),
		newDevStatusCmd(envOpts, run.status),
		newDevPsqlCmd(envOpts, run.psql),
		newDevLogsCmd(envOpts, run.logs),
		newDevResetCmd(envOpts, run.reset),
	)
	return cmd
}

// signalContext is cancelled by Ctrl-C or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func newDevUpCmd(envOpts func(*cobra.Command) devenv.Options, run func(*cobra.Command, devUpOptions) error) *cobra.Command {
	var o devUpOptions
	var portA, portB, ws, status, pg int
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start both Postgres clusters and the engine (idempotent)",
		Long: `Start the development environment: create the two clusters if needed (initdb,
in parallel), start them, install the electric schema and electric.migrations,
then start 'electric serve' in the background with CONNECTORS naming both, and
wait for its status API. The engine listens on 127.0.0.1 only. With --tls it
serves wss and https with a self-signed certificate for localhost, 127.0.0.1
and ::1 (tls/localhost.crt in the state directory, reused by later ups): trust
that file in your client. What already runs is reported and left alone. Ports
given once are remembered in the state directory.`,
		Example: `  electric dev up
  electric dev up --no-engine                      # only Postgres
  electric dev up --tls                            # wss:// and https:// with a local certificate
  electric dev up --db-a-port 6001 --db-b-port 6002 --status-port 6050
  eval "export $(electric dev up 2>/dev/null | grep ^CONNECTORS=)"  # CONNECTORS in your shell
  electric dev up --json | jq -r .connectors
  electric dev up --dashboard                      # then the live dashboard`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := o
			env := envOpts(cmd)
			env.NoEngine, env.EngineTimeout, env.TLS = o.Env.NoEngine, o.Env.EngineTimeout, o.Env.TLS
			// Unset flags stay 0: the ports recorded by the last up.
			set := func(name string, dst *int, v int) {
				if cmd.Flags().Changed(name) {
					*dst = v
				}
			}
			set("db-a-port", &env.DBAPort, portA)
			set("db-b-port", &env.DBBPort, portB)
			set("ws-port", &env.WebsocketPort, ws)
			set("status-port", &env.StatusPort, status)
			set("pg-port", &env.ReplicationPort, pg)
			opts.Env = env
			return run(cmd, opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&o.Env.NoEngine, "no-engine", false, "start only Postgres")
	fl.BoolVar(&o.Env.TLS, "tls", false, "serve wss and https with a self-signed certificate for localhost (made once in the state directory)")
	fl.BoolVar(&o.Dashboard, "dashboard", false, "end in the live dashboard (electric dashboard)")
	fl.BoolVar(&o.JSON, "json", false, "print the connection strings as JSON (progress still goes to stderr)")
	fl.IntVar(&portA, "db-a-port", devenv.DefaultDBAPort, "port of db_a")
	fl.IntVar(&portB, "db-b-port", devenv.DefaultDBBPort, "port of db_b")
	fl.IntVar(&ws, "ws-port", devenv.DefaultWebsocketPort, "engine Satellite WebSocket port ("+config.EnvWebsocketPort+")")
	fl.IntVar(&status, "status-port", devenv.DefaultStatusPort, "engine status API port ("+config.EnvStatusPort+")")
	fl.IntVar(&pg, "pg-port", devenv.DefaultReplicationPort, "engine replication publisher port ("+config.EnvReplicationPort+")")
	fl.DurationVar(&o.Env.EngineTimeout, "engine-timeout", devenv.DefaultEngineTimeout, "how long to wait for the engine's status API")
	return cmd
}

func runDevUp(cmd *cobra.Command, o devUpOptions) error {
	env, err := devenv.New(o.Env)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	sum, err := env.Up(ctx)
	if err != nil {
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	sum.Write(cmd.OutOrStdout())
	if o.Dashboard {
		if sum.Engine == nil {
			return fmt.Errorf("no dashboard: the engine is not running (%s)", sum.EngineNote)
		}
		return tui.Run(ctx, sum.Engine.StatusURL, statusToken(""))
	}
	return nil
}

func newDevDownCmd(envOpts func(*cobra.Command) devenv.Options, run func(*cobra.Command, devenv.Options) error) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Stop the engine and both clusters",
		Long: `Stop everything 'electric dev up' started: the engine (SIGTERM, then SIGKILL
after 10s) and both clusters (pg_ctl stop, fast mode). Data is kept.`,
		Example: `  electric dev down
  electric dev down --dir /tmp/other-env`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd, envOpts(cmd)) },
	}
}

func runDevDown(_ *cobra.Command, o devenv.Options) error {
	env, err := devenv.New(o)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	return env.Down(ctx)
}

func newDevStatusCmd(envOpts func(*cobra.Command) devenv.Options, run func(*cobra.Command, devStatusOptions) error) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each part (db_a, db_b, engine) with state, pid and port",
		Example: `  electric dev status
  electric dev status --json | jq '.parts[] | select(.state != "running")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd, devStatusOptions{Env: envOpts(cmd), JSON: asJSON})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func runDevStatus(cmd *cobra.Command, o devStatusOptions) error {
	env, err := devenv.New(o.Env)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	return env.WriteStatus(ctx, cmd.OutOrStdout(), o.JSON)
}

func newDevPsqlCmd(envOpts func(*cobra.Command) devenv.Options, run func(*cobra.Command, devPsqlOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "psql db_a|db_b [psql arguments]",
		Short: "Open psql on a cluster",
		Long: `Run psql connected to db_a or db_b as the electric user. Arguments after the
name go to psql unchanged.`,
		Example: `  electric dev psql db_a
  electric dev psql db_b -c 'SELECT * FROM electric.migrations'`,
		Args:      cobra.MinimumNArgs(1),
		ValidArgs: []string{devenv.DBA, devenv.DBB},
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd, devPsqlOptions{Env: envOpts(cmd), DB: args[0], Args: args[1:]})
		},
	}
	// Everything after the name belongs to psql, flags included.
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func runDevPsql(_ *cobra.Command, o devPsqlOptions) error {
	env, err := devenv.New(o.Env)
	if err != nil {
		return err
	}
	path, argv, environ, err := env.Psql(o.DB, o.Args)
	if err != nil {
		return err
	}
	if err := syscall.Exec(path, argv, environ); err != nil {
		return fmt.Errorf("running %s: %w", path, err)
	}
	return nil
}

func newDevLogsCmd(envOpts func(*cobra.Command) devenv.Options, run func(*cobra.Command, devLogsOptions) error) *cobra.Command {
	var (
		follow bool
		lines  int
	)
	cmd := &cobra.Command{
		Use:   "logs [db_a|db_b|engine]",
		Short: "Print the logs of the clusters and the engine",
		Example: `  electric dev logs            # the last lines of every log
  electric dev logs engine -f  # follow the engine's log
  electric dev logs db_a -n 0  # all of db_a's log`,
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: []string{devenv.DBA, devenv.DBB, devenv.Engine},
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd, devLogsOptions{Env: envOpts(cmd), Parts: args, Lines: lines, Follow: follow})
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().IntVarP(&lines, "lines", "n", 50, "last lines of each log to print (0: all)")
	return cmd
}

func runDevLogs(cmd *cobra.Command, o devLogsOptions) error {
	env, err := devenv.New(o.Env)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	return env.Logs(ctx, cmd.OutOrStdout(), o.Parts, o.Lines, o.Follow)
}

func newDevResetCmd(envOpts func(*cobra.Command) devenv.Options, run func(*cobra.Command, devenv.Options) error) *cobra.Command {
	return &cobra.Command{
		Use:   "reset",
		Short: "Stop everything and delete the state directory",
		Long: `Stop the engine and both clusters, then delete the state directory with all
data and logs. It asks nothing; it refuses a directory that 'electric dev up'
did not make.`,
		Example: `  electric dev reset && electric dev up   # start from scratch
  electric dev reset --dir /tmp/other-env`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd, envOpts(cmd)) },
	}
}

func runDevReset(cmd *cobra.Command, o devenv.Options) error {
	env, err := devenv.New(o)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	removed, err := env.Reset(ctx)
	if err != nil {
		return err
	}
	if len(removed) == 0 {
		fmt.Fprintf(cmd.OutOrStdout(), "nothing to remove: %s does not exist\n", env.Dir())
		return nil
	}
	for _, p := range removed {
		fmt.Fprintln(cmd.OutOrStdout(), "removed", p)
	}
	return nil
}
