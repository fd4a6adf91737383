// Authentication: the first message of a session, which checks the token and
// the protocol version, claims the client id and starts the client's stream.

package satellite

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/electric-sql/electric-go/engine/satellite/satpb"
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
	if m.Id == "" || m.Token == "" {
		return perr(satpb.SatErrorResp_INVALID_REQUEST, "auth request without id or token")
	}
	// The token is checked before the headers (spec §3.2).
	user, err := s.srv.opts.Auth.Validate(m.Token)
	if err != nil {
		return perr(satpb.SatErrorResp_AUTH_REQUIRED, "client %q: %w", m.Id, err)
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
	if err := s.srv.claim(s.ctx, m.Id, s); err != nil {
		return perr(satpb.SatErrorResp_INVALID_REQUEST, "%w", err)
	}
	s.claimed = true
	s.clientID, s.userID, s.source = m.Id, user, "satellite:"+m.Id
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
