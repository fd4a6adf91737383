// Package auth owns the authentication of Satellite clients: turning the token
// of a SatAuthReq into a user id, and generating tokens for `electric token gen`.
//
// There are two modes, as in the seed (spec §8). Insecure: the token is the user
// id, for development only. JWT: an HS256 token signed with the configured
// signing key or one of the verification keys (for key rotation), whose `iss` is
// the configured issuer, whose `exp` is in the future, with a non-empty string
// `user_id` and `type` "access". A present `nbf` must have passed and a present
// `iat` must not be more than MaxIssuedAtSkew in the future. Tokens longer than
// MaxTokenBytes are refused before they are parsed. Anything else fails closed.
//
// Only HS256 is accepted, whatever the token's header says: `alg: none`, other
// HMAC sizes and public-key algorithms are refused before any key is looked
// up, so an RSA public key can never be used as an HMAC secret.
package auth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
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

// MinKeyBytes is the shortest accepted signing or verification key (the
// seed's rule).
const MinKeyBytes = 32

// MaxTokenBytes bounds the token Validate accepts: it is checked before any
// decoding, so a huge token costs no base64 or JSON work. A token the seed
// issues is about 300 bytes.
const MaxTokenBytes = 8 << 10

// MaxIssuedAtSkew is how far in the future a token's `iat` may be: a little
// clock skew between the issuer and the engine is tolerated, a token "issued"
// later than that is refused.
const MaxIssuedAtSkew = 5 * time.Minute

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
	// SigningKey signs the tokens Generate makes, and verifies tokens.
	SigningKey string
	// VerifyKeys are further keys accepted when verifying a token, never used
	// to sign: during a key rotation they hold the key being introduced or the
	// one being retired. They need a SigningKey.
	VerifyKeys []string
	Issuer     string
	// Now is the clock used for exp, nbf and iat; nil means time.Now.
	Now func() time.Time
}

// Authenticator validates and generates Satellite tokens. It is safe for
// concurrent use.
type Authenticator struct {
	mode Mode
	key  []byte // signs
	// verify holds every key a token may be signed with, the signing key
	// first.
	verify jwt.VerificationKeySet
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
	case opts.SigningKey == "" && len(opts.VerifyKeys) > 0:
		return nil, fmt.Errorf("configuring auth: verification keys without a signing key: %w", ErrNotConfigured)
	case opts.SigningKey == "" && opts.Issuer == "":
		return &Authenticator{mode: ModeInsecure, now: now}, nil
	case opts.SigningKey == "":
		return nil, fmt.Errorf("configuring auth: an issuer without a signing key: %w", ErrNotConfigured)
	case opts.Issuer == "":
		return nil, fmt.Errorf("configuring auth: a signing key without an issuer: %w", ErrNotConfigured)
	case len(opts.SigningKey) < MinKeyBytes:
		return nil, fmt.Errorf("configuring auth: the signing key is %d bytes, at least %d are needed", len(opts.SigningKey), MinKeyBytes)
	}
	a := &Authenticator{mode: ModeJWT, key: []byte(opts.SigningKey), issuer: opts.Issuer, now: now}
	seen := []string{opts.SigningKey}
	a.verify.Keys = append(a.verify.Keys, a.key)
	for i, k := range opts.VerifyKeys {
		if len(k) < MinKeyBytes {
			return nil, fmt.Errorf("configuring auth: verification key %d is %d bytes, at least %d are needed", i+1, len(k), MinKeyBytes)
		}
		if slices.Contains(seen, k) {
			continue // trying a key twice would only cost time
		}
		seen = append(seen, k)
		a.verify.Keys = append(a.verify.Keys, []byte(k))
	}
	return a, nil
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
	if len(token) > MaxTokenBytes {
		return "", fmt.Errorf("validating token: %d bytes, at most %d are accepted: %w", len(token), MaxTokenBytes, ErrInvalid)
	}
	if a.mode == ModeInsecure {
		if token == "" {
			return "", fmt.Errorf("validating token: empty token: %w", ErrInvalid)
		}
		return token, nil
	}
	claims := jwt.MapClaims{}
	now := a.now()
	_, err := jwt.ParseWithClaims(token, claims,
		// Only reached for HS256 (WithValidMethods is checked first).
		func(*jwt.Token) (any, error) { return a.verify, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(a.issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	// The signature and the other claims were checked when err is nil or
	// only about expiry; iat is ours to check (jwt's own check allows no
	// skew at all).
	if err == nil || onlyExpired(err) {
		if ierr := checkIssuedAt(claims, now); ierr != nil {
			return "", fmt.Errorf("validating token: %w: %w", ierr, ErrInvalid)
		}
	}
	if err != nil {
		if onlyExpired(err) {
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

// onlyExpired reports whether expiry is the token's sole problem: a token that
// is also from another issuer, say, is simply invalid.
func onlyExpired(err error) bool {
	return errors.Is(err, jwt.ErrTokenExpired) && !errors.Is(err, jwt.ErrTokenInvalidIssuer) &&
		!errors.Is(err, jwt.ErrTokenNotValidYet) && !errors.Is(err, jwt.ErrTokenRequiredClaimMissing)
}

// checkIssuedAt refuses an iat that is not a number or is more than
// MaxIssuedAtSkew after now.
func checkIssuedAt(claims jwt.MapClaims, now time.Time) error {
	iat, err := claims.GetIssuedAt()
	if err != nil {
		return err
	}
	if iat != nil && iat.After(now.Add(MaxIssuedAtSkew)) {
		return fmt.Errorf("issued at %s, after now (%s) plus %v", iat.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), MaxIssuedAtSkew)
	}
	return nil
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
