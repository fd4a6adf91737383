package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/electric-sql/electric-go/engine/audit"
	"github.com/electric-sql/electric-go/engine/auth"
	"github.com/electric-sql/electric-go/engine/backup"
	"github.com/electric-sql/electric-go/engine/config"
	"github.com/electric-sql/electric-go/engine/connector"
	"github.com/electric-sql/electric-go/engine/connreg"
	"github.com/electric-sql/electric-go/engine/pgcheck"
	"github.com/electric-sql/electric-go/engine/pgsource"
	"github.com/electric-sql/electric-go/engine/publisher"
	"github.com/electric-sql/electric-go/engine/satellite"
	"github.com/electric-sql/electric-go/engine/sequencer"
	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/engine/tlsconf"
	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/engine/txlog/pebblelog"
	"github.com/electric-sql/electric-go/engine/withhold"
	"github.com/electric-sql/electric-go/migrations"
)

// Engine is one running replication engine.
type Engine struct {
	cfg    config.Config
	log    *slog.Logger
	events *status.Events

	txlog txlog.Log
	audit *audit.Store // conflicts and rejections
	seq   *sequencer.Sequencer
	pub   *publisher.Server
	sat   *satellite.Server
	stat  *status.Server
	check *pgcheck.Checker // Satellite values, on the connectors' Postgres

	rejectedMu sync.Mutex
	rejected   []func(satellite.Rejection) // OnRejected hooks

	types  typeReport // column type differences already reported
	conns  []*conn    // in configuration order
	byName map[string]*conn

	ln listeners // bound in New
	// tls serves the websocket and status listeners when TLS_CERT_FILE and
	// TLS_KEY_FILE are set (nil: plain). The publisher's listener stays
	// plain: Postgres asks for TLS in the protocol (SSLRequest), so its
	// server takes this config rather than a wrapped listener.
	tls     *tls.Config
	started time.Time

	// withheld holds the rows a connector's Postgres cannot apply;
	// doctor finds them and retries them (package withhold).
	withheld     *withhold.Set
	doctor       *withhold.Doctor
	withheldHook func(withhold.Record)
	skip         skipPolicy
	// sats is the Satellite side of migrations: the schema recorded after
	// each one, the bundle built from them, what Satellites are served.
	sats satSchemas

	// registry records every connector the state has served; orphans are
	// those no longer in CONNECTORS (connrm.go, orphans.go).
	registry *connreg.Registry
	orphans  *orphans
	removeMu sync.Mutex // one removal at a time
}

// listeners are the engine's bound ports, by role.
type listeners struct {
	publisher net.Listener // POSTGRES_REPLICATION_PORT: the connectors' subscriptions
	websocket net.Listener // WEBSOCKET_PORT: Satellite clients
	status    net.Listener // STATUS_PORT: status and migrations API
}

func (l listeners) close() {
	for _, ln := range []net.Listener{l.publisher, l.websocket, l.status} {
		if ln != nil {
			ln.Close()
		}
	}
}

// Addrs are the bound addresses of the engine's listeners (the actual ports
// when the configured ones are 0, as in tests).
type Addrs struct {
	Publisher, Websocket, Status net.Addr
}

// conn is everything the engine runs for one Postgres connector.
type conn struct {
	cfg    config.Connector
	source *pgsource.Source
	sub    *connector.Connector
	// applied reads electric.migrations for GET /api/migrations over one
	// kept connection.
	applied *migrations.AppliedReader

	mu        sync.Mutex
	migrating bool
	lastState status.ConnectorState
	lag       lagMark // the subscriber's apply lag, updated by watch
}

// schemaIngestWait bounds how long a connector's schema change waits for its
// own stream to merge the DDL's transaction (connector.Options.WaitIngested).
const schemaIngestWait = 15 * time.Second

// New opens the engine's state and binds its ports; Run starts it. Binding
// here makes a port in use an immediate, clear error.
func New(cfg config.Config, log *slog.Logger) (_ *Engine, err error) {
	if log == nil {
		log = slog.Default()
	}
	// e is not the named result: "return nil, err" must not nil it before
	// the deferred close releases what was opened so far.
	e := &Engine{cfg: cfg, log: log, byName: map[string]*conn{}, events: status.NewEvents(status.DefaultEventRing, nil)}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	// Into a local first: a nil *pebblelog.Log in the interface field would
	// not compare equal to nil in close.
	tl, err := pebblelog.Open(cfg.DataDir(), pebblelog.Options{Logger: log.With("component", "txlog")})
	if errors.Is(err, pebblelog.ErrLocked) {
		return nil, fmt.Errorf("opening the engine state in %s: %w: stop it, or set OFFSET_STORAGE_FILE to another directory", cfg.DataDir(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the engine state in %s: %w", cfg.DataDir(), err)
	}
	e.txlog = tl
	fences, err := restoreGeneration(tl, cfg.DataDir(), log)
	if err != nil {
		return nil, err
	}
	if err := e.openAudit(); err != nil {
		return nil, err
	}
	if e.withheld, err = withhold.Open(cfg.DataDir()); err != nil {
		return nil, err
	}
	if e.registry, err = connreg.Open(cfg.DataDir()); err != nil {
		return nil, err
	}
	e.seq = sequencer.New(e.txlog, sequencer.Options{Logger: log.With("component", "sequencer"), OnConflicts: e.recordConflicts})

	if cfg.TLS() {
		if e.tls, err = tlsconf.ServerConfig(cfg.TLSCertFile, cfg.TLSKeyFile); err != nil {
			return nil, fmt.Errorf("loading %s and %s: %w", config.EnvTLSCertFile, config.EnvTLSKeyFile, err)
		}
	}
	host, why := cfg.ListenHost()
	if why != "" {
		log.Warn("listening on loopback only", "listen_address", host, "why", why)
	}
	pubLn, err := listen("publisher (POSTGRES_REPLICATION_PORT)", host, cfg.ReplicationPort, nil)
	if err != nil {
		return nil, err
	}
	e.ln.publisher = pubLn
	// Each connector's subscription logs in to the publisher with a
	// password derived from this secret (the publisher keeps verifiers).
	replSecret, err := publisher.LoadSecret(cfg.ReplicationPassword, cfg.DataDir())
	if err != nil {
		return nil, err
	}
	var connNames []string
	for _, c := range cfg.Connectors {
		c := c
		cn := &conn{cfg: c, applied: migrations.NewAppliedReader(c.URI)}
		cn.source, err = pgsource.New(pgsource.Options{
			Name: c.Name, URI: c.URI, Publication: cfg.Publication, Slot: cfg.Slot,
			Logger: log.With("component", "pgsource", "connector", c.Name),
			Sink:   e.seq, Store: e.txlog,
			Withheld: func(table, key string) bool { return e.withheld.HeldAny(c.Name, table, key) },
		})
		if err != nil {
			return nil, fmt.Errorf("connector %s: %w", c.Name, err)
		}
		cn.sub, err = connector.New(connector.Options{
			Name: c.Name, URI: c.URI, ElectricHost: cfg.ElectricHost,
			PublisherPort: pubLn.Addr().(*net.TCPAddr).Port, Publication: cfg.Publication,
			Password:        publisher.ConnectorPassword(replSecret, c.Name),
			StartHead:       tl.Head(), // a subscriber beyond it is rewound (restored state)
			Logger:          log,       // the connector names itself
			OnTablesChanged: func(tables []string) { e.reportTypeDifferences(); e.backfill(c.Name, tables) },
			WaitIngested: func(ctx context.Context, lsn uint64) {
				if !cn.source.WaitIngested(ctx, lsn, schemaIngestWait) {
					log.Warn("a schema change was published before this connector's stream had merged it: rows sent meanwhile may lack its values until the next write", "connector", c.Name, "waited", schemaIngestWait)
				}
			},
		})
		if err != nil {
			return nil, fmt.Errorf("connector %s: %w", c.Name, err)
		}
		e.conns = append(e.conns, cn)
		e.byName[c.Name] = cn
		connNames = append(connNames, c.Name)
	}
	if err := e.findOrphans(); err != nil {
		return nil, err
	}
	creds, err := publisher.StaticCredentials(replSecret, connNames)
	if err != nil {
		return nil, err
	}
	e.pub, err = publisher.New(publisher.Options{
		Listener: pubLn, Logger: log, // the publisher names itself
		Feed:        func(after uint64) publisher.Reader { return e.txlog.NewReader(after) },
		Rows:        e.txlog.Rows, // for backfills of what a connector gains
		Row:         e.txlog.Row,  // for resending withheld rows
		Withhold:    e.withheld,
		Connectors:  e.view,
		Credentials: creds,
		// With TLS_CERT_FILE/TLS_KEY_FILE, SSLRequest gets 'S': the
		// subscriptions' default sslmode (prefer) then uses it.
		TLS: e.tls,
	})
	if err != nil {
		return nil, err
	}
	e.doctor = e.newDoctor()

	authn, err := auth.New(auth.Options{SigningKey: cfg.SigningKey, VerifyKeys: cfg.VerifyKeys, Issuer: cfg.SigningIssuer})
	if err != nil {
		return nil, err
	}
	e.check = e.newValueChecker()
	spillDir := filepath.Join(cfg.DataDir(), "spill")
	if err := satellite.CleanSpillDir(spillDir); err != nil {
		return nil, err
	}
	e.sat, err = satellite.New(satellite.Options{
		Log: satellite.TxlogSource(e.txlog), Sink: e.seq, Auth: authn, Validator: satValidator{e.check}, Rejected: e.reportRejected,
		Tables: e.satelliteTables, Gained: e.satelliteGained, ServerID: cfg.RegionalID, MaxFrameBytes: cfg.WebsocketMaxFrameBytes,
		MaxTransactionBytes: cfg.SatelliteMaxTransactionBytes,
		Generation:          uint16(len(fences)), // restores of this state
		Fences:              fences,
		SpillDir:            spillDir, // large client transactions, until their commit
		Logger:              log.With("component", "satellite"),
	})
	if err != nil {
		return nil, err
	}
	if e.ln.websocket, err = listen("websocket (WEBSOCKET_PORT)", host, cfg.WebsocketPort, e.tls); err != nil {
		return nil, err
	}

	e.stat, err = status.New(status.Options{Provider: provider{e}, Events: e.events, Token: cfg.StatusAPIToken, Logger: log.With("component", "status"),
		Audit: auditLog{e.audit}})
	if err != nil {
		return nil, err
	}
	if err := e.stat.Register(e.satelliteRefusalMetrics()...); err != nil {
		return nil, err
	}
	// A consistent copy of the state while the engine runs (electric
	// backup); guarded like every private route.
	if err := backup.CleanTemp(cfg.DataDir()); err != nil {
		return nil, err
	}
	e.stat.Handle("GET /api/backup", &backup.Handler{Checkpoint: tl.Checkpoint, StateDir: cfg.DataDir(),
		Extra: []string{publisher.SecretFile, withhold.File}, Logger: log.With("component", "backup")})
	e.stat.Handle("DELETE /api/connectors/{name}", e.removeHandler())
	e.stat.Handle("/api/migrations", &migrations.Handler{Dir: cfg.MigrationsDir, Suffix: cfg.MigrationsFileNameSuffix, Ctrl: migrationController{e}})
	e.stat.Handle("/api/migrations/", &migrations.Handler{Dir: cfg.MigrationsDir, Suffix: cfg.MigrationsFileNameSuffix, Ctrl: migrationController{e}})
	if e.ln.status, err = listen("status (STATUS_PORT)", host, cfg.StatusPort, e.tls); err != nil {
		return nil, err
	}
	return e, nil
}

// listen binds host:port ("" host: every interface) and, with tlsCfg,
// serves TLS on it: the HTTP servers behind it need no change for https and
// wss.
func listen(what, host string, port int, tlsCfg *tls.Config) (net.Listener, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for the %s on %s: %w", what, addr, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg) // its Addr is still the *net.TCPAddr
	}
	return ln, nil
}

// Addrs returns the bound addresses of the engine's listeners.
func (e *Engine) Addrs() Addrs {
	return Addrs{Publisher: e.ln.publisher.Addr(), Websocket: e.ln.websocket.Addr(), Status: e.ln.status.Addr()}
}

// close releases the ports and the state; safe on a partly opened engine.
func (e *Engine) close() {
	e.ln.close()
	for _, c := range e.conns {
		c.applied.Close()
	}
	if e.audit != nil {
		e.audit.Close()
	}
	if e.check != nil {
		e.check.Close()
	}
	if e.txlog != nil {
		e.txlog.Close()
	}
}

// Run runs every part until ctx is done or one fails.
func (e *Engine) Run(ctx context.Context) error {
	e.started = time.Now()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	run := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				e.log.Error("engine part failed", "part", name, "err", err)
				cancel(fmt.Errorf("%s: %w", name, err))
			}
		}()
	}
	e.log.Info("engine starting", "state", e.cfg.DataDir(), "log_head", e.txlog.Head(), "connectors", len(e.conns))
	run("sequencer", e.seq.Run)
	run("publisher", e.pub.Run)
	for _, c := range e.conns {
		run("pgsource "+c.cfg.Name, c.source.Run)
		run("connector "+c.cfg.Name, c.sub.Run)
	}
	run("satellite", e.sat.Run)
	run("websocket", func(ctx context.Context) error {
		return serveHTTP(ctx, e.ln.websocket, e.sat.Handler(), e.log.With("component", "websocket"))
	})
	run("status", func(ctx context.Context) error { return e.stat.Serve(ctx, e.ln.status) })
	run("watch", e.watch)
	run("withhold", e.watchWithheld)
	run("orphans", e.watchOrphans)

	<-ctx.Done()
	cause := context.Cause(ctx)
	e.sat.Close()
	wg.Wait()
	e.close()
	if errors.Is(cause, context.Canceled) {
		e.log.Info("engine stopped")
		return nil
	}
	return cause
}

func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	// Its own errors (TLS handshakes that fail, above all) go to the
	// engine's log, not to stderr.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// view is the publisher's window on a connector's schema.
func (e *Engine) view(name string) (*publisher.View, bool) {
	c, ok := e.byName[name]
	if !ok {
		return nil, false
	}
	v := c.sub.View()
	if v == nil {
		return nil, false
	}
	return v, true
}

// state is the connector's lifecycle state as the status API shows it.
func (c *conn) state() status.ConnectorState {
	st, _ := c.readiness()
	return st
}

// readiness is the connector's state and, when it is not ready, why: ready
// means ingest streams, the subscription is set up, its apply worker is not
// failing (connector.Status.Failing) and it is not lagging (lagMark).
func (c *conn) readiness() (status.ConnectorState, string) {
	c.mu.Lock()
	migrating := c.migrating
	lagging := c.lag.reason(time.Now())
	c.mu.Unlock()
	src, sub := c.source.Status(), c.sub.Status()
	switch {
	case migrating:
		return status.StateMigration, "a migration is being applied"
	case src.State == pgsource.StateSnapshot:
		sn := src.Snapshot
		return status.StateSnapshot, fmt.Sprintf("reading existing rows: %d rows, %d/%d tables, %s",
			sn.Rows, sn.Tables, sn.TablesTotal, sn.Elapsed.Round(time.Second))
	case !c.source.Ready() && src.LastError != "":
		return status.StateError, "ingest: " + src.LastError
	case !sub.Ready() && sub.State == connector.StateError:
		return status.StateError, "subscriber: " + sub.LastError
	case !c.source.Ready():
		return status.StateInit, "ingest: " + string(src.State)
	case !sub.Ready():
		return status.StateInit, "subscriber: " + string(sub.State)
	case sub.Failing != "":
		return status.StateError, sub.Failing
	case lagging != "":
		return status.StateError, lagging
	default:
		return status.StateReady, ""
	}
}

// watch publishes connector state changes and Satellite sessions coming and
// going as events.
func (e *Engine) watch(ctx context.Context) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	sessions := map[string]satellite.SessionInfo{}
	for {
		e.watchSessions(sessions)
		e.watchLag(time.Now())
		for _, c := range e.conns {
			s, reason := c.readiness()
			c.mu.Lock()
			changed := s != c.lastState
			c.lastState = s
			c.mu.Unlock()
			if changed {
				msg := "state " + string(s)
				if s == status.StateError {
					msg += ": " + reason
				}
				e.events.Publish(status.Event{Kind: status.KindConnector, Connector: c.cfg.Name, Message: msg})
				e.log.Info("connector state", "connector", c.cfg.Name, "state", s)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (e *Engine) watchSessions(known map[string]satellite.SessionInfo) {
	seen := map[string]bool{}
	for _, s := range e.sat.Sessions() {
		if !s.Authenticated {
			continue
		}
		key := s.ClientID + "@" + s.RemoteAddr
		seen[key] = true
		_, ok := known[key]
		known[key] = s // latest counts for the goodbye
		if !ok {
			e.events.Publish(status.Event{Kind: status.KindSession, Session: s.ClientID,
				Message: fmt.Sprintf("connected: user %s from %s", s.UserID, s.RemoteAddr)})
		}
	}
	for key, s := range known {
		if !seen[key] {
			delete(known, key)
			e.events.Publish(status.Event{Kind: status.KindSession, Session: s.ClientID,
				Message: fmt.Sprintf("disconnected: %d tx in, %d tx out", s.TxIn, s.TxOut)})
		}
	}
}
