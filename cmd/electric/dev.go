package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/electric-sql/electric-go/devenv"
	"github.com/electric-sql/electric-go/tui"
)

// devFlags are the options shared by every dev subcommand.
type devFlags struct {
	dir string
}

func newDevCmd() *cobra.Command {
	f := &devFlags{}
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
	defDir := devenv.DefaultDir
	if d := os.Getenv("ELECTRIC_DEV_DIR"); d != "" {
		defDir = d
	}
	cmd.PersistentFlags().StringVar(&f.dir, "dir", defDir, "state directory (env ELECTRIC_DEV_DIR)")
	cmd.AddCommand(newDevUpCmd(f), newDevDownCmd(f), newDevStatusCmd(f), newDevPsqlCmd(f), newDevLogsCmd(f), newDevResetCmd(f))
	return cmd
}

// devOptions are the options every subcommand starts from.
func (f *devFlags) options() devenv.Options {
	return devenv.Options{Dir: f.dir, Out: os.Stdout, Progress: os.Stderr, TTY: isTerminal(os.Stderr)}
}

// signalContext is cancelled by Ctrl-C or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func newDevUpCmd(f *devFlags) *cobra.Command {
	var (
		noEngine, asJSON, dashboard  bool
		portA, portB, ws, status, pg int
		timeout                      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start both Postgres clusters and the engine (idempotent)",
		Long: `Start the development environment: create the two clusters if needed (initdb,
in parallel), start them, install the electric schema and electric.migrations,
then start 'electric serve' in the background with CONNECTORS naming both, and
wait for its status API. What already runs is reported and left alone. Ports
given once are remembered in the state directory.`,
		Example: `  electric dev up
  electric dev up --no-engine                      # only Postgres
  electric dev up --db-a-port 6001 --db-b-port 6002 --status-port 6050
  eval "export $(electric dev up 2>/dev/null | grep ^CONNECTORS=)"  # CONNECTORS in your shell
  electric dev up --json | jq -r .connectors
  electric dev up --dashboard                      # then the live dashboard`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := f.options()
			opts.NoEngine = noEngine
			opts.EngineTimeout = timeout
			// Unset flags fall back to the ports recorded by the last up.
			set := func(name string, dst *int, v int) {
				if cmd.Flags().Changed(name) {
					*dst = v
				}
			}
			set("db-a-port", &opts.DBAPort, portA)
			set("db-b-port", &opts.DBBPort, portB)
			set("ws-port", &opts.WebsocketPort, ws)
			set("status-port", &opts.StatusPort, status)
			set("pg-port", &opts.ReplicationPort, pg)
			env, err := devenv.New(opts)
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			sum, err := env.Up(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(sum)
			}
			sum.Write(cmd.OutOrStdout())
			if dashboard {
				if sum.Engine == nil {
					return fmt.Errorf("no dashboard: the engine is not running (%s)", sum.EngineNote)
				}
				return tui.Run(ctx, sum.Engine.StatusURL)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&noEngine, "no-engine", false, "start only Postgres")
	fl.BoolVar(&dashboard, "dashboard", false, "end in the live dashboard (electric dashboard)")
	fl.BoolVar(&asJSON, "json", false, "print the connection strings as JSON (progress still goes to stderr)")
	fl.IntVar(&portA, "db-a-port", devenv.DefaultDBAPort, "port of db_a")
	fl.IntVar(&portB, "db-b-port", devenv.DefaultDBBPort, "port of db_b")
	fl.IntVar(&ws, "ws-port", devenv.DefaultWebsocketPort, "engine Satellite WebSocket port (WEBSOCKET_PORT)")
	fl.IntVar(&status, "status-port", devenv.DefaultStatusPort, "engine status API port (STATUS_PORT)")
	fl.IntVar(&pg, "pg-port", devenv.DefaultReplicationPort, "engine replication publisher port (POSTGRES_REPLICATION_PORT)")
	fl.DurationVar(&timeout, "engine-timeout", devenv.DefaultEngineTimeout, "how long to wait for the engine's status API")
	return cmd
}

func newDevDownCmd(f *devFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Stop the engine and both clusters",
		Long: `Stop everything 'electric dev up' started: the engine (SIGTERM, then SIGKILL
after 10s) and both clusters (pg_ctl stop, fast mode). Data is kept.`,
		Example: `  electric dev down
  electric dev down --dir /tmp/other-env`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			env, err := devenv.New(f.options())
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			return env.Down(ctx)
		},
	}
}

func newDevStatusCmd(f *devFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each part (db_a, db_b, engine) with state, pid and port",
		Example: `  electric dev status
  electric dev status --json | jq '.parts[] | select(.state != "running")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := devenv.New(f.options())
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			return env.WriteStatus(ctx, cmd.OutOrStdout(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newDevPsqlCmd(f *devFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "psql db_a|db_b [psql arguments]",
		Short: "Open psql on a cluster",
		Long: `Run psql connected to db_a or db_b as the electric user. Arguments after the
name go to psql unchanged.`,
		Example: `  electric dev psql db_a
  electric dev psql db_b -c 'SELECT * FROM electric.migrations'`,
		Args:      cobra.MinimumNArgs(1),
		ValidArgs: []string{devenv.DBA, devenv.DBB},
		RunE: func(_ *cobra.Command, args []string) error {
			env, err := devenv.New(f.options())
			if err != nil {
				return err
			}
			path, argv, environ, err := env.Psql(args[0], args[1:])
			if err != nil {
				return err
			}
			if err := syscall.Exec(path, argv, environ); err != nil {
				return fmt.Errorf("running %s: %w", path, err)
			}
			return nil
		},
	}
	// Everything after the name belongs to psql, flags included.
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func newDevLogsCmd(f *devFlags) *cobra.Command {
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
			env, err := devenv.New(f.options())
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			return env.Logs(ctx, cmd.OutOrStdout(), args, lines, follow)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().IntVarP(&lines, "lines", "n", 50, "last lines of each log to print (0: all)")
	return cmd
}

func newDevResetCmd(f *devFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "reset",
		Short: "Stop everything and delete the state directory",
		Long: `Stop the engine and both clusters, then delete the state directory with all
data and logs. It asks nothing; it refuses a directory that 'electric dev up'
did not make.`,
		Example: `  electric dev reset && electric dev up   # start from scratch`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := devenv.New(f.options())
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
		},
	}
}
