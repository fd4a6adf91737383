package scram

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// clientFinal computes the client-final-message for password, as a client
// does (RFC 5802 section 3), from the messages exchanged so far.
func clientFinal(t *testing.T, password, clientFirstBare, serverFirst string) string {
	t.Helper()
	var nonce, salt string
	iter := 0
	for _, a := range strings.Split(serverFirst, ",") {
		switch {
		case strings.HasPrefix(a, "r="):
			nonce = a[2:]
		case strings.HasPrefix(a, "s="):
			salt = a[2:]
		case strings.HasPrefix(a, "i="):
			iter, _ = strconv.Atoi(a[2:])
		}
	}
	rawSalt, _ := base64.StdEncoding.DecodeString(salt)
	salted, _ := pbkdf2.Key(sha256.New, password, rawSalt, iter, 32)
	h := func(k []byte, m string) []byte { x := hmac.New(sha256.New, k); x.Write([]byte(m)); return x.Sum(nil) }
	ck := h(salted, "Client Key")
	sk := sha256.Sum256(ck)
	without := "c=biws,r=" + nonce
	sig := h(sk[:], clientFirstBare+","+serverFirst+","+without)
	for i := range ck {
		ck[i] ^= sig[i]
	}
	return without + ",p=" + base64.StdEncoding.EncodeToString(ck)
}

func TestConversation(t *testing.T) {
	v, err := NewVerifier("pencil")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, password string
		want           error
	}{
		{"right password", "pencil", nil},
		{"wrong password", "pen", ErrAuth},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConversation(v)
			bare := "n=,r=rOprNGfwEbeRWgbNEkqO"
			sf, err := c.First([]byte("n,," + bare))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(sf), "r=rOprNGfwEbeRWgbNEkqO") || !strings.Contains(string(sf), ",i=4096") {
				t.Fatalf("server-first %q", sf)
			}
			fin, err := c.Final([]byte(clientFinal(t, tt.password, bare, string(sf))))
			if !errors.Is(err, tt.want) {
				t.Fatalf("final: %v, want %v", err, tt.want)
			}
			if err == nil && !strings.HasPrefix(string(fin), "v=") {
				t.Fatalf("server-final %q", fin)
			}
		})
	}
}

func TestFirstRefuses(t *testing.T) {
	for msg, want := range map[string]error{
		"p=tls-server-end-point,,n=,r=abc": ErrChannelBinding,
		"n,,r=abc":                         ErrProtocol,
		"n,a=admin,n=,r=abc":               ErrProtocol,
		"x,,n=,r=abc":                      ErrProtocol,
		"n,,n=,r=":                         ErrProtocol,
		"":                                 ErrProtocol,
	} {
		if _, err := NewConversation(Mock([]byte("k"), "u")).First([]byte(msg)); !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", msg, err, want)
		}
	}
}

// A mock verifier refuses every password, and its salt is stable per user.
func TestMock(t *testing.T) {
	a, b := Mock([]byte("k"), "u"), Mock([]byte("k"), "u")
	if string(a.Salt) != string(b.Salt) || string(a.Salt) == string(Mock([]byte("k"), "v").Salt) {
		t.Fatal("mock salt is not stable per user")
	}
	c := NewConversation(a)
	bare := "n=,r=nonce"
	sf, _ := c.First([]byte("n,," + bare))
	if _, err := c.Final([]byte(clientFinal(t, "", bare, string(sf)))); !errors.Is(err, ErrAuth) {
		t.Fatalf("mock accepted a proof: %v", err)
	}
}
