package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/electric-sql/electric-go/engine/config"
	"github.com/electric-sql/electric-go/engine/status"
)

// auditOptions are what `electric conflicts`, `electric rejected` and
// `electric rejected retry` run with once their flags are parsed.
type auditOptions struct {
	URL   string
	Token string // --token, else STATUS_API_TOKEN
	Query status.AuditQuery
	JSON  bool
}

// auditFlags adds the shared flags to cmd; kind adds --kind (rejected).
func auditFlags(cmd *cobra.Command, o *auditOptions, kind bool) {
	f := cmd.Flags()
	f.StringVar(&o.URL, "url", defaultStatusURL(), "the engine's status API (env "+config.EnvStatusPort+" sets the port)")
	f.StringVar(&o.Token, "token", "", "the engine's status API token (env "+config.EnvStatusAPIToken+")")
	f.StringVar(&o.Query.Table, "table", "", "only this table (schema.table)")
	f.StringVar(&o.Query.Connector, "connector", "", "only events involving this connector")
	f.StringVar(&o.Query.Origin, "origin", "", "only writes of this origin (a connector, or satellite:<client id>)")
	f.StringVar(&o.Query.Since, "since", "", "only events since this RFC 3339 time or this long ago (1h, 30m)")
	f.IntVar(&o.Query.Limit, "limit", 50, "at most this many events, newest first (up to 10000)")
	f.BoolVar(&o.JSON, "json", false, "print JSON")
	if kind {
		f.StringVar(&o.Query.Kind, "kind", "", "only invalid_value, ownership or withheld")
	}
}

// auditRunners are what the commands do; tests replace them.
type auditRunners struct {
	conflicts, rejected, retry func(*cobra.Command, auditOptions) error
}

var defaultAuditRunners = auditRunners{conflicts: runConflicts, rejected: runRejected, retry: runRetry}

func newConflictsCmd() *cobra.Command { return newConflictsCmdWith(defaultAuditRunners.conflicts) }

func newConflictsCmdWith(run func(*cobra.Command, auditOptions) error) *cobra.Command {
	o := &auditOptions{}
	cmd := &cobra.Command{
		Use:   "conflicts",
		Short: "List the writes that lost a conflict, newest first",
		Long: `Lists the cells a concurrent write lost, as the running engine recorded them:
for each column, the winning and losing origin, value and effective timestamp,
and the log offset. Only concurrent writes (neither had seen the other) are
conflicts; an update over a value its writer had seen is not. The engine keeps
AUDIT_MAX_EVENTS events for AUDIT_MAX_AGE.`,
		Example: `  electric conflicts
  electric conflicts --table public.items --since 1h
  electric conflicts --origin db_b --json
  STATUS_API_TOKEN=… electric conflicts --url http://10.0.0.5:5050`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Token = statusToken(o.Token)
			return run(cmd, *o)
		},
	}
	auditFlags(cmd, o, false)
	return cmd
}

func newRejectedCmd() *cobra.Command { return newRejectedCmdWith(defaultAuditRunners) }

func newRejectedCmdWith(run auditRunners) *cobra.Command {
	o := &auditOptions{}
	cmd := &cobra.Command{
		Use:   "rejected",
		Short: "List refused client writes and rows withheld from a subscriber",
		Long: `Lists what the running engine refused or held back, newest first: client
writes with a value the column does not take (invalid_value) or to another
user's row (ownership), and rows withheld from one connector's subscriber
because it could not apply them (withheld, with its error and state:
withheld, retry or resolved). 'rejected retry' asks the engine to retry
withheld rows.`,
		Example: `  electric rejected
  electric rejected --kind withheld --connector db_b
  electric rejected --origin satellite:3f2a… --json
  electric rejected retry --connector db_b`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Token = statusToken(o.Token)
			return run.rejected(cmd, *o)
		},
	}
	auditFlags(cmd, o, true)
	ro := &auditOptions{}
	retry := &cobra.Command{
		Use:   "retry",
		Short: "Retry the withheld rows the filters select",
		Long: `Marks the withheld rows the filters select (state withheld or retry) to be
retried and asks the engine to send them again; prints the rows marked.`,
		Example: `  electric rejected retry
  electric rejected retry --table public.items --connector db_b`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ro.Token = statusToken(ro.Token)
			ro.Query.Kind = ""
			return run.retry(cmd, *ro)
		},
	}
	auditFlags(retry, ro, false)
	cmd.AddCommand(retry)
	return cmd
}

func (o auditOptions) client() (*status.Client, error) {
	c, err := status.NewClient(o.URL, nil)
	if err != nil {
		return nil, err
	}
	return c.WithToken(o.Token), nil
}

// engineErr says what to do when the engine did not answer.
func engineErr(url string, err error) error {
	var ne net.Error
	if errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") {
		return fmt.Errorf("asking the engine at %s (is 'electric serve' running?): %w", url, err)
	}
	return err // a refusal already says to set STATUS_API_TOKEN or --token
}

func runAuditList(cmd *cobra.Command, o auditOptions, list func(*status.Client, context.Context, status.AuditQuery) ([]status.AuditEvent, error), empty string) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
	defer cancel()
	evs, err := list(c, ctx, o.Query)
	if err != nil {
		return engineErr(o.URL, err)
	}
	if o.JSON {
		return writeJSONOut(cmd.OutOrStdout(), status.AuditResponse{Events: evs})
	}
	if len(evs) == 0 {
		fmt.Fprintln(cmd.OutOrStdout(), empty)
		return nil
	}
	return printAudit(cmd.OutOrStdout(), evs)
}

func runConflicts(cmd *cobra.Command, o auditOptions) error {
	return runAuditList(cmd, o, (*status.Client).Conflicts, "no conflicts")
}

func runRejected(cmd *cobra.Command, o auditOptions) error {
	return runAuditList(cmd, o, (*status.Client).Rejected, "nothing rejected")
}

func runRetry(cmd *cobra.Command, o auditOptions) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
	defer cancel()
	evs, err := c.RetryRejected(ctx, o.Query)
	if err != nil {
		return engineErr(o.URL, err)
	}
	if o.JSON {
		return writeJSONOut(cmd.OutOrStdout(), status.RetryResponse{Retried: evs})
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%d withheld row(s) marked for retry\n", len(evs))
	if len(evs) > 0 {
		return printAudit(cmd.OutOrStdout(), evs)
	}
	return nil
}

// printAudit writes events as a table: conflicts with their winner and
// loser, rejections with their origin, connector and error.
func printAudit(w io.Writer, evs []status.AuditEvent) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	conflicts := evs[0].Kind == status.AuditConflict
	if conflicts {
		fmt.Fprintln(tw, "TIME\tTABLE\tKEY\tCOLUMN\tWINNER\tLOSER\tOFFSET")
	} else {
		fmt.Fprintln(tw, "TIME\tKIND\tTABLE\tKEY\tORIGIN\tCONNECTOR\tSTATE\tERROR")
	}
	for _, ev := range evs {
		ts := ev.Time.UTC().Format("2006-01-02 15:04:05")
		if ev.Kind == status.AuditConflict {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", ts, cell(ev.Table), cell(ev.Key), cell(ev.Column),
				side(ev.Winner), side(ev.Loser), ev.Offset)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ts, ev.Kind, cell(ev.Table), cell(ev.Key),
			cell(ev.Origin), cell(ev.Connector), cell(ev.State), cell(ev.Error))
	}
	return tw.Flush()
}

// side is "origin=value" of one write of a conflict.
func side(w *status.AuditWrite) string {
	if w == nil {
		return "-"
	}
	v := "NULL"
	if w.Value != nil {
		v = strconv.Quote(short(*w.Value))
	}
	return w.Origin + "=" + v
}

// cell keeps one table cell on one line and short.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return short(s)
}

func short(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 40 {
		return string(r[:39]) + "…"
	}
	return s
}
