// A client whose local database went back in time (its SQLite file
// restored from a backup): its new transactions reuse the lsns of ones the
// engine already took, so the duplicate check would acknowledge and drop
// them. The engine notices it by the other direction: with each client
// transaction it takes, it stores the log offset the client had applied
// then (satellite-seen:<client id>); a client that later resumes its
// stream from an earlier offset has lost what it had applied, its own
// acknowledged writes included. Its transactions are then taken again, not
// checked against the stored lsn, and the event is logged and counted.
//
// It relies on the 0.4.3 order: after auth the client asks for its stream
// before it sends transactions.

package satellite

import (
	"encoding/binary"
	"fmt"

	"github.com/electric-sql/electric-go/engine/satellite/satpb"
)

// seenSource is where the offset a client had applied is stored.
func seenSource(clientID string) string { return "satellite-seen:" + clientID }

// noteSeen stores ctxOffset (the offset the client had applied when the
// transaction just handed to the sink arrived), when it moved.
func (s *session) noteSeen(ctxOffset uint64) {
	if ctxOffset <= s.seenStored {
		return
	}
	s.storeSeen(ctxOffset)
}

func (s *session) storeSeen(off uint64) {
	s.seenStored = off
	it := Item{Source: seenSource(s.clientID), Position: binary.BigEndian.AppendUint64(nil, off), Done: func(uint64, error) {}}
	if err := s.srv.opts.Sink.Enqueue(s.ctx, it); err != nil {
		s.log.Debug("storing the client's applied offset", "client", s.clientID, "err", err)
	}
}

// checkRewound compares the offset the client resumes from with the one
// it had applied when its last transaction was taken.
func (s *session) checkRewound(off uint64) error {
	raw, err := s.srv.opts.Log.Position(seenSource(s.clientID))
	if err != nil {
		return perr(satpb.SatErrorResp_INTERNAL, "reading the applied offset of %s: %w", s.clientID, err)
	}
	if len(raw) != 8 {
		return nil
	}
	seen := binary.BigEndian.Uint64(raw)
	if off >= seen {
		s.seenStored = max(s.seenStored, seen)
		return nil
	}
	s.srv.stats.rewound.Add(1)
	s.log.Warn("satellite client's local database is older than what it had applied (restored from a backup?): its transactions are taken again instead of being acknowledged as re-sends",
		"client", s.clientID, "had_applied_offset", seen, "resumes_from_offset", off, "stored_lsn", fmt.Sprintf("%x", s.enqueued))
	s.enqueued = nil
	s.gapAfter = nil
	s.storeSeen(off)
	return nil
}
