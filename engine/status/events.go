package status

import (
	"sync"
	"time"
)

// DefaultEventRing is how many recent events an Events hub keeps by default.
const DefaultEventRing = 1024

// subscriberBuffer is how many events a slow subscriber may fall behind
// before it is cut off (it reconnects and catches up from the ring).
const subscriberBuffer = 256

// Events is the hub behind /api/events: components publish, HTTP streams
// subscribe. It keeps a ring of recent events so a new subscriber (and one
// that reconnects with Last-Event-ID) sees what just happened.
type Events struct {
	now func() time.Time

	mu    sync.Mutex
	ring  []Event // circular, len(ring) == size once full
	start int     // index of the oldest event when full
	size  int
	next  uint64
	subs  map[*subscription]struct{}
}

type subscription struct {
	ch     chan Event
	closed bool
}

// NewEvents makes a hub keeping the last ring events (DefaultEventRing if
// ring <= 0). now stamps events published without a Time (time.Now if nil).
func NewEvents(ring int, now func() time.Time) *Events {
	if ring <= 0 {
		ring = DefaultEventRing
	}
	if now == nil {
		now = time.Now
	}
	return &Events{now: now, size: ring, next: 1, subs: map[*subscription]struct{}{}}
}

// Publish assigns the event the next ID (and a Time if it has none), keeps
// it in the ring and hands it to every subscriber. It never blocks: a
// subscriber whose buffer is full is cut off.
func (e *Events) Publish(ev Event) Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	ev.ID = e.next
	e.next++
	if ev.Time.IsZero() {
		ev.Time = e.now()
	}
	if len(e.ring) < e.size {
		e.ring = append(e.ring, ev)
	} else {
		e.ring[e.start] = ev
		e.start = (e.start + 1) % e.size
	}
	for s := range e.subs {
		select {
		case s.ch <- ev:
		default:
			e.dropLocked(s)
		}
	}
	return ev
}

// Recent returns the events in the ring with ID > after, oldest first.
func (e *Events) Recent(after uint64) []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.recentLocked(after)
}

func (e *Events) recentLocked(after uint64) []Event {
	var out []Event
	for i := range e.ring {
		if ev := e.ring[(e.start+i)%len(e.ring)]; ev.ID > after {
			out = append(out, ev)
		}
	}
	return out
}

// Subscribe returns the ring's events with ID > after and a channel of the
// events published from then on, with no gap or overlap between the two.
// The channel is closed when cancel is called or when the subscriber falls
// too far behind; cancel must be called in any case.
func (e *Events) Subscribe(after uint64) (backlog []Event, live <-chan Event, cancel func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := &subscription{ch: make(chan Event, subscriberBuffer)}
	e.subs[s] = struct{}{}
	return e.recentLocked(after), s.ch, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.dropLocked(s)
	}
}

func (e *Events) dropLocked(s *subscription) {
	if s.closed {
		return
	}
	s.closed = true
	delete(e.subs, s)
	close(s.ch)
}
