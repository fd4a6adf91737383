// Package auth owns the authentication of Satellite clients: turning the token
// of a SatAuthReq into a user id, and generating tokens for `electric token gen`.
//
// There are two modes, as in the seed (spec §8). Insecure: the token is the user
// id, for development only. JWT: an HS256 token signed with the configured key,
// whose `iss` is the configured issuer, whose `exp` is in the future, with a
// non-empty string `user_id` and `type` "access". Anything else fails closed.
package auth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Sentinel errors; every error Validate returns wraps one of them.
var (
	// ErrExpired: the token was valid but its exp has passed.
	ErrExpired = errors.New("token expired")
	// ErrInvalid: anything else wrong with the token (signature, issuer,
	// algorithm, claims, encoding).
	ErrInvalid = errors.New("invalid token")
	// ErrNotConfigured: JWT needs a signing key and an issuer.
	ErrNotConfigured = errors.New("JWT authentication is not configured: set SATELLITE_AUTH_SIGNING_KEY and SATELLITE_AUTH_SIGNING_ISS")
)

// MinKeyBytes is the shortest accepted signing key (the seed's rule).
const MinKeyBytes = 32

// Mode is how tokens are validated.
type Mode int

const (
	// ModeInsecure accepts any non-empty token as the user id.
	ModeInsecure Mode = iota
	// ModeJWT requires an HS256 JWT.
	ModeJWT
)

func (m Mode) String() string {
	if m == ModeJWT {
		return "jwt"
	}
	return "insecure"
}

// Options configure an Authenticator. With neither SigningKey nor Issuer the
// mode is insecure; with both it is JWT; with one of them New refuses.
type Options struct {
	SigningKey string
	Issuer     string
	// Now is the clock used for exp; nil means time.Now.
	Now func() time.Time
}

// Authenticator validates and generates Satellite tokens. It is safe for
// concurrent use.
type Authenticator struct {
	mode   Mode
	key    []byte
	issuer string
	now    func() time.Time
}

// New returns an Authenticator for opts, or an error when the key and issuer
// do not make a usable configuration.
func New(opts Options) (*Authenticator, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	switch {
	case opts.SigningKey == "" && opts.Issuer == "":
		return &Authenticator{mode: ModeInsecure, now: now}, nil
	case opts.SigningKey == "":
		return nil, fmt.Errorf("configuring auth: an issuer without a signing key: %w", ErrNotConfigured)
	case opts.Issuer == "":
		return nil, fmt.Errorf("configuring auth: a signing key without an issuer: %w", ErrNotConfigured)
	case len(opts.SigningKey) < MinKeyBytes:
		return nil, fmt.Errorf("configuring auth: the signing key is %d bytes, at least %d are needed", len(opts.SigningKey), MinKeyBytes)
	}
	return &Authenticator{mode: ModeJWT, key: []byte(opts.SigningKey), issuer: opts.Issuer, now: now}, nil
}

// Insecure returns an Authenticator in insecure mode.
func Insecure() *Authenticator { return &Authenticator{mode: ModeInsecure, now: time.Now} }

// Mode reports how tokens are validated.
func (a *Authenticator) Mode() Mode { return a.mode }

// Insecure reports whether any token is accepted as a user id. Whoever starts
// the engine in this mode should say so loudly.
func (a *Authenticator) Insecure() bool { return a.mode == ModeInsecure }

// Issuer is the configured issuer ("" in insecure mode).
func (a *Authenticator) Issuer() string { return a.issuer }

// Validate returns the user id the token authenticates. Errors wrap ErrExpired
// or ErrInvalid.
func (a *Authenticator) Validate(token string) (string, error) {
	if a.mode == ModeInsecure {
		if token == "" {
			return "", fmt.Errorf("validating token: empty token: %w", ErrInvalid)
		}
		return token, nil
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims,
		func(*jwt.Token) (any, error) { return a.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(a.issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(a.now),
	)
	if err != nil {
		// Expired only when expiry is the sole problem: a token that is
		// also from another issuer is simply invalid.
		if errors.Is(err, jwt.ErrTokenExpired) && !errors.Is(err, jwt.ErrTokenInvalidIssuer) &&
			!errors.Is(err, jwt.ErrTokenNotValidYet) && !errors.Is(err, jwt.ErrTokenRequiredClaimMissing) {
			return "", fmt.Errorf("validating token: %w", ErrExpired)
		}
		return "", fmt.Errorf("validating token: %v: %w", err, ErrInvalid)
	}
	switch typ := claims["type"]; typ {
	case "access":
	case "refresh":
		return "", fmt.Errorf("validating token: refresh token not valid: %w", ErrInvalid)
	default:
		return "", fmt.Errorf("validating token: type claim is %v, want \"access\": %w", typ, ErrInvalid)
	}
	userID, ok := claims["user_id"].(string)
	if !ok || userID == "" {
		return "", fmt.Errorf("validating token: no user_id claim: %w", ErrInvalid)
	}
	return userID, nil
}

// Generate returns a token for userID valid for ttl, and its expiry. In
// insecure mode the token is the user id itself and the expiry is zero (it
// never expires). The JWT claims are the seed's: user_id, nonce, type
// "access", alg, exp and iss.
func (a *Authenticator) Generate(userID string, ttl time.Duration) (string, time.Time, error) {
	if userID == "" {
		return "", time.Time{}, errors.New("generating token: empty user id")
	}
	if a.mode == ModeInsecure {
		return userID, time.Time{}, nil
	}
	if ttl <= 0 {
		return "", time.Time{}, fmt.Errorf("generating token: ttl %v is not positive", ttl)
	}
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("generating token nonce: %w", err)
	}
	// exp has a resolution of seconds: report the expiry the token really has.
	exp := a.now().Add(ttl).Truncate(time.Second).UTC()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"user_id": userID,
		"nonce":   hex.EncodeToString(nonce[:]),
		"type":    "access",
		"alg":     "HS256",
		"exp":     exp.Unix(),
		"iss":     a.issuer,
	})
	s, err := tok.SignedString(a.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("signing token: %w", err)
	}
	return s, exp, nil
}
