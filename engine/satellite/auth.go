// Authentication: the first message of a session, which checks the token and
// the protocol version, claims the client id and starts the client's stream.

package satellite

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/electric-sql/electric-go/engine/authlimit"
	"github.com/electric-sql/electric-go/engine/satellite/satpb"
	"github.com/electric-sql/electric-go/engine/sequencer"
)

// Protocol version of this server (satpb.ProtocolVersion).
const serverMajor, serverMinor = 0, 2

var versionRe = regexp.MustCompile(`^v(\d+)_(\d+)$`)

// parseVersion reads "Electric.Satellite.v0_2" as (0, 2).
func parseVersion(v string) (major, minor int, ok bool) {
	last := v[strings.LastIndexByte(v, '.')+1:]
	m := versionRe.FindStringSubmatch(last)
	if m == nil {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(m[1])
	minor, err2 := strconv.Atoi(m[2])
	return major, minor, err1 == nil && err2 == nil
}

func (s *session) handleAuth(m *satpb.SatAuthReq) error {
	// A blocked address is refused before its token is looked at; every
	// failed token check counts against it (Options.AuthLimiter).
	ip := authlimit.AddrOf(s.remote)
	if wait := s.srv.opts.AuthLimiter.Blocked(ip); wait > 0 {
		s.log.Warn("satellite address blocked after failed authentications", "retry_in", wait.Round(time.Second))
		// AUTH_REQUIRED: the spec's code for every auth failure.
		return perr(satpb.SatErrorResp_AUTH_REQUIRED, "too many failed authentication attempts from this address; retry in %d s", int(math.Ceil(wait.Seconds())))
	}
	if m.Id == "" || m.Token == "" {
		return perr(satpb.SatErrorResp_INVALID_REQUEST, "auth request without id or token")
	}
	if len(m.Id) > MaxClientIDBytes {
		return s.overLimit(satpb.SatErrorResp_INVALID_REQUEST, "client id of %d bytes (at most %d)", len(m.Id), MaxClientIDBytes)
	}
	// The token is checked before the headers (spec §3.2).
	user, err := s.srv.opts.Auth.Validate(m.Token)
	if err != nil {
		s.srv.opts.AuthLimiter.Fail(ip)
		return perr(satpb.SatErrorResp_AUTH_REQUIRED, "client %q: %w", m.Id, err)
	}
	if len(user) > MaxUserIDBytes {
		// A token whose user cannot be stored is a failed token check.
		s.srv.opts.AuthLimiter.Fail(ip)
		return s.overLimit(satpb.SatErrorResp_AUTH_REQUIRED, "client %q: token user id of %d bytes (at most %d)", m.Id, len(user), MaxUserIDBytes)
	}
	if len(m.Headers) == 0 {
		return perr(satpb.SatErrorResp_INVALID_REQUEST, "auth request without headers")
	}
	version := ""
	for _, h := range m.Headers {
		if h.Key == satpb.SatAuthHeader_PROTO_VERSION {
			version = h.Value
		}
	}
	major, minor, ok := parseVersion(version)
	if !ok || major != serverMajor || minor > serverMinor {
		return perr(satpb.SatErrorResp_PROTO_VSN_MISSMATCH, "client protocol %q, server %s", version, satpb.ProtocolVersion)
	}
	source := "satellite:" + m.Id
	// Checked before the claim too, so that a refused user never waits on,
	// nor holds up, the owner's live session.
	if err := s.checkOwner(source, m.Id, user); err != nil {
		return err
	}
	if err := s.srv.claim(s.ctx, m.Id, s); err != nil {
		return perr(satpb.SatErrorResp_INVALID_REQUEST, "%w", err)
	}
	s.claimed = true
	s.clientID, s.userID, s.source = m.Id, user, source
	if err := s.bindOwner(); err != nil {
		return err
	}
	pos, err := s.srv.opts.Log.Position(s.source)
	if err != nil {
		return perr(satpb.SatErrorResp_INTERNAL, "reading position of %s: %w", s.source, err)
	}
	s.enqueued = pos
	s.startLSN = pos
	authResp, err := satpb.Encode(&satpb.SatAuthResp{Id: s.srv.opts.ServerID})
	if err != nil {
		return err
	}
	// Ask the client to stream its writes (spec §3.3). The 0.4.3 client
	// ignores lsn and batch size and re-sends everything it has not had
	// acked; a transaction we already hold is recognised by its lsn.
	startReq, err := satpb.Encode(&satpb.SatInStartReplicationReq{
		Lsn:           pos,
		Options:       []satpb.SatInStartReplicationReq_Option{satpb.SatInStartReplicationReq_SYNC_MODE},
		SyncBatchSize: 1,
	})
	if err != nil {
		return err
	}
	s.authed.Store(true)
	s.log.Info("satellite authenticated", "client", s.clientID, "user", user)
	s.wg.Add(1)
	go s.acker()
	s.inState.Store(inRequested)
	// Both in one segment: a 0.4.3 client that writes locally between the
	// two crashes ("enqueuing a transaction while outbound replication has
	// not started").
	return s.queue(s.ctx, outFrame{data: authResp, next: startReq})
}

// A client id belongs to the user who first authenticated with it: the
// binding is stored in the log (txlog.Log.Owner of "satellite:<client id>"),
// made durable before the first session proceeds, and every later session
// with that id under another user is refused at auth. This is what keeps a
// client's position, the txlog position "satellite:<client id>", the
// owner's: only a session past this check enqueues items under that source,
// so no other user can move the lsn up to which the owner's writes count as
// already taken (and are acked without being applied).

// checkOwner refuses user when source is bound to someone else.
func (s *session) checkOwner(source, id, user string) error {
	owner, err := s.srv.opts.Log.Owner(source)
	if err != nil {
		return perr(satpb.SatErrorResp_INTERNAL, "reading owner of %s: %w", source, err)
	}
	if owner != "" && owner != user {
		return s.refuseOwner(id, user, owner)
	}
	return nil
}

func (s *session) refuseOwner(id, user, owner string) error {
	s.srv.stats.ownerRefused.Add(1)
	s.log.Warn("satellite client id belongs to another user; refused", "client", id, "user", user, "owner", owner)
	// AUTH_REQUIRED: the spec's code for every auth failure; 0.4.3 stops
	// without crashing.
	return perr(satpb.SatErrorResp_AUTH_REQUIRED, "client id %q belongs to another user", id)
}

// bindOwner binds the session's client id to its user, durably, through the
// sink (the single writer, which lets the first binding win). A no-op when
// the binding is already stored.
func (s *session) bindOwner() error {
	owner, err := s.srv.opts.Log.Owner(s.source)
	if err != nil {
		return perr(satpb.SatErrorResp_INTERNAL, "reading owner of %s: %w", s.source, err)
	}
	if owner == s.userID {
		return nil
	}
	if owner != "" {
		return s.refuseOwner(s.clientID, s.userID, owner)
	}
	done := make(chan error, 1)
	it := Item{Source: s.source, Owner: s.userID, Done: func(_ uint64, err error) { done <- err }}
	if err := s.srv.opts.Sink.Enqueue(s.ctx, it); err != nil {
		return perr(satpb.SatErrorResp_INTERNAL, "binding client %q to its user: %w", s.clientID, err)
	}
	select {
	case err = <-done:
	case <-s.ctx.Done():
		return fmt.Errorf("binding client %q to its user: %w", s.clientID, s.ctx.Err())
	}
	if errors.Is(err, sequencer.ErrOwnedByOther) {
		owner, _ := s.srv.opts.Log.Owner(s.source)
		return s.refuseOwner(s.clientID, s.userID, owner)
	}
	if err != nil {
		return perr(satpb.SatErrorResp_INTERNAL, "binding client %q to its user: %w", s.clientID, err)
	}
	s.log.Info("satellite client id bound to its user", "client", s.clientID, "user", s.userID)
	return nil
}

// overLimit is the protocol error for a bound a client went over: logged
// and counted here, the session then ends with code.
func (s *session) overLimit(code satpb.SatErrorResp_ErrorCode, format string, args ...any) error {
	err := perr(code, format, args...)
	s.srv.stats.overLimit.Add(1)
	s.log.Warn("satellite client over a protocol bound; closing", "client", s.who(), "err", err)
	return err
}
