package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
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
	valid := hs(t, jwt.SigningMethodHS256, claims(), testKey)
	parts := strings.Split(valid, ".")
	// The valid payload under a header that claims alg none, signature dropped.
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))

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
		{"HS384 with the right key", hs(t, jwt.SigningMethodHS384, claims(), testKey), "", ErrInvalid, "signing method HS384 is invalid"},
		{"RS256", rs256, "", ErrInvalid, "signing method RS256 is invalid"},
		{"alg none", none, "", ErrInvalid, "signing method none is invalid"},
		{"alg none header on a valid payload", noneHeader + "." + parts[1] + ".", "", ErrInvalid, "signing method none is invalid"},
		{"alg none header, original signature", noneHeader + "." + parts[1] + "." + parts[2], "", ErrInvalid, "signing method none is invalid"},
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
	later := &Authenticator{mode: ModeJWT, key: a.key, issuer: a.issuer, now: func() time.Time { return exp.Add(time.Second) }}
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
