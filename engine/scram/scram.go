// Package scram is the server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as
// Postgres speaks it: a Verifier derived from a password, and a Conversation
// that checks a client's proof against it. It owns no sockets and no
// message framing (the publisher carries the exchange in pgproto3 SASL
// messages); channel binding is not supported.
//
// Passwords are used as given, without SASLprep: Electric's passwords are
// hex strings, for which SASLprep is the identity.
package scram

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Mechanism is the SASL mechanism name.
const Mechanism = "SCRAM-SHA-256"

// DefaultIterations is the PBKDF2 iteration count of new verifiers
// (Postgres' default scram_iterations).
const DefaultIterations = 4096

// Verifier is what the server keeps of a password: enough to check a proof
// and prove itself, not enough to log in as the client.
type Verifier struct {
	Salt       []byte
	Iterations int
	StoredKey  [sha256.Size]byte
	ServerKey  [sha256.Size]byte
}

// NewVerifier derives the verifier of password with a random salt.
func NewVerifier(password string) (Verifier, error) {
	salt := make([]byte, 16)
	rand.Read(salt)
	return DeriveVerifier(password, salt, DefaultIterations)
}

// DeriveVerifier derives the verifier of password with the given salt and
// iteration count.
func DeriveVerifier(password string, salt []byte, iterations int) (Verifier, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return Verifier{}, fmt.Errorf("deriving the SCRAM verifier: %w", err)
	}
	v := Verifier{Salt: append([]byte(nil), salt...), Iterations: iterations}
	v.StoredKey = sha256.Sum256(mac(salted, "Client Key"))
	copy(v.ServerKey[:], mac(salted, "Server Key"))
	return v, nil
}

// Mock returns a verifier no password matches, with a salt that depends only
// on key and user: an unknown user sees the same exchange, with a stable
// salt, as a known one with a wrong password.
func Mock(key []byte, user string) Verifier {
	v := Verifier{Salt: mac(key, "mock-salt:"+user)[:16], Iterations: DefaultIterations}
	rand.Read(v.StoredKey[:])
	rand.Read(v.ServerKey[:])
	return v
}

func mac(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// Errors of a conversation. ErrProtocol and ErrChannelBinding mean a
// malformed or unsupported exchange; ErrAuth a wrong password.
var (
	ErrProtocol       = errors.New("malformed SCRAM message")
	ErrChannelBinding = errors.New("SCRAM channel binding is not supported: connect without channel_binding=require")
	ErrAuth           = errors.New("SCRAM proof does not match")
)

// Conversation is one server-side exchange: First, then Final.
type Conversation struct {
	v               Verifier
	gs2Header       string
	clientFirstBare string
	serverFirst     string
	nonce           string
}

// NewConversation starts an exchange against v.
func NewConversation(v Verifier) *Conversation { return &Conversation{v: v} }

// First takes the client-first-message and returns the server-first-message.
func (c *Conversation) First(clientFirst []byte) ([]byte, error) {
	msg := string(clientFirst)
	// gs2-header: cbind-flag "," [authzid] ","
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return nil, fmt.Errorf("%w: no gs2 header", ErrProtocol)
	}
	switch {
	case flag == "n", flag == "y":
	case strings.HasPrefix(flag, "p="):
		return nil, ErrChannelBinding
	default:
		return nil, fmt.Errorf("%w: bad channel binding flag %q", ErrProtocol, truncate(flag))
	}
	authzid, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, fmt.Errorf("%w: no gs2 header", ErrProtocol)
	}
	if authzid != "" {
		return nil, fmt.Errorf("%w: an authorization identity is not supported", ErrProtocol)
	}
	c.gs2Header = flag + ",,"
	c.clientFirstBare = bare
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || strings.HasPrefix(attrs[0], "m=") || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		return nil, fmt.Errorf("%w: client-first-message must be n=…,r=…", ErrProtocol)
	}
	cnonce := attrs[1][2:]
	if cnonce == "" || !printable(cnonce) {
		return nil, fmt.Errorf("%w: bad client nonce", ErrProtocol)
	}
	snonce := make([]byte, 18)
	rand.Read(snonce)
	c.nonce = cnonce + base64.StdEncoding.EncodeToString(snonce)
	c.serverFirst = "r=" + c.nonce + ",s=" + base64.StdEncoding.EncodeToString(c.v.Salt) + ",i=" + strconv.Itoa(c.v.Iterations)
	return []byte(c.serverFirst), nil
}

// Final takes the client-final-message and, when the proof matches, returns
// the server-final-message.
func (c *Conversation) Final(clientFinal []byte) ([]byte, error) {
	if c.serverFirst == "" {
		return nil, fmt.Errorf("%w: client-final-message before client-first-message", ErrProtocol)
	}
	msg := string(clientFinal)
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, fmt.Errorf("%w: no proof", ErrProtocol)
	}
	withoutProof, proofB64 := msg[:i], msg[i+3:]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return nil, fmt.Errorf("%w: client-final-message must be c=…,r=…,p=…", ErrProtocol)
	}
	cbind, err := base64.StdEncoding.DecodeString(attrs[0][2:])
	if err != nil || string(cbind) != c.gs2Header {
		return nil, fmt.Errorf("%w: channel binding data does not match the gs2 header", ErrProtocol)
	}
	if attrs[1][2:] != c.nonce {
		return nil, fmt.Errorf("%w: nonce does not match", ErrProtocol)
	}
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	if err != nil || len(proof) != sha256.Size {
		return nil, fmt.Errorf("%w: bad proof", ErrProtocol)
	}
	authMessage := c.clientFirstBare + "," + c.serverFirst + "," + withoutProof
	sig := mac(c.v.StoredKey[:], authMessage)
	clientKey := make([]byte, sha256.Size)
	for j := range clientKey {
		clientKey[j] = proof[j] ^ sig[j]
	}
	stored := sha256.Sum256(clientKey)
	if subtle.ConstantTimeCompare(stored[:], c.v.StoredKey[:]) != 1 {
		return nil, ErrAuth
	}
	return []byte("v=" + base64.StdEncoding.EncodeToString(mac(c.v.ServerKey[:], authMessage))), nil
}

// printable: RFC 5802 nonces are printable ASCII except ','.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}
