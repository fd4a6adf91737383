package pebblelog

import (
	"context"
	"errors"
	"fmt"
	"github.com/electric-sql/electric-go/engine/txlog"
	"sync"
)

// Reader replays the log from an offset and then follows the head. A reader
// holds no store resources between calls: behind the head it reads a batch of
// entries at a time from the store; at the head it takes entries from the
// in-memory tail and waits on a channel that each commit closes. So a
// thousand readers cost a thousand goroutines and nothing else.
type Reader struct {
	log  *Log
	next uint64 // offset of the next entry to return
	buf  []*txlog.Entry
	err  error // sticky

	closeOnce sync.Once
	done      chan struct{}
}

// Reads from the store are made in batches this large (entries, encoded bytes).
const (
	readBatchEntries = 128
	readBatchBytes   = 4 << 20
)

// NewReader returns a reader of the entries with Offset > after. If after is
// beyond the head, Next returns txlog.ErrBeyondHead.
func (l *Log) NewReader(after uint64) txlog.Reader {
	r := &Reader{log: l, next: after + 1, done: make(chan struct{})}
	l.mu.RLock()
	head, closed := l.head, l.closed
	l.mu.RUnlock()
	switch {
	case closed:
		r.err = txlog.ErrClosed
	case after > head:
		r.err = fmt.Errorf("read log after %d (head %d): %w", after, head, txlog.ErrBeyondHead)
	}
	l.statsMu.Lock()
	l.readers++
	l.statsMu.Unlock()
	return r
}

// Close releases the reader and wakes a Next blocked on it.
func (r *Reader) Close() {
	r.closeOnce.Do(func() {
		close(r.done)
		r.log.statsMu.Lock()
		r.log.readers--
		r.log.statsMu.Unlock()
	})
}

// Next returns the next entry, blocking until it is committed or ctx is done.
// Entries are shared with other readers and must not be modified.
func (r *Reader) Next(ctx context.Context) (*txlog.Entry, error) {
	for {
		if len(r.buf) > 0 {
			e := r.buf[0]
			r.buf[0] = nil
			r.buf = r.buf[1:]
			return e, nil
		}
		if r.err != nil {
			return nil, r.err
		}
		select {
		case <-r.done:
			return nil, txlog.ErrClosed
		default:
		}
		l := r.log
		l.mu.RLock()
		head, closed, notify := l.head, l.closed, l.notify
		if closed {
			l.mu.RUnlock()
			r.err = txlog.ErrClosed
			continue
		}
		if r.next <= head {
			if e := l.tailEntry(r.next); e != nil {
				// Copy the cached run up to the head.
				first := l.tail[0].Offset
				end := min(head-first+1, r.next-first+readBatchEntries)
				r.buf = append(r.buf[:0], l.tail[r.next-first:end]...)
				l.mu.RUnlock()
				r.next += uint64(len(r.buf))
				continue
			}
			l.mu.RUnlock()
			if err := r.readStore(head); err != nil {
				r.err = err
			}
			continue
		}
		l.mu.RUnlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-r.done:
			return nil, txlog.ErrClosed
		case <-notify:
		}
	}
}

// readStore fills r.buf with entries r.next… (at most up to head) from the
// store.
func (r *Reader) readStore(head uint64) error {
	want := r.next
	size := 0
	var derr error
	err := r.log.scan(entryKey(r.next), entryKey(head+1), func(k, v []byte) error {
		e, err := txlog.DecodeEntry(v)
		if err != nil {
			derr = fmt.Errorf("read log entry %d: %w", want, err)
			return derr
		}
		if e.Offset != want {
			derr = fmt.Errorf("read log: found entry %d where %d belongs", e.Offset, want)
			return derr
		}
		r.buf = append(r.buf, e)
		want++
		size += len(v)
		if len(r.buf) >= readBatchEntries || size >= readBatchBytes {
			return errStopScan
		}
		return nil
	})
	if derr != nil {
		return derr
	}
	if errors.Is(err, txlog.ErrClosed) {
		return txlog.ErrClosed
	}
	if err != nil {
		return fmt.Errorf("read log from %d: %w", r.next, err)
	}
	if len(r.buf) == 0 {
		return fmt.Errorf("read log: entry %d missing (head %d)", r.next, head)
	}
	r.next = want
	return nil
}
