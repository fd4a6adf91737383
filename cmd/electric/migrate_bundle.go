package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/electric-sql/electric-go/migrations"
	"github.com/electric-sql/electric-go/migrations/bundle"
)

// defaultBundleDir is where `migrate build` writes the client bundle.
const defaultBundleDir = "dist/electric"

type migrateBuildOptions struct {
	migrateOptions
	Out string
}

type migratePublishOptions struct {
	migrateOptions
	Name string // "": only print what is published
	JSON bool
}

func newMigrateBuildCmd(shared *migrateOptions, run func(*cobra.Command, migrateBuildOptions) error) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Write the Satellite client bundle (migrations.json, index.js) from the engine",
		Long: `Fetches the client bundle from the running engine (GET /api/migrations/bundle)
and writes DIR/migrations.json ({"migrations": [...]}) and DIR/index.js (an ES
module: export default { migrations: [...] }) for electric-sql@0.4.3's
config.migrations. There is one entry per migration the engine applied, in
the order it recorded them: the SQLite tables, columns and oplog triggers for
the schema Postgres had right after it. Each entry is built once, when the
migration is first applied, and never changes (the client refuses an altered
migration). Migrations applied before the engine recorded schemas have no
entry: the first recorded one creates every table there was.

Ship the bundle with the app first; then 'electric migrate publish NAME' makes
the engine stream that migration's schema to clients.`,
		Example: `  electric migrate build                    # dist/electric/migrations.json and index.js
  electric migrate build --out app/src/generated/electric
  STATUS_API_TOKEN=… electric migrate build --url http://10.0.0.5:5050`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd, migrateBuildOptions{migrateOptions: shared.withToken(), Out: out})
		},
	}
	cmd.Flags().StringVar(&out, "out", defaultBundleDir, "directory to write migrations.json and index.js to")
	return cmd
}

func runMigrateBuild(cmd *cobra.Command, o migrateBuildOptions) error {
	cl := &migrations.Client{BaseURL: o.URL, Token: o.Token}
	ms, err := cl.Bundle(cmd.Context())
	if err != nil {
		return fmt.Errorf("building the client bundle: %w", err)
	}
	if err := bundle.Write(o.Out, ms); err != nil {
		return fmt.Errorf("writing the client bundle: %w", err)
	}
	out := cmd.OutOrStdout()
	for _, m := range ms {
		fmt.Fprintf(out, "%s\t%d statements\n", m.Name, len(m.SatelliteBody))
	}
	fmt.Fprintf(out, "wrote %s and %s (%d migrations)\n", filepath.Join(o.Out, "migrations.json"), filepath.Join(o.Out, "index.js"), len(ms))
	if len(ms) > 0 {
		fmt.Fprintf(out, "ship it with the app, then: electric migrate publish %s\n", ms[len(ms)-1].Name)
	}
	return nil
}

func newMigratePublishCmd(shared *migrateOptions, run func(*cobra.Command, migratePublishOptions) error) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "publish [NAME]",
		Short: "Stream the schema of migration NAME to Satellite clients (no NAME: show the current one)",
		Long: `A 0.4.3 client never says which bundle it runs and crashes on a table or column
its SQLite lacks, so the engine streams to Satellites the schema of one
migration, chosen here. Ship the bundle holding NAME to every client first
('electric migrate build'), then publish it: connected and later clients get
the values of the tables and columns they gained. SATELLITE_TABLES, when set,
overrides the published schema. The choice is stored in the engine's state.`,
		Example: `  electric migrate publish                             # which migration is published
  electric migrate publish 1669232573_add_items
  electric migrate publish 1669232573_add_items --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := migratePublishOptions{migrateOptions: shared.withToken(), JSON: asJSON}
			if len(args) == 1 {
				o.Name = args[0]
			}
			return run(cmd, o)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func runMigratePublish(cmd *cobra.Command, o migratePublishOptions) error {
	cl := &migrations.Client{BaseURL: o.URL, Token: o.Token}
	var (
		p   migrations.PublishedStatus
		err error
	)
	if o.Name == "" {
		p, err = cl.Published(cmd.Context())
	} else {
		if !migrations.ValidName(o.Name) {
			return fmt.Errorf("invalid migration name %q: use the folder name, e.g. 1669232573_add_items", o.Name)
		}
		p, err = cl.Publish(cmd.Context(), o.Name)
	}
	if err != nil {
		if o.Name != "" {
			return fmt.Errorf("publishing %s: %w", o.Name, err)
		}
		return err
	}
	out := cmd.OutOrStdout()
	if o.JSON {
		return writeJSONOut(out, p)
	}
	switch {
	case p.Name == "":
		fmt.Fprintln(out, "published: none")
	case o.Name != "":
		fmt.Fprintf(out, "published %s\n", p.Name)
	default:
		fmt.Fprintf(out, "published: %s\n", p.Name)
	}
	if p.Override {
		fmt.Fprintln(out, "note: SATELLITE_TABLES is set and decides the tables instead")
	}
	fmt.Fprintf(out, "Satellites get: %s\n", orNone(strings.Join(p.Tables, ", ")))
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "no tables"
	}
	return s
}
