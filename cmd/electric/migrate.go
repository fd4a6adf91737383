package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
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
	cmd.PersistentFlags().StringVar(&o.dir, "dir", envOr("MIGRATIONS_DIR", "migrations"), "migrations directory (env MIGRATIONS_DIR)")
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
	Connectors map[string]string `json:"connectors"` // connector → applied | pending | hash mismatch | unknown
}

func newMigrateListCmd(o *migrateOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List local migrations against what each connector has applied",
		Long: `Lists the migrations under the migrations directory. When the engine answers,
each connector's newest applied migration is compared: older migrations count
as applied, a different hash for the same name is flagged.`,
		Example: `  electric migrate list
  electric migrate list --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			local, err := migrations.List(o.dir, o.suffix)
			if err != nil {
				return err
			}
			cl := &migrations.Client{BaseURL: o.url}
			statuses, apiErr := cl.Statuses(cmd.Context())
			rows := make([]listRow, 0, len(local))
			for _, m := range local {
				r := listRow{Name: m.Name, Hash: m.Hash, Connectors: map[string]string{}}
				for _, s := range statuses {
					if s == nil {
						continue
					}
					switch {
					case s.Vsn == m.Name && s.Hash != m.Hash:
						r.Connectors[s.Origin] = "hash mismatch"
					case s.Vsn == m.Name || (s.Vsn != "1" && s.Vsn > m.Name):
						r.Connectors[s.Origin] = "applied"
					default:
						r.Connectors[s.Origin] = "pending"
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
			var origins []string
			for _, s := range statuses {
				if s != nil {
					origins = append(origins, s.Origin)
				}
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
}

func newMigrateApplyCmd(o *migrateOptions) *cobra.Command {
	var connectors []string
	cmd := &cobra.Command{
		Use:   "apply NAME",
		Short: "Apply a migration to every connector (or the ones named) through the engine",
		Example: `  electric migrate apply 1669232573_add_items
  electric migrate apply 1669232573_add_items --connector db_a`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if _, err := migrations.Load(o.dir, name, o.suffix); err != nil && !errors.Is(err, migrations.ErrNotFound) {
				return err
			} else if err != nil {
				// The engine reads its own MIGRATIONS_DIR; warn but let it decide.
				fmt.Fprintf(cmd.ErrOrStderr(), "note: %v (the engine reads its own MIGRATIONS_DIR)\n", err)
			}
			cl := &migrations.Client{BaseURL: o.url}
			if len(connectors) == 0 {
				statuses, err := cl.Statuses(cmd.Context())
				if err != nil {
					return err
				}
				for _, s := range statuses {
					if s != nil {
						connectors = append(connectors, s.Origin)
					}
				}
				if len(connectors) == 0 {
					return errors.New("the engine reports no connector with a known migration state")
				}
			}
			var results []applyResult
			failed := 0
			for _, c := range connectors {
				if !o.json {
					fmt.Fprintf(cmd.OutOrStdout(), "%s: applying %s … ", c, name)
				}
				err := cl.Apply(cmd.Context(), c, name)
				r := applyResult{Connector: c, OK: err == nil}
				if err != nil {
					failed++
					r.Error = err.Error()
				}
				results = append(results, r)
				if !o.json {
					if err != nil {
						fmt.Fprintf(cmd.OutOrStdout(), "failed: %v\n", err)
					} else {
						fmt.Fprintln(cmd.OutOrStdout(), "ok")
					}
				}
			}
			if o.json {
				if err := writeJSONOut(cmd.OutOrStdout(), results); err != nil {
					return err
				}
			}
			if failed > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&connectors, "connector", nil, "apply only to these connectors (repeatable)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON")
	return cmd
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
