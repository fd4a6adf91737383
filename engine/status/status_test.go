package status

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fakeProvider serves fixed snapshots; the HTTP layer is what is under test.
type fakeProvider struct {
	mu         sync.Mutex
	status     Status
	connectors []Connector
	log        Log
	sessions   []Session
	err        error
}

func (f *fakeProvider) Status(context.Context) (Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status, f.err
}

func (f *fakeProvider) Connectors(context.Context) ([]Connector, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connectors, f.err
}

func (f *fakeProvider) Log(context.Context) (Log, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.log, f.err
}

func (f *fakeProvider) Sessions(context.Context) ([]Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sessions, f.err
}

func sampleProvider() *fakeProvider {
	last := t0.Add(-2 * time.Second)
	return &fakeProvider{
		status: Status{Connectors: map[string]ConnectorState{"postgres_1": StateReady, "postgres_2": StateReady}, LogHealthy: true},
		connectors: []Connector{{
			Name: "postgres_1", State: StateReady, Slot: "electric_postgres_1",
			ConfirmedLSN: 0x16B3748, FlushedLSN: 0x16B3800, WALRetainedBytes: 4096,
			SourceLagBytes: 184, SourceLagSeconds: 0.25, LastTxTime: &last, Transactions: 1200, TxPerSecond: 12.5,
			Subscriber: Subscriber{State: "streaming", AppliedOffset: 1190, AppliedLSN: LSN(1190 << 16), LagEntries: 10},
		}, {
			Name: "postgres_2", State: StateSubscribe, Slot: "electric_postgres_2", Error: "connection refused",
			Subscriber: Subscriber{State: "waiting"},
		}},
		log: Log{Head: 1200, SizeBytes: 5 << 20, EntriesPerSecond: 20, Healthy: true},
		sessions: []Session{{
			ClientID: "c1", User: "alice", RemoteAddr: "10.0.0.7:50123", ConnectedSince: t0.Add(-5 * time.Minute),
			State: "replicating", InboundLSN: "AAAAAQ==", OutboundLSN: "1200", OutboundOffset: 1200, TxIn: 3, TxOut: 40,
		}},
	}
}

func newTestServer(t *testing.T, p Provider, ev *Events) (*Server, *httptest.Server, *Client) {
	t.Helper()
	s, err := New(Options{Provider: p, Events: ev, Heartbeat: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		close(s.done) // end event streams so Close does not wait on them
		hs.Close()
	})
	c, err := NewClient(hs.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, hs, c
}

func getBody(t *testing.T, method, url string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func TestStatusSeedShape(t *testing.T) {
	p := sampleProvider()
	_, hs, c := newTestServer(t, p, nil)
	code, _, body := getBody(t, "GET", hs.URL+"/api/status")
	if code != 200 || body != `{"connectors":{"postgres_1":true,"postgres_2":true},"vaxine":true}` {
		t.Fatalf("GET /api/status = %d %q", code, body)
	}

	p.mu.Lock()
	p.status = Status{Connectors: map[string]ConnectorState{
		"a": StateMigration, "b": StateInit, "c": StateReinit, "d": StateReady,
	}}
	p.mu.Unlock()
	code, _, body = getBody(t, "GET", hs.URL+"/api/status")
	if want := `{"connectors":{"a":"migration","b":false,"c":false,"d":true},"vaxine":false}`; code != 200 || body != want {
		t.Fatalf("GET /api/status = %d %q, want %q", code, body, want)
	}
	r, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := Report{Connectors: map[string]Readiness{"a": Migrating, "b": NotReady, "c": NotReady, "d": Ready}}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("client status = %+v, want %+v", r, want)
	}
}

func TestSnapshotsRoundTrip(t *testing.T) {
	p := sampleProvider()
	_, hs, c := newTestServer(t, p, nil)
	ctx := context.Background()

	cs, err := c.Connectors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || !cs[0].LastTxTime.Equal(*p.connectors[0].LastTxTime) {
		t.Fatalf("connectors = %+v", cs)
	}
	cs[0].LastTxTime = p.connectors[0].LastTxTime // time.Time location differs after decoding
	if !reflect.DeepEqual(cs, p.connectors) {
		t.Fatalf("connectors = %+v\nwant %+v", cs, p.connectors)
	}
	_, _, raw := getBody(t, "GET", hs.URL+"/api/connectors")
	for _, want := range []string{`"confirmed_lsn":"0/16B3748"`, `"applied_lsn":"0/4A60000"`, `"last_tx_time":"2026-11-25T11:59:58Z"`} {
		if !strings.Contains(raw, want) {
			t.Errorf("/api/connectors body lacks %s: %s", want, raw)
		}
	}
	if strings.Contains(raw[strings.Index(raw, "postgres_2"):], "last_tx_time") {
		t.Errorf("connector without transactions has a last_tx_time: %s", raw)
	}

	l, err := c.Log(ctx)
	if err != nil || l != p.log {
		t.Fatalf("log = %+v, %v; want %+v", l, err, p.log)
	}
	ss, err := c.Sessions(ctx)
	if err != nil || len(ss) != 1 || !ss[0].ConnectedSince.Equal(p.sessions[0].ConnectedSince) {
		t.Fatalf("sessions = %+v, %v", ss, err)
	}
	ss[0].ConnectedSince = p.sessions[0].ConnectedSince
	if !reflect.DeepEqual(ss, p.sessions) {
		t.Fatalf("sessions = %+v, want %+v", ss, p.sessions)
	}
}

func TestEmptyProviderGivesEmptyLists(t *testing.T) {
	_, hs, _ := newTestServer(t, &fakeProvider{}, nil)
	for path, want := range map[string]string{
		"/api/connectors": `{"connectors":[]}`,
		"/api/sessions":   `{"sessions":[]}`,
		"/api/status":     `{"connectors":{},"vaxine":false}`,
	} {
		if code, _, body := getBody(t, "GET", hs.URL+path); code != 200 || body != want {
			t.Errorf("GET %s = %d %q, want %q", path, code, body, want)
		}
	}
}

func TestNotFoundAndErrors(t *testing.T) {
	p := sampleProvider()
	_, hs, c := newTestServer(t, p, nil)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/"}, {"GET", "/api/nope"}, {"POST", "/api/status"}, {"GET", "/api/status/x"},
	} {
		code, _, body := getBody(t, tc.method, hs.URL+tc.path)
		if code != 404 || strings.TrimSpace(body) != "Not found" {
			t.Errorf("%s %s = %d %q, want 404 Not found", tc.method, tc.path, code, body)
		}
	}
	if code, _, _ := getBody(t, "GET", hs.URL+"/api/events?after=x"); code != 400 {
		t.Errorf("bad event id: got %d, want 400", code)
	}

	p.mu.Lock()
	p.err = errors.New("log store closed")
	p.mu.Unlock()
	code, _, body := getBody(t, "GET", hs.URL+"/api/log")
	if code != 503 || !strings.Contains(body, "log store closed") {
		t.Fatalf("GET /api/log with failing provider = %d %q", code, body)
	}
	if _, err := c.Connectors(context.Background()); err == nil || !strings.Contains(err.Error(), "listing connectors: log store closed") {
		t.Fatalf("client error = %v", err)
	}
	// Metrics still answer, saying the provider is down.
	_, _, m := getBody(t, "GET", hs.URL+"/metrics")
	if !strings.Contains(m, "electric_status_up 0") {
		t.Fatalf("metrics with failing provider lack electric_status_up 0:\n%s", m)
	}
}

func TestExtraRoutes(t *testing.T) {
	s, err := New(Options{Provider: sampleProvider()})
	if err != nil {
		t.Fatal(err)
	}
	s.Handle("GET /api/migrations/{origin}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "origin=%s", r.PathValue("origin"))
	}))
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	if code, _, body := getBody(t, "GET", hs.URL+"/api/migrations/postgres_1"); code != 200 || body != "origin=postgres_1" {
		t.Fatalf("mounted route = %d %q", code, body)
	}
}

func TestMetrics(t *testing.T) {
	_, hs, _ := newTestServer(t, sampleProvider(), nil)
	code, h, body := getBody(t, "GET", hs.URL+"/metrics")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics = %d %s", code, h.Get("Content-Type"))
	}
	for _, want := range []string{
		`electric_status_up 1`,
		`electric_connector_ready{connector="postgres_1"} 1`,
		`electric_connector_ready{connector="postgres_2"} 0`,
		`electric_connector_confirmed_lsn{connector="postgres_1"} 2.380372e+07`,
		`electric_connector_source_lag_bytes{connector="postgres_1"} 184`,
		`electric_connector_transactions_total{connector="postgres_1"} 1200`,
		`# TYPE electric_connector_transactions_total counter`,
		`electric_connector_last_transaction_timestamp_seconds{connector="postgres_1"} 1.795607998e+09`,
		`electric_connector_subscriber_lag_entries{connector="postgres_1"} 10`,
		`electric_log_head_offset 1200`,
		`electric_log_size_bytes 5.24288e+06`,
		`electric_log_healthy 1`,
		`electric_satellite_sessions 1`,
		`electric_satellite_session_transactions_out_total{client_id="c1"} 40`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}

// readUntil reads raw lines of an event stream until one matches the
// predicate.
func readUntil(t *testing.T, sc *bufio.Scanner, pred func(string) bool) {
	t.Helper()
	for sc.Scan() {
		if pred(sc.Text()) {
			return
		}
	}
	t.Fatalf("stream ended before the expected line: %v", sc.Err())
}

func TestEventsStream(t *testing.T) {
	ev := NewEvents(3, func() time.Time { return t0 })
	_, hs, c := newTestServer(t, sampleProvider(), ev)
	for i := 1; i <= 4; i++ { // ring of 3: event 1 falls out
		ev.Publish(Event{Kind: KindConnector, Connector: "postgres_1", Message: fmt.Sprintf("e%d", i)})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan Event, 16)
	errc := make(chan error, 1)
	sctx, stop := context.WithCancel(ctx)
	go func() {
		errc <- c.Events(sctx, 0, func(e Event) error { got <- e; return nil })
	}()
	next := func() Event {
		select {
		case e := <-got:
			return e
		case <-ctx.Done():
			t.Fatal("no event before the deadline")
		}
		return Event{}
	}
	for _, want := range []string{"e2", "e3", "e4"} {
		if e := next(); e.Message != want || !e.Time.Equal(t0) || e.Kind != KindConnector || e.Connector != "postgres_1" {
			t.Fatalf("backlog event = %+v, want %s", e, want)
		}
	}
	// Live events follow: the subscription was taken before the backlog was
	// sent, so nothing published now can be missed.
	ev.Publish(Event{Kind: KindSession, Session: "c1", Message: "connected", Time: t0.Add(time.Second)})
	if e := next(); e.ID != 5 || e.Session != "c1" || e.Message != "connected" {
		t.Fatalf("live event = %+v", e)
	}
	stop()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Events after cancel = %v", err)
	}

	// Resuming after ID 4 gives only 5.
	rctx, rstop := context.WithCancel(ctx)
	go func() {
		errc <- c.Events(rctx, 4, func(e Event) error { got <- e; return nil })
	}()
	if e := next(); e.ID != 5 {
		t.Fatalf("resumed stream starts with %+v, want ID 5", e)
	}
	rstop()
	<-errc

	// Raw stream: SSE framing and heartbeats.
	req, _ := http.NewRequestWithContext(ctx, "GET", hs.URL+"/api/events", nil)
	req.Header.Set("Last-Event-ID", "4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	readUntil(t, sc, func(l string) bool { return l == "id: 5" })
	readUntil(t, sc, func(l string) bool { return strings.HasPrefix(l, `data: {"id":5,`) })
	readUntil(t, sc, func(l string) bool { return l == ": heartbeat" })
}

func TestEventsSlowSubscriberIsCutOff(t *testing.T) {
	ev := NewEvents(1000, nil)
	backlog, live, cancel := ev.Subscribe(0)
	defer cancel()
	if len(backlog) != 0 {
		t.Fatalf("backlog %v", backlog)
	}
	for i := 0; i < subscriberBuffer+1; i++ {
		ev.Publish(Event{Kind: KindError, Message: "x"})
	}
	n := 0
	for range live {
		n++
	}
	if n != subscriberBuffer {
		t.Fatalf("slow subscriber got %d events before being cut off, want %d", n, subscriberBuffer)
	}
	// It catches up from the ring.
	if r := ev.Recent(uint64(n)); len(r) != 1 || r[0].ID != uint64(n+1) {
		t.Fatalf("Recent(%d) = %+v", n, r)
	}
	cancel() // idempotent after the cut-off
}

func TestServeShutsDownWithOpenStream(t *testing.T) {
	s, err := New(Options{Provider: sampleProvider()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	c, err := NewClient("http://"+ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	streamed := make(chan error, 1)
	s.Events().Publish(Event{Kind: KindConnector, Message: "up"})
	gotFirst := make(chan struct{})
	go func() {
		var once sync.Once
		streamed <- c.Events(context.Background(), 0, func(Event) error { once.Do(func() { close(gotFirst) }); return nil })
	}()
	select {
	case <-gotFirst:
	case <-time.After(30 * time.Second):
		t.Fatal("no event from the stream")
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if err := <-streamed; !errors.Is(err, ErrStreamEnded) {
		t.Fatalf("stream ended with %v, want ErrStreamEnded", err)
	}
}

func TestRunReportsListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := New(Options{Provider: sampleProvider(), Addr: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "listening for status api") {
		t.Fatalf("Run on a busy port = %v", err)
	}
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without a Provider succeeded")
	}
}

func TestLSN(t *testing.T) {
	for _, tc := range []struct {
		s string
		v LSN
	}{{"0/0", 0}, {"0/16B3748", 0x16B3748}, {"1/0", 1 << 32}, {"FFFFFFFF/FFFFFFFF", ^LSN(0)}} {
		if got := tc.v.String(); got != tc.s {
			t.Errorf("%d.String() = %s, want %s", tc.v, got, tc.s)
		}
		if got, err := ParseLSN(tc.s); err != nil || got != tc.v {
			t.Errorf("ParseLSN(%s) = %d, %v", tc.s, got, err)
		}
	}
	for _, bad := range []string{"", "16B3748", "x/1", "1/x", "100000000/0"} {
		if _, err := ParseLSN(bad); err == nil {
			t.Errorf("ParseLSN(%q) succeeded", bad)
		}
	}
	if _, err := NewClient("localhost:5050", nil); err == nil {
		t.Error("NewClient without scheme succeeded")
	}
}

// TestServeClosesFreshConnsOnShutdown: a connection that never sent a
// request (clients dial ahead) must not hold up shutdown for the grace period.
func TestServeClosesFreshConnsOnShutdown(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	s, err := New(Options{Provider: sampleProvider(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	// A request on another connection proves the server has accepted (and
	// so tracks) connections by now.
	c, _ := NewClient("http://"+ln.Addr().String(), nil)
	if _, err := c.Log(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Fatal("fresh connection still open after shutdown")
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), "still busy") {
		t.Fatalf("shutdown waited out its grace period:\n%s", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
