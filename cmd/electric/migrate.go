package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/electric-sql/electric-go/engine/config"
	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/migrations"
)

// migrateOptions are the flags every migrate subcommand shares.
type migrateOptions struct {
	Dir    string // migrations directory
	Suffix string // appended to a name to find its file
	URL    string // the engine's status API
	Token  string // the status API's bearer token: --token, else STATUS_API_TOKEN
}

// statusToken is the status API token to send: the --token flag, else
// STATUS_API_TOKEN. The flag has no default so that --help never prints the
// token from the environment.
func statusToken(flag string) string {
	if flag != "" {
		return flag
	}
	return os.Getenv(config.EnvStatusAPIToken)
}

// withToken resolves o's token (see statusToken).
func (o migrateOptions) withToken() migrateOptions {
	o.Token = statusToken(o.Token)
	return o
}

type migrateNewOptions struct {
	migrateOptions
	Title string
}

type migrateListOptions struct {
	migrateOptions
	JSON bool
}

type migrateApplyOptions struct {
	migrateOptions
	Name       string
	Connectors []string // empty: every connector of the engine
	Wait       time.Duration
	JSON       bool
}

// migrateRunners are what the migrate subcommands do once their flags are
// parsed into options.
type migrateRunners struct {
	new     func(*cobra.Command, migrateNewOptions) error
	list    func(*cobra.Command, migrateListOptions) error
	apply   func(*cobra.Command, migrateApplyOptions) error
	build   func(*cobra.Command, migrateBuildOptions) error
	publish func(*cobra.Command, migratePublishOptions) error
}

func newMigrateCmd() *cobra.Command {
	return newMigrateCmdWith(migrateRunners{new: runMigrateNew, list: runMigrateList, apply: runMigrateApply,
		build: runMigrateBuild, publish: runMigratePublish})
}

// newMigrateCmdWith is migrate with its behaviour as a parameter, so that
// flag parsing is tested apart from what the subcommands do.
func newMigrateCmdWith(run migrateRunners) *cobra.Command {
	o := &migrateOptions{}
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create, list and apply schema migrations; build and publish the Satellite bundle",
		Long: `Migrations are folders under MIGRATIONS_DIR named <unix seconds>_<slug>, each
holding postgres.sql (MIGRATIONS_FILE_NAME_SUFFIX). 'apply' goes through the
running engine, which pauses the connector's replication, applies the file and
its row in electric.migrations in one transaction, and resumes; it also records
the schema the migration left, from which 'build' writes the Satellite client
bundle. 'publish' makes the engine stream a migration's schema to Satellites.
An engine with STATUS_API_TOKEN set wants that token (env STATUS_API_TOKEN or
--token); one without it takes these requests only from its own machine.`,
		Example: `  electric migrate new "add items"
  electric migrate list
  electric migrate apply 1669232573_add_items
  electric migrate apply 1669232573_add_items --connector db_a --json
  electric migrate build --out dist/electric
  electric migrate publish 1669232573_add_items`,
	}
	cmd.PersistentFlags().StringVar(&o.Dir, "dir", envOr(config.EnvMigrationsDir, migrations.DefaultDir), "migrations directory (env "+config.EnvMigrationsDir+")")
	cmd.PersistentFlags().StringVar(&o.Suffix, "suffix", envOr(config.EnvMigrationsSuffix, migrations.DefaultSuffix), "appended to a name to find its file (env "+config.EnvMigrationsSuffix+")")
	cmd.PersistentFlags().StringVar(&o.URL, "url", defaultStatusURL(), "the engine's status API (env "+config.EnvStatusPort+" sets the port)")
	cmd.PersistentFlags().StringVar(&o.Token, "token", "", "the engine's status API token (env "+config.EnvStatusAPIToken+")")
	cmd.AddCommand(newMigrateNewCmd(o, run.new), newMigrateListCmd(o, run.list), newMigrateApplyCmd(o, run.apply),
		newMigrateBuildCmd(o, run.build), newMigratePublishCmd(o, run.publish))
	return cmd
}

func newMigrateNewCmd(shared *migrateOptions, run func(*cobra.Command, migrateNewOptions) error) *cobra.Command {
	return &cobra.Command{
		Use:   "new TITLE",
		Short: "Create a migration folder with a commented postgres.sql template",
		Example: `  electric migrate new "add items"   # migrations/1669232573_add_items/postgres.sql
  electric migrate new "add items" --dir db/migrations`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd, migrateNewOptions{migrateOptions: shared.withToken(), Title: args[0]})
		},
	}
}

func runMigrateNew(cmd *cobra.Command, o migrateNewOptions) error {
	m, err := migrations.Create(o.Dir, o.Suffix, o.Title, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "created %s\nedit it, then: electric migrate apply %s\n", m.Path, m.Name)
	return nil
}

func newMigrateListCmd(shared *migrateOptions, run func(*cobra.Command, migrateListOptions) error) *cobra.Command {
	var asJSON bool
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
			return run(cmd, migrateListOptions{migrateOptions: shared.withToken(), JSON: asJSON})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func runMigrateList(cmd *cobra.Command, o migrateListOptions) error {
	local, err := migrations.List(o.Dir, o.Suffix)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	ov := (&migrations.Client{BaseURL: o.URL, Token: o.Token}).Overview(cmd.Context(), local)
	out := cmd.OutOrStdout()
	if o.JSON {
		return writeJSONOut(out, ov.Rows)
	}
	if ov.EngineErr != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: connector state unknown: %v\n", ov.EngineErr)
	}
	if len(ov.Rows) == 0 {
		fmt.Fprintf(out, "no migrations in %s (create one: electric migrate new TITLE)\n", o.Dir)
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "MIGRATION\tHASH")
	for _, c := range ov.Connectors {
		fmt.Fprintf(tw, "\t%s", c)
	}
	fmt.Fprintln(tw)
	for _, r := range ov.Rows {
		fmt.Fprintf(tw, "%s\t%s", r.Name, r.Hash[:8])
		for _, c := range ov.Connectors {
			fmt.Fprintf(tw, "\t%s", r.Connectors[c])
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func newMigrateApplyCmd(shared *migrateOptions, run func(*cobra.Command, migrateApplyOptions) error) *cobra.Command {
	var (
		connectors []string
		wait       time.Duration
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "apply NAME",
		Short: "Apply a migration to every connector (or the ones named) through the engine",
		Example: `  electric migrate apply 1669232573_add_items
  electric migrate apply 1669232573_add_items --connector db_a
  electric migrate apply 1669232573_add_items --wait 2m --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd, migrateApplyOptions{migrateOptions: shared.withToken(), Name: args[0], Connectors: connectors, Wait: wait, JSON: asJSON})
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to wait for a connector that is not ready yet (engine starting)")
	cmd.Flags().StringSliceVar(&connectors, "connector", nil, "apply only to these connectors (repeatable)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// applyResult is one connector's outcome, for apply's output.
type applyResult struct {
	Connector string `json:"connector"`
	OK        bool   `json:"ok"`
	Error     string `json:"error,omitempty"`
	Term      string `json:"term,omitempty"` // the engine's answer, e.g. {:error, :already_migrated}
	err       error
}

func runMigrateApply(cmd *cobra.Command, o migrateApplyOptions) error {
	name := o.Name
	if !migrations.ValidName(name) {
		return fmt.Errorf("invalid migration name %q: use the folder name, e.g. 1669232573_add_items", name)
	}
	_, localErr := migrations.Load(o.Dir, name, o.Suffix)
	if localErr != nil && !errors.Is(localErr, migrations.ErrNotFound) {
		return localErr
	}
	cl := &migrations.Client{BaseURL: o.URL, Token: o.Token}
	targets, err := cl.Targets(cmd.Context(), o.Connectors)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	var results []applyResult
	failed := 0
	for _, c := range targets {
		if !o.JSON {
			fmt.Fprintf(out, "%s: applying %s … ", c, name)
		}
		err := cl.ApplyWhenReady(cmd.Context(), c, name, o.Wait)
		if errors.Is(err, status.ErrRefused) {
			// The same answer awaits every connector: say it once.
			if !o.JSON {
				fmt.Fprintln(out, "refused")
			}
			return err
		}
		r := applyResult{Connector: c, OK: err == nil, err: err}
		if err != nil {
			failed++
			r.Error = err.Error()
			var ae *migrations.APIError
			if errors.As(err, &ae) {
				r.Term = ae.Term
			}
		}
		results = append(results, r)
		if !o.JSON {
			if err != nil {
				fmt.Fprintf(out, "failed: %v\n", err)
			} else {
				fmt.Fprintln(out, "ok")
			}
		}
	}
	if o.JSON {
		if err := writeJSONOut(out, results); err != nil {
			return err
		}
	}
	if failed == 0 {
		return nil
	}
	errOut := cmd.ErrOrStderr()
	engineLacksIt := slices.ContainsFunc(results, func(r applyResult) bool { return errors.Is(r.err, migrations.ErrNotFound) })
	switch {
	case localErr != nil:
		fmt.Fprintf(errOut, "electric: no migration %s here either: %v (create one with: electric migrate new TITLE)\n", name, localErr)
	case engineLacksIt:
		fmt.Fprintf(errOut, "electric: %s exists here but not in the engine's %s: start the engine with %s=%s\n", name, config.EnvMigrationsDir, config.EnvMigrationsDir, absDir(o.Dir))
	}
	fmt.Fprintf(errOut, "electric: %s failed on %d of %d connectors\n", name, failed, len(targets))
	return exitError{code: 1}
}

func absDir(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}
