package txlog

import "time"

type rateSample struct {
	at         time.Time
	head, rows uint64
}

// Stats is a snapshot for the status API.
type Stats struct {
	Head           uint64
	SizeBytes      int64   // on disk
	EntriesPerSec  float64 // over the last ~10 s
	RowsPerSec     float64 // row changes over the last ~10 s
	Readers        int     // open readers
	RowCacheBytes  int
	KeyFilterBytes int // memory of the in-memory filter of row keys
}

const rateWindow = 10 * time.Second

// Stats returns current figures.
func (l *Log) Stats() Stats {
	l.mu.RLock()
	head, closed := l.head, l.closed
	l.mu.RUnlock()
	s := Stats{Head: head}
	if !closed {
		l.storeMu.RLock()
		if !l.storeClosed {
			s.SizeBytes = l.store.sizeBytes()
		}
		l.storeMu.RUnlock()
	}
	now := time.Now()
	l.statsMu.Lock()
	s.Readers = l.readers
	for _, smp := range l.samples {
		if now.Sub(smp.at) > rateWindow {
			continue
		}
		secs := max(now.Sub(smp.at).Seconds(), 1)
		s.EntriesPerSec = float64(head-smp.head) / secs
		s.RowsPerSec = float64(l.rowsTotal-smp.rows) / secs
		break
	}
	l.statsMu.Unlock()
	s.RowCacheBytes = l.rows.size()
	s.KeyFilterBytes = l.keys.sizeBytes()
	return s
}
