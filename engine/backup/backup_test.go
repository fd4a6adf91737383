package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/electric-sql/electric-go/engine/txlog/logtest"
	"github.com/electric-sql/electric-go/engine/txlog/pebblelog"
)

// A backup fetched through the handler is a log directory an engine opens
// as it is: the checkpoint's head, its entries, and the extra state files;
// the temporary checkpoint is gone from the state directory afterwards.
func TestFetchedBackupOpens(t *testing.T) {
	state := t.TempDir()
	l, err := pebblelog.Open(state, pebblelog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	logtest.CommitEntries(t, l, 30, 2)
	if err := os.WriteFile(filepath.Join(state, "replication.secret"), []byte("s3cret-s3cret-s3cret-s3cret-s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&Handler{Checkpoint: l.Checkpoint, StateDir: state, Extra: []string{"replication.secret", "absent"}})
	defer srv.Close()

	dst := filepath.Join(t.TempDir(), "b")
	m, err := Fetch(context.Background(), nil, srv.URL, "", dst)
	if err != nil {
		t.Fatal(err)
	}
	if m.LogHead != 30 || m.Files < 3 {
		t.Fatalf("manifest %+v", m)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "replication.secret")); err != nil || !strings.HasPrefix(string(b), "s3cret") {
		t.Fatalf("secret not in the backup: %q, %v", b, err)
	}
	ents, _ := os.ReadDir(state)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			t.Fatalf("checkpoint %s left in the state directory", e.Name())
		}
	}
	if n, err := PendingRestore(dst); err != nil || n == nil || n.LogHead != 30 {
		t.Fatalf("first start on the backup: PendingRestore = %+v, %v", n, err)
	}
	if err := MarkRestored(dst); err != nil {
		t.Fatal(err)
	}
	if n, err := PendingRestore(dst); err != nil || n != nil {
		t.Fatalf("second start: PendingRestore = %+v, %v", n, err)
	}
	r, err := pebblelog.Open(dst, pebblelog.Options{})
	if err != nil {
		t.Fatalf("opening the backup: %v", err)
	}
	defer r.Close()
	if r.Head() != 30 {
		t.Fatalf("backup head %d, want 30", r.Head())
	}
	logtest.ReadN(t, r.NewReader(0), 30)

	if _, err := Fetch(context.Background(), nil, srv.URL, "", dst); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("a backup into a non-empty directory: %v", err)
	}
}

// What the engine sends is checked like any peer's input.
func TestFetchRefusesHostileArchives(t *testing.T) {
	type member struct {
		name string
		typ  byte
		body string
	}
	manifest := func(files, bytes int) member {
		return member{ManifestName, tar.TypeReg, `{"format":1,"log_head":3,"files":` + strconv.Itoa(files) + `,"bytes":` + strconv.Itoa(bytes) + `}`}
	}
	cases := []struct {
		name    string
		members []member
		want    string
	}{
		{"path traversal", []member{{"../evil", tar.TypeReg, "x"}, manifest(1, 1)}, "unexpected member"},
		{"subdirectory", []member{{"a/b", tar.TypeReg, "x"}, manifest(1, 1)}, "unexpected member"},
		{"symlink", []member{{"MANIFEST", tar.TypeSymlink, ""}, manifest(1, 0)}, "unexpected member"},
		{"twice", []member{{"x", tar.TypeReg, "a"}, {"x", tar.TypeReg, "b"}, manifest(2, 2)}, "unexpected member"},
		{"no manifest", []member{{"x", tar.TypeReg, "a"}}, "cut short"},
		{"manifest mismatch", []member{{"x", tar.TypeReg, "a"}, manifest(2, 1)}, "does not match"},
		{"after manifest", []member{manifest(0, 0), {"x", tar.TypeReg, "a"}}, "after the manifest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, m := range tc.members {
				hdr := &tar.Header{Name: m.name, Typeflag: m.typ, Mode: 0o600, Size: int64(len(m.body))}
				if m.typ == tar.TypeSymlink {
					hdr.Linkname, hdr.Size = "/etc/passwd", 0
				}
				if err := tw.WriteHeader(hdr); err != nil {
					t.Fatal(err)
				}
				_, _ = tw.Write([]byte(m.body))
			}
			_ = tw.Close()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(buf.Bytes()) }))
			defer srv.Close()
			parent := t.TempDir()
			dst := filepath.Join(parent, "b")
			_, err := Fetch(context.Background(), nil, srv.URL, "", dst)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			ents, _ := os.ReadDir(dst)
			if len(ents) != 0 {
				t.Fatalf("files left after a refused archive: %v", ents)
			}
			if _, err := os.Stat(filepath.Join(parent, "evil")); err == nil {
				t.Fatal("a member was written outside the backup directory")
			}
		})
	}
}

// A failed checkpoint is an error with a reason, not an empty archive.
func TestHandlerCheckpointError(t *testing.T) {
	h := &Handler{Checkpoint: func(string) (uint64, error) { return 0, os.ErrPermission }, StateDir: t.TempDir()}
	srv := httptest.NewServer(h)
	defer srv.Close()
	_, err := Fetch(context.Background(), nil, srv.URL, "", filepath.Join(t.TempDir(), "b"))
	if err == nil || !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), "permission") {
		t.Fatalf("err = %v", err)
	}
}

func TestCleanTemp(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, tmpPrefix+"1", "log"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keep"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CleanTemp(dir); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "keep" {
		t.Fatalf("left %v", ents)
	}
}
