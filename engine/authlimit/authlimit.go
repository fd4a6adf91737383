// Package authlimit limits failed authentications per remote address: every
// port that checks a credential (the status API's bearer token, the
// publisher's SCRAM exchange, the Satellite token) asks it whether an
// address is blocked before checking, and tells it of each failure.
//
// It owns only the per-address buckets; what a refusal looks like on the
// wire belongs to the port's package.
package authlimit

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Default limits: an address gets DefaultBurst failures, then one more every
// DefaultRefill; the table holds at most DefaultMaxAddrs addresses.
const (
	DefaultBurst    = 10
	DefaultRefill   = 6 * time.Second
	DefaultMaxAddrs = 4096
)

// Limits configures a Limiter; zero fields take the defaults.
type Limits struct {
	Burst    int           // failures allowed before an address is blocked
	Refill   time.Duration // one failure allowed again per Refill
	MaxAddrs int           // addresses remembered at most
}

func (l Limits) withDefaults() Limits {
	if l.Burst <= 0 {
		l.Burst = DefaultBurst
	}
	if l.Refill <= 0 {
		l.Refill = DefaultRefill
	}
	if l.MaxAddrs <= 0 {
		l.MaxAddrs = DefaultMaxAddrs
	}
	return l
}

// Limiter is a token bucket of failed authentications per address: Burst
// to start with, one back every Refill. An address with an empty bucket is
// blocked until one is back. Safe for concurrent use.
type Limiter struct {
	now    func() time.Time
	limits Limits

	mu    sync.Mutex
	addrs map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was computed
	last   time.Time // the latest failure
}

// New is a limiter with the default limits; now is its clock (time.Now if
// nil).
func New(now func() time.Time) *Limiter { return NewLimits(now, Limits{}) }

// NewLimits is a limiter with the given limits (zero fields: defaults).
func NewLimits(now func() time.Time, limits Limits) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{now: now, limits: limits.withDefaults(), addrs: map[netip.Addr]*bucket{}}
}

// Limits are the limiter's limits, defaults filled in.
func (l *Limiter) Limits() Limits { return l.limits }

// refill brings b up to date at t.
func (l *Limiter) refill(b *bucket, t time.Time) {
	if d := t.Sub(b.at); d > 0 {
		b.tokens = min(float64(l.limits.Burst), b.tokens+float64(d)/float64(l.limits.Refill))
	}
	b.at = t
}

// Blocked is how long addr must wait before its next try counts (0: it may
// try now).
func (l *Limiter) Blocked(addr netip.Addr) time.Duration {
	addr = addr.Unmap()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.addrs[addr]
	if !ok {
		return 0
	}
	l.refill(b, l.now())
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(l.limits.Refill))
}

// Fail takes one token from addr's bucket.
func (l *Limiter) Fail(addr netip.Addr) {
	addr = addr.Unmap()
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.now()
	b, ok := l.addrs[addr]
	if !ok {
		if len(l.addrs) >= l.limits.MaxAddrs {
			l.sweepLocked(t)
		}
		b = &bucket{tokens: float64(l.limits.Burst), at: t}
		l.addrs[addr] = b
	}
	l.refill(b, t)
	b.tokens = max(0, b.tokens-1)
	b.last = t
}

// sweepLocked makes room in a full table: addresses whose bucket is full
// again are forgotten (they are as good as new); if none is, the one that
// failed longest ago goes.
func (l *Limiter) sweepLocked(t time.Time) {
	var (
		oldest   netip.Addr
		oldestAt time.Time
		found    bool
	)
	for ip, b := range l.addrs {
		l.refill(b, t)
		if b.tokens >= float64(l.limits.Burst) {
			delete(l.addrs, ip)
			continue
		}
		if !found || b.last.Before(oldestAt) {
			oldest, oldestAt, found = ip, b.last, true
		}
	}
	if len(l.addrs) >= l.limits.MaxAddrs && found {
		delete(l.addrs, oldest)
	}
}

// Size is how many addresses the limiter remembers.
func (l *Limiter) Size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.addrs)
}

// AddrOf is the IP of a peer address (a net.Addr's String, or an
// http.Request's RemoteAddr: "host:port" or a bare host); the zero Addr when
// it does not parse. All unparsable peers then share one bucket.
func AddrOf(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return ip.Unmap()
}
