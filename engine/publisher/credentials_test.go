package publisher_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/electric-sql/electric-go/engine/publisher"
)

// TestLoadSecret: a configured secret wins (and must be long enough);
// otherwise one is generated once, mode 0600, and read back on restart.
func TestLoadSecret(t *testing.T) {
	dir := t.TempDir()
	if s, err := publisher.LoadSecret("configured-secret-16", dir); err != nil || string(s) != "configured-secret-16" {
		t.Fatalf("configured: %q, %v", s, err)
	}
	if _, err := publisher.LoadSecret("short", dir); err == nil {
		t.Fatal("a short secret was accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, publisher.SecretFile)); !os.IsNotExist(err) {
		t.Fatalf("a configured secret wrote a file: %v", err)
	}
	first, err := publisher.LoadSecret("", dir)
	if err != nil || len(first) < publisher.MinSecretBytes {
		t.Fatalf("generated: %q, %v", first, err)
	}
	fi, err := os.Stat(filepath.Join(dir, publisher.SecretFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v, %v", fi, err)
	}
	again, err := publisher.LoadSecret("", dir)
	if err != nil || !bytes.Equal(first, again) {
		t.Fatalf("secret changed on restart: %q, %q, %v", first, again, err)
	}
	if err := os.WriteFile(filepath.Join(dir, publisher.SecretFile), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := publisher.LoadSecret("", dir); err == nil {
		t.Fatal("a short secret file was accepted")
	}
}
