package pgsource

import (
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
)

// ackQueue turns out-of-band durability reports into an in-order confirmed
// LSN. Entries are appended in stream order: items handed to the sink (done
// when the sink reports them durable) and markers for WAL known to hold
// nothing to keep (done at once). The confirmed LSN is the LSN of the last
// entry of the longest done prefix, so Postgres never hears of a position
// past something not yet durable.
type ackQueue struct {
	mu        sync.Mutex
	entries   []ackEntry
	base      uint64 // sequence number of entries[0]
	confirmed pglogrepl.LSN
	notify    chan struct{}
}

type ackEntry struct {
	lsn        pglogrepl.LSN
	commitTime time.Time // zero for markers
	done       bool
	marker     bool
}

func newAckQueue() *ackQueue {
	return &ackQueue{notify: make(chan struct{}, 1)}
}

// push appends an item that will be acknowledged with ack(seq).
func (q *ackQueue) push(lsn pglogrepl.LSN, commitTime time.Time) uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.entries = append(q.entries, ackEntry{lsn: lsn, commitTime: commitTime})
	return q.base + uint64(len(q.entries)) - 1
}

// skip records that everything up to lsn, after the entries already queued,
// holds nothing to keep.
func (q *ackQueue) skip(lsn pglogrepl.LSN) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n := len(q.entries); n > 0 {
		if last := &q.entries[n-1]; last.marker {
			if lsn > last.lsn {
				last.lsn = lsn
			}
			return
		}
		q.entries = append(q.entries, ackEntry{lsn: lsn, done: true, marker: true})
		return
	}
	if lsn > q.confirmed {
		q.confirmed = lsn
		q.signal()
	}
}

// drop removes item seq, the last pushed, when it could not be handed over.
func (q *ackQueue) drop(seq uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n := len(q.entries); n > 0 && seq == q.base+uint64(n)-1 {
		q.entries = q.entries[:n-1]
	}
}

// ack marks item seq durable.
func (q *ackQueue) ack(seq uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if seq < q.base || seq-q.base >= uint64(len(q.entries)) {
		return
	}
	q.entries[seq-q.base].done = true
	if seq != q.base {
		return
	}
	i := 0
	for i < len(q.entries) && q.entries[i].done {
		if q.entries[i].lsn > q.confirmed {
			q.confirmed = q.entries[i].lsn
		}
		i++
	}
	q.base += uint64(i)
	// Drop the prefix; copy when the backing array is mostly dead so it does
	// not grow forever.
	q.entries = q.entries[i:]
	if cap(q.entries) > 1024 && len(q.entries) < cap(q.entries)/4 {
		q.entries = append([]ackEntry(nil), q.entries...)
	}
	q.signal()
}

// raise moves the confirmed LSN to lsn when nothing is pending: used at
// connect with the positions already durable.
func (q *ackQueue) raise(lsn pglogrepl.LSN) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if lsn > q.confirmed {
		q.confirmed = lsn
	}
}

func (q *ackQueue) signal() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// snapshot returns the confirmed LSN and the commit time of the oldest item
// not yet durable (zero when none).
func (q *ackQueue) snapshot() (pglogrepl.LSN, time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range q.entries {
		if !e.done && !e.marker {
			return q.confirmed, e.commitTime
		}
	}
	return q.confirmed, time.Time{}
}

// pending is the number of items not yet acknowledged.
func (q *ackQueue) pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, e := range q.entries {
		if !e.done {
			n++
		}
	}
	return n
}
