package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/electric-sql/electric-go/engine/authlimit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultHeartbeat is how often an idle event stream gets a comment line, so
// proxies keep it open and clients notice a dead engine.
const DefaultHeartbeat = 15 * time.Second

// DefaultMaxEventStreams is how many /api/events streams may be open at
// once by default; one more is answered 503.
const DefaultMaxEventStreams = 64

// DefaultEventWriteTimeout bounds one write to an event stream: a
// subscriber that stops reading is dropped after it.
const DefaultEventWriteTimeout = 10 * time.Second

// Options configures a Server.
type Options struct {
	Addr     string   // listen address for Run, e.g. ":5050"
	Provider Provider // required
	Events   *Events  // nil: a private, empty hub
	Logger   *slog.Logger
	// Heartbeat between comment lines on idle event streams (DefaultHeartbeat if 0).
	Heartbeat time.Duration
	// Token (STATUS_API_TOKEN) is the bearer token every route but
	// /api/status, /healthz and /metrics requires; empty: those routes
	// answer loopback clients only (see auth.go).
	Token string
	// MaxEventStreams caps concurrent /api/events streams
	// (DefaultMaxEventStreams if 0).
	MaxEventStreams int
	// EventWriteTimeout bounds each write to an event stream
	// (DefaultEventWriteTimeout if 0).
	EventWriteTimeout time.Duration
	// Now is the clock of the failed-authentication limiter (time.Now if nil).
	Now func() time.Time
	// Audit serves /api/conflicts and /api/rejected (nil: 404) and their
	// metrics.
	Audit AuditLog
	// AuthLimiter counts failed tokens per address; the engine shares one
	// with its other ports. Nil: a limiter of its own with the default
	// limits and the clock Now.
	AuthLimiter *authlimit.Limiter
}

// Server is the status HTTP server. Routes may be added with Handle before
// Run or Serve.
type Server struct {
	opts     Options
	log      *slog.Logger
	mux      *http.ServeMux
	guard    *guard // mux behind the access rules
	registry *prometheus.Registry
	streams  atomic.Int64 // open /api/events streams
	// done is closed when the server shuts down, so long-lived event streams
	// end instead of holding up a graceful shutdown.
	done chan struct{}
}

// New builds the server and its routes; it does not listen yet.
func New(opts Options) (*Server, error) {
	if opts.Provider == nil {
		return nil, errors.New("creating status server: no Provider")
	}
	if opts.Events == nil {
		opts.Events = NewEvents(0, nil)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.MaxEventStreams <= 0 {
		opts.MaxEventStreams = DefaultMaxEventStreams
	}
	if opts.EventWriteTimeout <= 0 {
		opts.EventWriteTimeout = DefaultEventWriteTimeout
	}
	s := &Server{
		opts:     opts,
		log:      opts.Logger,
		mux:      http.NewServeMux(),
		registry: prometheus.NewRegistry(),
		done:     make(chan struct{}),
	}
	fails := opts.AuthLimiter
	if fails == nil {
		fails = authlimit.New(opts.Now)
	}
	s.guard = newGuard(s.mux, opts.Token, fails)
	if err := s.registry.Register(newCollector(opts.Provider, opts.Audit)); err != nil {
		return nil, fmt.Errorf("registering status metrics: %w", err)
	}
	if err := s.registry.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("registering go metrics: %w", err)
	}
	if err := s.registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("registering process metrics: %w", err)
	}
	s.mux.HandleFunc("GET /healthz", s.handleHealthz)
	s.mux.HandleFunc("GET /api/status", s.handleStatus)
	s.mux.HandleFunc("GET /api/connectors", s.handleConnectors)
	s.mux.HandleFunc("GET /api/log", s.handleLog)
	s.mux.HandleFunc("GET /api/sessions", s.handleSessions)
	s.mux.HandleFunc("GET /api/events", s.handleEvents)
	s.mux.HandleFunc("GET /api/conflicts", s.handleAudit([]string{AuditConflict}))
	s.mux.HandleFunc("GET /api/rejected", s.handleAudit(rejectionKinds))
	s.mux.HandleFunc("POST /api/rejected/retry", s.handleRetry)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
	}))
	// The seed answers anything unknown with a plain 404 "Not found".
	s.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "Not found", http.StatusNotFound)
	})
	return s, nil
}

// Handle adds a route (net/http ServeMux pattern, e.g.
// "GET /api/migrations/{origin}"). Call it before Run or Serve.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler is the server's complete HTTP handler, access rules included.
func (s *Server) Handler() http.Handler { return s.guard }

// Events is the server's event hub.
func (s *Server) Events() *Events { return s.opts.Events }

// Registry is the server's Prometheus registry, for components that want to
// register their own collectors.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Run listens on Options.Addr and serves until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("listening for status api on %s: %w", s.opts.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done, then shuts down gracefully (ending
// event streams) and closes ln. It can be called once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Connections that have not sent a request yet (a client's transport
	// may dial ahead) count as busy for Shutdown until they are 5 s old;
	// they carry no request, so they are closed at once on shutdown.
	var mu sync.Mutex
	fresh := map[net.Conn]bool{}
	// No ReadTimeout or WriteTimeout: event streams and migrations (minutes)
	// outlive any fixed bound, and net/http cancels a request's context once
	// ReadTimeout passes. Headers are bounded here, bodies by their
	// handlers' size limits, event streams by per-write deadlines.
	srv := &http.Server{
		Handler:           s.guard,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ConnState: func(c net.Conn, st http.ConnState) {
			mu.Lock()
			defer mu.Unlock()
			if st == http.StateNew {
				fresh[c] = true
			} else {
				delete(fresh, c)
			}
		},
	}
	s.log.Info("status api listening", "addr", ln.Addr().String())
	if s.opts.Token == "" {
		s.log.Warn("STATUS_API_TOKEN is not set: the status API's migrations, sessions, connectors, log and events answer loopback clients only; set it to reach them remotely with a bearer token")
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		close(s.done)
		return fmt.Errorf("serving status api: %w", err)
	case <-ctx.Done():
	}
	close(s.done)
	// Stop accepting first, so the set of fresh conns can only shrink.
	ln.Close()
	mu.Lock()
	for c := range fresh {
		c.Close()
	}
	mu.Unlock()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Requests still running after the grace period are cut off; the
		// server is down either way, which is what the caller asked for.
		s.log.Warn("status api: closing connections still busy after shutdown grace period", "err", err)
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("serving status api: %w", err)
	}
	return nil
}

// statusBody is the seed's /api/status shape; field order matters to tests
// that compare the body byte for byte.
type statusBody struct {
	Connectors map[string]any `json:"connectors"`
	Vaxine     bool           `json:"vaxine"`
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.opts.Provider.Status(r.Context())
	if err != nil {
		s.fail(w, "getting status", err)
		return
	}
	body := statusBody{Connectors: map[string]any{}, Vaxine: st.LogHealthy}
	for name, state := range st.Connectors {
		switch state {
		case StateReady:
			body.Connectors[name] = true
		case StateMigration:
			body.Connectors[name] = "migration"
		default:
			body.Connectors[name] = false
		}
	}
	writeJSON(w, body)
}

func (s *Server) handleConnectors(w http.ResponseWriter, r *http.Request) {
	cs, err := s.opts.Provider.Connectors(r.Context())
	if err != nil {
		s.fail(w, "listing connectors", err)
		return
	}
	if cs == nil {
		cs = []Connector{}
	}
	writeJSON(w, ConnectorsResponse{Connectors: cs})
}

func (s *Server) handleLog(w http.ResponseWriter, r *http.Request) {
	l, err := s.opts.Provider.Log(r.Context())
	if err != nil {
		s.fail(w, "describing log", err)
		return
	}
	writeJSON(w, l)
}

func (s *Server) handleSessions(w http.ResponseWriter, r *http.Request) {
	ss, err := s.opts.Provider.Sessions(r.Context())
	if err != nil {
		s.fail(w, "listing sessions", err)
		return
	}
	if ss == nil {
		ss = []Session{}
	}
	writeJSON(w, SessionsResponse{Sessions: ss})
}

// handleEvents streams events as server-sent events: first the ring's
// events after Last-Event-ID (or ?after=), then live ones, with comment
// heartbeats while idle. A subscriber that falls behind is disconnected and
// catches up from the ring when it reconnects.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	if _, ok := w.(http.Flusher); !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	after := uint64(0)
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("after")
	}
	if last != "" {
		v, err := strconv.ParseUint(last, 10, 64)
		if err != nil {
			http.Error(w, "Bad request: event id must be a number", http.StatusBadRequest)
			return
		}
		after = v
	}
	if s.streams.Add(1) > int64(s.opts.MaxEventStreams) {
		s.streams.Add(-1)
		w.Header().Set("Retry-After", "5")
		http.Error(w, fmt.Sprintf("Service unavailable: %d event streams are open already", s.opts.MaxEventStreams), http.StatusServiceUnavailable)
		return
	}
	defer s.streams.Add(-1)
	backlog, live, cancel := s.opts.Events.Subscribe(after)
	defer cancel()
	// A subscriber that stops reading would block its write for ever (the
	// hub itself never waits for it): each write gets a deadline, and a
	// missed one ends the stream. Not every ResponseWriter supports
	// deadlines (a recorder in tests); those streams go without.
	rc := http.NewResponseController(w)
	deadline := func() { _ = rc.SetWriteDeadline(time.Now().Add(s.opts.EventWriteTimeout)) }
	deadline()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 1000\n\n"); err != nil {
		return
	}
	for _, ev := range backlog {
		if writeEvent(w, ev) != nil {
			return
		}
	}
	if rc.Flush() != nil {
		return
	}

	tick := time.NewTicker(s.opts.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case ev, ok := <-live:
			if !ok {
				return
			}
			deadline()
			if writeEvent(w, ev) != nil || rc.Flush() != nil {
				return
			}
		case <-tick.C:
			deadline()
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

func writeEvent(w http.ResponseWriter, ev Event) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "id: %d\ndata: %s\n\n", ev.ID, data)
	return err
}

func (s *Server) fail(w http.ResponseWriter, doing string, err error) {
	s.log.Warn("status api: "+doing, "err", err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": doing + ": " + err.Error()})
}

// writeJSON writes v with no trailing newline: the seed's e2e tests compare
// /api/status bodies exactly.
func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}
