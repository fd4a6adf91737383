package satellite

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/internal/satinterop"
	"github.com/electric-sql/electric-go/internal/testkit"
)

// The interop tests run the published electric-sql@0.4.3 client (Node,
// better-sqlite3) against the server, through internal/satinterop/driver.mjs.
// They need `npm ci` in internal/satinterop (CI's .ci/run does it); without
// it they fail.

type jsTable = satinterop.Table
type jsColumn = satinterop.Column

var jsItems = jsTable{Name: "items", Columns: []jsColumn{
	{Name: "id", Type: "TEXT", PK: true}, {Name: "content", Type: "TEXT NOT NULL"}, {Name: "content_b", Type: "TEXT"}}}

var jsOwned = jsTable{Name: "owned", Columns: []jsColumn{
	{Name: "id", Type: "TEXT", PK: true}, {Name: "value", Type: "TEXT"}, {Name: OwnerColumn, Type: "TEXT"}}}

// The seed's satellite_null_test schema.
var jsNulls = jsTable{Name: "nulls", Columns: []jsColumn{
	{Name: "id", Type: "TEXT", PK: true}, {Name: "content", Type: "TEXT NOT NULL"},
	{Name: "content_text_null", Type: "TEXT"}, {Name: "content_text_null_default", Type: "TEXT DEFAULT ''"},
	{Name: "intvalue_null", Type: "INTEGER"}, {Name: "intvalue_null_default", Type: "INTEGER DEFAULT 10"}}}

var nullsTable = schema.Table{
	Schema: "public", Name: "nulls", OID: 16400,
	Columns: []schema.Column{
		{Name: "id", TypeOID: oidText, TypeName: "text", NotNull: true, Num: 1},
		{Name: "content", TypeOID: oidVarchar, TypeName: "character varying(64)", NotNull: true, Num: 2},
		{Name: "content_text_null", TypeOID: oidVarchar, TypeName: "character varying(64)", Num: 3},
		{Name: "content_text_null_default", TypeOID: oidVarchar, TypeName: "character varying(64)", Num: 4},
		{Name: "intvalue_null", TypeOID: oidInt4, TypeName: "integer", Num: 5},
		{Name: "intvalue_null_default", TypeOID: oidInt4, TypeName: "integer", Num: 6},
	},
	PrimaryKey: []string{"id"},
}

// Types the client cannot decode by name: announced as text.
var typesTable = schema.Table{
	Schema: "public", Name: "typed", OID: 16410,
	Columns: []schema.Column{
		{Name: "id", TypeOID: oidUUID, TypeName: "uuid", NotNull: true, Num: 1},
		{Name: "flag", TypeOID: 16, TypeName: "boolean", Num: 2},
		{Name: "at", TypeOID: 1184, TypeName: "timestamp with time zone", Num: 3},
		{Name: "big", TypeOID: 20, TypeName: "bigint", Num: 4},
		{Name: "code", TypeOID: 1042, TypeName: "character(3)", Num: 5},
		{Name: "amount", TypeOID: 1700, TypeName: "numeric(10,2)", Num: 6},
		{Name: "ratio", TypeOID: 701, TypeName: "double precision", Num: 7},
		{Name: "doc", TypeOID: 3802, TypeName: "jsonb", Num: 8},
	},
	PrimaryKey: []string{"id"},
}

var jsTyped = jsTable{Name: "typed", Columns: []jsColumn{
	{Name: "id", Type: "TEXT", PK: true}, {Name: "flag", Type: "TEXT"}, {Name: "at", Type: "TEXT"},
	{Name: "big", Type: "INTEGER"}, {Name: "code", Type: "TEXT"}, {Name: "amount", Type: "NUMERIC"},
	{Name: "ratio", Type: "REAL"}, {Name: "doc", Type: "TEXT"}}}

// interopEnv is a server on a fixed local port that can be restarted over
// the same data directory.
type interopEnv struct {
	*testEnv
	dir  string
	port int
	mod  func(*Options)
}

func newInterop(t *testing.T, mod func(*Options)) *interopEnv {
	t.Helper()
	satinterop.Dir(t)
	ie := &interopEnv{dir: t.TempDir(), mod: mod}
	ie.start(t)
	return ie
}

func (ie *interopEnv) start(t *testing.T) {
	t.Helper()
	env := newEnvDir(t, ie.dir, func(o *Options) {
		o.PingInterval = 500 * time.Millisecond
		if ie.mod != nil {
			ie.mod(o)
		}
	})
	env.setTables(itemsTable, ownedTable, nullsTable, typesTable)
	// Serve on a fixed port so a client can reconnect after a restart.
	env.http.Close()
	addr := "127.0.0.1:0"
	if ie.port != 0 {
		addr = fmt.Sprintf("127.0.0.1:%d", ie.port)
	}
	var ln net.Listener
	var err error
	testkit.Eventually(t, "listen on "+addr, func() bool {
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	ie.port = ln.Addr().(*net.TCPAddr).Port
	hs := &http.Server{Handler: env.srv.Handler()}
	go func() { _ = hs.Serve(ln) }()
	env.closers = append(env.closers, func() { _ = hs.Close() })
	ie.testEnv = env
}

// restart stops the server and its log and starts them again on the same
// data directory and port.
func (ie *interopEnv) restart(t *testing.T) {
	t.Helper()
	ie.close()
	ie.start(t)
}

func itemsRows(c *satinterop.Client) string {
	return c.RowsJSON("SELECT id, content, content_b FROM items ORDER BY id")
}

// A client write reaches the log (acked with the client's own lsn, which
// 0.4.3 checks), and log entries reach the client's SQLite: insert, update,
// delete both ways, through a second client too.
func TestInteropBothWays(t *testing.T) {
	ie := newInterop(t, nil)
	dir := t.TempDir()
	a := satinterop.Start(t, "A", filepath.Join(dir, "a.db"))
	b := satinterop.Start(t, "B", filepath.Join(dir, "b.db"))
	idA := a.Open(ie.port, "alice", jsItems, jsOwned, jsNulls, jsTyped)
	b.Open(ie.port, "bob", jsItems, jsOwned, jsNulls, jsTyped)

	// Log (as from Postgres) → both clients.
	ie.write("pg_a", itemOp("p1", "from postgres", null))
	want := `[{"content":"from postgres","content_b":null,"id":"p1"}]`
	a.EventuallyRows("SELECT id, content, content_b FROM items ORDER BY id", want)
	b.EventuallyRows("SELECT id, content, content_b FROM items ORDER BY id", want)

	// Client A → log → client B.
	a.Exec("INSERT INTO items (id, content, content_b) VALUES (?, ?, ?)", "a1", "from A", "")
	testkit.Eventually(t, "client insert in the log", func() bool { return ie.row("public.items", "a1") != nil })
	if r := ie.row("public.items", "a1"); r["content"] != txt("from A") || r["content_b"] != txt("") {
		t.Fatalf("log row %v", r)
	}
	want = `[{"content":"from A","content_b":"","id":"a1"},{"content":"from postgres","content_b":null,"id":"p1"}]`
	b.EventuallyRows("SELECT id, content, content_b FROM items ORDER BY id", want)
	a.WaitAcked()
	e, err := ie.log.Entry(ie.log.Head())
	if err != nil {
		t.Fatal(err)
	}
	if e.Origin != "satellite:"+idA {
		t.Fatalf("origin %q", e.Origin)
	}

	// Update from B, seen by A and the log.
	b.Exec("UPDATE items SET content = ? WHERE id = ?", "edited by B", "a1")
	a.EventuallyRows("SELECT content FROM items WHERE id = 'a1'", `[{"content":"edited by B"}]`)
	testkit.Eventually(t, "update in the log", func() bool { return ie.row("public.items", "a1")["content"] == txt("edited by B") })

	// Update and delete from the log side.
	ie.write("pg_a", merge.Op{Kind: merge.OpUpdate, Table: "public.items", Key: "p1",
		Columns: map[string]merge.Value{"content_b": txt("b from postgres")}})
	a.EventuallyRows("SELECT content, content_b FROM items WHERE id = 'p1'", `[{"content":"from postgres","content_b":"b from postgres"}]`)
	ie.write("pg_a", merge.Op{Kind: merge.OpDelete, Table: "public.items", Key: "p1"})
	want = `[{"content":"edited by B","content_b":"","id":"a1"}]`
	a.EventuallyRows("SELECT id, content, content_b FROM items ORDER BY id", want)
	b.EventuallyRows("SELECT id, content, content_b FROM items ORDER BY id", want)

	// Delete from A: the row received from the log and updated by B is gone
	// everywhere (A had acknowledged both, so its delete covers them).
	a.Exec("DELETE FROM items WHERE id = ?", "a1")
	testkit.Eventually(t, "client delete in the log", func() bool { return ie.row("public.items", "a1") == nil })
	b.EventuallyRows("SELECT id FROM items", `[]`)
	a.WaitAcked()
	b.WaitAcked()
}

// NULL versus empty string and defaults survive both directions (seed
// satellite_null_test).
func TestInteropNulls(t *testing.T) {
	ie := newInterop(t, nil)
	a := satinterop.Start(t, "A", filepath.Join(t.TempDir(), "a.db"))
	a.Open(ie.port, "alice", jsItems, jsOwned, jsNulls, jsTyped)
	// As Postgres fills an insert of only id and content.
	ie.write("pg_a", merge.Op{Kind: merge.OpInsert, Table: "public.nulls", Key: "pg", Columns: map[string]merge.Value{
		"id": txt("pg"), "content": txt("c"), "content_text_null": null, "content_text_null_default": txt(""),
		"intvalue_null": null, "intvalue_null_default": txt("10")}})
	a.EventuallyRows("SELECT * FROM nulls", `[{"content":"c","content_text_null":null,"content_text_null_default":"","id":"pg","intvalue_null":null,"intvalue_null_default":10}]`)

	a.Exec("INSERT INTO nulls (id, content, content_text_null, content_text_null_default, intvalue_null, intvalue_null_default) VALUES ('c1', 'x', NULL, '', NULL, 10)")
	a.Exec("INSERT INTO nulls (id, content, content_text_null, content_text_null_default) VALUES ('c2', 'y', '', NULL)")
	a.Exec("INSERT INTO nulls (id, content) VALUES ('c3', '')")
	want := map[string]map[string]merge.Value{
		"c1": {"content": txt("x"), "content_text_null": null, "content_text_null_default": txt(""), "intvalue_null": null, "intvalue_null_default": txt("10")},
		"c2": {"content": txt("y"), "content_text_null": txt(""), "content_text_null_default": null, "intvalue_null": null, "intvalue_null_default": txt("10")},
		"c3": {"content": txt(""), "content_text_null": null, "content_text_null_default": txt(""), "intvalue_null": null, "intvalue_null_default": txt("10")},
	}
	for id, cols := range want {
		testkit.Eventually(t, "row "+id+" in the log", func() bool { return ie.row("public.nulls", id) != nil })
		got := ie.row("public.nulls", id)
		for k, v := range cols {
			if got[k] != v {
				t.Errorf("%s.%s = %+v, want %+v", id, k, got[k], v)
			}
		}
	}
	a.WaitAcked()
}

// Every Postgres type is announced as a name 0.4.3 decodes: a row of
// types it has no decoder for arrives intact instead of crashing it.
func TestInteropTypes(t *testing.T) {
	ie := newInterop(t, nil)
	a := satinterop.Start(t, "A", filepath.Join(t.TempDir(), "a.db"))
	a.Open(ie.port, "alice", jsItems, jsOwned, jsNulls, jsTyped)
	id := "0f8fad5b-d9cb-469f-a165-70867728950e"
	ie.write("pg_a", merge.Op{Kind: merge.OpInsert, Table: "public.typed", Key: id, Columns: map[string]merge.Value{
		"id": txt(id), "flag": txt("t"), "at": txt("2023-03-21 10:00:00+00"), "big": txt("9007199254740993"),
		"code": txt("ab "), "amount": txt("12.50"), "ratio": txt("NaN"), "doc": txt(`{"a": 1}`)}})
	a.EventuallyRows("SELECT id, flag, at, CAST(big AS TEXT) AS big, code, CAST(amount AS TEXT) AS amount, ratio, doc FROM typed",
		`[{"amount":"12.5","at":"2023-03-21 10:00:00+00","big":"9007199254740993","code":"ab ","doc":"{\"a\": 1}","flag":"t","id":"`+id+`","ratio":"NaN"}]`)
}

// The ownership filter: each user gets its own rows and unowned rows; a
// write to another user's row is not applied and is counted.
func TestInteropOwnership(t *testing.T) {
	ie := newInterop(t, nil)
	dir := t.TempDir()
	a := satinterop.Start(t, "alice", filepath.Join(dir, "a.db"))
	b := satinterop.Start(t, "bob", filepath.Join(dir, "b.db"))
	a.Open(ie.port, "alice", jsItems, jsOwned, jsNulls, jsTyped)
	b.Open(ie.port, "bob", jsItems, jsOwned, jsNulls, jsTyped)
	owned := func(id, owner string) merge.Op {
		o := txt(owner)
		if owner == "" {
			o = null
		}
		return merge.Op{Kind: merge.OpInsert, Table: "public.owned", Key: id,
			Columns: map[string]merge.Value{"id": txt(id), "value": txt("v-" + id), OwnerColumn: o}}
	}
	// One transaction with rows of both users: each gets its own.
	ie.write("pg_a", owned("r-alice", "alice"), owned("r-bob", "bob"), owned("r-none", ""))
	a.EventuallyRows("SELECT id FROM owned ORDER BY id", `[{"id":"r-alice"},{"id":"r-none"}]`)
	b.EventuallyRows("SELECT id FROM owned ORDER BY id", `[{"id":"r-bob"},{"id":"r-none"}]`)

	// Bob writes a row as alice's, and a row that exists as alice's: neither
	// is applied; his own row is.
	b.Exec("INSERT INTO owned (id, value, electric_user_id) VALUES ('b-fake', 'x', 'alice')")
	b.Exec("INSERT INTO owned (id, value, electric_user_id) VALUES ('r-alice', 'stolen', 'bob')")
	b.Exec("INSERT INTO owned (id, value, electric_user_id) VALUES ('b-own', 'mine', 'bob')")
	testkit.Eventually(t, "bob's own row", func() bool { return ie.row("public.owned", "b-own") != nil })
	b.WaitAcked()
	if r := ie.row("public.owned", "b-fake"); r != nil {
		t.Fatalf("row given to alice by bob was applied: %v", r)
	}
	if r := ie.row("public.owned", "r-alice"); r["value"] != txt("v-r-alice") || r[OwnerColumn] != txt("alice") {
		t.Fatalf("alice's row changed by bob: %v", r)
	}
	if got := ie.srv.Status().RejectedOps; got != 2 {
		t.Fatalf("rejected ops %d, want 2", got)
	}
	a.EventuallyRows("SELECT id, value FROM owned ORDER BY id", `[{"id":"r-alice","value":"v-r-alice"},{"id":"r-none","value":"v-r-none"}]`)
}

// Restarts: the client process restarts and resumes from its stored lsn
// (nothing lost, nothing sent twice); the server restarts while the client
// has unsent writes, and they arrive once.
func TestInteropRestart(t *testing.T) {
	ie := newInterop(t, nil)
	db := filepath.Join(t.TempDir(), "a.db")
	a := satinterop.Start(t, "A", db)
	id := a.Open(ie.port, "alice", jsItems, jsOwned, jsNulls, jsTyped)
	for i := 1; i <= 3; i++ {
		ie.write("pg_a", itemOp(fmt.Sprintf("p%d", i), "v", null))
	}
	a.EventuallyRows("SELECT count(*) AS n FROM items", `[{"n":3}]`)
	a.Exec("INSERT INTO items (id, content) VALUES ('a1', 'before restart')")
	a.WaitAcked()
	testkit.Eventually(t, "client row", func() bool { return ie.row("public.items", "a1") != nil })
	// The client's position is stored once the echo of its own write arrives.
	head := ie.log.Head()
	testkit.Eventually(t, "client at the head", func() bool {
		for _, s := range ie.srv.Sessions() {
			if s.ClientID == id && s.OutboundOffset == head {
				return true
			}
		}
		return false
	})
	a.Exit()

	// While the client is down.
	for i := 4; i <= 6; i++ {
		ie.write("pg_a", itemOp(fmt.Sprintf("p%d", i), "v", null))
	}
	a = satinterop.Start(t, "A2", db)
	if id2 := a.Open(ie.port, "alice", jsItems, jsOwned, jsNulls, jsTyped); id2 != id {
		t.Fatalf("client id changed: %s → %s", id, id2)
	}
	a.EventuallyRows("SELECT count(*) AS n FROM items", `[{"n":7}]`)
	testkit.Eventually(t, "resumed session", func() bool {
		for _, s := range ie.srv.Sessions() {
			if s.ClientID == id && s.OutboundOffset == ie.log.Head() {
				// Only the three new transactions were sent.
				if s.TxOut != 3 {
					t.Fatalf("resumed session sent %d transactions, want 3", s.TxOut)
				}
				return true
			}
		}
		return false
	})

	// Server down: the client writes locally; after the restart and a
	// reconnect its writes arrive once each.
	ie.close()
	a.Exec("INSERT INTO items (id, content) VALUES ('off1', 'offline 1')")
	a.Exec("INSERT INTO items (id, content) VALUES ('off2', 'offline 2')")
	a.Exec("UPDATE items SET content = 'offline edit' WHERE id = 'a1'")
	headBefore := uint64(0)
	ie.start(t)
	headBefore = ie.log.Head()
	a.Reconnect()
	a.WaitAcked()
	for _, k := range []string{"off1", "off2"} {
		if ie.row("public.items", k) == nil {
			t.Fatalf("offline row %s lost", k)
		}
	}
	if r := ie.row("public.items", "a1"); r["content"] != txt("offline edit") {
		t.Fatalf("offline edit lost: %v", r)
	}
	if got := ie.log.Head() - headBefore; got > 3 {
		t.Fatalf("%d log entries for 3 client transactions", got)
	}
	a.EventuallyRows("SELECT count(*) AS n FROM items", `[{"n":9}]`)
}

// 0.4.3 drops a transaction when two are queued within one push period
// (pushTransactions keeps only the first of its queue); the server notices
// the hole in the client's lsns or the silence after a burst and restarts
// the client's stream, so every write arrives, once.
func TestInteropBurst(t *testing.T) {
	ie := newInterop(t, nil)
	a := satinterop.Start(t, "A", filepath.Join(t.TempDir(), "a.db"))
	a.Open(ie.port, "alice", jsItems, jsOwned, jsNulls, jsTyped)
	const n = 12
	for i := 0; i < n; i++ {
		a.Exec("INSERT INTO items (id, content) VALUES (?, ?)", fmt.Sprintf("b%02d", i), "burst")
	}
	a.WaitAcked()
	for i := 0; i < n; i++ {
		if ie.row("public.items", fmt.Sprintf("b%02d", i)) == nil {
			t.Fatalf("row b%02d never arrived", i)
		}
	}
	// Each write is its own transaction and is merged once.
	var entries int
	for off := uint64(1); off <= ie.log.Head(); off++ {
		e, err := ie.log.Entry(off)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(e.Origin, "satellite:") {
			entries += len(e.Changes)
		}
	}
	if entries != n {
		t.Fatalf("%d row changes from the client for %d inserts", entries, n)
	}
	for _, s := range ie.srv.Sessions() {
		t.Logf("session %s: %d transactions in, %d re-sent, %d stream restarts", s.ClientID, s.TxIn, s.Duplicates, s.Resyncs)
	}
}
