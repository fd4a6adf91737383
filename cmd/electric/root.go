package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/electric-sql/electric-go/engine/config"
)

// exitError carries a specific exit code for a failure already reported.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "electric",
		Short: "Active-active replication between Postgres instances and local-first SQLite apps",
		Long: `electric replicates Postgres instances active-active over logical replication and
syncs local-first SQLite apps ("Satellites") over a protobuf WebSocket API.

Start here:
  electric dev up          two local Postgres (db_a :54321, db_b :54322) and the engine
  electric dashboard       live view of connectors, the log and Satellite sessions`,
		Example: `  electric dev up
  electric migrate new "add items"
  electric token gen alice --ttl 1h
  electric serve --print-config`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// A bad flag is a usage error: say where the help is, exit 2.
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		fmt.Fprintf(cmd.ErrOrStderr(), "electric: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
		return exitError{code: 2}
	})
	root.AddCommand(
		newServeCmd(),
		newDevCmd(),
		newMigrateCmd(),
		newTokenCmd(),
		newDashboardCmd(),
		newConflictsCmd(),
		newRejectedCmd(),
		newBackupCmd(),
		newConnectorsCmd(),
		newVersionCmd(),
	)
	return root
}

func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		fmt.Fprintln(os.Stderr, "electric:", err)
		return 1
	}
	return 0
}

// envOr is the environment variable key, or def when it is unset or empty.
func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

// defaultStatusURL is the status API of an engine on this machine: STATUS_PORT
// or its default.
func defaultStatusURL() string {
	return "http://127.0.0.1:" + envOr(config.EnvStatusPort, strconv.Itoa(config.DefaultStatusPort))
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
