package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/electric-sql/electric-go/engine/backup"
	"github.com/electric-sql/electric-go/engine/config"
)

// backupOptions are backup's argument and flags.
type backupOptions struct {
	Dir   string
	URL   string
	Token string // STATUS_API_TOKEN or --token
	JSON  bool
}

func newBackupCmd() *cobra.Command { return newBackupCmdWith(runBackup) }

// newBackupCmdWith is backup with its behaviour as a parameter, so that flag
// parsing is tested apart from the transfer.
func newBackupCmdWith(run func(*cobra.Command, backupOptions) error) *cobra.Command {
	var o backupOptions
	cmd := &cobra.Command{
		Use:   "backup DIR",
		Short: "Copy a running engine's state into DIR, consistently, without stopping it",
		Long: `Ask a running engine (its status API) for a consistent copy of its state, the
log with its row states, source positions and client owners, plus its
replication secret, and write it into DIR (new or empty). Replication goes on
meanwhile; commits pause only while the store's checkpoint is taken.

To restore: stop the engine, then start it with OFFSET_STORAGE_FILE=DIR (or
with DIR's files copied into an empty state directory). See the README,
"Backup and restore", for what the engine does with the writes made after
the backup.

An engine with STATUS_API_TOKEN set wants that token (env STATUS_API_TOKEN or
--token); one without it serves backups only to its own machine.`,
		Example: `  electric backup /var/backups/electric/$(date +%F)
  STATUS_API_TOKEN=… electric backup ./b --url https://10.0.0.5:5050 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := o
			o.Dir = args[0]
			o.Token = statusToken(o.Token)
			return run(cmd, o)
		},
	}
	cmd.Flags().StringVar(&o.URL, "url", defaultStatusURL(), "the engine's status API (env STATUS_PORT sets the port)")
	cmd.Flags().StringVar(&o.Token, "token", "", "the engine's status API token (env "+config.EnvStatusAPIToken+")")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the backup's manifest as JSON")
	return cmd
}

func runBackup(cmd *cobra.Command, o backupOptions) error {
	m, err := backup.Fetch(cmd.Context(), nil, o.URL, o.Token, o.Dir)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if o.JSON {
		return writeJSONOut(cmd.OutOrStdout(), m)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "backup of the engine state up to log offset %d: %d files, %.1f MB in %s\n"+
		"to restore: stop the engine, then start it with %s=%s\n",
		m.LogHead, m.Files, float64(m.Bytes)/1e6, o.Dir, config.EnvOffsetStorageFile, o.Dir)
	return nil
}
