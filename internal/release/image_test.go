package release

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const (
	testVersion = "v0.0.0-test"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
)

var testEpoch = time.Unix(1700000000, 0).UTC()

// testBinary is cmd/electric built once, as a release builds it, for
// linux/GOARCH (so the image test can run it from the layer); moduleDir is
// the repository root.
var (
	testBinary []byte
	moduleDir  string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go env GOMOD:", err)
		return 1
	}
	moduleDir = filepath.Dir(strings.TrimSpace(string(out)))
	dir, err := os.MkdirTemp("", "release-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	defer func() {
		if p, err := sharedImage(); err == nil {
			os.RemoveAll(filepath.Dir(p))
		}
	}()
	bin := filepath.Join(dir, "electric")
	err = BuildBinary(context.Background(), BuildOptions{
		ModuleDir: moduleDir, Platform: Platform{"linux", runtime.GOARCH},
		Version: testVersion, Commit: testCommit, Output: bin,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if testBinary, err = os.ReadFile(bin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func testImageOptions() ImageOptions {
	return ImageOptions{Binary: testBinary, Arch: runtime.GOARCH, Version: testVersion, Commit: testCommit, Created: testEpoch}
}

// sharedImage is the image of testImageOptions, written once for the tests
// that only read it (compressing the layer is most of an image build's time).
var sharedImage = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "release-test-image-")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "electric-"+testVersion+".tar")
	return p, WriteImage(p, testImageOptions())
})

func testImage(t *testing.T) string {
	t.Helper()
	p, err := sharedImage()
	if err != nil {
		t.Fatalf("WriteImage: %v", err)
	}
	return p
}

func writeTestImage(t *testing.T, o ImageOptions) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "electric-"+o.Version+".tar")
	if err := WriteImage(p, o); err != nil {
		t.Fatalf("WriteImage: %v", err)
	}
	return p
}

// readTar returns a tar stream's entries in order and their contents.
func readTar(t *testing.T, r io.Reader) ([]*tar.Header, map[string][]byte) {
	t.Helper()
	tr := tar.NewReader(r)
	var hdrs []*tar.Header
	data := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return hdrs, data
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading tar entry %s: %v", h.Name, err)
		}
		hdrs = append(hdrs, h)
		data[h.Name] = b
	}
}

// TestImageArchive opens the tarball as `docker load` does: manifest.json
// names the tag, the config blob and one layer, all present in the archive.
func TestImageArchive(t *testing.T) {
	p := testImage(t)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, entries := readTar(t, f)
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(entries["manifest.json"], &manifest); err != nil {
		t.Fatalf("manifest.json: %v\n%s", err, entries["manifest.json"])
	}
	if len(manifest) != 1 {
		t.Fatalf("manifest.json has %d images, want 1", len(manifest))
	}
	m := manifest[0]
	if want := []string{"electric:" + testVersion}; !slices.Equal(m.RepoTags, want) {
		t.Errorf("RepoTags = %v, want %v", m.RepoTags, want)
	}
	if len(m.Layers) != 1 {
		t.Errorf("Layers = %v, want one layer", m.Layers)
	}
	for _, name := range append([]string{m.Config}, m.Layers...) {
		if len(entries[name]) == 0 {
			t.Errorf("manifest.json names %q, which the archive lacks", name)
		}
	}
	var cfg struct {
		Architecture, OS string
		Config           struct{ Entrypoint []string }
	}
	if err := json.Unmarshal(entries[m.Config], &cfg); err != nil {
		t.Fatalf("config blob: %v", err)
	}
	if cfg.Architecture != runtime.GOARCH || cfg.OS != "linux" || len(cfg.Config.Entrypoint) == 0 {
		t.Errorf("config blob = %+v", cfg)
	}
}

// TestImageConfig checks what `docker run` starts: the entrypoint, the user,
// the ports, the volume, the environment and the labels.
func TestImageConfig(t *testing.T) {
	p := testImage(t)
	tag, err := name.NewTag("electric:" + testVersion)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(p, &tag)
	if err != nil {
		t.Fatalf("loading the tarball: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if want := []string{"/usr/local/bin/electric", "serve"}; !slices.Equal(c.Entrypoint, want) {
		t.Errorf("Entrypoint = %q, want %q", c.Entrypoint, want)
	}
	if len(c.Cmd) != 0 {
		t.Errorf("Cmd = %q, want none", c.Cmd)
	}
	if c.User != "65532:65532" {
		t.Errorf("User = %q, want 65532:65532", c.User)
	}
	if got, want := slices.Sorted(maps.Keys(c.ExposedPorts)), []string{"5050/tcp", "5133/tcp", "5433/tcp"}; !slices.Equal(got, want) {
		t.Errorf("ExposedPorts = %v, want %v", got, want)
	}
	if got := slices.Sorted(maps.Keys(c.Volumes)); !slices.Equal(got, []string{"/var/lib/electric"}) {
		t.Errorf("Volumes = %v, want [/var/lib/electric]", got)
	}
	for _, kv := range []string{"LISTEN_ADDRESS=0.0.0.0", "OFFSET_STORAGE_FILE=/var/lib/electric/offset_storage_data.dat", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"} {
		if !slices.Contains(c.Env, kv) {
			t.Errorf("Env = %q lacks %s", c.Env, kv)
		}
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.title":    "electric",
		"org.opencontainers.image.version":  testVersion,
		"org.opencontainers.image.revision": testCommit,
		"org.opencontainers.image.source":   DefaultSource,
		"org.opencontainers.image.licenses": DefaultLicense,
		"org.opencontainers.image.created":  "2023-11-14T22:13:20Z",
	}
	if !maps.Equal(c.Labels, wantLabels) {
		t.Errorf("Labels = %v, want %v", c.Labels, wantLabels)
	}
	if !cf.Created.Time.Equal(testEpoch) || cf.Architecture != runtime.GOARCH || cf.OS != "linux" {
		t.Errorf("created %v on %s/%s, want %v on linux/%s", cf.Created.Time, cf.OS, cf.Architecture, testEpoch, runtime.GOARCH)
	}
	for _, h := range cf.History {
		if !h.Created.Time.Equal(testEpoch) {
			t.Errorf("history %+v: created %v, want %v", h, h.Created.Time, testEpoch)
		}
	}
	// A docker-archive keeps no manifest (the reader makes up a Docker one):
	// the media types are checked on an image before it is written (a small
	// one: only the types matter).
	small := testImageOptions()
	small.Binary = []byte("small")
	built, err := Image(small)
	if err != nil {
		t.Fatal(err)
	}
	mt, err := built.MediaType()
	if err != nil || mt != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("manifest media type %q, %v: want OCI", mt, err)
	}
	bm, err := built.Manifest()
	if err != nil || bm.Config.MediaType != "application/vnd.oci.image.config.v1+json" || len(bm.Layers) != 1 || bm.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Errorf("manifest %+v, %v: want OCI config and one OCI gzip layer", bm, err)
	}
}

// TestImageLayer reads the layer's files: stamped and owned as RootFS says,
// the data volume owned by the user, a parseable CA bundle, and a binary that
// runs and reports the stamped version.
func TestImageLayer(t *testing.T) {
	p := testImage(t)
	img, err := tarball.ImageFromPath(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v; want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	hdrs, data := readTar(t, rc)

	var names []string
	for _, h := range hdrs {
		names = append(names, h.Name)
		if !h.ModTime.Equal(testEpoch) {
			t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, testEpoch)
		}
		wantOwner := 0
		if h.Name == "var/lib/electric/" {
			wantOwner = UID
		}
		if h.Uid != wantOwner || h.Gid != wantOwner {
			t.Errorf("%s: owner %d:%d, want %d:%d", h.Name, h.Uid, h.Gid, wantOwner, wantOwner)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("layer entries not sorted: %v", names)
	}
	wantNames := []string{
		"etc/", "etc/group", "etc/passwd", "etc/ssl/", "etc/ssl/certs/", "etc/ssl/certs/ca-certificates.crt",
		"tmp/", "usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/electric",
		"var/", "var/lib/", "var/lib/electric/",
	}
	if !slices.Equal(names, wantNames) {
		t.Errorf("layer entries\n%v\nwant\n%v", names, wantNames)
	}
	modes := map[string]int64{}
	for _, h := range hdrs {
		modes[h.Name] = h.Mode
	}
	if modes["usr/local/bin/electric"] != 0o755 || modes["tmp/"] != 0o1777 || modes["etc/passwd"] != 0o644 {
		t.Errorf("modes: electric %o, tmp %o, passwd %o; want 755, 1777, 644", modes["usr/local/bin/electric"], modes["tmp/"], modes["etc/passwd"])
	}
	if !strings.Contains(string(data["etc/passwd"]), "electric:x:65532:65532:") || !strings.Contains(string(data["etc/group"]), "electric:x:65532:") {
		t.Errorf("passwd/group do not name the user:\n%s%s", data["etc/passwd"], data["etc/group"])
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data["etc/ssl/certs/ca-certificates.crt"]) || bytes.Count(data["etc/ssl/certs/ca-certificates.crt"], []byte("BEGIN CERTIFICATE")) < 100 {
		t.Errorf("CA bundle: not a PEM bundle of the NSS roots (%d bytes)", len(data["etc/ssl/certs/ca-certificates.crt"]))
	}

	bin := filepath.Join(t.TempDir(), "electric")
	if err := os.WriteFile(bin, data["usr/local/bin/electric"], 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	want := fmt.Sprintf("electric %s (commit %s, %s linux/%s)\n", testVersion, testCommit, runtime.Version(), runtime.GOARCH)
	if err != nil || string(out) != want {
		t.Errorf("electric version from the layer: %v\n%q\nwant\n%q", err, out, want)
	}
	out, err = exec.Command(bin, "version", "--json").Output()
	var v map[string]string
	if err != nil || json.Unmarshal(out, &v) != nil || v["version"] != testVersion || v["commit"] != testCommit || v["go"] != runtime.Version() {
		t.Errorf("electric version --json from the layer: %v\n%s", err, out)
	}
}

// TestImageReproducible writes the image twice, in two directories a
// wall-clock second apart: the same bytes. Another timestamp gives other bytes
// (the stamp goes in, rather than nothing being stamped). The binary is a
// 1 MiB stand-in: its bytes pass through untouched (TestImageLayer runs the
// real one), and compressing the real one twice more under -race would
// dominate `make test`; `make image` twice is the end-to-end check.
func TestImageReproducible(t *testing.T) {
	o := testImageOptions()
	o.Binary = make([]byte, 1<<20)
	for i := range o.Binary {
		o.Binary[i] = byte(i * 7 / 3)
	}
	write := func(o ImageOptions) []byte {
		t.Helper()
		b, err := os.ReadFile(writeTestImage(t, o))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first := write(o)
	time.Sleep(1100 * time.Millisecond)
	if again := write(o); !bytes.Equal(first, again) {
		t.Fatalf("two builds differ: %d and %d bytes", len(first), len(again))
	}
	later := o
	later.Created = testEpoch.Add(time.Hour)
	if bytes.Equal(first, write(later)) {
		t.Errorf("an image with another timestamp has the same bytes")
	}
}

// TestLayerTar checks the tar writer on a small tree: parents first, bad
// paths refused.
func TestLayerTar(t *testing.T) {
	files := []File{{Path: "/a", Dir: true, Mode: 0o755}, {Path: "/a/b", Mode: 0o600, UID: 7, GID: 8, Data: []byte("x")}}
	b, err := LayerTar(files, testEpoch)
	if err != nil {
		t.Fatal(err)
	}
	hdrs, data := readTar(t, bytes.NewReader(b))
	if len(hdrs) != 2 || hdrs[0].Name != "a/" || hdrs[0].Typeflag != tar.TypeDir || hdrs[1].Name != "a/b" ||
		hdrs[1].Mode != 0o600 || hdrs[1].Uid != 7 || hdrs[1].Gid != 8 || string(data["a/b"]) != "x" {
		t.Errorf("layer tar: %+v %q", hdrs, data)
	}
	for _, bad := range []string{"", "rel/path", "/a/../b", "/a/"} {
		if _, err := LayerTar([]File{{Path: bad, Data: []byte("x")}}, testEpoch); err == nil {
			t.Errorf("LayerTar accepted path %q", bad)
		}
	}
}

func TestImageOptionsRefused(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*ImageOptions)
		want string
	}{
		{"no binary", func(o *ImageOptions) { o.Binary = nil }, "binary is empty"},
		{"arch", func(o *ImageOptions) { o.Arch = "386" }, `unsupported architecture "386"`},
		{"no version", func(o *ImageOptions) { o.Version = "" }, "no version"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := testImageOptions()
			o.Binary = []byte("not empty")
			tt.edit(&o)
			p := filepath.Join(t.TempDir(), "out.tar")
			err := WriteImage(p, o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("WriteImage: %v, want an error with %q", err, tt.want)
			}
			if _, serr := os.Stat(p); serr == nil {
				t.Errorf("a failed WriteImage left %s", p)
			}
		})
	}
}

func TestTag(t *testing.T) {
	for _, tt := range []struct{ version, want string }{
		{"v1.2.3", "electric:v1.2.3"},
		{"b73f012-dirty", "electric:b73f012-dirty"},
		{"v1.0.0+build/7", "electric:v1.0.0-build-7"},
		{".hidden", "electric:hidden"},
	} {
		tag, err := Tag(tt.version)
		if err != nil || tag.String() != tt.want {
			t.Errorf("Tag(%q) = %v, %v; want %s", tt.version, tag, err, tt.want)
		}
	}
	if _, err := Tag("///"); err == nil {
		t.Errorf("Tag(///) accepted")
	}
}

// TestDockerfileMatchesImage keeps the Dockerfile's final stage in step with
// ImageConfig: entrypoint, user, workdir, ports, volume, environment, labels.
func TestDockerfileMatchesImage(t *testing.T) {
	f, err := os.Open(filepath.Join(moduleDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The final stage's instructions, continuation lines joined.
	var instrs []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		if strings.HasPrefix(cur.String(), "FROM ") {
			instrs = nil
		}
		instrs = append(instrs, cur.String())
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(instrs) == 0 || instrs[0] != "FROM scratch" {
		t.Fatalf("the Dockerfile's last stage is not FROM scratch: %q", instrs)
	}
	got := map[string][]string{}
	for _, in := range instrs {
		kw, rest, _ := strings.Cut(in, " ")
		got[kw] = append(got[kw], rest)
	}
	c := ImageConfig(ImageOptions{Version: "${VERSION}", Commit: "${COMMIT}"})
	entry, _ := json.Marshal(c.Entrypoint)
	if want := strings.ReplaceAll(string(entry), ",", ", "); !slices.Equal(got["ENTRYPOINT"], []string{want}) {
		t.Errorf("ENTRYPOINT %q, want %s", got["ENTRYPOINT"], want)
	}
	if !slices.Equal(got["USER"], []string{c.User}) || !slices.Equal(got["WORKDIR"], []string{c.WorkingDir}) {
		t.Errorf("USER %q WORKDIR %q, want %s and %s", got["USER"], got["WORKDIR"], c.User, c.WorkingDir)
	}
	if !slices.Equal(got["ENV"], c.Env) {
		t.Errorf("ENV %q, want %q", got["ENV"], c.Env)
	}
	if want := strings.Join(ExposedPorts(), " "); !slices.Equal(got["EXPOSE"], []string{want}) {
		t.Errorf("EXPOSE %q, want %s", got["EXPOSE"], want)
	}
	if want := fmt.Sprintf("[%q]", DataDir); !slices.Equal(got["VOLUME"], []string{want}) {
		t.Errorf("VOLUME %q, want %s", got["VOLUME"], want)
	}
	if len(got["LABEL"]) != 1 {
		t.Fatalf("LABEL %q: want one instruction", got["LABEL"])
	}
	for k, v := range c.Labels {
		if k == "org.opencontainers.image.created" {
			continue // Docker stamps its own time
		}
		if kv := fmt.Sprintf("%s=%q", k, v); !strings.Contains(got["LABEL"][0], kv) {
			t.Errorf("LABEL lacks %s", kv)
		}
	}
	if !strings.Contains(strings.Join(got["COPY"], "\n"), "--chown="+c.User+" /rootfs"+DataDir+"/ "+DataDir+"/") {
		t.Errorf("COPY %q: the data directory is not copied owned by %s", got["COPY"], c.User)
	}
}

// TestWriteRootFS lays the image's files out on disk, as the Dockerfile does.
func TestWriteRootFS(t *testing.T) {
	files, err := RootFS([]byte("binary"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteRootFS(dir, files); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		st, err := os.Stat(filepath.Join(dir, f.Path))
		if err != nil {
			t.Errorf("%s: %v", f.Path, err)
			continue
		}
		if st.IsDir() != f.Dir || st.Mode().Perm() != f.Mode.Perm() {
			t.Errorf("%s: dir %v mode %v, want dir %v mode %v", f.Path, st.IsDir(), st.Mode(), f.Dir, f.Mode)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, BinaryPath)); err != nil || string(b) != "binary" {
		t.Errorf("binary: %q, %v", b, err)
	}
}
