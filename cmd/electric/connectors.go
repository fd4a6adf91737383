package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/electric-sql/electric-go/engine/config"
	"github.com/electric-sql/electric-go/engine/status"
)

// connectorsOptions are what `electric connectors list|remove` run with.
type connectorsOptions struct {
	URL    string
	Token  string // --token, else STATUS_API_TOKEN
	JSON   bool
	Name   string // remove
	Forget bool   // remove: leave the Postgres alone
}

// connectorsRunners are what the commands do; tests replace them.
type connectorsRunners struct {
	list, remove func(*cobra.Command, connectorsOptions) error
}

func newConnectorsCmd() *cobra.Command {
	return newConnectorsCmdWith(connectorsRunners{list: runConnectorsList, remove: runConnectorsRemove})
}

func newConnectorsCmdWith(run connectorsRunners) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "connectors",
		Short: "List the engine's Postgres connectors, remove one taken out of CONNECTORS",
		Long: `Lists the running engine's connectors with their state, slot and lag, and
removes a connector that was taken out of CONNECTORS: its subscription,
upsert triggers, replication slot, publication and event triggers on that
Postgres, and what the engine keeps for it (position, snapshot progress,
withheld rows).

A connector is removed in two steps: take it out of CONNECTORS and restart
the engine (it is then listed as orphaned, its slot still holding WAL on
that Postgres), then 'electric connectors remove NAME'. A connector still
in CONNECTORS is refused: the engine would set it up again at its next start.`,
		Example: `  electric connectors list
  electric connectors list --json
  electric connectors remove db_b
  electric connectors remove db_old --forget   # that Postgres is gone for good`,
		Args: cobra.NoArgs,
	}
	flags := func(c *cobra.Command, o *connectorsOptions) {
		c.Flags().StringVar(&o.URL, "url", defaultStatusURL(), "the engine's status API (env "+config.EnvStatusPort+" sets the port)")
		c.Flags().StringVar(&o.Token, "token", "", "the engine's status API token (env "+config.EnvStatusAPIToken+")")
		c.Flags().BoolVar(&o.JSON, "json", false, "print JSON")
	}
	lo := &connectorsOptions{}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the connectors with state, slot and lag",
		Long: `Lists every connector of the running engine: its state (ready, init,
snapshot, migration, error, or orphaned: not in CONNECTORS any more), its
replication slot and the WAL it holds on its Postgres, how far the engine is
behind that Postgres (source lag) and how far its subscriber is behind the
log (entries).`,
		Example: `  electric connectors list
  electric connectors list --json
  STATUS_API_TOKEN=… electric connectors list --url http://10.0.0.5:5050`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lo.Token = statusToken(lo.Token)
			return run.list(cmd, *lo)
		},
	}
	flags(list, lo)
	ro := &connectorsOptions{}
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a connector taken out of CONNECTORS, on its Postgres and in the engine",
		Long: `Removes connector NAME, which must no longer be in CONNECTORS (take it out,
restart the engine, then run this): drops its subscription, its upsert
triggers and their functions, its replication slot (so it no longer holds
WAL), its publication and the event triggers that keep it current on that
Postgres, then the engine's position, snapshot progress and withheld rows
of it. Prints what it dropped. Run it again after a failure: what is gone
is skipped. --forget removes only the engine's state, for a Postgres that
is gone for good (drop the slot there yourself if it ever comes back).`,
		Example: `  electric connectors remove db_b
  electric connectors remove db_b --json
  electric connectors remove db_old --forget`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ro.Token = statusToken(ro.Token)
			ro.Name = args[0]
			return run.remove(cmd, *ro)
		},
	}
	flags(remove, ro)
	remove.Flags().BoolVar(&ro.Forget, "forget", false, "do not touch the connector's Postgres (it is gone): remove the engine's state of it only")
	cmd.AddCommand(list, remove)
	return cmd
}

func (o connectorsOptions) client() (*status.Client, error) {
	c, err := status.NewClient(o.URL, nil)
	if err != nil {
		return nil, err
	}
	return c.WithToken(o.Token), nil
}

func runConnectorsList(cmd *cobra.Command, o connectorsOptions) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
	defer cancel()
	cs, err := c.Connectors(ctx)
	if err != nil {
		return engineErr(o.URL, err)
	}
	if o.JSON {
		if cs == nil {
			cs = []status.Connector{}
		}
		return writeJSONOut(cmd.OutOrStdout(), cs)
	}
	if len(cs) == 0 {
		fmt.Fprintln(cmd.OutOrStdout(), "no connectors")
		return nil
	}
	return printConnectors(cmd.OutOrStdout(), cs)
}

// printConnectors writes one line per connector, then why each one that
// is not ready is not.
func printConnectors(w io.Writer, cs []status.Connector) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tSLOT\tWAL HELD\tSOURCE LAG\tSUBSCRIBER LAG")
	for _, c := range cs {
		slot := cell(c.Slot)
		if c.WALStatus != "" && c.WALStatus != "reserved" {
			slot += " (" + c.WALStatus + ")"
		}
		subLag := strconv.FormatUint(c.Subscriber.LagEntries, 10) + " entries"
		if c.State == status.StateOrphaned {
			subLag = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.State, slot, bytesCell(c.WALRetainedBytes), bytesCell(c.SourceLagBytes), subLag)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range cs {
		if c.NotReadyReason != "" {
			fmt.Fprintf(w, "%s: %s\n", c.Name, c.NotReadyReason)
		}
		if c.SlotLost != "" {
			fmt.Fprintf(w, "%s: %s\n", c.Name, c.SlotLost)
		}
	}
	return nil
}

// bytesCell is a byte count for people; "-" when unknown (negative).
func bytesCell(n int64) string {
	switch {
	case n < 0:
		return "-"
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
}

func runConnectorsRemove(cmd *cobra.Command, o connectorsOptions) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	// The engine bounds its own work on that Postgres (2 min).
	ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Minute)
	defer cancel()
	res, err := c.RemoveConnector(ctx, o.Name, o.Forget)
	if err != nil {
		return engineErr(o.URL, err)
	}
	if o.JSON {
		return writeJSONOut(cmd.OutOrStdout(), res)
	}
	out := cmd.OutOrStdout()
	if res.Forgotten {
		fmt.Fprintf(out, "%s: forgotten (its Postgres was not touched)\n", res.Connector)
	} else {
		fmt.Fprintf(out, "%s: removed\n", res.Connector)
	}
	for _, d := range res.Dropped {
		fmt.Fprintf(out, "  dropped %s\n", d)
	}
	for _, s := range res.State {
		fmt.Fprintf(out, "  removed engine state: %s\n", s)
	}
	return nil
}
