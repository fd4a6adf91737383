// Generations of the log: an engine started on a restored backup begins a
// new generation at the head it restored (its fence). The server lsns it
// sends carry the generation in their top 16 bits (0 before any restore, so
// lsns are unchanged until then). A client that comes back with an lsn of
// an earlier generation, beyond the fence that ended it, holds entries the
// restored log never had; without the generation its position would look
// valid as soon as the log grew past it, and it would miss every entry in
// between. Such a client is resumed from the fence instead: it receives
// every entry of the new generation. What it had applied beyond the fence
// stays in its database.

package satellite

import "encoding/binary"

const (
	genShift = 48
	offMask  = 1<<genShift - 1
)

// splitServerLSN decodes a server lsn into its generation and offset.
func splitServerLSN(lsn []byte) (gen uint16, off uint64, err error) {
	v, err := OffsetOfServerLSN(lsn)
	if err != nil {
		return 0, 0, err
	}
	return uint16(v >> genShift), v & offMask, nil
}

// resumeOffset is where a client whose lsn is of generation gen and offset
// off resumes: off, or the lowest fence after its generation if off is
// beyond it. stale reports the latter.
func (s *Server) resumeOffset(gen uint16, off uint64) (after uint64, stale bool) {
	if gen >= s.opts.Generation {
		return off, false
	}
	fence := off
	for _, f := range s.opts.Fences[gen:] {
		fence = min(fence, f)
	}
	return fence, fence < off
}

// EncodeGeneration and DecodeGeneration store the generation and its fences
// (Options.Generation, Options.Fences) as a source position of the log.
func EncodeGeneration(fences []uint64) []byte {
	b := make([]byte, 0, 8*len(fences))
	for _, f := range fences {
		b = binary.BigEndian.AppendUint64(b, f)
	}
	return b
}

// DecodeGeneration is the inverse of EncodeGeneration: the generation is
// the number of fences.
func DecodeGeneration(b []byte) (fences []uint64, ok bool) {
	if len(b)%8 != 0 || len(b)/8 > MaxGenerations {
		return nil, false
	}
	for ; len(b) > 0; b = b[8:] {
		fences = append(fences, binary.BigEndian.Uint64(b))
	}
	return fences, true
}

// MaxGenerations bounds the restores one log records.
const MaxGenerations = 1 << 15
