package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/electric-sql/electric-go/migrations"
)

// migrateOptions are the flags shared by the migrate subcommands.
type migrateOptions struct {
	dir    string
	suffix string
	url    string
	json   bool
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

func defaultStatusURL() string {
	return "http://127.0.0.1:" + envOr("STATUS_PORT", "5050")
}

func newMigrateCmd() *cobra.Command {
	o := &migrateOptions{}
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create, list and apply schema migrations",
		Long: `Migrations are folders under MIGRATIONS_DIR named <unix seconds>_<slug>, each
holding postgres.sql (MIGRATIONS_FILE_NAME_SUFFIX). 'apply' goes through the
running engine, which pauses the connector's replication, applies the file and
its row in electric.migrations in one transaction, and resumes.`,
		Example: `  electric migrate new "add items"
  electric migrate list
  electric migrate apply 1669232573_add_items
  electric migrate apply 1669232573_add_items --connector db_a --json`,
	}
	cmd.PersistentFlags().StringVar(&o.dir, "dir", envOr("MIGRATIONS_DIR", migrations.DefaultDir), "migrations directory (env MIGRATIONS_DIR)")
	cmd.PersistentFlags().StringVar(&o.suffix, "suffix", envOr("MIGRATIONS_FILE_NAME_SUFFIX", migrations.DefaultSuffix), "appended to a name to find its file (env MIGRATIONS_FILE_NAME_SUFFIX)")
	cmd.PersistentFlags().StringVar(&o.url, "url", defaultStatusURL(), "the engine's status API (env STATUS_PORT sets the port)")
	cmd.AddCommand(newMigrateNewCmd(o), newMigrateListCmd(o), newMigrateApplyCmd(o))
	return cmd
}

func newMigrateNewCmd(o *migrateOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "new TITLE",
		Short:   "Create a migration folder with a commented postgres.sql template",
		Example: `  electric migrate new "add items"   # migrations/1669232573_add_items/postgres.sql`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := migrations.Create(o.dir, o.suffix, args[0], time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %s\nedit it, then: electric migrate apply %s\n", m.Path, m.Name)
			return nil
		},
	}
}

// listRow is one migration against every connector, for list's output.
type listRow struct {
	Name       string            `json:"name"`
	Hash       string            `json:"hash"`
	Connectors map[string]string `json:"connectors"` // connector → applied | pending | hash mismatch | unknown (engine not answering)
}

func newMigrateListCmd(o *migrateOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List local migrations against what each connector has applied",
		Long: `Lists the migrations under the migrations directory and, when the engine
answers, whether each connector has applied them (its electric.migrations):
applied, pending, or hash mismatch when the file changed after it was applied.`,
		Example: `  electric migrate list
  electric migrate list --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			local, err := migrations.List(o.dir, o.suffix)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			cl := &migrations.Client{BaseURL: o.url}
			origins, apiErr := cl.Connectors(cmd.Context())
			applied := map[string]map[string]string{} // connector → name → hash
			for _, or := range origins {
				list, err := cl.Applied(cmd.Context(), or)
				if err != nil {
					continue // shown as "unknown"
				}
				applied[or] = map[string]string{}
				for _, a := range list {
					applied[or][a.Version] = a.Hash
				}
			}
			rows := make([]listRow, 0, len(local))
			for _, m := range local {
				r := listRow{Name: m.Name, Hash: m.Hash, Connectors: map[string]string{}}
				for _, or := range origins {
					done, known := applied[or]
					hash, ok := done[m.Name]
					switch {
					case !known:
						r.Connectors[or] = "unknown"
					case ok && hash != m.Hash:
						r.Connectors[or] = "hash mismatch"
					case ok:
						r.Connectors[or] = "applied"
					default:
						r.Connectors[or] = "pending"
					}
				}
				rows = append(rows, r)
			}
			if o.json {
				return writeJSONOut(cmd.OutOrStdout(), rows)
			}
			out := cmd.OutOrStdout()
			if apiErr != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: connector state unknown: %v\n", apiErr)
			}
			if len(rows) == 0 {
				fmt.Fprintf(out, "no migrations in %s (create one: electric migrate new TITLE)\n", o.dir)
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprint(tw, "MIGRATION\tHASH")
			for _, or := range origins {
				fmt.Fprintf(tw, "\t%s", or)
			}
			fmt.Fprintln(tw)
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s", r.Name, r.Hash[:8])
				for _, or := range origins {
					fmt.Fprintf(tw, "\t%s", r.Connectors[or])
				}
				fmt.Fprintln(tw)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON")
	return cmd
}

// applyResult is one connector's outcome, for apply's output.
type applyResult struct {
	Connector string `json:"connector"`
	OK        bool   `json:"ok"`
	Error     string `json:"error,omitempty"`
	Term      string `json:"term,omitempty"` // the engine's answer, e.g. {:error, :already_migrated}
}

func newMigrateApplyCmd(o *migrateOptions) *cobra.Command {
	var connectors []string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "apply NAME",
		Short: "Apply a migration to every connector (or the ones named) through the engine",
		Example: `  electric migrate apply 1669232573_add_items
  electric migrate apply 1669232573_add_items --connector db_a`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !migrations.ValidName(name) {
				return fmt.Errorf("invalid migration name %q: use the folder name, e.g. 1669232573_add_items", name)
			}
			_, localErr := migrations.Load(o.dir, name, o.suffix)
			if localErr != nil && !errors.Is(localErr, migrations.ErrNotFound) {
				return localErr
			}
			cl := &migrations.Client{BaseURL: o.url}
			targets := connectors
			if len(targets) == 0 {
				all, err := cl.Connectors(cmd.Context())
				if err != nil {
					return err
				}
				if len(all) == 0 {
					return errors.New("the engine has no connectors (CONNECTORS is empty)")
				}
				targets = all
			}
			out := cmd.OutOrStdout()
			var results []applyResult
			failed := 0
			for _, c := range targets {
				if !o.json {
					fmt.Fprintf(out, "%s: applying %s … ", c, name)
				}
				err := applyWhenReady(cmd.Context(), cl, c, name, wait)
				r := applyResult{Connector: c, OK: err == nil}
				if err != nil {
					failed++
					r.Error = err.Error()
					var ae *migrations.APIError
					if errors.As(err, &ae) {
						r.Term = ae.Term
					}
				}
				results = append(results, r)
				if !o.json {
					if err != nil {
						fmt.Fprintf(out, "failed: %v\n", err)
					} else {
						fmt.Fprintln(out, "ok")
					}
				}
			}
			if o.json {
				if err := writeJSONOut(out, results); err != nil {
					return err
				}
			}
			if failed == 0 {
				return nil
			}
			errOut := cmd.ErrOrStderr()
			if localErr != nil {
				fmt.Fprintf(errOut, "electric: no migration %s here either: %v (create one with: electric migrate new TITLE)\n", name, localErr)
			} else {
				for _, r := range results {
					if strings.Contains(r.Term, ":vsn_not_found") {
						fmt.Fprintf(errOut, "electric: %s exists here but not in the engine's MIGRATIONS_DIR: start the engine with MIGRATIONS_DIR=%s\n", name, absDir(o.dir))
						break
					}
				}
			}
			fmt.Fprintf(errOut, "electric: %s failed on %d of %d connectors\n", name, failed, len(targets))
			return exitError{code: 1}
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to wait for a connector that is not ready yet (engine starting)")
	cmd.Flags().StringSliceVar(&connectors, "connector", nil, "apply only to these connectors (repeatable)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON")
	return cmd
}

// applyWhenReady applies, retrying while the engine says the connector is not
// ready: right after 'electric serve' or 'electric dev up' starts, connectors
// are still setting up.
func applyWhenReady(ctx context.Context, cl *migrations.Client, connector, name string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := cl.Apply(ctx, connector, name)
		var ae *migrations.APIError
		if err == nil || !errors.As(err, &ae) || !strings.Contains(ae.Term, ":invalid_state") || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func absDir(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
