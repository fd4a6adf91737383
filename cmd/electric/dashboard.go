package main

import (
	"github.com/spf13/cobra"

	"github.com/electric-sql/electric-go/engine/config"
	"github.com/electric-sql/electric-go/tui"
)

// dashboardOptions are dashboard's flags.
type dashboardOptions struct {
	URL   string
	Token string // STATUS_API_TOKEN or --token
}

func newDashboardCmd() *cobra.Command {
	return newDashboardCmdWith(func(cmd *cobra.Command, o dashboardOptions) error {
		return tui.Run(cmd.Context(), o.URL, o.Token)
	})
}

// newDashboardCmdWith is dashboard with its behaviour as a parameter, so
// that flag parsing is tested apart from the terminal program.
func newDashboardCmdWith(run func(*cobra.Command, dashboardOptions) error) *cobra.Command {
	var o dashboardOptions
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Live view of connectors, the log, Satellite sessions and events",
		Long: `Attach a live terminal dashboard to a running engine's status API.

It shows the Postgres connectors (state, slot LSNs, lag, transactions per
second), the transaction log, connected Satellite clients and recent events.
When the engine is unreachable it says so and keeps retrying.

An engine with STATUS_API_TOKEN set wants that token (env STATUS_API_TOKEN or
--token); one without it answers only dashboards on its own machine.

Keys: tab/shift+tab move focus, ↑/↓ scroll, / filter, enter details,
? help, q quit. NO_COLOR=1 turns colour off.`,
		Example: `  # the local dev engine (STATUS_PORT or 5050)
  electric dashboard

  # another engine
  electric dashboard --url http://10.0.0.5:5050

  # an engine with STATUS_API_TOKEN set (read from the environment; --token
  # also works, but shows the token to ps)
  STATUS_API_TOKEN=… electric dashboard --url http://10.0.0.5:5050`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := o
			o.Token = statusToken(o.Token)
			return run(cmd, o)
		},
	}
	cmd.Flags().StringVar(&o.URL, "url", defaultStatusURL(), "the engine's status API (env STATUS_PORT sets the port)")
	cmd.Flags().StringVar(&o.Token, "token", "", "the engine's status API token (env "+config.EnvStatusAPIToken+")")
	return cmd
}
