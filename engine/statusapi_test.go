package engine_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/status"
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
	for _, want := range []string{"electric_status_up 1", `connector="postgres_1"`, "electric_log_"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
