package status

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/electric-sql/electric-go/engine/authlimit"
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
	fails *authlimit.Limiter // failed tokens per address (authlimit: 10, then one every 6 s, by default)
}

func newGuard(next http.Handler, token string, fails *authlimit.Limiter) *guard {
	g := &guard{next: next, fails: fails}
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
	if wait := g.fails.Blocked(ip); wait > 0 {
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
	g.fails.Fail(ip)
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
	return authlimit.AddrOf(r.RemoteAddr)
}

func refuse(w http.ResponseWriter, code int, why, msg string) {
	h := w.Header()
	h.Set(RefusalHeader, why)
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
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
