package satellite_test

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine"
	"github.com/electric-sql/electric-go/engine/satellite"
	"github.com/electric-sql/electric-go/internal/satinterop"
	"github.com/electric-sql/electric-go/internal/testkit"
)

// The client's SQLite takes anything: no NOT NULL (satellite-client-notes
// §6 U), INTEGER affinity keeps 'abc' as text.
var checkedTable = satinterop.Table{Name: "checked", Columns: []satinterop.Column{{Name: "id", Type: "TEXT", PK: true},
	{Name: "n", Type: "INTEGER"}, {Name: "s", Type: "INTEGER"}, {Name: "v", Type: "TEXT"}, {Name: "t", Type: "TEXT"}}}

// rejections collects what the engine's OnRejected hook saw.
type rejections struct {
	mu   sync.Mutex
	list []satellite.Rejection
}

func (r *rejections) add(x satellite.Rejection) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, x)
}

// waitFor waits until n rejections of kind for key (and column, if set)
// were recorded, and returns the last.
func (r *rejections) waitFor(t *testing.T, kind, key, column string, n int) satellite.Rejection {
	t.Helper()
	var found satellite.Rejection
	testkit.EventuallyWithin(t, 30*time.Second, fmt.Sprintf("rejection %s of %s %s", kind, key, column), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		seen := 0
		for _, x := range r.list {
			if x.Kind == kind && x.Key == key && (column == "" || x.Column == column) {
				found = x
				seen++
			}
		}
		return seen >= n
	})
	return found
}

// Values a Postgres column cannot hold, written by a real 0.4.3 client
// (issue 12 point 3): each transaction is acked, reaches no Postgres, is
// recorded, and the client is sent back the server's row; the
// subscriptions keep applying what follows.
func TestInteropInvalidValuesRefused(t *testing.T) {
	rec := &rejections{}
	pe := startEngine(t, func(e *engine.Engine) { e.OnRejected(rec.add) })
	dir := t.TempDir()
	a := satinterop.Start(t, "A", filepath.Join(dir, "a.db"))
	a.Open(pe.wsPort, "alice", append(clientTables, checkedTable)...)
	both := []string{"postgres_1", "postgres_2"}
	const pgRows = "SELECT id::text, n, s, v, t FROM checked ORDER BY id"
	const clientRows = "SELECT id, n, s, v, t FROM checked ORDER BY id"

	a.Exec("INSERT INTO checked (id, n, s, v, t) VALUES (?, 1, 2, 'abc', 'ok')", uid(1))
	pe.waitRows(pgRows, uid(1)+"|1|2|abc|ok", both...)
	a.WaitAcked()
	want1 := fmt.Sprintf(`{"id":"%s","n":1,"s":2,"t":"ok","v":"abc"}`, uid(1))

	cases := []struct {
		name, insert, set string // an invalid new row; the same value as an update
		column, code      string
	}{
		{"text into int", "?, 'abc', 1, 'a', 'x'", "n = 'abc'", "n", "22P02"},
		{"null into not null", "?, 1, 1, 'a', NULL", "t = NULL", "t", "23502"},
		{"int2 out of range", "?, 1, 40000, 'a', 'x'", "s = 40000", "s", "22003"},
		{"varchar(3) too long", "?, 1, 1, 'abcd', 'x'", "v = 'abcd'", "v", "22001"},
		{"NUL in text", "?, 1, 1, 'a', 'x' || char(0) || 'y'", "t = 'x' || char(0) || 'y'", "t", "22021"},
	}
	for i, tc := range cases {
		id := uid(10 + i)
		// A new row: the server has none, so the client gets a delete.
		a.Exec("INSERT INTO checked (id, n, s, v, t) VALUES ("+tc.insert+")", id)
		r := rec.waitFor(t, satellite.RejectInvalidValue, id, tc.column, 1)
		if !strings.Contains(r.Err, tc.code) || r.UserID != "alice" || r.Table != "public.checked" || r.ClientID == "" {
			t.Errorf("%s: rejection %+v, want SQLSTATE %s", tc.name, r, tc.code)
		}
		a.WaitAcked()
		a.EventuallyRows(clientRows, "["+want1+"]")
		// An update of an existing row: the client gets the row back.
		a.Exec("UPDATE checked SET "+tc.set+" WHERE id = ?", uid(1))
		rec.waitFor(t, satellite.RejectInvalidValue, uid(1), "", i+1)
		a.WaitAcked()
		a.EventuallyRows(clientRows, "["+want1+"]")
	}

	// Nothing reached a Postgres, and both subscriptions still apply.
	a.Exec("INSERT INTO checked (id, n, s, v, t) VALUES (?, 5, 6, 'xyz', 'after')", uid(2))
	pe.waitRows(pgRows, uid(1)+"|1|2|abc|ok\n"+uid(2)+"|5|6|xyz|after", both...)
	pe.pgs["postgres_1"].Exec(fmt.Sprintf("INSERT INTO checked (id, n) VALUES ('%s', 7)", uid(3)))
	pe.waitRows("SELECT count(*) FROM checked", "3", both...)
	for _, n := range both {
		if got := pe.rows(n, "SELECT coalesce(sum(apply_error_count), 0)::text FROM pg_stat_subscription_stats"); got != "0" {
			t.Errorf("%s: %s apply errors", n, got)
		}
	}
	a.EventuallyRows("SELECT count(*) AS c FROM checked", `[{"c":3}]`)

	// The operator sees them (the engine's audit store).
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/rejected?limit=100", pe.statusPort))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if n := strings.Count(string(body), `"invalid_value"`); n != 2*len(cases) {
		t.Errorf("/api/rejected lists %d invalid values, want %d: %.2000s", n, 2*len(cases), body)
	}
}

// A write refused by the ownership rule to a row the writer may not see is
// compensated by a delete, never with the other user's row.
func TestInteropOwnershipRefusalCompensated(t *testing.T) {
	rec := &rejections{}
	pe := startEngine(t, func(e *engine.Engine) { e.OnRejected(rec.add) })
	dir := t.TempDir()
	a := satinterop.Start(t, "A", filepath.Join(dir, "a.db"))
	b := satinterop.Start(t, "B", filepath.Join(dir, "b.db"))
	a.Open(pe.wsPort, "alice", clientTables...)
	b.Open(pe.wsPort, "bob", clientTables...)
	const owned = "SELECT id::text, value, electric_user_id FROM owned ORDER BY id"
	const ownedJS = "SELECT id, value, electric_user_id FROM owned ORDER BY id"
	pe.pgs["postgres_1"].Exec(fmt.Sprintf("INSERT INTO owned VALUES ('%s', 'secret', 'alice')", uid(1)))
	a.EventuallyRows(ownedJS, fmt.Sprintf(`[{"electric_user_id":"alice","id":"%s","value":"secret"}]`, uid(1)))

	// Bob writes alice's key, and a row he gives to alice.
	b.Exec("INSERT INTO owned VALUES (?, 'mine now', 'bob')", uid(1))
	b.Exec("INSERT INTO owned VALUES (?, 'gift', 'alice')", uid(2))
	r := rec.waitFor(t, satellite.RejectOwnership, uid(1), "", 1)
	if r.UserID != "bob" || !strings.Contains(r.Err, "another user") {
		t.Errorf("rejection %+v", r)
	}
	rec.waitFor(t, satellite.RejectOwnership, uid(2), "", 1)
	b.WaitAcked()
	// Bob is sent deletes: he never had either row on the server's side.
	b.EventuallyRows(ownedJS, `[]`)
	pe.waitRows(owned, uid(1)+"|secret|alice", "postgres_1", "postgres_2")
	a.EventuallyRows(ownedJS, fmt.Sprintf(`[{"electric_user_id":"alice","id":"%s","value":"secret"}]`, uid(1)))

	// Alice deletes her row; bob reusing the key is refused too (the
	// row's last image is hers) and deleted on his side.
	a.Exec("DELETE FROM owned WHERE id = ?", uid(1))
	pe.waitRows(owned, "", "postgres_1", "postgres_2")
	b.Exec("INSERT INTO owned VALUES (?, 'revived', NULL)", uid(1))
	rec.waitFor(t, satellite.RejectOwnership, uid(1), "", 2)
	b.WaitAcked()
	b.EventuallyRows(ownedJS, `[]`)
	b.Exec("INSERT INTO owned VALUES (?, 'bobs', 'bob')", uid(3))
	pe.waitRows(owned, uid(3)+"|bobs|bob", "postgres_1", "postgres_2")
}
