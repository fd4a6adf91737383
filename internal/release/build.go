package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Platform is a GOOS/GOARCH pair.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// Platforms are the release's targets (a new slice on every call).
func Platforms() []Platform {
	return []Platform{
		{"linux", "amd64"}, {"linux", "arm64"},
		{"darwin", "amd64"}, {"darwin", "arm64"},
	}
}

// BuildOptions describe one `go build` of cmd/electric.
type BuildOptions struct {
	ModuleDir string // the repository root (holds go.mod)
	Platform  Platform
	Version   string // -X main.version
	Commit    string // -X main.commit
	Output    string
	Go        string // the go command; "go" when empty
}

// GoBuildArgs are the arguments of a release build: static (CGO_ENABLED=0 in
// the environment), no file system paths or VCS stamp in the binary, no
// symbol tables; version and commit stamped. The same source and toolchain
// give the same bytes.
func GoBuildArgs(version, commit, output string) []string {
	ldflags := "-s -w -X main.version=" + version + " -X main.commit=" + commit
	return []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=" + ldflags, "-o", output, "./cmd/electric"}
}

// checkStamp refuses a version or commit that cannot sit in -ldflags as one
// word.
func checkStamp(what, s string) error {
	if s == "" {
		return fmt.Errorf("no %s", what)
	}
	if strings.ContainsAny(s, " \t\n\"'\\") {
		return fmt.Errorf("%s %q: no spaces, quotes or backslashes", what, s)
	}
	return nil
}

// BuildBinary builds cmd/electric for o.Platform.
func BuildBinary(ctx context.Context, o BuildOptions) error {
	if err := checkStamp("version", o.Version); err != nil {
		return fmt.Errorf("building electric: %w", err)
	}
	if err := checkStamp("commit", o.Commit); err != nil {
		return fmt.Errorf("building electric: %w", err)
	}
	goCmd := o.Go
	if goCmd == "" {
		goCmd = "go"
	}
	out, err := filepath.Abs(o.Output)
	if err != nil {
		return fmt.Errorf("building electric: %w", err)
	}
	cmd := exec.CommandContext(ctx, goCmd, GoBuildArgs(o.Version, o.Commit, out)...)
	cmd.Dir = o.ModuleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+o.Platform.OS, "GOARCH="+o.Platform.Arch)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building electric for %s: %w\n%s", o.Platform, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// ReleaseOptions describe a release: one binary per platform in OutDir.
type ReleaseOptions struct {
	ModuleDir string
	OutDir    string
	Version   string
	Commit    string
	Platforms []Platform // Platforms() when empty
	Go        string
	// Progress, when set, gets a line per binary built.
	Progress io.Writer
}

// BinaryName is a release binary's file name.
func BinaryName(version string, p Platform) string {
	return "electric-" + version + "-" + p.OS + "-" + p.Arch
}

// Release builds the binaries into o.OutDir and writes SHA256SUMS beside them
// (the format `sha256sum -c` checks). It returns the binaries' names.
func Release(ctx context.Context, o ReleaseOptions) ([]string, error) {
	platforms := o.Platforms
	if len(platforms) == 0 {
		platforms = Platforms()
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	var names []string
	for _, p := range platforms {
		n := BinaryName(o.Version, p)
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "building %s\n", n)
		}
		err := BuildBinary(ctx, BuildOptions{
			ModuleDir: o.ModuleDir, Platform: p, Version: o.Version, Commit: o.Commit,
			Output: filepath.Join(o.OutDir, n), Go: o.Go,
		})
		if err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	if err := WriteSHA256SUMS(o.OutDir, names); err != nil {
		return nil, err
	}
	return names, nil
}

// WriteSHA256SUMS writes dir/SHA256SUMS: "<hex>  <name>" per file, sorted by
// name.
func WriteSHA256SUMS(dir string, names []string) error {
	if len(names) == 0 {
		return errors.New("SHA256SUMS: no files")
	}
	names = slices.Sorted(slices.Values(names))
	var buf bytes.Buffer
	for _, n := range names {
		sum, err := fileSHA256(filepath.Join(dir, n))
		if err != nil {
			return fmt.Errorf("SHA256SUMS: %w", err)
		}
		fmt.Fprintf(&buf, "%s  %s\n", sum, n)
	}
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("SHA256SUMS: %w", err)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
