package status

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/authlimit"
	"github.com/electric-sql/electric-go/internal/testkit"
)

const testToken = "test-status-token-0123456789"

// guardedServer is a server with a PUT /api/migrations/{origin} route that
// counts its calls, as the engine adds the migrations API.
func guardedServer(t *testing.T, token string, now func() time.Time) (*Server, *atomic.Int64) {
	t.Helper()
	s, err := New(Options{Provider: sampleProvider(), Token: token, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var puts atomic.Int64
	s.Handle("PUT /api/migrations/{origin}", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		puts.Add(1)
		fmt.Fprint(w, "ok")
	}))
	return s, &puts
}

type guardCase struct {
	name, method, path, remote string
	header                     map[string]string
	want                       int
	refusal                    string // RefusalHeader wanted, "" for none
}

func runGuardCases(t *testing.T, h http.Handler, cases []guardCase) {
	t.Helper()
	for _, tc := range cases {
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(`{"vsn":"1_x"}`))
		req.RemoteAddr = tc.remote
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s: %s %s from %s = %d %q, want %d", tc.name, tc.method, tc.path, tc.remote, rec.Code, rec.Body.String(), tc.want)
		}
		if got := rec.Header().Get(RefusalHeader); got != tc.refusal {
			t.Errorf("%s: %s = %q, want %q", tc.name, RefusalHeader, got, tc.refusal)
		}
		if tc.want == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: 401 without WWW-Authenticate: Bearer (%q)", tc.name, rec.Header().Get("WWW-Authenticate"))
		}
	}
}

// With STATUS_API_TOKEN every route but the status summary, the probe and
// the metrics needs the bearer token, from anywhere, loopback included.
func TestGuardWithToken(t *testing.T) {
	s, puts := guardedServer(t, testToken, nil)
	const remote = "10.0.0.7:50123"
	good := map[string]string{"Authorization": "Bearer " + testToken}
	runGuardCases(t, s.Handler(), []guardCase{
		{name: "status is public", method: "GET", path: "/api/status", remote: remote, want: 200},
		{name: "metrics are public", method: "GET", path: "/metrics", remote: remote, want: 200},
		{name: "healthz is public", method: "GET", path: "/healthz", remote: remote, want: 200},
		{name: "unauthenticated migration", method: "PUT", path: "/api/migrations/db_a", remote: remote, want: 401, refusal: RefusedToken},
		{name: "unauthenticated sessions", method: "GET", path: "/api/sessions", remote: remote, want: 401, refusal: RefusedToken},
		{name: "unauthenticated events", method: "GET", path: "/api/events", remote: remote, want: 401, refusal: RefusedToken},
		{name: "loopback needs the token too", method: "GET", path: "/api/connectors", remote: "127.0.0.1:4000", want: 401, refusal: RefusedToken},
		{name: "status is GET only", method: "POST", path: "/api/status", remote: remote, want: 401, refusal: RefusedToken},
		{name: "wrong bearer", method: "PUT", path: "/api/migrations/db_a", remote: remote,
			header: map[string]string{"Authorization": "Bearer " + testToken + "x"}, want: 401, refusal: RefusedToken},
		{name: "token prefix", method: "GET", path: "/api/log", remote: remote,
			header: map[string]string{"Authorization": "Bearer " + testToken[:16]}, want: 401, refusal: RefusedToken},
		{name: "basic scheme", method: "GET", path: "/api/log", remote: remote,
			header: map[string]string{"Authorization": "Basic " + testToken}, want: 401, refusal: RefusedToken},
		{name: "bearer sessions", method: "GET", path: "/api/sessions", remote: remote, header: good, want: 200},
		{name: "lower-case scheme", method: "GET", path: "/api/log", remote: remote,
			header: map[string]string{"Authorization": "bearer " + testToken}, want: 200},
		{name: "bearer migration", method: "PUT", path: "/api/migrations/db_a", remote: remote, header: good, want: 200},
	})
	if n := puts.Load(); n != 1 {
		t.Errorf("migration handler ran %d times, want once (the authenticated PUT)", n)
	}
}

// Without a token, private routes answer loopback clients only, judged by the
// connection's address: a forwarding header proves nothing.
func TestGuardLoopbackOnlyWithoutToken(t *testing.T) {
	s, puts := guardedServer(t, "", nil)
	const remote = "10.0.0.7:50123"
	runGuardCases(t, s.Handler(), []guardCase{
		{name: "remote migration", method: "PUT", path: "/api/migrations/db_a", remote: remote, want: 403, refusal: RefusedLoopback},
		{name: "remote sessions", method: "GET", path: "/api/sessions", remote: "[2001:db8::1]:5000", want: 403, refusal: RefusedLoopback},
		{name: "forwarded-for is ignored", method: "GET", path: "/api/sessions", remote: remote,
			header: map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1", "Forwarded": "for=127.0.0.1"}, want: 403, refusal: RefusedLoopback},
		{name: "a bearer does not help", method: "GET", path: "/api/log", remote: remote,
			header: map[string]string{"Authorization": "Bearer " + testToken}, want: 403, refusal: RefusedLoopback},
		{name: "remote status", method: "GET", path: "/api/status", remote: remote, want: 200},
		{name: "remote metrics", method: "GET", path: "/metrics", remote: remote, want: 200},
		{name: "loopback v4", method: "GET", path: "/api/sessions", remote: "127.0.0.1:4000", want: 200},
		{name: "loopback 127/8", method: "GET", path: "/api/log", remote: "127.1.2.3:4000", want: 200},
		{name: "loopback v6", method: "GET", path: "/api/connectors", remote: "[::1]:4000", want: 200},
		{name: "loopback v4-mapped", method: "GET", path: "/api/connectors", remote: "[::ffff:127.0.0.1]:4000", want: 200},
		{name: "loopback migration", method: "PUT", path: "/api/migrations/db_a", remote: "127.0.0.1:4000", want: 200},
	})
	if n := puts.Load(); n != 1 {
		t.Errorf("migration handler ran %d times, want once (the loopback PUT)", n)
	}
	req := httptest.NewRequest("GET", "/api/sessions", nil)
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if body := rec.Body.String(); !strings.Contains(body, "STATUS_API_TOKEN") || !strings.Contains(body, "loopback") {
		t.Errorf("403 body %q does not say to set STATUS_API_TOKEN", body)
	}
}

// Failed tokens are limited per address: after authlimit.DefaultBurst of them the
// address gets 429 (even with the right token) until the bucket refills;
// other addresses are not affected.
func TestGuardRateLimitsFailures(t *testing.T) {
	clock := testkit.NewClock(t0)
	s, _ := guardedServer(t, testToken, clock.Now)
	do := func(remote, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/api/log", nil)
		req.RemoteAddr = remote
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec
	}
	const attacker, other = "10.0.0.66:1000", "10.0.0.7:2000"
	for i := 0; i < authlimit.DefaultBurst; i++ {
		if rec := do(attacker, "guess"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, rec.Code)
		}
	}
	rec := do("10.0.0.66:1001", testToken) // another port of the same host
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get(RefusalHeader) != RefusedRate || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("after %d failures: %d %v, want 429 with Retry-After", authlimit.DefaultBurst, rec.Code, rec.Header())
	}
	if rec := do(other, testToken); rec.Code != http.StatusOK {
		t.Fatalf("another address: %d, want 200", rec.Code)
	}
	clock.Add(authlimit.DefaultRefill)
	if rec := do(attacker, testToken); rec.Code != http.StatusOK {
		t.Fatalf("after the refill: %d, want 200", rec.Code)
	}
	if rec := do(attacker, "guess"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("one refilled try: %d, want 401", rec.Code)
	}
	if rec := do(attacker, "guess"); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("after the refilled try: %d, want 429", rec.Code)
	}
}

// The limiter's table stays bounded however many addresses fail.
func TestFailLimiterIsBounded(t *testing.T) {
	clock := testkit.NewClock(t0)
	l := authlimit.New(clock.Now)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	for i := 0; i < authlimit.DefaultMaxAddrs+500; i++ {
		l.Fail(addr(i))
		clock.Add(time.Millisecond)
	}
	if n := l.Size(); n > authlimit.DefaultMaxAddrs {
		t.Fatalf("limiter remembers %d addresses, want at most %d", n, authlimit.DefaultMaxAddrs)
	}
	// The newest failure is remembered, the oldest forgotten first.
	if l.Blocked(addr(authlimit.DefaultMaxAddrs+499)) != 0 {
		t.Fatal("one failure blocks an address")
	}
	for i := 0; i < authlimit.DefaultBurst; i++ {
		l.Fail(addr(authlimit.DefaultMaxAddrs + 499))
	}
	if l.Blocked(addr(authlimit.DefaultMaxAddrs+499)) == 0 {
		t.Fatal("a recent address was forgotten")
	}
	// Once every bucket is full again, a sweep forgets them all.
	clock.Add(authlimit.DefaultBurst * authlimit.DefaultRefill)
	l.Fail(netip.MustParseAddr("192.0.2.1"))
	if n := l.Size(); n > authlimit.DefaultMaxAddrs {
		t.Fatalf("after a sweep: %d addresses", n)
	}
}

// At most MaxEventStreams streams are open; one more is refused with 503
// and gets in once a stream closes.
func TestEventStreamsAreCapped(t *testing.T) {
	s, err := New(Options{Provider: sampleProvider(), MaxEventStreams: 2, Heartbeat: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() { close(s.done); hs.Close() })
	c, err := NewClient(hs.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := c.OpenEvents(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.OpenEvents(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	code, hdr, body := getBody(t, "GET", hs.URL+"/api/events")
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(body, "2 event streams") {
		t.Fatalf("third stream: %d %q %v, want 503 with Retry-After", code, body, hdr)
	}
	a.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := c.OpenEvents(ctx, 0)
		if err == nil {
			d.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stream after one closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A subscriber that stops reading is dropped once a write misses its
// deadline, instead of holding its handler (and its slot) for ever.
func TestEventStreamDropsStalledReader(t *testing.T) {
	ev := NewEvents(0, nil)
	s, err := New(Options{Provider: sampleProvider(), Events: ev, EventWriteTimeout: 100 * time.Millisecond, Heartbeat: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() { close(s.done); hs.Close() })

	conn, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(line, "200") {
		t.Fatalf("stream answer %q %v", line, err)
	}
	// From here on the client reads nothing: a few MB fill the socket
	// buffers and the handler's write blocks.
	big := strings.Repeat("x", 256<<10)
	deadline := time.Now().Add(20 * time.Second)
	for s.streams.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stalled stream is still open")
		}
		for i := 0; i < 8; i++ {
			ev.Publish(Event{Kind: KindError, Message: big})
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The client sends its token and reports an auth refusal as ErrRefused, in
// one line.
func TestClientToken(t *testing.T) {
	s, _ := guardedServer(t, testToken, nil)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() { close(s.done); hs.Close() })
	c, err := NewClient(hs.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("public status without a token: %v", err)
	}
	_, err = c.Sessions(ctx)
	var re *RefusedError
	if !errors.Is(err, ErrRefused) || !errors.As(err, &re) || re.Status != http.StatusUnauthorized {
		t.Fatalf("sessions without a token: %v, want ErrRefused (401)", err)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "the engine refused the request: set STATUS_API_TOKEN or --token") {
		t.Errorf("refusal reads %q", msg)
	}
	if _, err := c.WithToken("wrong-token-wrong-token").Log(ctx); !errors.Is(err, ErrRefused) {
		t.Fatalf("wrong token: %v", err)
	}
	if _, err := c.WithToken("x").OpenEvents(ctx, 0); !errors.Is(err, ErrRefused) {
		t.Fatalf("events with a wrong token: %v", err)
	}
	ok := c.WithToken(testToken)
	if ss, err := ok.Sessions(ctx); err != nil || len(ss) != 1 {
		t.Fatalf("sessions with the token: %v %v", ss, err)
	}
	st, err := ok.OpenEvents(ctx, 0)
	if err != nil {
		t.Fatalf("events with the token: %v", err)
	}
	st.Close()
}
