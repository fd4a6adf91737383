package authlimit

import (
	"net/netip"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/internal/testkit"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestDefaults(t *testing.T) {
	got := New(nil).Limits()
	want := Limits{Burst: 10, Refill: 6 * time.Second, MaxAddrs: 4096}
	if got != want {
		t.Fatalf("default limits %+v, want %+v", got, want)
	}
}

// Burst failures pass, the next is blocked; one comes back per Refill; other
// addresses are untouched.
func TestBucket(t *testing.T) {
	clock := testkit.NewClock(t0)
	l := NewLimits(clock.Now, Limits{Burst: 3, Refill: 6 * time.Second})
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("192.0.2.2")
	for i := range 3 {
		if w := l.Blocked(a); w != 0 {
			t.Fatalf("before failure %d: blocked for %v", i+1, w)
		}
		l.Fail(a)
	}
	if w := l.Blocked(a); w != 6*time.Second {
		t.Fatalf("after the burst: blocked for %v, want 6s", w)
	}
	if w := l.Blocked(b); w != 0 {
		t.Fatalf("another address is blocked for %v", w)
	}
	clock.Add(4 * time.Second)
	if w := l.Blocked(a); w != 2*time.Second {
		t.Fatalf("4 s later: blocked for %v, want 2s", w)
	}
	clock.Add(2 * time.Second)
	if w := l.Blocked(a); w != 0 {
		t.Fatalf("after a refill: blocked for %v", w)
	}
	l.Fail(a)
	if w := l.Blocked(a); w != 6*time.Second {
		t.Fatalf("after the refilled try failed: blocked for %v, want 6s", w)
	}
	// A long quiet period refills to the burst, no further.
	clock.Add(time.Hour)
	for i := range 3 {
		if w := l.Blocked(a); w != 0 {
			t.Fatalf("an hour later, failure %d: blocked for %v", i+1, w)
		}
		l.Fail(a)
	}
	if l.Blocked(a) == 0 {
		t.Fatal("the bucket refilled beyond the burst")
	}
}

// An IPv4 address and its IPv4-mapped IPv6 form share one bucket.
func TestMappedAddressesShareABucket(t *testing.T) {
	l := NewLimits(testkit.NewClock(t0).Now, Limits{Burst: 1})
	l.Fail(netip.MustParseAddr("::ffff:192.0.2.1"))
	if l.Blocked(netip.MustParseAddr("192.0.2.1")) == 0 {
		t.Fatal("the mapped form of an address escapes its bucket")
	}
}

// The table stays bounded however many addresses fail; the newest failure
// is remembered, the oldest forgotten first.
func TestBounded(t *testing.T) {
	clock := testkit.NewClock(t0)
	l := New(clock.Now)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	for i := 0; i < DefaultMaxAddrs+500; i++ {
		l.Fail(addr(i))
		clock.Add(time.Millisecond)
	}
	if n := l.Size(); n > DefaultMaxAddrs {
		t.Fatalf("limiter remembers %d addresses, want at most %d", n, DefaultMaxAddrs)
	}
	last := addr(DefaultMaxAddrs + 499)
	for i := 0; i < DefaultBurst-1; i++ {
		l.Fail(last)
	}
	if l.Blocked(last) == 0 {
		t.Fatal("the newest address was forgotten")
	}
}

// A full table first forgets addresses whose bucket is full again.
func TestSweepForgetsRefilled(t *testing.T) {
	clock := testkit.NewClock(t0)
	l := NewLimits(clock.Now, Limits{Burst: 2, Refill: time.Second, MaxAddrs: 3})
	for i := range 3 {
		l.Fail(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}))
	}
	clock.Add(2 * time.Second)
	l.Fail(netip.AddrFrom4([4]byte{10, 0, 0, 9}))
	if n := l.Size(); n != 1 {
		t.Fatalf("after a sweep the limiter remembers %d addresses, want 1", n)
	}
}

func TestAddrOf(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1:5433", "127.0.0.1"},
		{"[::1]:80", "::1"},
		{"[::ffff:10.0.0.1]:80", "10.0.0.1"},
		{"10.0.0.2", "10.0.0.2"},
		{"pipe", "invalid IP"},
		{"", "invalid IP"},
	} {
		if got := AddrOf(tc.in).String(); got != tc.want {
			t.Errorf("AddrOf(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
