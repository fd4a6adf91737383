package publisher

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/engine/scram"
	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/internal/fuzzseed"
)

// scriptConn is a subscriber's socket that sends a fixed script of bytes,
// then EOF, and records each write of the server.
type scriptConn struct {
	in     *bytes.Reader
	mu     sync.Mutex
	writes [][]byte
}

func (c *scriptConn) Read(p []byte) (int, error) { return c.in.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}
func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{Port: 1} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// noListener satisfies Options.Listener: the target calls serve directly.
type noListener struct{}

func (noListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (noListener) Close() error              { return nil }
func (noListener) Addr() net.Addr            { return &net.TCPAddr{} }

type idleReader struct{}

func (idleReader) Next(ctx context.Context) (*txlog.Entry, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (idleReader) Close() {}

var fuzzView = &View{Ready: true, Refreshed: true, Subscribed: map[string]bool{"public.items": true},
	Tables: []schema.Table{{Schema: "public", Name: "items", OID: 16384, PrimaryKey: []string{"id"},
		Columns: []schema.Column{{Name: "id", TypeOID: oidText, Num: 1}, {Name: "content", TypeOID: oidText, Num: 2}}}}}

// What a Postgres 15 subscription named db_a sends (libpqwalreceiver and
// the table sync worker), normalised as normalizeQuery leaves it.
var subscriberQueries = []string{
	qSetSearchPath,
	"IDENTIFY_SYSTEM",
	qTablesPrefix + "'electric_publication')",
	qTables15 + "'electric_publication')",
	"BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ",
	qRelPrefix + "n.nspname = 'public' AND c.relname = 'items'",
	qAttrPrefix + "LEFT JOIN pg_catalog.pg_index i ON (i.indexrelid = pg_get_replica_identity_index(16384)) WHERE a.attnum > 0::pg_catalog.int2 AND NOT a.attisdropped AND a.attgenerated = '' AND a.attrelid = 16384 ORDER BY a.attnum",
	"COMMIT",
	"CREATE_REPLICATION_SLOT \"pg_16390_sync_16384\" LOGICAL pgoutput (SNAPSHOT 'use')",
	"DROP_REPLICATION_SLOT pg_16390_sync_16384 WAIT",
}

const startCmd = `START_REPLICATION SLOT "db_a" LOGICAL 0/0 (proto_version '1', publication_names '"electric_publication"')`

func frontendBytes(t testing.TB, msgs ...pgproto3.FrontendMessage) []byte {
	var out []byte
	for _, m := range msgs {
		var err error
		if out, err = m.Encode(out); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// startup is a subscriber's startup packet, its parameters in libpq's order
// (pgproto3 would write them in map order, which churns the corpus).
func startup(name string) pgproto3.FrontendMessage {
	return rawStartup{"user", name, "database", "electric", "replication", "database",
		"application_name", name, "options", "-c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3",
		"client_encoding", "UTF8"}
}

type rawStartup []string

func (rawStartup) Frontend()             {}
func (r rawStartup) Decode([]byte) error { return errors.New("not decoded") }
func (r rawStartup) Encode(dst []byte) ([]byte, error) {
	body := binary.BigEndian.AppendUint32(nil, pgproto3.ProtocolVersionNumber)
	for _, kv := range r {
		body = append(append(body, kv...), 0)
	}
	body = append(body, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(4+len(body)))
	return append(dst, body...), nil
}

func sessionSeeds(t testing.TB) []fuzzseed.Seed {
	seed := func(name string, msgs ...pgproto3.FrontendMessage) fuzzseed.Seed {
		return fuzzseed.Seed{Name: name, Args: []any{frontendBytes(t, msgs...)}}
	}
	var catalog []pgproto3.FrontendMessage
	catalog = append(catalog, &pgproto3.SSLRequest{}, startup("db_a"))
	for _, q := range subscriberQueries {
		catalog = append(catalog, &pgproto3.Query{String: q})
	}
	catalog = append(catalog, &pgproto3.Terminate{})
	status := make([]byte, 34)
	status[0] = 'r'
	return []fuzzseed.Seed{
		seed("subscriber-catalog", catalog...),
		seed("subscriber-stream", startup("db_a"), &pgproto3.Query{String: "IDENTIFY_SYSTEM"},
			&pgproto3.Query{String: startCmd}, &pgproto3.CopyData{Data: status}, &pgproto3.CopyDone{}),
		seed("extended-protocol", startup("db_a"), &pgproto3.Parse{Query: "SELECT 1"}, &pgproto3.Bind{},
			&pgproto3.Execute{}, &pgproto3.Sync{}, &pgproto3.Query{String: ";"}),
		seed("unknown-connector", startup("nope")),
		seed("not-replication", rawStartup{"user", "electric", "database", "electric"}),
		seed("cancel", &pgproto3.CancelRequest{ProcessID: 1, SecretKey: []byte{0, 0, 0, 0}}),
		seed("bad-start", startup("db_a"), &pgproto3.Query{String: "START_REPLICATION SLOT a LOGICAL zz/0"},
			&pgproto3.Query{String: "START_REPLICATION SLOT a LOGICAL 0/0 (proto_version '9')"},
			&pgproto3.Query{String: "START_REPLICATION SLOT a LOGICAL FFFFFFFF/FFFFFFFF"},
			&pgproto3.Query{String: "select 'unterminated"}),
		// A refused START_REPLICATION beyond the head, one in copy mode, then
		// a message copy mode does not take: the receiver's FATAL raced the
		// stream's first keepalive (CopyData after FATAL, found by fuzzing).
		seed("fatal-in-copy-mode", startup("db_a"),
			&pgproto3.Query{String: "START_REPLICATION SLOT a LOGICAL FFFFFFFF/FFFFFFFF"},
			&pgproto3.Query{String: startCmd}, &pgproto3.Query{String: "IDENTIFY_SYSTEM"}),
		{Name: "hostile-length", Args: []any{append(frontendBytes(t, startup("db_a")), 'Q', 0x7f, 0xff, 0xff, 0xff, 'x')}},
		{Name: "hostile-startup-length", Args: []any{[]byte{0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0}}},
	}
}

// FuzzSubscriberSession plays any bytes as a subscriber's side of a
// connection: startup (with SSL/GSS requests), catalog queries, the
// extended protocol, START_REPLICATION and copy mode. The session never
// panics or hangs; what it allocates is bounded by what it was sent,
// whatever the length fields claim; everything it writes is well-formed backend messages,
// nothing follows a FATAL error, and what it writes is bounded by what it
// was sent.
func FuzzSubscriberSession(f *testing.F) {
	fuzzseed.Sync(f, sessionSeeds(f))
	f.Fuzz(func(t *testing.T, script []byte) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		playSubscriber(t, script)
		runtime.ReadMemStats(&ms)
		if n := ms.TotalAlloc - before; n > uint64(1024*len(script)+16<<20) {
			t.Fatalf("a %d-byte script made the session allocate %d bytes", len(script), n)
		}
	})
}

func playSubscriber(t *testing.T, script []byte) []pgproto3.BackendMessage {
	srv, err := New(Options{
		Listener:    noListener{},
		Credentials: func(string) (scram.Verifier, bool) { return scram.Verifier{}, false },
		Feed:        func(uint64) Reader { return idleReader{} },
		Head:        func() uint64 { return 5 },
		Connectors: func(name string) (*View, bool) {
			if name == "db_a" {
				return fuzzView, true
			}
			return nil, false
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// A fixed script cannot answer a SCRAM challenge (the server's nonce is
	// random): the startup user is taken as authenticated, and the SCRAM
	// exchange is tested on its own (auth_test.go, package scram).
	srv.authenticate = func(*session, string) error { return nil }
	conn := &scriptConn{in: bytes.NewReader(script)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.serve(context.Background(), conn)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("session still running after its subscriber hung up")
	}
	var out []byte
	for _, w := range conn.writes {
		if len(w) == 1 && w[0] == 'N' {
			continue // refusal of an SSL or GSS request: a bare byte
		}
		out = append(out, w...)
	}
	if limit := 64*len(script) + 64<<10; len(out) > limit {
		t.Fatalf("wrote %d bytes for a %d-byte script", len(out), len(script))
	}
	var msgs []pgproto3.BackendMessage
	fatal := false
	for len(out) > 0 {
		if len(out) < 5 {
			t.Fatalf("wrote %d stray bytes after %d messages", len(out), len(msgs))
		}
		n := int(binary.BigEndian.Uint32(out[1:]))
		if n < 4 || 1+n > len(out) {
			t.Fatalf("wrote a %q message of length %d with %d bytes left", out[0], n, len(out)-1)
		}
		m, err := pgproto3.NewFrontend(bytes.NewReader(out[:1+n]), io.Discard).Receive()
		out = out[1+n:]
		if err != nil {
			t.Fatalf("wrote a malformed message after %d: %v", len(msgs), err)
		}
		if fatal {
			t.Fatalf("%T written after a FATAL error", m)
		}
		if e, ok := m.(*pgproto3.ErrorResponse); ok {
			if len(e.Code) != 5 || e.Message == "" {
				t.Fatalf("error without a SQLSTATE or a message: %+v", e)
			}
			fatal = e.Severity == "FATAL"
		}
		msgs = append(msgs, m) // one Frontend per message: nothing reuses m
	}
	return msgs
}

// The harness reaches what the seeds are for: the catalog script is
// answered query by query, and the stream script gets to copy mode.
func TestSubscriberFuzzHarness(t *testing.T) {
	seeds := map[string][]byte{}
	for _, s := range sessionSeeds(t) {
		seeds[s.Name] = s.Args[0].([]byte)
	}
	ready := 0
	for _, m := range playSubscriber(t, seeds["subscriber-catalog"]) {
		if _, ok := m.(*pgproto3.ReadyForQuery); ok {
			ready++
		}
	}
	if ready != 1+len(subscriberQueries) {
		t.Fatalf("%d ReadyForQuery for startup and %d queries", ready, len(subscriberQueries))
	}
	copyBoth := false
	for _, m := range playSubscriber(t, seeds["subscriber-stream"]) {
		if _, ok := m.(*pgproto3.CopyBothResponse); ok {
			copyBoth = true
		}
	}
	if !copyBoth {
		t.Fatal("START_REPLICATION did not enter copy mode")
	}
}

// A FATAL error for what the subscriber sends in copy mode is the last
// message: the receive goroutine used to write it while the stream wrote its
// keepalive, so CopyData could follow it. Played many times, as the
// interleaving is the scheduler's.
func TestNothingAfterFatalInCopyMode(t *testing.T) {
	status := make([]byte, 34)
	status[0] = 'r'
	stray := []pgproto3.FrontendMessage{
		&pgproto3.Query{String: "IDENTIFY_SYSTEM"},
		&pgproto3.CopyData{},
		&pgproto3.CopyData{Data: []byte{'r', 1}},
		&pgproto3.CopyData{Data: []byte{'z'}},
	}
	for _, m := range stray {
		script := frontendBytes(t, startup("db_a"), &pgproto3.Query{String: startCmd}, &pgproto3.CopyData{Data: status}, m)
		for range 100 {
			msgs := playSubscriber(t, script) // fails on anything written after a FATAL
			if e, ok := msgs[len(msgs)-1].(*pgproto3.ErrorResponse); !ok || e.Severity != "FATAL" {
				t.Fatalf("after %T in copy mode the session ended with %T, not a FATAL error", m, msgs[len(msgs)-1])
			}
		}
	}
}

// FuzzParseStart: START_REPLICATION as a subscriber may write it.
// normalizeQuery is idempotent, and a command parseStart accepts, written
// back in canonical form, parses to the same slot, LSN and options.
func FuzzParseStart(f *testing.F) {
	fuzzseed.Sync(f, []fuzzseed.Seed{
		{Name: "pg15", Args: []any{startCmd}},
		{Name: "quoted-slot", Args: []any{`START_REPLICATION SLOT "a ""b""" LOGICAL 1/2F (proto_version '1', publication_names '"all_tables"')`}},
		{Name: "options", Args: []any{"START_REPLICATION SLOT sub LOGICAL A/B (proto_version '2', streaming 'off', \"origin\" 'any', messages 'it''s, fine')"}},
		{Name: "whitespace", Args: []any{"START_REPLICATION  SLOT\tsub\nLOGICAL 0/0 ;; \x00"}},
		{Name: "lsn-overflow", Args: []any{"START_REPLICATION SLOT a LOGICAL 100000000/0"}},
	})
	f.Fuzz(func(t *testing.T, raw string) {
		q := normalizeQuery(raw)
		if again := normalizeQuery(q); again != q {
			t.Fatalf("normalizeQuery not idempotent: %q then %q", q, again)
		}
		so, err := parseStart(q)
		if err != nil {
			return
		}
		canon := renderStart(so)
		back, err := parseStart(canon)
		if err != nil {
			t.Fatalf("%q parsed, its canonical form %q did not: %v", q, canon, err)
		}
		if back.slot != so.slot || back.lsn != so.lsn || fmt.Sprint(back.options) != fmt.Sprint(so.options) {
			t.Fatalf("%q parsed as %+v, its canonical form %q as %+v", q, so, canon, back)
		}
	})
}

func renderStart(so startOptions) string {
	ident := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	q := fmt.Sprintf("START_REPLICATION SLOT %s LOGICAL %X/%X", ident(so.slot), so.lsn>>32, uint32(so.lsn))
	if len(so.options) > 0 {
		keys := make([]string, 0, len(so.options))
		for k := range so.options {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, ident(k)+" '"+strings.ReplaceAll(so.options[k], "'", "''")+"'")
		}
		q += " (" + strings.Join(parts, ", ") + ")"
	}
	return q
}
