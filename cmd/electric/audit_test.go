package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/electric-sql/electric-go/engine/status"
)

type recordedAudit struct {
	Cmd string
	auditOptions
}

func TestAuditFlags(t *testing.T) {
	def := auditOptions{URL: "http://127.0.0.1:5050", Query: status.AuditQuery{Limit: 50}}
	with := func(o auditOptions, f func(*auditOptions)) auditOptions { f(&o); return o }
	runParseCases(t, []string{"STATUS_PORT", "STATUS_API_TOKEN"},
		func(record func(any) error) *cobra.Command {
			rec := func(name string) func(*cobra.Command, auditOptions) error {
				return func(_ *cobra.Command, o auditOptions) error { return record(recordedAudit{name, o}) }
			}
			root := &cobra.Command{Use: "electric", SilenceUsage: true, SilenceErrors: true}
			root.AddCommand(newConflictsCmdWith(rec("conflicts")),
				newRejectedCmdWith(auditRunners{rejected: rec("rejected"), retry: rec("retry")}))
			return root
		},
		[]parseCase{
			{name: "conflicts", args: []string{"conflicts"}, want: recordedAudit{"conflicts", def}},
			{name: "conflicts filters", env: map[string]string{"STATUS_PORT": "6050", "STATUS_API_TOKEN": "tok"},
				args: []string{"conflicts", "--table", "public.items", "--origin", "db_b", "--connector", "db_a", "--since", "1h", "--limit", "5", "--json"},
				want: recordedAudit{"conflicts", auditOptions{URL: "http://127.0.0.1:6050", Token: "tok", JSON: true,
					Query: status.AuditQuery{Table: "public.items", Origin: "db_b", Connector: "db_a", Since: "1h", Limit: 5}}}},
			{name: "token flag beats the environment", env: map[string]string{"STATUS_API_TOKEN": "tok"},
				args: []string{"rejected", "--token", "flag", "--kind", "withheld"},
				want: recordedAudit{"rejected", with(def, func(o *auditOptions) { o.Token = "flag"; o.Query.Kind = "withheld" })}},
			{name: "retry", args: []string{"rejected", "retry", "--connector", "db_b", "--url", "http://h:1"},
				want: recordedAudit{"retry", with(def, func(o *auditOptions) { o.URL = "http://h:1"; o.Query.Connector = "db_b" })}},
			{name: "conflicts has no kind", args: []string{"conflicts", "--kind", "x"}, wantErr: "unknown flag: --kind"},
			{name: "no arguments", args: []string{"conflicts", "x"}, wantErr: "unknown command"},
			{name: "bad limit", args: []string{"rejected", "--limit", "many"}, wantErr: `invalid argument "many" for "--limit"`},
		})
}

type cliAudit struct{ evs []status.AuditEvent }

func (a cliAudit) Query(context.Context, status.AuditFilter) ([]status.AuditEvent, error) {
	return a.evs, nil
}
func (a cliAudit) Retry(context.Context, status.AuditFilter) ([]status.AuditEvent, error) {
	return a.evs, nil
}
func (a cliAudit) Stats() status.AuditStats { return status.AuditStats{} }

type noProvider struct{}

func (noProvider) Status(context.Context) (status.Status, error)          { return status.Status{}, nil }
func (noProvider) Connectors(context.Context) ([]status.Connector, error) { return nil, nil }
func (noProvider) Log(context.Context) (status.Log, error)                { return status.Log{}, nil }
func (noProvider) Sessions(context.Context) ([]status.Session, error)     { return nil, nil }

func TestAuditOutput(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	a, b := "from a", "from\nb"
	conflicts := []status.AuditEvent{{ID: 1, Kind: status.AuditConflict, Time: at, Table: "public.items", Key: "k1", Column: "content",
		Winner: &status.AuditWrite{Origin: "db_b", Value: &b, Eff: 2}, Loser: &status.AuditWrite{Origin: "db_a", Value: &a, Eff: 1}, Offset: 7}}
	withheld := []status.AuditEvent{{ID: 2, Kind: status.AuditWithheld, Time: at, Table: "public.items", Key: "k2",
		Origin: "db_a", Connector: "db_b", State: "retry", Error: `new row violates check constraint "positive"`}}
	const tok = "0123456789abcdef0123"
	serve := func(evs []status.AuditEvent) string {
		s, err := status.New(status.Options{Provider: noProvider{}, Audit: cliAudit{evs}, Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(s.Handler())
		t.Cleanup(hs.Close)
		return hs.URL
	}
	run := func(f func(*cobra.Command, auditOptions) error, o auditOptions) (string, error) {
		cmd := &cobra.Command{}
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetContext(context.Background())
		err := f(cmd, o)
		return out.String(), err
	}
	cases := []struct {
		name string
		run  func(*cobra.Command, auditOptions) error
		evs  []status.AuditEvent
		json bool
		want []string
	}{
		{"conflicts table", runConflicts, conflicts, false, []string{
			"TIME                 TABLE         KEY  COLUMN   WINNER         LOSER          OFFSET\n",
			`2026-03-04 05:06:07  public.items  k1   content  db_b="from b"  db_a="from a"  7` + "\n"}},
		{"conflicts json", runConflicts, conflicts, true, []string{`"winner": {`, `"value": "from\nb"`, `"offset": 7`}},
		{"no conflicts", runConflicts, nil, false, []string{"no conflicts"}},
		{"rejected table", runRejected, withheld, false, []string{
			"TIME                 KIND      TABLE         KEY  ORIGIN  CONNECTOR  STATE  ERROR",
			`2026-03-04 05:06:07  withheld  public.items  k2   db_a    db_b       retry  new row violates check constraint "posi…` + "\n"}},
		{"retry", runRetry, withheld, false, []string{"1 withheld row(s) marked for retry", "withheld  public.items"}},
	}
	for _, c := range cases {
		out, err := run(c.run, auditOptions{URL: serve(c.evs), Token: tok, JSON: c.json})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", c.name, w, out)
			}
		}
	}
	// Without the token: the refusal says what to set.
	if _, err := run(runConflicts, auditOptions{URL: serve(nil)}); err == nil || !strings.Contains(err.Error(), "STATUS_API_TOKEN") {
		t.Errorf("refused: %v", err)
	}
}
