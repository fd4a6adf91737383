package pebblelog

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/electric-sql/electric-go/engine/txlog"
)

// Checkpoint writes a consistent copy of the log's state (entries, row
// states, positions, owners, format) into dir, which must not exist yet and
// should be on the same file system as the log (Pebble hard-links its
// tables; elsewhere it copies them). It returns the head the copy ends at.
// Commits wait while the checkpoint is taken, so the copy holds whole
// batches only and its head is exactly the one returned; readers do not
// wait. The copy is a log directory Open accepts as it is (no lock file).
func (l *Log) Checkpoint(dir string) (head uint64, err error) {
	l.commitMu.Lock()
	defer l.commitMu.Unlock()
	l.mu.RLock()
	head, closed := l.head, l.closed
	l.mu.RUnlock()
	if closed {
		return 0, txlog.ErrClosed
	}
	ps, ok := l.store.(*pebbleStore)
	if !ok {
		return 0, errors.New("checkpoint: the log's store cannot be checkpointed")
	}
	if err := ps.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return 0, fmt.Errorf("checkpoint of the log into %s: %w", dir, err)
	}
	return head, nil
}
