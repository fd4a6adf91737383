package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestWriteSHA256SUMS(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"electric-v1-linux-arm64": "arm", "electric-v1-darwin-amd64": "mac"}
	for n, body := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteSHA256SUMS(dir, []string{"electric-v1-linux-arm64", "electric-v1-darwin-amd64"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	want := sum("mac") + "  electric-v1-darwin-amd64\n" + sum("arm") + "  electric-v1-linux-arm64\n"
	if string(got) != want {
		t.Errorf("SHA256SUMS\n%s\nwant\n%s", got, want)
	}
	if err := WriteSHA256SUMS(dir, []string{"missing"}); err == nil {
		t.Errorf("WriteSHA256SUMS of a missing file succeeded")
	}
	if err := WriteSHA256SUMS(dir, nil); err == nil {
		t.Errorf("WriteSHA256SUMS of nothing succeeded")
	}
}

func TestPlatformsAndNames(t *testing.T) {
	var got []string
	for _, p := range Platforms() {
		got = append(got, BinaryName("v1.2.3", p))
	}
	want := []string{"electric-v1.2.3-linux-amd64", "electric-v1.2.3-linux-arm64", "electric-v1.2.3-darwin-amd64", "electric-v1.2.3-darwin-arm64"}
	if !slices.Equal(got, want) {
		t.Errorf("release binaries %v, want %v", got, want)
	}
}

func TestGoBuildArgs(t *testing.T) {
	args := strings.Join(GoBuildArgs("v1", "abc", "/out/electric"), " ")
	for _, want := range []string{"-trimpath", "-buildvcs=false", "-X main.version=v1", "-X main.commit=abc", "-o /out/electric", "./cmd/electric"} {
		if !strings.Contains(args, want) {
			t.Errorf("go %s: lacks %s", args, want)
		}
	}
}

// TestBuildBinaryRefusesBadStamps: a version or commit that would split
// -ldflags is refused before go runs.
func TestBuildBinaryRefusesBadStamps(t *testing.T) {
	for _, tt := range []struct{ version, commit, want string }{
		{"", "abc", "no version"},
		{"v1", "", "no commit"},
		{"v 1", "abc", `version "v 1"`},
		{"v1", `a"b`, `commit "a\"b"`},
	} {
		err := BuildBinary(context.Background(), BuildOptions{
			ModuleDir: moduleDir, Platform: Platform{"linux", "amd64"}, Version: tt.version, Commit: tt.commit,
			Output: filepath.Join(t.TempDir(), "electric"), Go: "/nonexistent/go",
		})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("BuildBinary(%q, %q): %v, want %q", tt.version, tt.commit, err, tt.want)
		}
	}
	// A failing go build is reported with its output.
	err := BuildBinary(context.Background(), BuildOptions{
		ModuleDir: t.TempDir(), Platform: Platform{"linux", "amd64"}, Version: "v1", Commit: "abc",
		Output: filepath.Join(t.TempDir(), "electric"),
	})
	if err == nil || !strings.Contains(err.Error(), "building electric for linux/amd64") {
		t.Errorf("BuildBinary outside the module: %v", err)
	}
}
