package pebblelog

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// Commit writes the batch atomically and returns once it is durable
// (fsynced). Readers are woken afterwards. On error nothing of the batch is
// visible.
func (l *Log) Commit(b *txlog.Batch) error {
	l.commitMu.Lock()
	defer l.commitMu.Unlock()
	l.mu.RLock()
	head, closed := l.head, l.closed
	l.mu.RUnlock()
	if closed {
		return txlog.ErrClosed
	}
	if l.failed != nil {
		return fmt.Errorf("commit: an earlier commit failed, reopen the log: %w", l.failed)
	}
	for i, e := range b.Entries {
		if e == nil {
			return fmt.Errorf("commit: entry %d is nil", i)
		}
		if want := head + uint64(i) + 1; e.Offset != want {
			return fmt.Errorf("commit: entry %d has offset %d, want %d (head %d)", i, e.Offset, want, head)
		}
	}
	for src, user := range b.Owners {
		if user == "" {
			return fmt.Errorf("commit: owner of %q is empty", src)
		}
	}
	for _, r := range b.Rows {
		if r.Table == "" {
			return fmt.Errorf("commit: row state %q without a table", r.Key)
		}
	}
	if b.Empty() {
		return nil
	}

	kb := l.store.newBatch(l.batchHint)
	sizes := make([]int, len(b.Entries))
	var nrows uint64
	total := 0
	for i, e := range b.Entries {
		l.entryBuf = txlog.AppendEntry(l.entryBuf[:0], e)
		sizes[i] = len(l.entryBuf)
		total += len(l.entryBuf) + 20
		kb.set(entryKey(e.Offset), l.entryBuf)
		nrows += uint64(len(e.Changes))
	}
	// Row states are encoded into one arena: far fewer allocations than
	// growing one buffer per row. The row cache gets exact-size copies so
	// that it does not pin whole arenas.
	rowVals := make([]cachedRow, len(b.Rows))
	arena := make([]byte, 0, (l.rowSizeHint+16)*len(b.Rows))
	for i, r := range b.Rows {
		k := rowKey(r.Table, r.Key)
		if r.Row == nil {
			kb.delete(k)
			rowVals[i] = cachedRow{k: k}
			total += len(k) + 20
			continue
		}
		// Known to the filter before it is in the store, so a
		// concurrent Row never misses it.
		l.keys.add(k)
		start := len(arena)
		arena = merge.AppendRow(arena, r.Row)
		v := arena[start:len(arena):len(arena)]
		kb.set(k, v)
		rowVals[i] = cachedRow{k: k, v: v}
		total += len(k) + len(v) + 20
	}
	// Each origin's highest eff: effs of one origin increase with the
	// offset, so its last entry of the batch has it.
	var last map[string]uint64
	for _, e := range b.Entries {
		if last == nil {
			last = make(map[string]uint64, 4)
		}
		last[e.Origin] = max(last[e.Origin], e.Eff)
	}
	for o, eff := range last {
		kb.set(originEffKey(o), binary.AppendUvarint(nil, eff))
		total += len(o) + 30
	}
	for src, pos := range b.Positions {
		kb.set(positionKey(src), pos)
		total += len(src) + len(pos) + 20
	}
	for src, user := range b.Owners {
		kb.set(ownerKey(src), []byte(user))
		total += len(src) + len(user) + 20
	}
	l.batchHint = total
	if len(b.Rows) > 0 {
		l.rowSizeHint = len(arena) / len(b.Rows)
	}
	if cap(l.entryBuf) > 16<<20 {
		l.entryBuf = nil // do not pin one huge entry's buffer
	}
	if err := kb.commit(); err != nil {
		l.failed = err
		l.log.Error("txlog commit failed; refusing further commits until reopened", "err", err)
		return fmt.Errorf("commit %d entries after %d: %w", len(b.Entries), head, err)
	}

	l.rows.update(rowVals)
	if len(b.Entries) == 0 {
		return nil
	}
	now := time.Now()
	l.statsMu.Lock()
	if n := len(l.samples); n == 0 || now.Sub(l.samples[n-1].at) >= time.Second {
		l.samples = append(l.samples, rateSample{at: now, head: head, rows: l.rowsTotal})
		if len(l.samples) > 32 {
			l.samples = append(l.samples[:0], l.samples[len(l.samples)-16:]...)
		}
	}
	l.rowsTotal += nrows
	l.statsMu.Unlock()

	l.mu.Lock()
	for i, e := range b.Entries {
		l.tail = append(l.tail, e)
		l.tailSize = append(l.tailSize, sizes[i])
		l.tailLen += sizes[i]
	}
	// Keep at least the newest entry so readers at the head never go to disk.
	drop := 0
	for l.tailLen > l.tailMax && drop < len(l.tail)-1 {
		l.tailLen -= l.tailSize[drop]
		drop++
	}
	if drop > 0 {
		clear(l.tail[:drop])
		l.tail = l.tail[drop:]
		l.tailSize = l.tailSize[drop:]
	}
	l.head = b.Entries[len(b.Entries)-1].Offset
	close(l.notify)
	l.notify = make(chan struct{})
	l.mu.Unlock()
	return nil
}
