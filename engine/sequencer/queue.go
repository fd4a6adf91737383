package sequencer

import (
	"context"
	"fmt"
)

func weight(it *Item) int { return max(1, len(it.Tx.Ops)) }

// Enqueue queues an item, blocking while the queue is full.
func (s *Sequencer) Enqueue(ctx context.Context, it Item) error {
	w := weight(&it)
	for {
		s.qmu.Lock()
		if s.stopped {
			s.qmu.Unlock()
			return ErrStopped
		}
		if s.queuedRows == 0 || s.queuedRows+w <= s.opts.MaxQueuedRows {
			s.queue = append(s.queue, it)
			s.queuedRows += w
			s.qmu.Unlock()
			select {
			case s.ready <- struct{}{}:
			default:
			}
			return nil
		}
		space := s.space
		s.qmu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stopCh:
			return ErrStopped
		}
	}
}

// Submit enqueues an item and waits until it is durable, returning the
// offset of its entry (0 if it wrote none). it.Done, if set, is called too.
func (s *Sequencer) Submit(ctx context.Context, it Item) (uint64, error) {
	type result struct {
		off uint64
		err error
	}
	ch := make(chan result, 1)
	done := it.Done
	it.Done = func(off uint64, err error) {
		if done != nil {
			done(off, err)
		}
		ch <- result{off, err}
	}
	if err := s.Enqueue(ctx, it); err != nil {
		return 0, err
	}
	select {
	case r := <-ch:
		return r.off, r.err
	case <-ctx.Done():
		// The item may still be committed; the caller must not assume
		// either way (its stored position tells after a restart).
		return 0, ctx.Err()
	}
}

// take removes up to a group's worth of items from the queue, appending them
// to items.
func (s *Sequencer) take(items []Item) []Item {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	rows, n := 0, 0
	for n < len(s.queue) && n < s.opts.MaxBatch && (n == 0 || rows+weight(&s.queue[n]) <= s.opts.MaxBatchRows) {
		rows += weight(&s.queue[n])
		n++
	}
	items = append(items, s.queue[:n]...)
	clear(s.queue[:n])
	s.queue = s.queue[n:]
	if len(s.queue) == 0 {
		s.queue = nil // let the backing array go
	}
	s.queuedRows -= rows
	if n > 0 {
		close(s.space)
		s.space = make(chan struct{})
	}
	if len(s.queue) > 0 {
		select {
		case s.ready <- struct{}{}:
		default:
		}
	}
	return items
}

// stop fails every item left in the queue with cause and refuses new ones.
func (s *Sequencer) stop(cause error) {
	if cause == nil {
		cause = ErrStopped
	}
	s.qmu.Lock()
	s.stopped = true
	close(s.stopCh) // wakes Enqueue calls blocked on a full queue
	left := s.queue
	s.queue, s.queuedRows = nil, 0
	s.qmu.Unlock()
	for _, it := range left {
		if it.Done != nil {
			it.Done(0, fmt.Errorf("sequencer stopped: %w", cause))
		}
	}
}
