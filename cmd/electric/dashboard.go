package main

import (
	"github.com/spf13/cobra"

	"github.com/electric-sql/electric-go/tui"
)

func newDashboardCmd() *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Live view of connectors, the log, Satellite sessions and events",
		Long: `Attach a live terminal dashboard to a running engine's status API.

It shows the Postgres connectors (state, slot LSNs, lag, transactions per
second), the transaction log, connected Satellite clients and recent events.
When the engine is unreachable it says so and keeps retrying.

Keys: tab/shift+tab move focus, ↑/↓ scroll, / filter, enter details,
? help, q quit. NO_COLOR=1 turns colour off.`,
		Example: `  # the local dev engine (STATUS_PORT or 5050)
  electric dashboard

  # another engine
  electric dashboard --url http://10.0.0.5:5050`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return tui.Run(cmd.Context(), url)
		},
	}
	cmd.Flags().StringVar(&url, "url", defaultStatusURL(), "the engine's status API (env STATUS_PORT sets the port)")
	return cmd
}
