// Package tlsconf owns the TLS material of the engine's listeners: it checks
// and loads a certificate and key pair into a server *tls.Config (TLS 1.2 or
// later), and makes the self-signed local certificate of `electric dev up
// --tls`. It opens no socket: the engine wraps its listeners with the config.
package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Check reports the problems of a certificate and key file pair, each apart
// so that the caller can name the setting at fault: a certificate or a key
// that cannot be read, or (both read) a pair that does not load: not PEM, or
// a key that does not match the certificate.
func Check(certFile, keyFile string) (certErr, keyErr, pairErr error) {
	_, certErr, keyErr, pairErr = load(certFile, keyFile)
	return certErr, keyErr, pairErr
}

// ServerConfig loads the pair into a server configuration that accepts TLS
// 1.2 and later.
func ServerConfig(certFile, keyFile string) (*tls.Config, error) {
	cert, certErr, keyErr, pairErr := load(certFile, keyFile)
	if err := errors.Join(certErr, keyErr, pairErr); err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

func load(certFile, keyFile string) (cert tls.Certificate, certErr, keyErr, pairErr error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		certErr = fmt.Errorf("reading the certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		keyErr = fmt.Errorf("reading the key: %w", err)
	}
	if certErr != nil || keyErr != nil {
		return cert, certErr, keyErr, nil
	}
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The error says what is wrong, never the bytes of the key.
		return cert, nil, nil, fmt.Errorf("%s and %s are not a certificate and its key: %w", certFile, keyFile, err)
	}
	return cert, nil, nil, nil
}

// Local certificate file names under a directory (EnsureLocal).
const (
	LocalCertFile = "localhost.crt"
	LocalKeyFile  = "localhost.key"
)

// localValidity is how long a generated certificate is valid; one that
// expires within renewBefore is made again.
const (
	localValidity = 365 * 24 * time.Hour
	renewBefore   = 7 * 24 * time.Hour
)

// EnsureLocal returns the paths of a self-signed certificate for localhost,
// 127.0.0.1 and ::1 (ECDSA P-256) under dir, with its key readable by the
// owner only. A valid pair already there is reused; otherwise a new one is
// written, and created is true.
func EnsureLocal(dir string, now time.Time) (certFile, keyFile string, created bool, err error) {
	certFile, keyFile = filepath.Join(dir, LocalCertFile), filepath.Join(dir, LocalKeyFile)
	if cert, e1, e2, e3 := load(certFile, keyFile); errors.Join(e1, e2, e3) == nil && cert.Leaf != nil && now.Add(renewBefore).Before(cert.Leaf.NotAfter) {
		return certFile, keyFile, false, nil
	}
	certPEM, keyPEM, err := selfSigned(now)
	if err != nil {
		return "", "", false, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", false, fmt.Errorf("creating %s: %w", dir, err)
	}
	// The key first, so that a certificate never sits beside a stale key
	// that a crash left behind.
	if err := writeFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", false, err
	}
	if err := writeFile(certFile, certPEM, 0o644); err != nil {
		return "", "", false, err
	}
	return certFile, keyFile, true, nil
}

func selfSigned(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating a key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("generating a serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"electric dev"}},
		NotBefore:             now.Add(-time.Hour), // a little clock skew
		NotAfter:              now.Add(localValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		// Its own issuer: clients trust it by adding it as a root.
		IsCA:        true,
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// writeFile replaces path atomically with data, created with mode.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// CertPool is a pool holding the certificate in certFile, for clients that
// trust a self-signed certificate (tests, tools talking to `dev up --tls`).
func CertPool(certFile string) (*x509.CertPool, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("reading the certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", certFile)
	}
	return pool, nil
}
