package backup

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/electric-sql/electric-go/engine/status"
)

// Fetch asks the engine at baseURL (its status API) for a backup and writes
// it into dst, which must not exist or be empty. What the engine sends is
// checked as any peer's input: regular files with plain names only, at
// most MaxFiles, each written once, and the manifest last, matching what
// came before it. On any failure dst is left without the files written.
func Fetch(ctx context.Context, hc *http.Client, baseURL, token, dst string) (Manifest, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return Manifest{}, fmt.Errorf("parsing status url %q: want http://host:port", baseURL)
	}
	if err := prepareDir(dst); err != nil {
		return Manifest{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.JoinPath("/api/backup").String(), nil)
	if err != nil {
		return Manifest{}, err
	}
	status.Authorize(req, token)
	resp, err := hc.Do(req)
	if err != nil {
		return Manifest{}, fmt.Errorf("requesting a backup: %w", err)
	}
	defer resp.Body.Close()
	if err := status.Refusal(resp); err != nil {
		return Manifest{}, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return Manifest{}, fmt.Errorf("requesting a backup: %s: %s", resp.Status, msg)
	}
	var written []string
	m, err := extract(resp.Body, dst, &written)
	if err != nil {
		for _, p := range written {
			_ = os.Remove(p)
		}
		return Manifest{}, fmt.Errorf("receiving the backup: %w", err)
	}
	// The manifest stays in the backup: the engine started on it knows it
	// runs on a restored state (NoteRestore).
	body, err := json.Marshal(m)
	if err != nil {
		return Manifest{}, err
	}
	if _, err := writeFile(filepath.Join(dst, ManifestName), strings.NewReader(string(body)), &written); err != nil {
		for _, p := range written {
			_ = os.Remove(p)
		}
		return Manifest{}, err
	}
	if err := syncDir(dst); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// prepareDir makes dst, or checks that it is an empty directory.
func prepareDir(dst string) error {
	ents, err := os.ReadDir(dst)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dst, 0o700); err != nil {
			return fmt.Errorf("creating the backup directory: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("backup directory %s: %w", dst, err)
	case len(ents) > 0:
		return fmt.Errorf("backup directory %s is not empty: give a new or empty directory", dst)
	}
	return nil
}

func extract(r io.Reader, dst string, written *[]string) (Manifest, error) {
	tr := tar.NewReader(r)
	var m Manifest
	var files int
	var bytes int64
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return m, errors.New("the archive ended without its manifest: the backup was cut short")
		}
		if err != nil {
			return m, err
		}
		name := hdr.Name
		if hdr.Typeflag != tar.TypeReg || !plainName(name) || seen[name] || hdr.Size < 0 {
			return m, fmt.Errorf("unexpected member %q (type %c)", truncate(name), hdr.Typeflag)
		}
		seen[name] = true
		if name == ManifestName {
			if hdr.Size > 4<<10 {
				return m, fmt.Errorf("manifest of %d bytes", hdr.Size)
			}
			body, err := io.ReadAll(tr)
			if err != nil {
				return m, err
			}
			if err := json.Unmarshal(body, &m); err != nil {
				return m, fmt.Errorf("decoding the manifest: %w", err)
			}
			if m.Format != 1 || m.Files != files || m.Bytes != bytes {
				return m, fmt.Errorf("the manifest (format %d, %d files, %d bytes) does not match the archive (%d files, %d bytes)", m.Format, m.Files, m.Bytes, files, bytes)
			}
			if _, err := tr.Next(); err != io.EOF {
				return m, errors.New("members after the manifest")
			}
			return m, nil
		}
		if files++; files > MaxFiles {
			return m, fmt.Errorf("more than %d files", MaxFiles)
		}
		p := filepath.Join(dst, name)
		n, err := writeFile(p, tr, written)
		if err != nil {
			return m, err
		}
		if n != hdr.Size {
			return m, fmt.Errorf("%s: %d of %d bytes", name, n, hdr.Size)
		}
		bytes += n
	}
}

// plainName: a file name without directories, as a checkpoint holds.
func plainName(name string) bool {
	return name != "" && len(name) <= maxNameBytes && name != "." && name != ".." &&
		!strings.ContainsAny(name, `/\`+"\x00")
}

func writeFile(p string, r io.Reader, written *[]string) (int64, error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	*written = append(*written, p)
	n, err := io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("writing %s: %w", filepath.Base(p), err)
	}
	return n, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
