package publisher_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/electric-sql/electric-go/engine/authlimit"
	"github.com/electric-sql/electric-go/engine/publisher"
	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/internal/pgtest"
	"github.com/electric-sql/electric-go/internal/testkit"
)

var startOpts = pglogrepl.StartReplicationOptions{PluginArgs: []string{"proto_version '1'", "publication_names 'all_tables'"}}

// refused checks that connecting with url fails with 28P01 and the message
// Postgres gives, naming only the user.
func refused(t *testing.T, url, user string) {
	t.Helper()
	conn, err := pgconn.Connect(context.Background(), url)
	if err == nil {
		conn.Close(context.Background())
		t.Fatalf("%s: connected", url)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" || pgErr.Severity != "FATAL" ||
		pgErr.Message != fmt.Sprintf("password authentication failed for user %q", user) {
		t.Fatalf("%s: %v, want 28P01 for user %s", url, err, user)
	}
}

// TestAuthentication: application_name says nothing about who connects; a
// missing or wrong password, an unknown role, and one connector's password
// for another all get the same 28P01.
func TestAuthentication(t *testing.T) {
	l := newTestLog(t)
	srv := staticServer(t, l, publisher.Options{Credentials: staticCredentials(t, "a", "b")})
	addr := srv.Addr().String()
	pwA := publisher.ConnectorPassword(testMaster, "a")
	refused(t, "postgres://x@"+addr+"/electric?sslmode=disable&replication=database&application_name=a", "x")
	refused(t, "postgres://a@"+addr+"/electric?sslmode=disable&replication=database&application_name=a", "a")
	refused(t, connURL(addr, "a", pwA+"0")+"&sslmode=disable", "a")
	refused(t, connURL(addr, "b", pwA)+"&sslmode=disable&application_name=b", "b")
	refused(t, connURL(addr, "nobody", pwA)+"&sslmode=disable", "nobody")
	if pwA == publisher.ConnectorPassword(testMaster, "b") || pwA == publisher.ConnectorPassword([]byte("another-master-secret"), "a") {
		t.Fatal("passwords do not depend on the connector and the master")
	}

	// a's credentials with application_name=b stream a, not b.
	ctx := context.Background()
	conn, err := pgconn.Connect(ctx, connURL(addr, "a", pwA)+"&sslmode=disable&application_name=b")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := pglogrepl.StartReplication(ctx, conn, "b", 0, startOpts); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the stream", func() (bool, string) {
		for _, s := range srv.Status().Sessions {
			if s.State == "streaming" {
				return s.Connector == "a", fmt.Sprintf("%+v", s)
			}
		}
		return false, fmt.Sprintf("%+v", srv.Status())
	})
	// b's own credentials get b's stream.
	connB, err := pgconn.Connect(ctx, connURL(addr, "b", publisher.ConnectorPassword(testMaster, "b"))+"&sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer connB.Close(ctx)
	if err := pglogrepl.StartReplication(ctx, connB, "b", 0, startOpts); err != nil {
		t.Fatalf("b's stream, while a streams: %v", err)
	}
}

// TestRawAuthErrors: a SASL exchange that is not SCRAM-SHA-256 without
// channel binding is refused with a reason.
func TestRawAuthErrors(t *testing.T) {
	l := newTestLog(t)
	srv := staticServer(t, l, publisher.Options{})
	for _, tt := range []struct {
		name      string
		mechanism string
		data      string
		code      string
		msg       string
	}{
		{"channel binding", "SCRAM-SHA-256", "p=tls-server-end-point,,n=,r=abc", "08P01", "channel binding"},
		{"other mechanism", "SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,n=,r=abc", "28000", "unsupported SASL mechanism"},
		{"garbage", "SCRAM-SHA-256", "hello", "08P01", "malformed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", srv.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			fe := pgproto3.NewFrontend(nc, nc)
			fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
				Parameters: map[string]string{"user": "a", "database": "electric", "replication": "database"}})
			if err := fe.Flush(); err != nil {
				t.Fatal(err)
			}
			m, err := fe.Receive()
			if sasl, ok := m.(*pgproto3.AuthenticationSASL); err != nil || !ok || len(sasl.AuthMechanisms) != 1 || sasl.AuthMechanisms[0] != "SCRAM-SHA-256" {
				t.Fatalf("first answer %#v, %v", m, err)
			}
			fe.Send(&pgproto3.SASLInitialResponse{AuthMechanism: tt.mechanism, Data: []byte(tt.data)})
			if err := fe.Flush(); err != nil {
				t.Fatal(err)
			}
			m, err = fe.Receive()
			if er, ok := m.(*pgproto3.ErrorResponse); err != nil || !ok || er.Code != tt.code || !strings.Contains(er.Message, tt.msg) {
				t.Fatalf("answer %#v, %v", m, err)
			}
		})
	}
}

// TestOversizedMessageClosesSession: a message announcing a body beyond
// the bound gets an error and the connection closes, without the server
// waiting for (or allocating) the body.
func TestOversizedMessageClosesSession(t *testing.T) {
	l := newTestLog(t)
	srv := staticServer(t, l, publisher.Options{MaxMessageBytes: 1 << 20})
	ctx := context.Background()
	conn, err := pgconn.Connect(ctx, connURL(srv.Addr().String(), "a", publisher.ConnectorPassword(testMaster, "a"))+"&sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	hj, err := conn.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	defer hj.Conn.Close()
	hj.Conn.Write([]byte{'Q', 1, 0, 0, 0}) // a 16 MiB query, never sent
	hj.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := hj.Frontend.Receive()
	if er, ok := m.(*pgproto3.ErrorResponse); err != nil || !ok || er.Code != "08P01" {
		t.Fatalf("oversized message answered with %#v, %v", m, err)
	}
	if m, err := hj.Frontend.Receive(); err == nil {
		t.Fatalf("connection still open: %#v", m)
	}
}

// TestStuckReaderLosesTheSlot: a subscriber that starts replication and
// never reads is disconnected once a write has waited WriteTimeout, and a
// real subscriber then gets the stream.
func TestStuckReaderLosesTheSlot(t *testing.T) {
	l := newTestLog(t)
	// Enough to fill the socket buffers both ways many times over.
	big := strings.Repeat("x", 8<<10)
	for i := 0; i < 8; i++ {
		each := make([][]txlog.RowChange, 500)
		for j := range each {
			each[j] = []txlog.RowChange{upsert("public.items", fmt.Sprintf("id=%d", i*500+j), "v="+big)}
		}
		l.appendAll("b", each)
	}
	srv := staticServer(t, l, publisher.Options{WriteTimeout: time.Second, ReplyTimeout: time.Hour})
	stuck := replicationConn(t, srv)
	ctx := context.Background()
	if err := pglogrepl.StartReplication(ctx, stuck, "a", 0, startOpts); err != nil {
		t.Fatal(err)
	}
	// The stuck subscriber reads nothing from here on.
	real := replicationConn(t, srv)
	var last error
	testkit.WaitFor(t, "the second subscriber streaming", func() (bool, string) {
		last = pglogrepl.StartReplication(ctx, real, "a", 0, startOpts)
		if last != nil {
			time.Sleep(100 * time.Millisecond)
		}
		return last == nil, fmt.Sprint(last)
	})
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	msg, err := real.ReceiveMessage(rctx)
	if cd, ok := msg.(*pgproto3.CopyData); err != nil || !ok || len(cd.Data) == 0 {
		t.Fatalf("first message of the second stream: %#v, %v", msg, err)
	}
}

// selfSigned is a TLS server configuration with a fresh self-signed
// certificate for 127.0.0.1.
func selfSigned(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "electric test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}

// TestTLS: with a TLS configuration, SSLRequest is answered 'S' and a
// Postgres subscription with sslmode=require replicates.
func TestTLS(t *testing.T) {
	// The clusters run as a user that cannot read root's home, where libpq
	// looks for a client certificate by default: point the servers' libpq
	// to a path that does not exist (no client certificate), and tell pgx
	// in this process to use none.
	t.Setenv("PGSSLCERT", "/nonexistent/postgresql.crt")
	t.Setenv("PGSSLCERTMODE", "disable")
	cfg := selfSigned(t)
	e := newEnv(t, func(e *env) { e.tls = cfg; e.sslmode = "require" })

	// A client sees TLS.
	ctx := context.Background()
	pgRaw := pgtest.Start(t)
	pgRaw.Exec(`CREATE TABLE items (id int PRIMARY KEY, v text)`)
	e.startConnector("a", pgRaw)
	conn, err := pgconn.Connect(ctx, connURL(e.srv.Addr().String(), "a", publisher.ConnectorPassword(testMaster, "a"))+"&sslmode=require")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := conn.Conn().(*tls.Conn); !ok {
		t.Fatalf("sslmode=require connection is a %T", conn.Conn())
	}
	conn.Close(ctx)

	e.log.append("b", upsert("public.items", "id=1", "v=over tls"))
	waitDump(t, pgRaw, "items", "id=1,v=over tls")
	if bad := applyErrors(t, pgRaw); len(bad) > 0 {
		t.Fatalf("postgres reported errors:\n%s", strings.Join(bad, "\n"))
	}
}

// TestAuthenticationRateLimited: wrong passwords count against the address
// (loopback too); past the burst the address is refused with 28000 before
// any SCRAM exchange, even with the right password, until a try refills.
func TestAuthenticationRateLimited(t *testing.T) {
	l := newTestLog(t)
	clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	srv := staticServer(t, l, publisher.Options{
		AuthLimiter: authlimit.NewLimits(clock.Now, authlimit.Limits{Burst: 3, Refill: 6 * time.Second}),
	})
	addr := srv.Addr().String()
	pwA := publisher.ConnectorPassword(testMaster, "a")
	wrong := connURL(addr, "a", pwA+"0") + "&sslmode=disable"
	right := connURL(addr, "a", pwA) + "&sslmode=disable"
	tooMany := func(url string) {
		t.Helper()
		conn, err := pgconn.Connect(context.Background(), url)
		if err == nil {
			conn.Close(context.Background())
			t.Fatal("a blocked address connected")
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "28000" || pgErr.Severity != "FATAL" ||
			pgErr.Message != "too many failed authentication attempts from this address; retry in 6 s" {
			t.Fatalf("blocked address: %v, want 28000 too many failed authentication attempts", err)
		}
	}
	for range 3 {
		refused(t, wrong, "a")
	}
	tooMany(wrong)
	tooMany(right)
	clock.Add(6 * time.Second)
	conn, err := pgconn.Connect(context.Background(), right)
	if err != nil {
		t.Fatalf("after the refill: %v", err)
	}
	conn.Close(context.Background())
}
