// Package publisher makes Electric a Postgres logical-replication publisher:
// a backend-protocol server (pgproto3) that each connector's Postgres
// subscribes to, answering the catalog queries a Postgres 15 subscriber sends
// and streaming the merged log as pgoutput protocol-1 messages with synthetic
// LSNs (txlog.LSN of the entry offset). It owns the TCP listener and the
// sessions on it; it reads the log and the connectors' schemas but never
// writes to either.
//
// Wiring (engine):
//
//	srv, err := publisher.New(publisher.Options{
//		Addr: ":5433", Logger: log,
//		Feed: func(after uint64) publisher.Reader { return txl.NewReader(after) },
//		Head: txl.Head,
//		Credentials: creds, // StaticCredentials(master, connectorNames)
//		Connectors: func(name string) (*publisher.View, bool) {
//			c, ok := connectors[name] // *connector.Connector
//			if !ok {
//				return nil, false
//			}
//			return c.View(), true
//		},
//	})
//	go srv.Run(ctx)
//
// Every entry goes to every connector, its own origin included; the
// subscriber's apply writes carry Origin pg_<subscription oid> with origin
// LSN txlog.LSN(offset), which is how ingest recognises them.
package publisher

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/electric-sql/electric-go/engine/authlimit"
	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// Reader reads log entries in order: the log contract's reader.
type Reader = txlog.Reader

// Feed opens a reader of the entries with Offset > after, following the head
// live. Wire it as func(after uint64) publisher.Reader { return log.NewReader(after) }.
type Feed func(after uint64) Reader

// View is what one connector's Postgres has, as the publisher must present
// it. A View is never modified once handed out: a change is a new *View, which
// is how a running stream notices it.
type View struct {
	// Ready: the schema is known, so a subscriber of that connector may
	// connect and query the catalog.
	Ready bool
	// Tables are the replicated tables that Postgres has (primary key
	// required), with the columns it has. The catalog answers list exactly
	// these, and Relation messages carry these columns and type OIDs.
	Tables []schema.Table
	// Subscribed names (schema-qualified) the tables that the subscription
	// has been refreshed with. A stock apply worker silently skips changes of
	// a table that is not in its subscription yet, so only these are
	// streamed; streaming starts once Refreshed is set.
	Subscribed map[string]bool
	Refreshed  bool
}

// Connectors looks up the view of a connector by name (the role the
// subscriber authenticated as).
type Connectors func(name string) (*View, bool)

// Options configures a Server.
type Options struct {
	Addr       string // listen address, e.g. ":5433"; ignored when Listener is set
	Listener   net.Listener
	Logger     *slog.Logger
	Feed       Feed
	Connectors Connectors
	// Credentials authenticates subscribers (SCRAM-SHA-256): the startup
	// user is the connector's name, and only its verifier is accepted.
	// Required.
	Credentials Credentials
	// TLS, when set, is offered to a client's SSLRequest; without it the
	// answer is 'N' and the connection stays in plain text.
	TLS *tls.Config
	// WriteTimeout bounds every write to a subscriber: a peer that stops
	// reading loses its session (and its stream's claim) after it; default
	// 30 s.
	WriteTimeout time.Duration
	// StartupTimeout bounds the startup, TLS handshake and authentication;
	// default 10 s.
	StartupTimeout time.Duration
	// MaxMessageBytes bounds the body of one message from a subscriber;
	// default 1 MiB. (A startup packet is bounded to 10,000 bytes by
	// pgproto3, as by Postgres.)
	MaxMessageBytes int
	// Rows, when set, iterates the merged row states of a table
	// (txlog.Log.Rows): Backfill needs it.
	Rows func(table string, fn func(key string, r *merge.Row) error) error
	// Row, when set, returns the merged state of one row (txlog.Log.Row):
	// Resend needs it.
	Row func(table, key string) (*merge.Row, error)
	// Withhold, when set, holds rows back from a connector whose Postgres
	// cannot apply them (package withhold).
	Withhold Withholder
	// Head, when set, returns the offset of the last committed entry: a
	// subscriber asking to start beyond it (its origin outlived a reset
	// data directory) is refused instead of silently skipping entries.
	Head func() uint64
	// KeepaliveInterval between keepalives (reply requested) on an idle
	// stream; default 10 s. A subscriber drops the connection after
	// wal_receiver_timeout (60 s) without a message.
	KeepaliveInterval time.Duration
	// ReplyTimeout closes a stream whose subscriber has not sent a status
	// update for this long although keepalives ask for one, as a walsender's
	// wal_sender_timeout does; default 60 s.
	ReplyTimeout time.Duration
	// SystemID is reported by IDENTIFY_SYSTEM; default "electric".
	SystemID string
	// AuthLimiter counts wrong passwords (28P01) per remote address and
	// refuses a blocked address (28000) before any SCRAM exchange; the
	// engine shares one with its other ports. Nil: one of the server's own
	// with the default limits (authlimit.New).
	AuthLimiter *authlimit.Limiter
}

// Server accepts subscriber connections.
type Server struct {
	opts Options
	log  *slog.Logger
	ln   net.Listener
	// mockKey salts the mock SCRAM exchange of an unknown role.
	mockKey []byte
	// authenticate is (*session).authenticate; the package's fuzz harness,
	// which plays a subscriber from a fixed script and so cannot answer a
	// SCRAM challenge, replaces it. Nothing outside the package can.
	authenticate func(se *session, role string) error

	mu       sync.Mutex
	requeues map[string]int // connector -> backfills requeued in a row (a refusing subscriber loops)
	nextPID  uint32
	sessions map[uint32]*session
	progress map[string]*ConnectorStatus // by connector, kept across sessions
	backfill map[string]map[string]bool  // by connector: tables to backfill on its stream
	kick     map[string]chan struct{}    // by connector: wakes its active stream
	resend   map[string][]ResendRow      // by connector: rows to send again on its stream
}

// Status is a snapshot for the status API.
type Status struct {
	Addr       string
	Sessions   []SessionStatus   // open connections, by start time
	Connectors []ConnectorStatus // every connector that ever streamed, by name
}

// SessionStatus describes one open connection.
type SessionStatus struct {
	PID       uint32
	Connector string
	Remote    string
	Since     time.Time
	State     string // "query", "waiting" (streaming held until the subscription is refreshed), "streaming"
}

// ConnectorStatus is the replication progress of one connector's
// subscription, in log offsets.
type ConnectorStatus struct {
	Connector string
	Streaming bool
	// StartOffset is where the last stream started (entries after it).
	StartOffset uint64
	// SentOffset is the last entry sent or skipped on the stream.
	SentOffset uint64
	// FlushedOffset / AppliedOffset are what the subscriber last reported
	// as flushed / applied (standby status update).
	FlushedOffset uint64
	AppliedOffset uint64
	LastReply     time.Time
}

// ErrOptions reports a missing option.
var ErrOptions = errors.New("publisher options")

// New listens on opts.Addr (or uses opts.Listener) and returns a server;
// Run serves it.
func New(opts Options) (*Server, error) {
	if opts.Feed == nil || opts.Connectors == nil || opts.Credentials == nil {
		return nil, fmt.Errorf("%w: Feed, Connectors and Credentials are required", ErrOptions)
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	if opts.StartupTimeout <= 0 {
		opts.StartupTimeout = 10 * time.Second
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 1 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.KeepaliveInterval <= 0 {
		opts.KeepaliveInterval = 10 * time.Second
	}
	if opts.ReplyTimeout <= 0 {
		opts.ReplyTimeout = 60 * time.Second
	}
	if opts.SystemID == "" {
		opts.SystemID = "electric"
	}
	if opts.AuthLimiter == nil {
		opts.AuthLimiter = authlimit.New(nil)
	}
	ln := opts.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("listening for subscribers on %s: %w", opts.Addr, err)
		}
	}
	mockKey := make([]byte, 32)
	rand.Read(mockKey)
	return &Server{
		opts:         opts,
		mockKey:      mockKey,
		authenticate: (*session).authenticate,
		log:          opts.Logger.With("component", "publisher"),
		ln:           ln,
		sessions:     map[uint32]*session{},
		progress:     map[string]*ConnectorStatus{},
		backfill:     map[string]map[string]bool{},
		kick:         map[string]chan struct{}{},
		resend:       map[string][]ResendRow{},
	}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run accepts connections until ctx is done, then closes the listener and
// every session and waits for them.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		s.ln.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accepting subscriber connections: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serve(ctx, nc)
		}()
	}
}

// Status returns a snapshot of sessions and per-connector progress.
func (s *Server) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Addr: s.ln.Addr().String()}
	for _, se := range s.sessions {
		st.Sessions = append(st.Sessions, SessionStatus{
			PID: se.pid, Connector: se.connector, Remote: se.remote, Since: se.since, State: se.state,
		})
	}
	sort.Slice(st.Sessions, func(i, j int) bool { return st.Sessions[i].PID < st.Sessions[j].PID })
	for _, p := range s.progress {
		st.Connectors = append(st.Connectors, *p)
	}
	sort.Slice(st.Connectors, func(i, j int) bool { return st.Connectors[i].Connector < st.Connectors[j].Connector })
	return st
}

func (s *Server) addSession(se *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextPID++
	se.pid = s.nextPID
	s.sessions[se.pid] = se
}

func (s *Server) removeSession(se *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, se.pid)
}

func (s *Server) setState(se *session, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	se.state = state
}

// updateProgress edits the progress record of a connector under the lock.
func (s *Server) updateProgress(connector string, fn func(p *ConnectorStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.progress[connector]
	if !ok {
		p = &ConnectorStatus{Connector: connector}
		s.progress[connector] = p
	}
	fn(p)
}

// Backfill asks the stream of connector to send the current merged rows of
// tables (qualified names), as one transaction, before its next entries:
// entries written before the subscriber had a table or a column were not
// applied to it. Wire it to connector.Options.OnTablesChanged. The request
// waits for the connector's next stream when none is active.
func (s *Server) Backfill(connector string, tables []string) error {
	if s.opts.Rows == nil {
		return fmt.Errorf("%w: Backfill needs Rows", ErrOptions)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.backfill[connector]
	if p == nil {
		p = map[string]bool{}
		s.backfill[connector] = p
	}
	for _, t := range tables {
		p[t] = true
	}
	if k, ok := s.kick[connector]; ok {
		select {
		case k <- struct{}{}:
		default:
		}
	}
	return nil
}

// takeBackfill removes and returns the pending backfill of a connector.
func (s *Server) takeBackfill(connector string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.backfill[connector]
	delete(s.backfill, connector)
	out := make([]string, 0, len(p))
	for t := range p {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
