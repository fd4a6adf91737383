package publisher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// maxMessageBytes bounds one message from a subscriber: pgproto3 allocates
// a message's declared length before reading it, so without a bound a
// 5-byte header could make the session allocate 2 GiB. A subscriber sends
// catalog queries and 34-byte status updates.
const maxMessageBytes = 1 << 20

// startupTimeout bounds how long a connection may take to send its startup
// packet: a client that connects and says nothing must not hold a goroutine.
const startupTimeout = 30 * time.Second

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
		log:    s.log.With("remote", nc.RemoteAddr().String()),
		remote: nc.RemoteAddr().String(),
		since:  time.Now(),
		state:  "startup",
	}
	se.be = pgproto3.NewBackend(nc, nc)
	se.be.SetMaxBodyLen(maxMessageBytes)
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

// startup handles SSL/GSS negotiation (refused) and the startup packet. No
// authentication: the seed never checked passwords either, and the port is
// meant for the connectors' Postgres only.
func (se *session) startup() error {
	se.nc.SetReadDeadline(time.Now().Add(startupTimeout))
	defer se.nc.SetReadDeadline(time.Time{})
	for {
		msg, err := se.be.ReceiveStartupMessage()
		if err != nil {
			// A malformed packet still deserves a reason, not a hang-up.
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				se.fatal("08P01", fmt.Sprintf("electric: invalid startup packet: %v", err))
			}
			return fmt.Errorf("reading startup packet: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest, *pgproto3.GSSEncRequest:
			if _, err := se.nc.Write([]byte{'N'}); err != nil {
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

func (se *session) accept(m *pgproto3.StartupMessage) error {
	p := m.Parameters
	// Under the server lock: Status reads these from other goroutines.
	se.srv.mu.Lock()
	se.connector = p["application_name"]
	se.database = p["database"]
	se.srv.mu.Unlock()
	se.log = se.log.With("connector", se.connector)
	if p["replication"] != "database" {
		se.fatal("08004", "Electric accepts only logical replication connections (replication=database): this port is the replication publisher, connect to Postgres for queries")
		return errClosed
	}
	v, ok := se.srv.opts.Connectors(se.connector)
	if !ok {
		se.fatal("08004", fmt.Sprintf("Electric has no connector named %q: the subscription's application_name must be a configured connector name", se.connector))
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
		{"application_name", se.connector},
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

// send queues a message; flush writes the queue.
func (se *session) send(m pgproto3.BackendMessage) {
	se.sendMu.Lock()
	defer se.sendMu.Unlock()
	se.be.Send(m)
}

func (se *session) flush() error {
	se.sendMu.Lock()
	defer se.sendMu.Unlock()
	if err := se.be.Flush(); err != nil {
		return fmt.Errorf("writing to subscriber: %w", err)
	}
	return nil
}

// writeRaw writes already framed messages after any queued ones.
func (se *session) writeRaw(b []byte) error {
	se.sendMu.Lock()
	defer se.sendMu.Unlock()
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
	q = strings.TrimRight(q, "; \t\r\n\x00")
	q = strings.TrimSpace(q)
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
