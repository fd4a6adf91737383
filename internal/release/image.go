package release

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/electric-sql/electric-go/engine/config"
)

// Repository is the image's name in the tarball (electric:<version>).
const Repository = "electric"

// OffsetStorageFile is OFFSET_STORAGE_FILE in the image: inside the volume.
const OffsetStorageFile = DataDir + "/offset_storage_data.dat"

// The source and licence labels' defaults: the module's repository, and the
// licence of the ElectricSQL service this is a port of.
const (
	DefaultSource  = "https://github.com/electric-sql/electric-go"
	DefaultLicense = "Apache-2.0"
)

// ImageOptions describe one image.
type ImageOptions struct {
	Binary  []byte    // static linux electric for Arch
	Arch    string    // GOARCH of Binary: amd64 or arm64
	Version string    // image tag and version label
	Commit  string    // revision label
	Created time.Time // every timestamp in the image (SOURCE_DATE_EPOCH)
	Source  string    // source label (repository URL); DefaultSource when empty
	License string    // licenses label (SPDX); DefaultLicense when empty
}

// ExposedPorts are the engine's default ports, from engine/config: the
// Satellite WebSocket, the logical-replication publisher and the status API.
func ExposedPorts() []string {
	var ports []string
	for _, v := range config.Variables() {
		switch v.Name {
		case config.EnvWebsocketPort, config.EnvReplicationPort, config.EnvStatusPort:
			ports = append(ports, v.Default+"/tcp")
		}
	}
	return ports
}

// ImageConfig is the image's runtime configuration: `electric serve` as the
// unprivileged user, listening on every interface, its state in the volume.
func ImageConfig(o ImageOptions) v1.Config {
	if o.Source == "" {
		o.Source = DefaultSource
	}
	if o.License == "" {
		o.License = DefaultLicense
	}
	ports := map[string]struct{}{}
	for _, p := range ExposedPorts() {
		ports[p] = struct{}{}
	}
	return v1.Config{
		Entrypoint: []string{BinaryPath, "serve"},
		User:       fmt.Sprintf("%d:%d", UID, GID),
		WorkingDir: DataDir,
		Env: []string{
			"PATH=/usr/local/bin",
			"SSL_CERT_FILE=" + CAFile,
			// Reachable from outside the container even in insecure mode
			// (which otherwise binds loopback only).
			config.EnvListenAddress + "=0.0.0.0",
			config.EnvOffsetStorageFile + "=" + OffsetStorageFile,
		},
		ExposedPorts: ports,
		Volumes:      map[string]struct{}{DataDir: {}},
		Labels: map[string]string{
			"org.opencontainers.image.title":    "electric",
			"org.opencontainers.image.version":  o.Version,
			"org.opencontainers.image.revision": o.Commit,
			"org.opencontainers.image.source":   o.Source,
			"org.opencontainers.image.licenses": o.License,
			"org.opencontainers.image.created":  o.Created.UTC().Format(time.RFC3339),
		},
	}
}

var badTagChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// Tag is the image's reference in the tarball: electric:<version>, with the
// characters a tag cannot hold replaced by '-'.
func Tag(version string) (name.Tag, error) {
	t := badTagChars.ReplaceAllString(version, "-")
	t = strings.TrimLeft(t, ".-")
	if len(t) > 128 {
		t = t[:128]
	}
	if t == "" {
		return name.Tag{}, fmt.Errorf("image tag: version %q has no usable characters", version)
	}
	return name.NewTag(Repository+":"+t, name.WeakValidation)
}

// Image assembles the image: one layer (RootFS) on an empty base, OCI media
// types, every timestamp o.Created.
func Image(o ImageOptions) (v1.Image, error) {
	switch o.Arch {
	case "amd64", "arm64":
	default:
		return nil, fmt.Errorf("image: unsupported architecture %q (amd64 or arm64)", o.Arch)
	}
	if o.Version == "" {
		return nil, errors.New("image: no version")
	}
	files, err := RootFS(o.Binary)
	if err != nil {
		return nil, err
	}
	layerTar, err := LayerTar(files, o.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(
		func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil },
		tarball.WithMediaType(types.OCILayer),
		tarball.WithCompressionLevel(gzip.DefaultCompression),
		tarball.WithCompressedCaching,
	)
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	created := v1.Time{Time: o.Created.UTC()}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   created,
			CreatedBy: "electric internal/release (go-containerregistry)",
			Comment:   "electric " + o.Version,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture = o.Arch
	cf.OS = "linux"
	cf.Created = created
	cf.Config = ImageConfig(o)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	return img, nil
}

// WriteImage writes the image as a docker-archive tarball (what `docker load`
// and `podman load` read) to path, through a temporary file so a failed build
// leaves no partial tarball.
func WriteImage(path string, o ImageOptions) (err error) {
	img, err := Image(o)
	if err != nil {
		return err
	}
	tag, err := Tag(o.Version)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".electric-image-*")
	if err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tarball.Write(tag, img, tmp); err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	return nil
}
