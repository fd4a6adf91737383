package tlsconf

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEnsureLocal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	now := time.Now()
	certFile, keyFile, created, err := EnsureLocal(dir, now)
	if err != nil || !created {
		t.Fatalf("EnsureLocal = created %v, %v; want a new pair", created, err)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v, want 0600", fi.Mode().Perm(), err)
	}
	cfg, err := ServerConfig(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x, want TLS 1.2", cfg.MinVersion)
	}
	leaf := cfg.Certificates[0].Leaf
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", leaf.PublicKey)
	}
	pool, err := CertPool(certFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool}); err != nil {
			t.Errorf("certificate not valid for %s: %v", host, err)
		}
	}
	if len(leaf.IPAddresses) != 2 || !leaf.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("IP SANs = %v", leaf.IPAddresses)
	}

	// The next up reuses it.
	before, _ := os.ReadFile(certFile)
	if _, _, created, err := EnsureLocal(dir, now.Add(time.Hour)); err != nil || created {
		t.Fatalf("second EnsureLocal = created %v, %v; want the pair reused", created, err)
	}
	if after, _ := os.ReadFile(certFile); !bytes.Equal(before, after) {
		t.Error("certificate rewritten though still valid")
	}
	// Near its expiry, it is made again.
	if _, _, created, err := EnsureLocal(dir, now.Add(360*24*time.Hour)); err != nil || !created {
		t.Fatalf("EnsureLocal near expiry = created %v, %v; want a new pair", created, err)
	}
}

func TestCheck(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	certA, keyA, _, err := EnsureLocal(dirA, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, keyB, _, err := EnsureLocal(dirB, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dirA, "missing.pem")
	tests := []struct {
		name                        string
		cert, key                   string
		wantCert, wantKey, wantPair string // substrings; "" means no error
	}{
		{"a matching pair", certA, keyA, "", "", ""},
		{"no certificate", missing, keyA, "reading the certificate", "", ""},
		{"neither readable", missing, missing, "reading the certificate", "reading the key", ""},
		{"key of another certificate", certA, keyB, "", "", "private key does not match public key"},
		{"key given as certificate", keyA, keyA, "", "", "are not a certificate and its key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, k, p := Check(tt.cert, tt.key)
			for _, e := range []struct {
				what string
				err  error
				want string
			}{{"cert", c, tt.wantCert}, {"key", k, tt.wantKey}, {"pair", p, tt.wantPair}} {
				switch {
				case e.want == "" && e.err != nil:
					t.Errorf("%s: unexpected %v", e.what, e.err)
				case e.want != "" && (e.err == nil || !strings.Contains(e.err.Error(), e.want)):
					t.Errorf("%s: got %v, want %q", e.what, e.err, e.want)
				}
			}
		})
	}
	if _, err := ServerConfig(certA, keyB); err == nil {
		t.Error("ServerConfig accepted a mismatched pair")
	}
}
