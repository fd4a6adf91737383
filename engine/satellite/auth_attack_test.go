package satellite

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/auth"
	"github.com/electric-sql/electric-go/engine/authlimit"
	"github.com/electric-sql/electric-go/engine/satellite/satpb"
	"github.com/electric-sql/electric-go/internal/testkit"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

// Keys and issuer of the server under attack. oldVerifyKey is accepted for
// verification only, as in the middle of a key rotation.
const (
	attackSigningKey = "attack-signing-key-attack-signing"
	attackVerifyKey  = "attack-verify-key-attack-verify-k"
	attackIssuer     = "electric-sql.com"
)

// TestAuthRefusesBadTokens sends each forged, malformed or stale token in a
// SatAuthReq over a real WebSocket session. Spec §3.2 and §3.10: every token
// validation failure is answered with SatErrorResp AUTH_REQUIRED as the first
// and only frame, then the socket is closed; no session is authenticated and
// the client id is not taken.
func TestAuthRefusesBadTokens(t *testing.T) {
	authn, err := auth.New(auth.Options{SigningKey: attackSigningKey, VerifyKeys: []string{attackVerifyKey}, Issuer: attackIssuer})
	if err != nil {
		t.Fatal(err)
	}
	// A burst above the number of cases: each case must reach the token
	// check, and the good token after it must pass.
	env := newEnv(t, func(o *Options) {
		o.Auth = authn
		o.AuthLimiter = authlimit.NewLimits(nil, authlimit.Limits{Burst: 1000})
	})

	now := time.Now()
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"user_id": "alice", "type": "access", "iss": attackIssuer,
			"exp": now.Add(time.Hour).Unix(), "nonce": "0123456789abcdef0123456789abcdef"}
		if mod != nil {
			mod(c)
		}
		return c
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		t.Helper()
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	hs256 := func(mod func(jwt.MapClaims)) string {
		return sign(jwt.SigningMethodHS256, []byte(attackSigningKey), claims(mod))
	}
	set := func(k string, v any) func(jwt.MapClaims) { return func(c jwt.MapClaims) { c[k] = v } }
	unset := func(k string) func(jwt.MapClaims) { return func(c jwt.MapClaims) { delete(c, k) } }

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	valid := hs256(nil)
	parts := strings.Split(valid, ".")
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

	cases := []struct {
		name  string
		token string
	}{
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil))},
		{"alg none header on a valid payload", b64(`{"alg":"none","typ":"JWT"}`) + "." + parts[1] + "."},
		{"alg none header, original signature", b64(`{"alg":"none","typ":"JWT"}`) + "." + parts[1] + "." + parts[2]},
		{"HS384 with the signing key", sign(jwt.SigningMethodHS384, []byte(attackSigningKey), claims(nil))},
		{"HS512 with the signing key", sign(jwt.SigningMethodHS512, []byte(attackSigningKey), claims(nil))},
		{"HS512 with the verification key", sign(jwt.SigningMethodHS512, []byte(attackVerifyKey), claims(nil))},
		{"RS256", sign(jwt.SigningMethodRS256, rsaKey, claims(nil))},
		{"RS256 header on an HS256 signature", b64(`{"alg":"RS256","typ":"JWT"}`) + "." + parts[1] + "." + parts[2]},
		{"wrong key", sign(jwt.SigningMethodHS256, []byte("another-key-another-key-another-k"), claims(nil))},
		{"tampered user", parts[0] + "." + b64(fmt.Sprintf(`{"user_id":"mallory","type":"access","iss":%q,"exp":%d}`, attackIssuer, now.Add(time.Hour).Unix())) + "." + parts[2]},
		{"wrong issuer", hs256(set("iss", "other.example"))},
		{"missing issuer", hs256(unset("iss"))},
		{"expired", hs256(set("exp", now.Add(-time.Hour).Unix()))},
		{"expired, signed with the verification key", sign(jwt.SigningMethodHS256, []byte(attackVerifyKey), claims(set("exp", now.Add(-time.Hour).Unix())))},
		{"missing exp", hs256(unset("exp"))},
		{"nbf in the future", hs256(set("nbf", now.Add(time.Hour).Unix()))},
		{"iat in the future", hs256(set("iat", now.Add(24*time.Hour).Unix()))},
		{"missing user_id", hs256(unset("user_id"))},
		{"empty user_id", hs256(set("user_id", ""))},
		{"numeric user_id", hs256(set("user_id", 42))},
		{"object user_id", hs256(set("user_id", map[string]any{"id": "alice"}))},
		{"refresh type", hs256(set("type", "refresh"))},
		{"other type", hs256(set("type", "id"))},
		{"missing type", hs256(unset("type"))},
		{"garbage", "invalid_token"},
		{"too long", hs256(set("pad", strings.Repeat("x", auth.MaxTokenBytes)))},
	}
	hdr := []*satpb.SatAuthHeaderPair{{Key: satpb.SatAuthHeader_PROTO_VERSION, Value: satpb.ProtocolVersion}}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := authn.Validate(tc.token); err == nil {
				t.Fatal("the authenticator accepts this token: the case tests nothing")
			}
			id := fmt.Sprintf("attack-%d", i)
			c := env.dial()
			c.t = t // report on the subtest
			c.send(&satpb.SatAuthReq{Id: id, Token: tc.token, Headers: hdr})
			c.expectRefused(satpb.SatErrorResp_AUTH_REQUIRED)
			if st := env.srv.Status(); st.Authenticated != 0 {
				t.Fatalf("%d clients authenticated after a refused token", st.Authenticated)
			}
			// The refused attempt did not take the client id: the same id
			// authenticates at once with a good token.
			ok := env.dial()
			ok.t = t
			ok.send(&satpb.SatAuthReq{Id: id, Token: valid, Headers: hdr})
			recvAs[*satpb.SatAuthResp](ok)
			_ = ok.conn.Close()
			testkit.Eventually(t, "the good session gone", func() bool { return env.srv.Status().Sessions == 0 })
		})
	}

	// Rotation: a token signed with the verification key is accepted, for the
	// user it names.
	t.Run("verification key accepted", func(t *testing.T) {
		tok := sign(jwt.SigningMethodHS256, []byte(attackVerifyKey), claims(set("user_id", "bob")))
		c := env.dial()
		c.t = t
		c.send(&satpb.SatAuthReq{Id: "rotated", Token: tok, Headers: hdr})
		recvAs[*satpb.SatAuthResp](c)
		testkit.Eventually(t, "bob's session", func() bool {
			for _, s := range env.srv.Sessions() {
				if s.ClientID == "rotated" && s.UserID == "bob" && s.Authenticated {
					return true
				}
			}
			return false
		})
	})
}

// expectRefused reads the first frame, which must be SatErrorResp with code
// (no SatAuthResp or anything else before it), then expects the socket closed
// with a policy-violation close frame or a plain end of stream.
func (c *tclient) expectRefused(code satpb.SatErrorResp_ErrorCode) {
	c.t.Helper()
	m := c.recv()
	e, ok := m.(*satpb.SatErrorResp)
	if !ok {
		c.t.Fatalf("first frame %T %v, want SatErrorResp %s", m, m, code)
	}
	if e.ErrorType != code {
		c.t.Fatalf("got error %s, want %s", e.ErrorType, code)
	}
	m, err := c.next()
	if err == nil {
		c.t.Fatalf("frame %T %v after the error, want the socket closed", m, m)
	}
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
		if ce.Code != websocket.ClosePolicyViolation {
			c.t.Fatalf("closed with %d, want %d (policy violation)", ce.Code, websocket.ClosePolicyViolation)
		}
	case strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "reset"):
	default:
		c.t.Fatalf("expected close, got %v", err)
	}
}

// countingAuth counts the tokens it is asked to validate.
type countingAuth struct {
	Auth
	calls atomic.Int64
}

func (a *countingAuth) Validate(token string) (string, error) {
	a.calls.Add(1)
	return a.Auth.Validate(token)
}

// TestAuthRateLimited: failed token checks count against the address
// (loopback too); past the burst the address is refused with AUTH_REQUIRED
// before its token is checked, even a good one, until a try refills.
func TestAuthRateLimited(t *testing.T) {
	authn, err := auth.New(auth.Options{SigningKey: attackSigningKey, Issuer: attackIssuer})
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingAuth{Auth: authn}
	var mu sync.Mutex
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	env := newEnv(t, func(o *Options) {
		o.Auth = counted
		o.AuthLimiter = authlimit.NewLimits(now, authlimit.Limits{Burst: 3, Refill: 6 * time.Second})
	})
	good, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"user_id": "alice", "type": "access",
		"iss": attackIssuer, "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(attackSigningKey))
	if err != nil {
		t.Fatal(err)
	}
	hdr := []*satpb.SatAuthHeaderPair{{Key: satpb.SatAuthHeader_PROTO_VERSION, Value: satpb.ProtocolVersion}}
	try := func(id, token string) *tclient {
		c := env.dial()
		c.send(&satpb.SatAuthReq{Id: id, Token: token, Headers: hdr})
		return c
	}
	for i := range 3 {
		try(fmt.Sprintf("bad-%d", i), "invalid_token").expectRefused(satpb.SatErrorResp_AUTH_REQUIRED)
	}
	if n := counted.calls.Load(); n != 3 {
		t.Fatalf("%d tokens validated, want 3", n)
	}
	try("bad-3", "invalid_token").expectRefused(satpb.SatErrorResp_AUTH_REQUIRED)
	try("good", good).expectRefused(satpb.SatErrorResp_AUTH_REQUIRED)
	if n := counted.calls.Load(); n != 3 {
		t.Fatalf("%d tokens validated, want 3: a blocked address had its token checked", n)
	}
	mu.Lock()
	clock = clock.Add(6 * time.Second)
	mu.Unlock()
	c := try("good", good)
	recvAs[*satpb.SatAuthResp](c)
}
