package engine_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/migrations"
)

// The status API of issue 7 against a running engine on real Postgres: the
// snapshots reflect traffic, the event stream carries connector states, and
// /metrics exposes the connectors and the log.
func TestStatusAPI(t *testing.T) {
	c := newCluster(t, 2, initSQL)
	c.start(t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := status.NewClient(c.statusURL(), nil)
	if err != nil {
		t.Fatal(err)
	}

	id := "00000000-0000-0000-0000-0000000000aa"
	c.exec("postgres_1", "INSERT INTO public.entries (id, content) VALUES ($1, 'status')", id)
	c.waitRows("postgres_2", "SELECT content FROM public.entries WHERE id = '"+id+"'", "status")

	c.eventually(30*time.Second, func() bool {
		conns, err := cl.Connectors(ctx)
		if err != nil || len(conns) != 2 {
			return false
		}
		for _, sc := range conns {
			if sc.State != status.StateReady || sc.Slot != "all_changes" || sc.ConfirmedLSN == 0 {
				return false
			}
			if sc.Subscriber.State != "streaming" || sc.Subscriber.AppliedOffset == 0 {
				return false
			}
		}
		return conns[0].Name == "postgres_1" && conns[0].Transactions > 0 && conns[0].LastTxTime != nil
	}, func() string {
		conns, err := cl.Connectors(ctx)
		return "connectors not reflecting traffic: " + strings.TrimSpace(func() string {
			if err != nil {
				return err.Error()
			}
			var b strings.Builder
			for _, sc := range conns {
				b.WriteString(sc.Name + ":" + string(sc.State) + "/" + sc.Subscriber.State + " ")
			}
			return b.String()
		}())
	})

	lg, err := cl.Log(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lg.Head == 0 || !lg.Healthy || lg.SizeBytes <= 0 {
		t.Fatalf("log %+v", lg)
	}
	rep, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Connectors) != 2 {
		t.Fatalf("status %+v", rep)
	}
	sessions, err := cl.Sessions(ctx)
	if err != nil || len(sessions) != 0 {
		t.Fatalf("sessions %+v %v", sessions, err)
	}

	// The ring replays what happened since start: both connectors became ready.
	ready := map[string]bool{}
	ectx, ecancel := context.WithTimeout(ctx, 10*time.Second)
	defer ecancel()
	cl.Events(ectx, 0, func(ev status.Event) error {
		if ev.Kind == status.KindConnector && strings.Contains(ev.Message, "ready") {
			ready[ev.Connector] = true
		}
		if len(ready) == 2 {
			ecancel()
		}
		return nil
	})
	if !ready["postgres_1"] || !ready["postgres_2"] {
		t.Fatalf("events: ready seen for %v", ready)
	}

	resp, err := http.Get(c.statusURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"electric_status_up 1", `connector="postgres_1"`, "electric_log_", "electric_satellite_invalid_rows_total 0", "electric_satellite_held_transactions_total 0"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// Issue 11: with STATUS_API_TOKEN set, a running engine takes migrations
// and serves sessions, events and the migrations API only with the bearer
// token, while /api/status and /metrics stay open; the typed clients send
// the token.
func TestStatusAPIToken(t *testing.T) {
	const token = "engine-status-token-0123456789"
	c := newCluster(t, 2, initSQL)
	dir := t.TempDir()
	c.envFor(dir)
	c.env["STATUS_API_TOKEN"] = token
	writeMigration(t, dir, "1700000000_authz", "CREATE TABLE public.authz (id TEXT PRIMARY KEY);")
	c.start(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	do := func(method, path, bearer, body string) (int, http.Header) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, c.statusURL()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header
	}
	put := `{"vsn":"1700000000_authz"}`
	if code, h := do(http.MethodPut, "/api/migrations/postgres_1", "", put); code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("unauthenticated PUT /api/migrations = %d %v, want 401 with WWW-Authenticate", code, h)
	}
	if code, _ := do(http.MethodPut, "/api/migrations/postgres_1", "wrong-token-wrong-token", put); code != http.StatusUnauthorized {
		t.Fatalf("PUT with a wrong bearer = %d, want 401", code)
	}
	if got := c.query("postgres_1", "SELECT to_regclass('public.authz') IS NULL, (SELECT count(*) FROM electric.migrations WHERE version = '1700000000_authz')"); strings.Join(got, "") != "true|0" {
		t.Fatalf("refused migrations changed Postgres: %v", got)
	}
	for _, path := range []string{"/api/sessions", "/api/connectors", "/api/log", "/api/events", "/api/migrations"} {
		if code, _ := do(http.MethodGet, path, "", ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s without the token = %d, want 401", path, code)
		}
	}
	for _, path := range []string{"/api/status", "/metrics"} {
		if code, _ := do(http.MethodGet, path, "", ""); code != http.StatusOK {
			t.Errorf("GET %s without the token = %d, want 200", path, code)
		}
	}

	cl, err := status.NewClient(c.statusURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Sessions(ctx); !errors.Is(err, status.ErrRefused) {
		t.Fatalf("client without the token: %v, want ErrRefused", err)
	}
	if _, err := cl.WithToken(token).Sessions(ctx); err != nil {
		t.Fatalf("client with the token: %v", err)
	}
	mc := &migrations.Client{BaseURL: c.statusURL(), Token: token}
	if err := mc.Apply(ctx, "postgres_1", "1700000000_authz"); err != nil {
		t.Fatalf("PUT with the token: %v", err)
	}
	st, err := mc.Statuses(ctx)
	if err != nil || len(st) != 2 || st[0] == nil || st[0].Vsn != "1700000000_authz" {
		t.Fatalf("GET /api/migrations with the token: %+v %v", st, err)
	}
}
