package publisher

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/electric-sql/electric-go/engine/scram"
)

// Credentials returns the SCRAM verifier of a role (a connector name); ok is
// false for a role that may not connect.
type Credentials func(role string) (v scram.Verifier, ok bool)

// MinSecretBytes is the shortest accepted master secret.
const MinSecretBytes = 16

// SecretFile is the name of the generated master secret in the engine's
// state directory.
const SecretFile = "replication.secret"

// ConnectorPassword is the password connector's subscription logs in with:
// HMAC-SHA256(master, "connector:"+name), hex. Each connector has its own,
// so one connector's credentials never stream another's replication.
func ConnectorPassword(master []byte, connector string) string {
	h := hmac.New(sha256.New, master)
	h.Write([]byte("connector:" + connector))
	return hex.EncodeToString(h.Sum(nil))
}

// StaticCredentials holds the verifiers of the given connectors' derived
// passwords (not the passwords, nor the master).
func StaticCredentials(master []byte, connectors []string) (Credentials, error) {
	m := make(map[string]scram.Verifier, len(connectors))
	for _, name := range connectors {
		v, err := scram.NewVerifier(ConnectorPassword(master, name))
		if err != nil {
			return nil, fmt.Errorf("connector %s: %w", name, err)
		}
		m[name] = v
	}
	return func(role string) (scram.Verifier, bool) {
		v, ok := m[role]
		return v, ok
	}, nil
}

// LoadSecret returns the master secret the connectors' passwords derive
// from: configured (POSTGRES_REPLICATION_PASSWORD) when set, else the one in
// dir/replication.secret, generated (mode 0600) on first start so that the
// subscriptions' passwords survive a restart.
func LoadSecret(configured, dir string) ([]byte, error) {
	if configured != "" {
		if len(configured) < MinSecretBytes {
			return nil, fmt.Errorf("the replication password is %d bytes: it must be at least %d", len(configured), MinSecretBytes)
		}
		return []byte(configured), nil
	}
	path := filepath.Join(dir, SecretFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		s := strings.TrimSpace(string(b))
		if len(s) < MinSecretBytes {
			return nil, fmt.Errorf("%s holds %d bytes: it must hold at least %d (delete it to generate a new one; the subscriptions are updated at start)", path, len(s), MinSecretBytes)
		}
		return []byte(s), nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("reading the replication secret: %w", err)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	s := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating the replication secret: %w", err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing the replication secret: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing the replication secret: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("writing the replication secret: %w", err)
	}
	return []byte(s), nil
}
