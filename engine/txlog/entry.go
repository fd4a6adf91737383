package txlog

import "github.com/electric-sql/electric-go/engine/merge"

// Entry is one merged transaction in the log.
type Entry struct {
	Offset     uint64 // assigned on commit: 1, 2, 3, … with no gaps
	Origin     string // connector name, or "satellite:<client id>"
	Eff        uint64 // effective timestamp (µs), merge.Result.Eff
	CommitTime uint64 // source commit time (µs since the Unix epoch)
	// MaxEff is the highest Eff of the entries up to and including this
	// one: a source whose last applied entry is this one has seen writes
	// with effective timestamps up to MaxEff (merge.Tx.ContextEff). One
	// number whatever the number of origins: the causal context is the
	// offset itself (see package merge, "Causal context").
	MaxEff  uint64
	Changes []RowChange
	// EchoSafe: the origin provably already holds every merged row of this
	// entry and no entry it has not applied touched them since, so the
	// entry need not be sent back to it (DESIGN.md "The one big change":
	// skipping the echo is allowed only where the origin holds the merged
	// rows). False for entries written before the flag existed.
	EchoSafe bool
}

// RowChange is the merged result of one row touched by an entry.
type RowChange struct {
	Table   string // schema-qualified
	Key     string // merge key encoding of the primary key
	Deleted bool
	// Row is the full merged row when !Deleted; when Deleted it is the last
	// merged image before the delete, so sinks can name the key and old row.
	Row map[string]merge.Value
}

// Synthetic LSNs: the publisher sends entry o with commit end LSN LSN(o), and
// Origin messages that come back from a subscriber carry that LSN, so the
// mapping must be a pure function of the offset both ways. The low 16 bits
// leave room for per-message LSNs inside one entry.
const lsnShift = 16

// LSN is the synthetic commit end LSN of the entry at offset.
func LSN(offset uint64) uint64 { return offset << lsnShift }

// OffsetOfLSN maps a synthetic LSN back to the offset of the last entry it
// covers.
func OffsetOfLSN(lsn uint64) uint64 { return lsn >> lsnShift }
