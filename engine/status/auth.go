package status

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Who may call which route. The status API can pause replication, apply
// migrations and list clients with their user ids and addresses, so every
// route but the few that monitoring needs is guarded:
//
//   - with a token (Options.Token, STATUS_API_TOKEN) a request needs
//     "Authorization: Bearer <token>"; failures are rate-limited per address;
//   - without one, guarded routes answer only loopback clients, judged by the
//     connection's address (never by X-Forwarded-For and the like, which any
//     client can send).
//
// The guard is a middleware around the whole mux, so routes added with
// Handle (the migrations API, probes) are covered without knowing of it.

// RefusalHeader names why the guard refused a request (one of the Refused*
// values), so clients tell an auth refusal from a route's own 403 (the
// migrations API answers 403 for refused migrations).
const RefusalHeader = "Electric-Refusal"

// Values of RefusalHeader.
const (
	RefusedToken    = "token"    // 401: no or wrong bearer token
	RefusedLoopback = "loopback" // 403: no STATUS_API_TOKEN, remote client
	RefusedRate     = "rate"     // 429: too many failed authentications
)

// Auth failure limits: an address gets failBurst wrong tokens, then one more
// every failRefill; the table of addresses holds at most maxFailAddrs.
const (
	failBurst    = 10
	failRefill   = 6 * time.Second
	maxFailAddrs = 4096
)

// public reports whether anyone may call the route: the seed's status
// summary, the liveness probe and the metrics scrape carry nothing private
// and are what load balancers and Prometheus call without credentials.
func public(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	switch r.URL.Path {
	case "/api/status", "/healthz", "/metrics":
		return true
	}
	return false
}

// guard wraps next with the access rules above.
type guard struct {
	next  http.Handler
	token [sha256.Size]byte // hash of the token; hashing first makes the compare length-independent
	has   bool
	fails *failLimiter
}

func newGuard(next http.Handler, token string, now func() time.Time) *guard {
	g := &guard{next: next, fails: newFailLimiter(now)}
	if token != "" {
		g.token, g.has = sha256.Sum256([]byte(token)), true
	}
	return g
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if public(r) {
		g.next.ServeHTTP(w, r)
		return
	}
	ip := remoteIP(r)
	if !g.has {
		if ip.IsValid() && ip.IsLoopback() {
			g.next.ServeHTTP(w, r)
			return
		}
		refuse(w, http.StatusForbidden, RefusedLoopback,
			"this endpoint answers only loopback clients: set STATUS_API_TOKEN on the engine and send it as a bearer token to call it remotely")
		return
	}
	if wait := g.fails.blocked(ip); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		refuse(w, http.StatusTooManyRequests, RefusedRate, "too many failed authentications from this address: retry later")
		return
	}
	if got, ok := bearer(r); ok {
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], g.token[:]) == 1 {
			g.next.ServeHTTP(w, r)
			return
		}
	}
	g.fails.fail(ip)
	w.Header().Set("WWW-Authenticate", `Bearer realm="electric"`)
	refuse(w, http.StatusUnauthorized, RefusedToken, "missing or wrong bearer token: send Authorization: Bearer <STATUS_API_TOKEN>")
}

// bearer is the token of an "Authorization: Bearer <token>" header (the
// scheme is case-insensitive, RFC 9110 §11.1).
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// remoteIP is the connection's peer address (http.Server sets RemoteAddr
// from the socket); the zero Addr when it does not parse.
func remoteIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return ip.Unmap()
}

func refuse(w http.ResponseWriter, code int, why, msg string) {
	h := w.Header()
	h.Set(RefusalHeader, why)
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// failLimiter is a token bucket of failed authentications per address:
// failBurst to start with, one back every failRefill. An address with an
// empty bucket is refused (429) until one is back.
type failLimiter struct {
	now func() time.Time

	mu    sync.Mutex
	addrs map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was computed
	last   time.Time // the latest failure
}

func newFailLimiter(now func() time.Time) *failLimiter {
	if now == nil {
		now = time.Now
	}
	return &failLimiter{now: now, addrs: map[netip.Addr]*bucket{}}
}

// refill brings b up to date at t.
func (b *bucket) refill(t time.Time) {
	if d := t.Sub(b.at); d > 0 {
		b.tokens = min(failBurst, b.tokens+float64(d)/float64(failRefill))
	}
	b.at = t
}

// blocked is how long ip must wait before its next try counts (0: it may
// try now).
func (l *failLimiter) blocked(ip netip.Addr) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.addrs[ip]
	if !ok {
		return 0
	}
	t := l.now()
	b.refill(t)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(failRefill))
}

// fail takes one token from ip's bucket.
func (l *failLimiter) fail(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.now()
	b, ok := l.addrs[ip]
	if !ok {
		if len(l.addrs) >= maxFailAddrs {
			l.sweepLocked(t)
		}
		b = &bucket{tokens: failBurst, at: t}
		l.addrs[ip] = b
	}
	b.refill(t)
	b.tokens = max(0, b.tokens-1)
	b.last = t
}

// sweepLocked makes room in a full table: addresses whose bucket is full
// again are forgotten (they are as good as new); if none is, the one that
// failed longest ago goes.
func (l *failLimiter) sweepLocked(t time.Time) {
	var (
		oldest   netip.Addr
		oldestAt time.Time
		found    bool
	)
	for ip, b := range l.addrs {
		b.refill(t)
		if b.tokens >= failBurst {
			delete(l.addrs, ip)
			continue
		}
		if !found || b.last.Before(oldestAt) {
			oldest, oldestAt, found = ip, b.last, true
		}
	}
	if len(l.addrs) >= maxFailAddrs && found {
		delete(l.addrs, oldest)
	}
}

// size is how many addresses the limiter remembers (for tests).
func (l *failLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.addrs)
}

// ErrRefused is what clients report when the engine refused a request for
// want of credentials (401, 403 loopback-only, 429): the one line a person
// needs, whatever the exact reason.
var ErrRefused = errors.New("the engine refused the request: set STATUS_API_TOKEN or --token")

// RefusedError is an auth refusal of the status API as a client sees it; it
// unwraps to ErrRefused.
type RefusedError struct {
	Status int    // HTTP status: 401, 403 or 429
	Reason string // the engine's explanation
}

func (e *RefusedError) Error() string {
	if e.Reason == "" {
		return ErrRefused.Error()
	}
	return ErrRefused.Error() + " (" + e.Reason + ")"
}

func (e *RefusedError) Unwrap() error { return ErrRefused }

// Refusal is the RefusedError resp stands for, nil when resp is not an auth
// refusal of the status API (a route's own 403 included). It reads a
// refusal's body, which is small.
func Refusal(resp *http.Response) error {
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests:
	default:
		return nil
	}
	if resp.Header.Get(RefusalHeader) == "" && resp.StatusCode != http.StatusUnauthorized {
		return nil
	}
	var body struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&body)
	return &RefusedError{Status: resp.StatusCode, Reason: body.Error}
}

// Authorize adds the bearer token to req (nothing when token is empty).
func Authorize(req *http.Request, token string) {
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
}
