package pebblelog

import (
	"time"

	"github.com/electric-sql/electric-go/engine/txlog"
)

type rateSample struct {
	at         time.Time
	head, rows uint64
}

const rateWindow = 10 * time.Second

// Stats returns current figures.
func (l *Log) Stats() txlog.Stats {
	l.mu.RLock()
	head, closed := l.head, l.closed
	l.mu.RUnlock()
	s := txlog.Stats{Head: head}
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
