package publisher_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/electric-sql/electric-go/engine/publisher"
	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// staticServer serves connectors "a" and "b" with a fixed view (unless
// opts.Connectors is set), no Postgres; only "a" has credentials unless
// opts.Credentials says otherwise.
func staticServer(t *testing.T, l *testLog, opts publisher.Options) *publisher.Server {
	t.Helper()
	view := &publisher.View{Ready: true, Refreshed: true,
		Tables: []schema.Table{{Schema: "public", Name: "items", OID: 100, PrimaryKey: []string{"id"},
			Columns: []schema.Column{{Name: "id", TypeOID: 23, TypeMod: -1}, {Name: "v", TypeOID: 25, TypeMod: -1}}}},
		Subscribed: map[string]bool{"public.items": true}}
	opts.Addr = "127.0.0.1:0"
	opts.Logger = testLogger(t)
	opts.Feed = func(after uint64) publisher.Reader { return l.NewReader(after) }
	if opts.Credentials == nil {
		opts.Credentials = staticCredentials(t, "a")
	}
	if opts.Connectors == nil {
		opts.Connectors = func(name string) (*publisher.View, bool) {
			if name != "a" && name != "b" {
				return nil, false
			}
			return view, true
		}
	}
	srv, err := publisher.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; l.log.Close() })
	return srv
}

// staticCredentials accepts the derived passwords of the given connectors.
func staticCredentials(t testing.TB, names ...string) publisher.Credentials {
	t.Helper()
	c, err := publisher.StaticCredentials(testMaster, names)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// connURL is a replication connection URL for role with password.
func connURL(addr, role, password string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(role, password), Host: addr, Path: "/electric", RawQuery: "replication=database"}
	return u.String()
}

func replicationConn(t *testing.T, srv *publisher.Server) *pgconn.PgConn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgconn.Connect(ctx, connURL(srv.Addr().String(), "a", publisher.ConnectorPassword(testMaster, "a"))+"&sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// streamEvent is one message of the pgoutput stream as a test reads it:
// text is "k@<WAL end>", "B<final LSN>", "R<schema.table>", "I<key><type of
// the second column>", "D<key>" or "C<commit LSN>-<end LSN>"; end is the
// WAL end a keepalive reports or the end LSN of a commit.
type streamEvent struct {
	text        string
	end, walEnd uint64
	key         string // of an insert or delete
}

// receive decodes the stream until done says so, failing after 10 s of
// silence.
func receive(t *testing.T, conn *pgconn.PgConn, done func(streamEvent) bool) {
	t.Helper()
	for {
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		msg, err := conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			t.Fatalf("receiving the stream: %v", err)
		}
		cd, ok := msg.(*pgproto3.CopyData)
		if !ok {
			t.Fatalf("unexpected %#v", msg)
		}
		var ev streamEvent
		switch cd.Data[0] {
		case 'k':
			k, err := pglogrepl.ParsePrimaryKeepaliveMessage(cd.Data[1:])
			if err != nil {
				t.Fatal(err)
			}
			ev = streamEvent{text: "k@" + k.ServerWALEnd.String(), end: uint64(k.ServerWALEnd)}
		case 'w':
			x, err := pglogrepl.ParseXLogData(cd.Data[1:])
			if err != nil {
				t.Fatal(err)
			}
			m, err := pglogrepl.Parse(x.WALData)
			if err != nil {
				t.Fatal(err)
			}
			ev.walEnd = uint64(x.ServerWALEnd)
			switch m := m.(type) {
			case *pglogrepl.BeginMessage:
				ev.text = "B" + m.FinalLSN.String()
			case *pglogrepl.RelationMessage:
				ev.text = "R" + m.Namespace + "." + m.RelationName
			case *pglogrepl.InsertMessage:
				ev.key = string(m.Tuple.Columns[0].Data)
				ev.text = "I" + ev.key + string(m.Tuple.Columns[1].DataType)
			case *pglogrepl.DeleteMessage:
				ev.key = string(m.OldTuple.Columns[0].Data)
				ev.text = "D" + ev.key
			case *pglogrepl.CommitMessage:
				ev.text = "C" + m.CommitLSN.String() + "-" + m.TransactionEndLSN.String()
				ev.end = uint64(m.TransactionEndLSN)
			default:
				continue
			}
		default:
			continue
		}
		if done(ev) {
			return
		}
	}
}

// TestStreamMessages checks the pgoutput stream as a client decodes it:
// LSNs, Relation once, skipped entries advancing the WAL end.
func TestStreamMessages(t *testing.T) {
	l := newTestLog(t)
	srv := staticServer(t, l, publisher.Options{KeepaliveInterval: time.Hour})
	o1 := l.append("x", upsert("public.items", "id=1", "v=a"), upsert("public.other", "id=1"))
	o2 := l.append("x", upsert("public.other", "id=2"))
	o3 := l.append("x", upsert("public.items", "id=2", "v=NULL"), del("public.items", "id=1"))
	conn := replicationConn(t, srv)
	ctx := context.Background()
	if err := pglogrepl.StartReplication(ctx, conn, "a", 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names 'all_tables'"}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	endOf := "-" + pglogrepl.LSN(txlog.LSN(o3)).String()
	receive(t, conn, func(ev streamEvent) bool {
		got = append(got, ev.text)
		if ev.text[0] == 'C' && ev.walEnd != ev.end {
			t.Errorf("commit sent with WAL end %s", pglogrepl.LSN(ev.walEnd))
		}
		return strings.HasSuffix(ev.text, endOf)
	})
	lsn := func(o uint64) string { return pglogrepl.LSN(txlog.LSN(o)).String() }
	pre := func(o uint64) string { return pglogrepl.LSN(txlog.LSN(o) - 1).String() }
	want := []string{
		"k@0/0",
		"B" + pre(o1), "Rpublic.items", "I1t", "C" + pre(o1) + "-" + lsn(o1),
		"k@" + lsn(o2), // nothing for this subscriber in o2
		"B" + pre(o3), "I2n", "D1", "C" + pre(o3) + "-" + lsn(o3),
	}
	// The keepalive for o2 is sent only when o2 ends a batch of ready
	// entries: compare without the keepalives after the first.
	filter := func(s []string) []string {
		var out []string
		for i, x := range s {
			if i == 0 || !strings.HasPrefix(x, "k@") {
				out = append(out, x)
			}
		}
		return out
	}
	if strings.Join(filter(got), " ") != strings.Join(filter(want), " ") {
		t.Fatalf("stream:\n got %v\nwant %v", got, want)
	}
}

// TestSilentSubscriberTimesOut: a subscriber that never answers keepalives
// is told why and disconnected.
func TestSilentSubscriberTimesOut(t *testing.T) {
	l := newTestLog(t)
	srv := staticServer(t, l, publisher.Options{KeepaliveInterval: 100 * time.Millisecond, ReplyTimeout: 500 * time.Millisecond})
	conn := replicationConn(t, srv)
	ctx := context.Background()
	if err := pglogrepl.StartReplication(ctx, conn, "a", 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names 'all_tables'"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		msg, err := conn.ReceiveMessage(rctx)
		cancel()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			if pgErr.Code != "08006" || !strings.Contains(pgErr.Message, "no status update") {
				t.Fatalf("timeout error: %v", pgErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("no error before the close: %v", err)
		}
		if er, ok := msg.(*pgproto3.ErrorResponse); ok {
			if er.Code != "08006" {
				t.Fatalf("error %+v", er)
			}
			return
		}
	}
	t.Fatal("silent subscriber not disconnected")
}

// TestUnrefreshedViewKeepsStreaming: a connector that runs its setup again
// (after its Postgres restarted) publishes its tables before it has read
// what the subscription holds (Refreshed false, nothing subscribed). A
// stream already running keeps its last refreshed view meanwhile: taking the
// new one dropped every entry sent in that window as "not subscribed" (seen
// as a gap of nine entries in TestReconnectResumesExactly).
func TestUnrefreshedViewKeepsStreaming(t *testing.T) {
	l := newTestLog(t)
	tables := []schema.Table{{Schema: "public", Name: "items", OID: 100, PrimaryKey: []string{"id"},
		Columns: []schema.Column{{Name: "id", TypeOID: 23, TypeMod: -1}, {Name: "v", TypeOID: 25, TypeMod: -1}}}}
	refreshed := func() *publisher.View {
		return &publisher.View{Ready: true, Refreshed: true, Tables: tables, Subscribed: map[string]bool{"public.items": true}}
	}
	var view atomic.Pointer[publisher.View]
	view.Store(refreshed())
	srv := staticServer(t, l, publisher.Options{KeepaliveInterval: time.Hour,
		Connectors: func(name string) (*publisher.View, bool) { return view.Load(), name == "a" }})
	conn := replicationConn(t, srv)
	ctx := context.Background()
	if err := pglogrepl.StartReplication(ctx, conn, "a", 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names 'all_tables'"}}); err != nil {
		t.Fatal(err)
	}
	var inserted []string
	// upTo reads until the stream has dealt with entry o: its commit, or
	// the keepalive that reports it skipped.
	upTo := func(o uint64) {
		t.Helper()
		receive(t, conn, func(ev streamEvent) bool {
			if ev.text[0] == 'I' {
				inserted = append(inserted, ev.key)
			}
			return ev.end >= txlog.LSN(o)
		})
	}
	upTo(l.append("x", upsert("public.items", "id=1", "v=a")))
	view.Store(&publisher.View{Ready: true, Tables: tables}) // setup again: not refreshed yet
	upTo(l.append("x", upsert("public.items", "id=2", "v=b")))
	view.Store(refreshed())
	upTo(l.append("x", upsert("public.items", "id=3", "v=c")))
	if got := strings.Join(inserted, ","); got != "1,2,3" {
		t.Fatalf("inserts sent %s, want 1,2,3", got)
	}
}
