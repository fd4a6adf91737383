package pgsource

import (
	"encoding/binary"
	"fmt"

	"github.com/jackc/pglogrepl"
)

// Position is what a connector stores with every item it hands to the
// sequencer, so a restart resumes where the log ends and keeps the causal
// context of what follows.
//
// Encoding (17 bytes): a version byte 1, the commit end LSN of the last
// transaction covered (8 bytes, big endian), then the log offset of the last
// echo seen at or before it (8 bytes, big endian; 0 = none).
type Position struct {
	LSN  pglogrepl.LSN // commit end LSN: transactions ending at or before it are in the log
	Echo uint64        // last echo offset: the causal context of later local transactions
}

const positionVersion = 1

// Encode returns the stored form of p.
func (p Position) Encode() []byte {
	b := make([]byte, 17)
	b[0] = positionVersion
	binary.BigEndian.PutUint64(b[1:], uint64(p.LSN))
	binary.BigEndian.PutUint64(b[9:], p.Echo)
	return b
}

// DecodePosition parses a stored position; nil or empty means none stored.
func DecodePosition(b []byte) (Position, error) {
	if len(b) == 0 {
		return Position{}, nil
	}
	if len(b) != 17 || b[0] != positionVersion {
		return Position{}, fmt.Errorf("decoding stored position: unknown format (%d bytes, version %d)", len(b), b[0])
	}
	return Position{
		LSN:  pglogrepl.LSN(binary.BigEndian.Uint64(b[1:])),
		Echo: binary.BigEndian.Uint64(b[9:]),
	}, nil
}
