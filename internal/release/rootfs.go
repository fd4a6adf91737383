// Package release builds what electric ships: the release binaries with their
// SHA256SUMS, and the container image (an OCI image in a docker-archive
// tarball, assembled in Go without a Docker daemon, byte-identical for the same
// commit and toolchain).
//
// It owns the image's layout (paths, user, ports, volume, environment) and the
// `go build` flags of a release. It does not touch the engine: ports and
// variable names come from engine/config, and the binary is cmd/electric built
// like any other.
package release

import (
	"archive/tar"
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// The image's layout. The user is unprivileged (65532, as distroless and ko
// images use) and owns only the data volume.
const (
	BinaryPath = "/usr/local/bin/electric"
	DataDir    = "/var/lib/electric"
	CAFile     = "/etc/ssl/certs/ca-certificates.crt"
	UID        = 65532
	GID        = 65532
	UserName   = "electric"
)

// File is one entry of the image's filesystem: a directory when Dir is set,
// else a regular file with Data.
type File struct {
	Path     string // absolute, slash-separated
	Dir      bool
	Mode     fs.FileMode // permission bits (and sticky)
	UID, GID int
	Data     []byte
}

// RootFS lists the image's filesystem, sorted by path, every parent directory
// present: the static binary, the CA bundle, /etc/passwd and /etc/group naming
// the user, /tmp, and the data directory owned by the user.
func RootFS(binary []byte) ([]File, error) {
	if len(binary) == 0 {
		return nil, errors.New("image filesystem: the electric binary is empty")
	}
	ca, err := CABundle()
	if err != nil {
		return nil, err
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:%s:/sbin/nologin\n", UserName, UID, GID, UserName, DataDir)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", UserName, GID)
	files := []File{
		{Path: BinaryPath, Mode: 0o755, Data: binary},
		{Path: CAFile, Mode: 0o644, Data: ca},
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte(passwd)},
		{Path: "/etc/group", Mode: 0o644, Data: []byte(group)},
		{Path: "/tmp", Dir: true, Mode: 0o777 | fs.ModeSticky},
		{Path: DataDir, Dir: true, Mode: 0o755, UID: UID, GID: GID},
	}
	// Add every missing parent directory, root-owned 0755.
	have := map[string]bool{}
	for _, f := range files {
		have[f.Path] = true
	}
	for _, f := range files {
		for d := path.Dir(f.Path); d != "/" && !have[d]; d = path.Dir(d) {
			have[d] = true
			files = append(files, File{Path: d, Dir: true, Mode: 0o755})
		}
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

// CABundle is the PEM bundle of the image's trusted roots: Mozilla's NSS roots
// as golang.org/x/crypto/x509roots/fallback ships them, pinned by go.mod (so
// the same commit gives the same bundle on every machine). Roots NSS trusts
// only with a distrust-after date are left out: PEM cannot carry that
// constraint.
func CABundle() ([]byte, error) {
	var buf bytes.Buffer
	n := 0
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate}); err != nil {
			return nil, fmt.Errorf("encoding the CA bundle: %w", err)
		}
		n++
	}
	if n == 0 {
		return nil, errors.New("encoding the CA bundle: no root certificates")
	}
	return buf.Bytes(), nil
}

// LayerTar is the image's single layer: a tar of files in their order, every
// entry stamped with mtime and numeric owners only, so its bytes depend on
// nothing but the files and mtime.
func LayerTar(files []File, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		name := strings.TrimPrefix(f.Path, "/")
		if name == "" || !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path {
			return nil, fmt.Errorf("image layer: bad path %q", f.Path)
		}
		h := &tar.Header{
			Name:    name,
			Mode:    int64(f.Mode.Perm()),
			Uid:     f.UID,
			Gid:     f.GID,
			ModTime: mtime.UTC().Truncate(time.Second),
			Format:  tar.FormatUSTAR,
		}
		if f.Mode&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		if f.Dir {
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("image layer: %s: %w", f.Path, err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, fmt.Errorf("image layer: %s: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteRootFS lays files out under dir (for the Dockerfile, which copies the
// tree into a scratch image). Ownership is left to the caller (the Dockerfile
// sets it with COPY --chown): only root can chown.
func WriteRootFS(dir string, files []File) error {
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if f.Dir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return fmt.Errorf("writing the image filesystem: %w", err)
			}
			if err := os.Chmod(p, f.Mode); err != nil {
				return fmt.Errorf("writing the image filesystem: %w", err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("writing the image filesystem: %w", err)
		}
		if err := os.WriteFile(p, f.Data, f.Mode); err != nil {
			return fmt.Errorf("writing the image filesystem: %w", err)
		}
		if err := os.Chmod(p, f.Mode); err != nil { // past the umask
			return fmt.Errorf("writing the image filesystem: %w", err)
		}
	}
	return nil
}
