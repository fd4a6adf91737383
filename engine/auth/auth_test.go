package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testKey    = "00000000000000000000000000000000"
	testIssuer = "my.electric.server"
)

var testNow = time.Date(2023, 1, 25, 12, 0, 0, 0, time.UTC)

func newJWT(t *testing.T) *Authenticator {
	t.Helper()
	a, err := New(Options{SigningKey: testKey, Issuer: testIssuer, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// claims returns the claims of a valid access token; tests change them.
func claims() jwt.MapClaims {
	return jwt.MapClaims{
		"user_id": "alice",
		"type":    "access",
		"iss":     testIssuer,
		"exp":     testNow.Add(time.Hour).Unix(),
		"nonce":   "0123456789abcdef0123456789abcdef",
	}
}

func with(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	if v == nil {
		delete(c, k)
	} else {
		c[k] = v
	}
	return c
}

func hs(t *testing.T, m jwt.SigningMethod, c jwt.MapClaims, key string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestValidateJWT(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs256, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims()).SignedString(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	// The classic confusion: a server that verifies RS256 with a public key
	// and is sent an HS256 token whose HMAC secret is that public key. Here
	// only HS256 with our own keys exists, so it is simply a wrong key.
	pubDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	valid := hs(t, jwt.SigningMethodHS256, claims(), testKey)
	parts := strings.Split(valid, ".")
	// The valid payload under another header, the signature kept or dropped.
	header := func(h string) string { return base64.RawURLEncoding.EncodeToString([]byte(h)) }
	noneHeader := header(`{"alg":"none","typ":"JWT"}`)
	// A payload signed by hand with the right key, for shapes the library
	// would not produce.
	signed := func(hdr, payload string) string {
		t.Helper()
		in := header(hdr) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
		sig, err := jwt.SigningMethodHS256.Sign(in, []byte(testKey))
		if err != nil {
			t.Fatal(err)
		}
		return in + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	hs256 := `{"alg":"HS256","typ":"JWT"}`
	future := testNow.Add(time.Hour).Unix()

	tests := []struct {
		name    string
		token   string
		want    string
		wantErr error
		why     string // in the error message: it fails for the intended reason
	}{
		{"valid", valid, "alice", nil, ""},
		{"expired", hs(t, jwt.SigningMethodHS256, with(claims(), "exp", testNow.Add(-24*time.Hour).Unix()), testKey), "", ErrExpired, "token expired"},
		{"expired and wrong issuer", hs(t, jwt.SigningMethodHS256, with(with(claims(), "exp", testNow.Add(-time.Hour).Unix()), "iss", "other"), testKey), "", ErrInvalid, "invalid issuer"},
		{"wrong issuer", hs(t, jwt.SigningMethodHS256, with(claims(), "iss", "other.server"), testKey), "", ErrInvalid, "invalid issuer"},
		{"missing issuer", hs(t, jwt.SigningMethodHS256, with(claims(), "iss", nil), testKey), "", ErrInvalid, "iss claim is required"},
		{"missing exp", hs(t, jwt.SigningMethodHS256, with(claims(), "exp", nil), testKey), "", ErrInvalid, "exp claim is required"},
		{"exp not a number", hs(t, jwt.SigningMethodHS256, with(claims(), "exp", "tomorrow"), testKey), "", ErrInvalid, "exp is invalid"},
		{"not valid yet", hs(t, jwt.SigningMethodHS256, with(claims(), "nbf", testNow.Add(time.Hour).Unix()), testKey), "", ErrInvalid, "not valid yet"},
		{"wrong key", hs(t, jwt.SigningMethodHS256, claims(), "11111111111111111111111111111111"), "", ErrInvalid, "signature is invalid"},
		{"refresh type", hs(t, jwt.SigningMethodHS256, with(claims(), "type", "refresh"), testKey), "", ErrInvalid, "refresh token not valid"},
		{"missing type", hs(t, jwt.SigningMethodHS256, with(claims(), "type", nil), testKey), "", ErrInvalid, "type claim"},
		{"missing user_id", hs(t, jwt.SigningMethodHS256, with(claims(), "user_id", nil), testKey), "", ErrInvalid, "no user_id"},
		{"empty user_id", hs(t, jwt.SigningMethodHS256, with(claims(), "user_id", ""), testKey), "", ErrInvalid, "no user_id"},
		{"numeric user_id", hs(t, jwt.SigningMethodHS256, with(claims(), "user_id", 42), testKey), "", ErrInvalid, "no user_id"},
		{"boolean user_id", hs(t, jwt.SigningMethodHS256, with(claims(), "user_id", true), testKey), "", ErrInvalid, "no user_id"},
		{"object user_id", hs(t, jwt.SigningMethodHS256, with(claims(), "user_id", map[string]any{"id": "alice"}), testKey), "", ErrInvalid, "no user_id"},
		{"array user_id", hs(t, jwt.SigningMethodHS256, with(claims(), "user_id", []string{"alice"}), testKey), "", ErrInvalid, "no user_id"},
		{"null user_id", signed(hs256, fmt.Sprintf(`{"user_id":null,"type":"access","iss":%q,"exp":%d}`, testIssuer, future)), "", ErrInvalid, "no user_id"},
		{"type access with other case", hs(t, jwt.SigningMethodHS256, with(claims(), "type", "Access"), testKey), "", ErrInvalid, "type claim"},
		{"type id", hs(t, jwt.SigningMethodHS256, with(claims(), "type", "id"), testKey), "", ErrInvalid, "type claim"},
		{"type not a string", hs(t, jwt.SigningMethodHS256, with(claims(), "type", 1), testKey), "", ErrInvalid, "type claim"},
		{"expired refresh token", hs(t, jwt.SigningMethodHS256, with(with(claims(), "type", "refresh"), "exp", testNow.Add(-time.Hour).Unix()), testKey), "", ErrExpired, "token expired"},
		{"iat now", hs(t, jwt.SigningMethodHS256, with(claims(), "iat", testNow.Unix()), testKey), "alice", nil, ""},
		{"iat within the skew", hs(t, jwt.SigningMethodHS256, with(claims(), "iat", testNow.Add(MaxIssuedAtSkew).Unix()), testKey), "alice", nil, ""},
		{"iat beyond the skew", hs(t, jwt.SigningMethodHS256, with(claims(), "iat", testNow.Add(MaxIssuedAtSkew+time.Second).Unix()), testKey), "", ErrInvalid, "issued at"},
		{"iat years ahead", hs(t, jwt.SigningMethodHS256, with(claims(), "iat", testNow.AddDate(10, 0, 0).Unix()), testKey), "", ErrInvalid, "issued at"},
		{"iat ahead on an expired token", hs(t, jwt.SigningMethodHS256, with(with(claims(), "iat", future), "exp", testNow.Add(-time.Hour).Unix()), testKey), "", ErrInvalid, "issued at"},
		{"iat not a number", hs(t, jwt.SigningMethodHS256, with(claims(), "iat", "now"), testKey), "", ErrInvalid, "iat is invalid"},
		{"nbf passed", hs(t, jwt.SigningMethodHS256, with(claims(), "nbf", testNow.Add(-time.Minute).Unix()), testKey), "alice", nil, ""},
		{"nbf a second ahead", hs(t, jwt.SigningMethodHS256, with(claims(), "nbf", testNow.Add(time.Second).Unix()), testKey), "", ErrInvalid, "not valid yet"},
		{"nbf ahead on an expired token", hs(t, jwt.SigningMethodHS256, with(with(claims(), "nbf", future), "exp", testNow.Add(-time.Hour).Unix()), testKey), "", ErrInvalid, "not valid yet"},
		{"nbf not a number", hs(t, jwt.SigningMethodHS256, with(claims(), "nbf", "soon"), testKey), "", ErrInvalid, "nbf is invalid"},
		{"exp zero", hs(t, jwt.SigningMethodHS256, with(claims(), "exp", 0), testKey), "", ErrInvalid, "exp claim is required"},
		{"issuer of another case", hs(t, jwt.SigningMethodHS256, with(claims(), "iss", "My.Electric.Server"), testKey), "", ErrInvalid, "invalid issuer"},
		{"issuer as an array", hs(t, jwt.SigningMethodHS256, with(claims(), "iss", []string{testIssuer}), testKey), "", ErrInvalid, "iss"},
		{"HS384 with the right key", hs(t, jwt.SigningMethodHS384, claims(), testKey), "", ErrInvalid, "signing method HS384 is invalid"},
		{"HS512 with the right key", hs(t, jwt.SigningMethodHS512, claims(), testKey), "", ErrInvalid, "signing method HS512 is invalid"},
		{"RS256", rs256, "", ErrInvalid, "signing method RS256 is invalid"},
		{"RS256 header on an HS256 signature", header(`{"alg":"RS256","typ":"JWT"}`) + "." + parts[1] + "." + parts[2], "", ErrInvalid, "signing method RS256 is invalid"},
		{"HS256 keyed with the RSA public key", hs(t, jwt.SigningMethodHS256, claims(), pubPEM), "", ErrInvalid, "signature is invalid"},
		{"HS256 keyed with the RSA public key DER", hs(t, jwt.SigningMethodHS256, claims(), string(pubDER)), "", ErrInvalid, "signature is invalid"},
		{"alg none", none, "", ErrInvalid, "signing method none is invalid"},
		{"alg none header on a valid payload", noneHeader + "." + parts[1] + ".", "", ErrInvalid, "signing method none is invalid"},
		{"alg none header, original signature", noneHeader + "." + parts[1] + "." + parts[2], "", ErrInvalid, "signing method none is invalid"},
		{"alg None", header(`{"alg":"None","typ":"JWT"}`) + "." + parts[1] + ".", "", ErrInvalid, "signing method (alg) is unavailable"},
		{"alg NONE", header(`{"alg":"NONE"}`) + "." + parts[1] + ".", "", ErrInvalid, "signing method (alg) is unavailable"},
		{"alg hs256 lower case", header(`{"alg":"hs256"}`) + "." + parts[1] + "." + parts[2], "", ErrInvalid, "signing method (alg) is unavailable"},
		{"no alg", header(`{"typ":"JWT"}`) + "." + parts[1] + "." + parts[2], "", ErrInvalid, "signing method (alg) is unspecified"},
		{"alg not a string", header(`{"alg":256}`) + "." + parts[1] + "." + parts[2], "", ErrInvalid, "signing method (alg) is unspecified"},
		{"header not JSON", header(`HS256`) + "." + parts[1] + "." + parts[2], "", ErrInvalid, "malformed"},
		{"claims not JSON", signed(hs256, `alice`), "", ErrInvalid, "malformed"},
		{"claims a JSON array", signed(hs256, `["alice"]`), "", ErrInvalid, "malformed"},
		{"signature dropped", parts[0] + "." + parts[1] + ".", "", ErrInvalid, "signature is invalid"},
		{"signature truncated", parts[0] + "." + parts[1] + "." + parts[2][:20], "", ErrInvalid, "signature is invalid"},
		{"four segments", valid + ".x", "", ErrInvalid, "malformed"},
		{"hand-built valid token", signed(hs256, fmt.Sprintf(`{"user_id":"bob","type":"access","iss":%q,"exp":%d}`, testIssuer, future)), "bob", nil, ""},
		{"too long", signed(hs256, fmt.Sprintf(`{"user_id":"bob","type":"access","iss":%q,"exp":%d,"pad":%q}`, testIssuer, future, strings.Repeat("x", MaxTokenBytes))), "", ErrInvalid, "at most 8192 are accepted"},
		{"too long garbage", strings.Repeat("a", MaxTokenBytes+1), "", ErrInvalid, "8193 bytes"},
		{"tampered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"user_id":"mallory","type":"access","iss":"my.electric.server","exp":9999999999}`)) + "." + parts[2], "", ErrInvalid, "signature is invalid"},
		{"garbage", "invalid_token", "", ErrInvalid, "malformed"},
		{"empty", "", "", ErrInvalid, "malformed"},
		{"three dots of garbage", "a.b.c", "", ErrInvalid, "malformed"},
		{"user id as token", "alice", "", ErrInvalid, "malformed"},
	}
	a := newJWT(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.Validate(tt.token)
			if tt.wantErr == nil {
				if err != nil || got != tt.want {
					t.Fatalf("Validate = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate = %q, %v; want an error wrapping %v", got, err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("Validate error %q does not say %q", err, tt.why)
			}
			if got != "" {
				t.Fatalf("Validate returned user %q with an error", got)
			}
			if errors.Is(err, ErrExpired) && errors.Is(err, ErrInvalid) {
				t.Fatalf("error wraps both sentinels: %v", err)
			}
		})
	}
}

func TestGenerateRoundTrip(t *testing.T) {
	a := newJWT(t)
	tok, exp, err := a.Generate("bob", 90*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if want := testNow.Add(90 * time.Minute); !exp.Equal(want) {
		t.Errorf("expiry = %v, want %v", exp, want)
	}
	if got, err := a.Validate(tok); err != nil || got != "bob" {
		t.Fatalf("Validate(Generate) = %q, %v", got, err)
	}
	// The seed's claims are all there.
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, c); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"user_id", "nonce", "type", "alg", "exp", "iss"} {
		if _, ok := c[k]; !ok {
			t.Errorf("claim %q missing from %v", k, c)
		}
	}
	if n, _ := c["nonce"].(string); len(n) != 32 {
		t.Errorf("nonce %q is not 32 hex characters", n)
	}
	// Two tokens for the same user differ (the nonce).
	tok2, _, err := a.Generate("bob", 90*time.Minute)
	if err != nil || tok2 == tok {
		t.Errorf("second token equal to the first or failed: %v", err)
	}
	// Once the clock passes the expiry the token is expired.
	later := mustNew(t, Options{SigningKey: testKey, Issuer: testIssuer, Now: func() time.Time { return exp.Add(time.Second) }})
	if _, err := later.Validate(tok); !errors.Is(err, ErrExpired) {
		t.Errorf("after expiry: %v, want ErrExpired", err)
	}
	// Another server with another issuer refuses it.
	other, err := New(Options{SigningKey: testKey, Issuer: "other", Now: a.now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Validate(tok); !errors.Is(err, ErrInvalid) {
		t.Errorf("other issuer: %v, want ErrInvalid", err)
	}
}

func TestGenerateErrors(t *testing.T) {
	a := newJWT(t)
	if _, _, err := a.Generate("", time.Hour); err == nil {
		t.Error("empty user id accepted")
	}
	if _, _, err := a.Generate("bob", 0); err == nil {
		t.Error("zero ttl accepted")
	}
	if _, _, err := a.Generate("bob", -time.Hour); err == nil {
		t.Error("negative ttl accepted")
	}
}

func TestInsecure(t *testing.T) {
	for _, a := range []*Authenticator{Insecure(), mustNew(t, Options{})} {
		if !a.Insecure() || a.Mode() != ModeInsecure || a.Mode().String() != "insecure" {
			t.Fatalf("mode = %v", a.Mode())
		}
		if got, err := a.Validate("some-user"); err != nil || got != "some-user" {
			t.Errorf("Validate(some-user) = %q, %v", got, err)
		}
		if _, err := a.Validate(""); !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(\"\") = %v, want ErrInvalid", err)
		}
		long := strings.Repeat("u", MaxTokenBytes)
		if got, err := a.Validate(long); err != nil || got != long {
			t.Errorf("Validate(%d bytes) = %v", MaxTokenBytes, err)
		}
		if _, err := a.Validate(long + "u"); !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%d bytes) = %v, want ErrInvalid", MaxTokenBytes+1, err)
		}
		tok, exp, err := a.Generate("carol", time.Hour)
		if err != nil || tok != "carol" || !exp.IsZero() {
			t.Errorf("Generate = %q, %v, %v", tok, exp, err)
		}
	}
}

func mustNew(t *testing.T, o Options) *Authenticator {
	t.Helper()
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestNewRefuses(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"issuer without key", Options{Issuer: testIssuer}, "an issuer without a signing key"},
		{"key without issuer", Options{SigningKey: testKey}, "a signing key without an issuer"},
		{"short key", Options{SigningKey: "short", Issuer: testIssuer}, "the signing key is 5 bytes, at least 32 are needed"},
		{"verify keys in insecure mode", Options{VerifyKeys: []string{testKey}}, "verification keys without a signing key"},
		{"verify keys without signing key", Options{VerifyKeys: []string{testKey}, Issuer: testIssuer}, "verification keys without a signing key"},
		{"short verify key", Options{SigningKey: testKey, Issuer: testIssuer, VerifyKeys: []string{oldKey, "short"}}, "verification key 2 is 5 bytes, at least 32 are needed"},
		{"empty verify key", Options{SigningKey: testKey, Issuer: testIssuer, VerifyKeys: []string{""}}, "verification key 1 is 0 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(tt.opts)
			if err == nil || a != nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, %v; want error containing %q", a, err, tt.want)
			}
		})
	}
	a := mustNew(t, Options{SigningKey: testKey, Issuer: testIssuer})
	if a.Insecure() || a.Mode() != ModeJWT || a.Mode().String() != "jwt" || a.Issuer() != testIssuer {
		t.Fatalf("mode = %v issuer %q", a.Mode(), a.Issuer())
	}
}

const (
	oldKey = "old-key-old-key-old-key-old-key-"
	newKey = "new-key-new-key-new-key-new-key-"
)

// TestRotation walks the documented procedure: the new key is added as a
// verification key, then becomes the signing key with the old one kept for
// verification, then the old one is dropped. At every step the tokens in
// circulation keep working until the step that must refuse them.
func TestRotation(t *testing.T) {
	at := func(o Options) *Authenticator {
		o.Issuer, o.Now = testIssuer, func() time.Time { return testNow }
		return mustNew(t, o)
	}
	before := at(Options{SigningKey: oldKey})
	adding := at(Options{SigningKey: oldKey, VerifyKeys: []string{newKey}})
	switched := at(Options{SigningKey: newKey, VerifyKeys: []string{oldKey}})
	after := at(Options{SigningKey: newKey})

	gen := func(a *Authenticator) string {
		tok, _, err := a.Generate("alice", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	oldTok, newTok := gen(before), gen(switched)
	// Generate signs with the signing key only.
	if tok := gen(adding); !verifiesWith(t, tok, oldKey) || verifiesWith(t, tok, newKey) {
		t.Error("with a verification key added, Generate does not sign with the signing key")
	}
	if !verifiesWith(t, newTok, newKey) || verifiesWith(t, newTok, oldKey) {
		t.Error("after the switch, Generate does not sign with the new key")
	}
	other := hs(t, jwt.SigningMethodHS256, claims(), "a-third-key-a-third-key-a-third-")

	tests := []struct {
		name string
		a    *Authenticator
		tok  string
		ok   bool
	}{
		{"old token before", before, oldTok, true},
		{"new token before", before, newTok, false},
		{"old token while adding", adding, oldTok, true},
		{"new token while adding", adding, newTok, true},
		{"old token after the switch", switched, oldTok, true},
		{"new token after the switch", switched, newTok, true},
		{"old token once dropped", after, oldTok, false},
		{"new token once dropped", after, newTok, true},
		{"unknown key while adding", adding, other, false},
		{"unknown key after the switch", switched, other, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.a.Validate(tt.tok)
			if tt.ok {
				if err != nil || got != "alice" {
					t.Fatalf("Validate = %q, %v; want alice", got, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "signature is invalid") || got != "" {
				t.Fatalf("Validate = %q, %v; want an invalid signature", got, err)
			}
		})
	}

	// A verification key does not relax any other rule: an expired token
	// signed with it is expired, one from another issuer invalid, and
	// another algorithm with it is still refused.
	expired := hs(t, jwt.SigningMethodHS256, with(claims(), "exp", testNow.Add(-time.Hour).Unix()), oldKey)
	if _, err := switched.Validate(expired); !errors.Is(err, ErrExpired) {
		t.Errorf("expired token signed with a verification key: %v, want ErrExpired", err)
	}
	wrongIss := hs(t, jwt.SigningMethodHS256, with(claims(), "iss", "other"), oldKey)
	if _, err := switched.Validate(wrongIss); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "invalid issuer") {
		t.Errorf("wrong issuer signed with a verification key: %v, want invalid issuer", err)
	}
	hs512 := hs(t, jwt.SigningMethodHS512, claims(), oldKey)
	if _, err := switched.Validate(hs512); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "signing method HS512 is invalid") {
		t.Errorf("HS512 with a verification key: %v, want the algorithm refused", err)
	}
	// A duplicate of the signing key among the verification keys is harmless.
	dup := at(Options{SigningKey: newKey, VerifyKeys: []string{newKey, oldKey, oldKey}})
	if got, err := dup.Validate(oldTok); err != nil || got != "alice" {
		t.Errorf("duplicated keys: Validate = %q, %v", got, err)
	}
	if n := len(dup.verify.Keys); n != 2 {
		t.Errorf("duplicated keys: %d keys tried, want 2", n)
	}
}

// verifiesWith reports whether tok's HS256 signature is made with key.
func verifiesWith(t *testing.T, tok, key string) bool {
	t.Helper()
	_, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return []byte(key), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithoutClaimsValidation())
	return err == nil
}

// FuzzValidate: whatever a client sends as a token, Validate does not panic,
// and either names a user or fails with exactly one of its sentinels.
func FuzzValidate(f *testing.F) {
	a, err := New(Options{SigningKey: testKey, VerifyKeys: []string{oldKey}, Issuer: testIssuer,
		Now: func() time.Time { return testNow }})
	if err != nil {
		f.Fatal(err)
	}
	tok, _, err := a.Generate("alice", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{tok, "", "a.b.c", "alice", tok[:len(tok)-3], strings.Replace(tok, "e", "f", 1),
		"eyJhbGciOiJub25lIn0.e30.", "eyJhbGciOiJIUzI1NiJ9.bnVsbA.AAAA"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		user, err := a.Validate(token)
		if err == nil {
			if user == "" {
				t.Fatalf("no error and no user for %q", token)
			}
			return
		}
		if user != "" || errors.Is(err, ErrInvalid) == errors.Is(err, ErrExpired) {
			t.Fatalf("Validate(%q) = %q, %v", token, user, err)
		}
	})
}
