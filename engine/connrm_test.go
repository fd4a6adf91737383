package engine_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine"
	"github.com/electric-sql/electric-go/engine/status"
)

// electricObjects lists what the engine installs on a Postgres for a
// connector: subscriptions, slots, publications, event triggers, upsert
// triggers and their functions.
const electricObjects = `
SELECT 'subscription ' || subname FROM pg_subscription
UNION ALL SELECT 'slot ' || slot_name FROM pg_replication_slots
UNION ALL SELECT 'publication ' || pubname FROM pg_publication
UNION ALL SELECT 'event trigger ' || evtname FROM pg_event_trigger
UNION ALL SELECT 'trigger ' || tgname || ' on ' || tgrelid::regclass FROM pg_trigger WHERE tgname = 'electric_upsert'
UNION ALL SELECT 'function ' || p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  WHERE n.nspname = 'electric' AND p.prorettype IN ('trigger'::regtype, 'event_trigger'::regtype)
ORDER BY 1`

// connectorsOf reads GET /api/connectors.
func (c *cluster) connectorsOf() map[string]status.Connector {
	c.t.Helper()
	cl, err := status.NewClient(c.statusURL(), nil)
	if err != nil {
		c.t.Fatal(err)
	}
	cs, err := cl.Connectors(context.Background())
	if err != nil {
		c.t.Fatalf("GET /api/connectors: %v", err)
	}
	out := map[string]status.Connector{}
	for _, cn := range cs {
		out[cn.Name] = cn
	}
	return out
}

func (c *cluster) removeConnector(name string, forget bool) (status.ConnectorRemoval, error) {
	cl, err := status.NewClient(c.statusURL(), nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl.RemoveConnector(context.Background(), name, forget)
}

// A connector taken out of CONNECTORS is reported as orphaned at start;
// electric connectors remove then drops everything it had on its Postgres
// while the engine runs, the others keep replicating, and a restart does
// not bring it back.
func TestRemoveConnector(t *testing.T) {
	c := newCluster(t, 3, initSQL)
	dir := t.TempDir()
	c.start(dir)
	c.exec("postgres_1", "INSERT INTO entries (id, content) VALUES ('00000000-0000-0000-0000-000000000001', 'before')")
	c.waitAll("SELECT content FROM entries", "before")
	gone := c.pgs["postgres_3"]
	if got := gone.Rows(t, electricObjects); len(got) < 6 {
		t.Fatalf("postgres_3 before removal: want its subscription, slot, publication and triggers, got %q", got)
	}
	c.stop()

	// postgres_3 leaves CONNECTORS.
	c.env["CONNECTORS"] = "postgres_1=" + c.pgs["postgres_1"].URI() + ";postgres_2=" + c.pgs["postgres_2"].URI()
	c.names = []string{"postgres_1", "postgres_2"}
	c.start(dir)
	if log := c.logBuf.String(); !strings.Contains(log, "connector is not in CONNECTORS") || !strings.Contains(log, `remove_with="electric connectors remove postgres_3"`) {
		t.Errorf("no warning naming the orphaned connector and its removal command in the log:\n%s", c.logBuf.Tail(4000))
	}
	c.eventually(30*time.Second, func() bool {
		o := c.connectorsOf()["postgres_3"]
		return o.State == status.StateOrphaned && o.WALRetainedBytes >= 0
	}, func() string {
		return fmt.Sprintf("postgres_3 not listed as orphaned with its slot: %+v", c.connectorsOf()["postgres_3"])
	})
	if o := c.connectorsOf()["postgres_3"]; !strings.Contains(o.NotReadyReason, "electric connectors remove postgres_3") {
		t.Errorf("orphan's reason does not say how to remove it: %q", o.NotReadyReason)
	}

	// Refusals.
	if _, err := c.removeConnector("postgres_1", false); err == nil || !strings.Contains(err.Error(), "409") || !strings.Contains(err.Error(), "take it out of CONNECTORS") {
		t.Errorf("removing a configured connector: want a 409 saying to take it out of CONNECTORS, got %v", err)
	}
	if _, err := c.removeConnector("nosuch", false); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("removing an unknown connector: want 404, got %v", err)
	}
	req, _ := http.NewRequest(http.MethodDelete, c.statusURL()+"/api/connectors/bad%20name", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a bad connector name: want 400, got %v %v", resp, err)
	} else {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	res, err := c.removeConnector("postgres_3", false)
	if err != nil {
		t.Fatalf("removing postgres_3: %v", err)
	}
	dropped := strings.Join(res.Dropped, "\n")
	for _, want := range []string{"subscription postgres_3", "replication slot all_changes", "publication all_tables",
		"event trigger electric_publish_new_tables", "event trigger electric_replica_identity_full", "trigger electric_upsert on entries"} {
		if !strings.Contains(dropped, want) {
			t.Errorf("removal did not report %q; dropped:\n%s", want, dropped)
		}
	}
	if got := gone.Rows(t, electricObjects); len(got) != 0 {
		t.Errorf("postgres_3 still has electric objects after removal: %q", got)
	}
	// Whether a position was stored depends on what postgres_3 sent (an
	// echo alone may store none); what matters is that none is left.
	for _, src := range []string{"postgres_3", "snapshot:postgres_3"} {
		if p, err := engine.PositionForTest(c.eng, src); err != nil || len(p) != 0 {
			t.Errorf("removal left the position of %s: %x (%v)", src, p, err)
		}
	}
	if !strings.Contains(strings.Join(res.State, ","), "registry") {
		t.Errorf("removal did not drop the engine's registry entry: %q", res.State)
	}
	if _, ok := c.connectorsOf()["postgres_3"]; ok {
		t.Errorf("postgres_3 still listed after removal")
	}
	if _, err := c.removeConnector("postgres_3", false); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("removing it again: want 404, got %v", err)
	}

	// The others keep replicating; postgres_3 gets nothing more.
	c.exec("postgres_2", "INSERT INTO entries (id, content) VALUES ('00000000-0000-0000-0000-000000000002', 'after')")
	c.waitAll("SELECT content FROM entries ORDER BY id", "before", "after")
	time.Sleep(time.Second)
	if got := gone.Rows(t, "SELECT content FROM entries ORDER BY id"); strings.Join(got, ",") != "before" {
		t.Errorf("postgres_3 after removal: got %q, want only the row from before", got)
	}

	// A restart neither reports it nor sets anything up on it again.
	c.stop()
	mark := len(c.logBuf.String())
	c.start(dir)
	if log := c.logBuf.String()[mark:]; strings.Contains(log, "postgres_3") {
		t.Errorf("the engine mentions the removed connector after a restart:\n%s", log)
	}
	if got := gone.Rows(t, electricObjects); len(got) != 0 {
		t.Errorf("postgres_3 has electric objects again after a restart: %q", got)
	}
	c.checkEngineLog()
}

// A slot Postgres invalidated (max_slot_wal_keep_size) while the engine was
// stopped is detected at start, reported (status, log, metric) and
// recreated, and the connector streams again.
func TestInvalidatedSlotRecreated(t *testing.T) {
	c := newCluster(t, 2, initSQL)
	dir := t.TempDir()
	c.start(dir)
	c.exec("postgres_2", "INSERT INTO entries (id, content) VALUES ('00000000-0000-0000-0000-000000000001', 'before')")
	c.waitAll("SELECT content FROM entries", "before")
	c.stop()

	pg := c.pgs["postgres_2"]
	pg.Exec("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
	pg.Exec("SELECT pg_reload_conf()")
	c.eventually(30*time.Second, func() bool {
		// WAL the stopped engine never reads: a few segments, then a
		// checkpoint that invalidates the slot holding them.
		pg.Exec("INSERT INTO entries (id, content, content_b) SELECT gen_random_uuid(), 'lost', repeat('x', 60) FROM generate_series(1, 2000)")
		pg.Exec("SELECT pg_switch_wal()")
		pg.Exec("CHECKPOINT")
		st := pg.Rows(t, "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'all_changes'")
		return len(st) == 1 && st[0] == "lost"
	}, func() string { return "the slot was not invalidated" })

	c.start(dir)
	cn := c.connectorsOf()["postgres_2"]
	if cn.SlotInvalidations != 1 || !strings.Contains(cn.SlotLost, "needs a snapshot") && !strings.Contains(cn.SlotLost, "need a snapshot") {
		t.Errorf("status after recreation: invalidations %d, slot_lost %q", cn.SlotInvalidations, cn.SlotLost)
	}
	if !strings.Contains(c.logBuf.String(), "replication slot was invalidated by Postgres") {
		t.Errorf("no log line about the invalidated slot:\n%s", c.logBuf.Tail(4000))
	}
	if got := pg.Rows(t, "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'all_changes'"); len(got) != 1 || got[0] == "lost" {
		t.Errorf("slot after recreation: wal_status %q", got)
	}
	resp, err := http.Get(c.statusURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `electric_connector_slot_invalidations_total{connector="postgres_2"} 1`) {
		t.Errorf("/metrics lacks the invalidation count")
	}
	// The new slot streams.
	c.exec("postgres_2", "INSERT INTO entries (id, content) VALUES ('00000000-0000-0000-0000-000000000002', 'after')")
	c.waitRows("postgres_1", "SELECT content FROM entries WHERE content <> 'lost' ORDER BY id", "before", "after")
}
