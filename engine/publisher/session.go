package publisher

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/electric-sql/electric-go/engine/authlimit"
	"github.com/electric-sql/electric-go/engine/scram"
)

// session is one subscriber connection.
type session struct {
	srv       *Server
	nc        net.Conn
	be        *pgproto3.Backend
	log       *slog.Logger
	pid       uint32
	connector string
	database  string
	remote    string
	since     time.Time
	state     string

	// sendMu serialises writes: during streaming the receive goroutine asks
	// for keepalives while the stream goroutine sends data.
	sendMu sync.Mutex
}

// errClosed ends a session without an error worth logging.
var errClosed = errors.New("session closed")

func (s *Server) serve(ctx context.Context, nc net.Conn) {
	se := &session{
		srv:    s,
		nc:     nc,
		be:     newBackend(nc, s.opts.MaxMessageBytes),
		log:    s.log.With("remote", nc.RemoteAddr().String()),
		remote: nc.RemoteAddr().String(),
		since:  time.Now(),
		state:  "startup",
	}
	// Closing the socket is what unblocks a pending read when the server
	// stops.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	defer nc.Close()
	s.addSession(se)
	defer s.removeSession(se)

	err := se.run(ctx)
	switch {
	case err == nil, errors.Is(err, errClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), ctx.Err() != nil:
		se.log.Debug("subscriber connection closed")
	default:
		se.log.Warn("subscriber connection failed", "err", err)
	}
}

func (se *session) run(ctx context.Context) error {
	if err := se.startup(); err != nil {
		return err
	}
	se.srv.setState(se, "query")
	return se.queryLoop(ctx)
}

func newBackend(nc net.Conn, maxBody int) *pgproto3.Backend {
	be := pgproto3.NewBackend(nc, nc)
	be.SetMaxBodyLen(maxBody)
	return be
}

// startup handles SSL (with Options.TLS) or its refusal, GSS encryption
// (refused), the startup packet and authentication, all within
// StartupTimeout.
func (se *session) startup() error {
	se.nc.SetReadDeadline(time.Now().Add(se.srv.opts.StartupTimeout))
	defer func() { se.nc.SetReadDeadline(time.Time{}) }()
	encrypted := false
	for {
		msg, err := se.be.ReceiveStartupMessage()
		if err != nil {
			// A malformed packet still deserves a reason, not a hang-up.
			var ne net.Error
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &ne) {
				se.fatal("08P01", fmt.Sprintf("electric: invalid startup packet: %v", err))
			}
			return fmt.Errorf("reading startup packet: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest:
			if encrypted {
				se.fatal("08P01", "electric: SSLRequest on an encrypted connection")
				return errClosed
			}
			if se.srv.opts.TLS == nil {
				if err := se.writeByte('N'); err != nil {
					return fmt.Errorf("refusing encryption: %w", err)
				}
				continue
			}
			if err := se.startTLS(); err != nil {
				return err
			}
			encrypted = true
		case *pgproto3.GSSEncRequest:
			if err := se.writeByte('N'); err != nil {
				return fmt.Errorf("refusing encryption: %w", err)
			}
		case *pgproto3.CancelRequest:
			// Nothing Electric runs can be cancelled; the client expects the
			// connection to close.
			return errClosed
		case *pgproto3.StartupMessage:
			return se.accept(m)
		default:
			se.fatal("08P01", fmt.Sprintf("electric: unexpected startup message %T", msg))
			return errClosed
		}
	}
}

// writeByte answers an SSLRequest or GSSEncRequest.
func (se *session) writeByte(b byte) error {
	se.sendMu.Lock()
	defer se.sendMu.Unlock()
	se.nc.SetWriteDeadline(time.Now().Add(se.srv.opts.WriteTimeout))
	_, err := se.nc.Write([]byte{b})
	return err
}

// startTLS accepts the SSLRequest and makes the session's socket the TLS
// connection. The client sends nothing more before the 'S', so pgproto3
// has nothing buffered from the plain connection.
func (se *session) startTLS() error {
	if err := se.writeByte('S'); err != nil {
		return fmt.Errorf("accepting encryption: %w", err)
	}
	tc := tls.Server(se.nc, se.srv.opts.TLS)
	tc.SetDeadline(time.Now().Add(se.srv.opts.StartupTimeout))
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	tc.SetWriteDeadline(time.Time{})
	se.sendMu.Lock()
	se.nc = tc
	se.be = newBackend(tc, se.srv.opts.MaxMessageBytes)
	se.sendMu.Unlock()
	return nil
}

// accept checks the startup packet, authenticates the role and greets the
// subscriber. The role (the startup user) is the connector's name:
// application_name says nothing about who connects.
func (se *session) accept(m *pgproto3.StartupMessage) error {
	p := m.Parameters
	role := p["user"]
	if p["replication"] != "database" {
		se.fatal("08004", "Electric accepts only logical replication connections (replication=database): this port is the replication publisher, connect to Postgres for queries")
		return errClosed
	}
	if err := se.srv.authenticate(se, role); err != nil {
		return err
	}
	// Under the server lock: Status reads these from other goroutines.
	se.srv.mu.Lock()
	se.connector = role
	se.database = p["database"]
	se.srv.mu.Unlock()
	se.log = se.log.With("connector", se.connector)
	v, ok := se.srv.opts.Connectors(se.connector)
	if !ok {
		se.fatal("08004", fmt.Sprintf("Electric has no connector named %q: the subscription's user must be a configured connector name", se.connector))
		return errClosed
	}
	if v == nil || !v.Ready {
		se.fatal("08004", fmt.Sprintf("Electric replication is not ready, missing schema for %s", se.connector))
		return errClosed
	}
	enc := p["client_encoding"]
	if enc == "" {
		enc = "UTF8"
	}
	se.send(&pgproto3.AuthenticationOk{})
	for _, kv := range [][2]string{
		{"application_name", p["application_name"]},
		{"client_encoding", enc},
		{"server_encoding", "UTF8"},
		// Not numeric on purpose: libpq then reports server version 0, so a
		// subscriber uses its oldest query forms and proto_version '1'.
		{"server_version", "electric-0.0.1"},
		{"standard_conforming_strings", "on"},
		{"TimeZone", "Etc/UTC"},
		{"integer_datetimes", "on"},
		{"DateStyle", "ISO, MDY"},
	} {
		se.send(&pgproto3.ParameterStatus{Name: kv[0], Value: kv[1]})
	}
	se.send(&pgproto3.BackendKeyData{ProcessID: se.pid, SecretKey: []byte{0, 0, 0, 0}})
	se.send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	se.log.Info("subscriber connected", "database", se.database)
	return se.flush()
}

// authenticate runs SCRAM-SHA-256 for role, unless the peer's address has
// failed too often (Options.AuthLimiter). An unknown role goes through
// the same exchange against a mock verifier and gets the same refusal as a
// wrong password, so the refusal says nothing about which connectors exist.
func (se *session) authenticate(role string) error {
	// A blocked address is refused before any exchange, so that it learns
	// nothing about its guesses; every wrong password counts against it.
	ip := authlimit.AddrOf(se.remote)
	if wait := se.srv.opts.AuthLimiter.Blocked(ip); wait > 0 {
		se.fatal("28000", fmt.Sprintf("too many failed authentication attempts from this address; retry in %d s", int(math.Ceil(wait.Seconds()))))
		return errClosed
	}
	v, ok := se.srv.opts.Credentials(role)
	if !ok {
		v = scram.Mock(se.srv.mockKey, role)
	}
	refused := func() error {
		se.srv.opts.AuthLimiter.Fail(ip)
		se.fatal("28P01", fmt.Sprintf("password authentication failed for user %q", role))
		return errClosed
	}
	conv := scram.NewConversation(v)
	se.send(&pgproto3.AuthenticationSASL{AuthMechanisms: []string{scram.Mechanism}})
	if err := se.flush(); err != nil {
		return err
	}
	se.be.SetAuthType(pgproto3.AuthTypeSASL)
	msg, err := se.receiveAuth()
	if err != nil {
		return err
	}
	init, isInit := msg.(*pgproto3.SASLInitialResponse)
	if !isInit {
		return refused()
	}
	if init.AuthMechanism != scram.Mechanism {
		se.fatal("28000", fmt.Sprintf("electric: unsupported SASL mechanism %q: use %s", truncate(init.AuthMechanism, 40), scram.Mechanism))
		return errClosed
	}
	first, err := conv.First(init.Data)
	if err != nil {
		return se.scramError(err)
	}
	se.send(&pgproto3.AuthenticationSASLContinue{Data: first})
	if err := se.flush(); err != nil {
		return err
	}
	se.be.SetAuthType(pgproto3.AuthTypeSASLContinue)
	msg, err = se.receiveAuth()
	if err != nil {
		return err
	}
	resp, isResp := msg.(*pgproto3.SASLResponse)
	if !isResp {
		return refused()
	}
	final, err := conv.Final(resp.Data)
	switch {
	case errors.Is(err, scram.ErrAuth):
		return refused()
	case err != nil:
		return se.scramError(err)
	case !ok:
		return refused() // unreachable: a mock verifier matches no proof
	}
	se.send(&pgproto3.AuthenticationSASLFinal{Data: final})
	return nil
}

// receiveAuth reads one authentication message; a client that hangs up
// (libpq without a password does) is not worth an error.
func (se *session) receiveAuth() (pgproto3.FrontendMessage, error) {
	msg, err := se.be.Receive()
	if err != nil {
		var ne net.Error
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &ne) {
			se.fatal("08P01", fmt.Sprintf("electric: invalid authentication message: %v", err))
		}
		return nil, fmt.Errorf("reading authentication: %w", err)
	}
	return msg, nil
}

func (se *session) scramError(err error) error {
	se.fatal("08P01", "electric: "+err.Error())
	return errClosed
}

// send queues a message; flush writes the queue.
func (se *session) send(m pgproto3.BackendMessage) {
	se.sendMu.Lock()
	defer se.sendMu.Unlock()
	se.be.Send(m)
}

func (se *session) flush() error {
	se.sendMu.Lock()
	defer se.sendMu.Unlock()
	se.nc.SetWriteDeadline(time.Now().Add(se.srv.opts.WriteTimeout))
	if err := se.be.Flush(); err != nil {
		return fmt.Errorf("writing to subscriber: %w", err)
	}
	return nil
}

// writeRaw writes already framed messages after any queued ones.
func (se *session) writeRaw(b []byte) error {
	se.sendMu.Lock()
	defer se.sendMu.Unlock()
	se.nc.SetWriteDeadline(time.Now().Add(se.srv.opts.WriteTimeout))
	if err := se.be.Flush(); err != nil {
		return fmt.Errorf("writing to subscriber: %w", err)
	}
	if len(b) == 0 {
		return nil
	}
	if _, err := se.nc.Write(b); err != nil {
		return fmt.Errorf("writing to subscriber: %w", err)
	}
	return nil
}

// fatal sends a FATAL error; the caller closes the connection.
func (se *session) fatal(code, msg string) {
	se.log.Warn("refusing subscriber", "code", code, "msg", msg)
	se.send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: msg})
	se.flush()
}

// queryError sends an ERROR and ReadyForQuery: the connection stays usable.
func (se *session) queryError(code, msg string) error {
	se.log.Warn("query refused", "code", code, "msg", msg)
	se.send(&pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: code, Message: msg})
	se.send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	return se.flush()
}

func (se *session) queryLoop(ctx context.Context) error {
	// After an error in an extended-protocol exchange the client sends Sync;
	// everything up to it is discarded, as Postgres does.
	skipToSync := false
	for {
		msg, err := se.be.Receive()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ne net.Error
			if !errors.As(err, &ne) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				se.fatal("08P01", fmt.Sprintf("electric: invalid message: %v", err))
			}
			return fmt.Errorf("reading from subscriber: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			skipToSync = false
			if err := se.query(ctx, m.String); err != nil {
				return err
			}
		case *pgproto3.Terminate:
			return errClosed
		case *pgproto3.Sync:
			skipToSync = false
			se.send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
			if err := se.flush(); err != nil {
				return err
			}
		case *pgproto3.Parse, *pgproto3.Bind, *pgproto3.Describe, *pgproto3.Execute, *pgproto3.Close, *pgproto3.Flush:
			if skipToSync {
				continue
			}
			skipToSync = true
			se.send(&pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: "0A000",
				Message: "Electric's replication publisher supports only the simple query protocol"})
			if err := se.flush(); err != nil {
				return err
			}
		default:
			se.fatal("08P01", fmt.Sprintf("electric: unexpected message %T outside of a query", msg))
			return errClosed
		}
	}
}

// normalizeQuery trims trailing semicolons, NULs and whitespace and collapses
// runs of whitespace outside quotes, so that queries can be matched exactly
// whatever the subscriber's formatting.
func normalizeQuery(q string) string {
	// One pass over one set: trimming ";" and NUL apart from white space
	// left "\x00\v" as "\x00", which a second call trimmed again (fuzzed).
	q = strings.TrimRightFunc(q, func(r rune) bool { return r == ';' || r == 0 || unicode.IsSpace(r) })
	q = strings.TrimLeftFunc(q, unicode.IsSpace)
	var b strings.Builder
	b.Grow(len(q))
	var quote byte
	space := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		if quote != 0 {
			b.WriteByte(c)
			if c == quote {
				quote = 0
			}
			continue
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			space = true
			continue
		case '\'', '"':
			quote = c
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteByte(c)
	}
	return b.String()
}
