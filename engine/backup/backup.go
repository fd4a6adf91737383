// Package backup carries a consistent copy of a running engine's state to
// the operator (issue 14 point 5): the status API's GET /api/backup
// (Handler) streams a tar of a checkpoint of the log (entries, row states,
// positions, owners) plus the engine's own files of its state directory
// (the replication master secret); Fetch writes it into a local directory
// that an engine is started on to restore it (OFFSET_STORAGE_FILE).
//
// It owns the archive and its checks only: the consistency of the copy is
// the log's (pebblelog.Log.Checkpoint), and what an engine does when its
// state is older than what its Postgres and clients have seen is the
// engine's (README "Backup and restore").
package backup

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ManifestName is the archive's last member: it says what the backup holds,
// and a backup without it was cut short.
const ManifestName = "ELECTRIC_BACKUP.json"

// HeadHeader carries the log head of the backup in the response.
const HeadHeader = "Electric-Log-Head"

// tmpPrefix names the checkpoint directories Handler makes in the state
// directory; CleanTemp removes those a crash left.
const tmpPrefix = "backup.tmp-"

// Bounds Fetch holds the engine's archive to.
const (
	MaxFiles     = 100_000
	maxNameBytes = 255
)

// Manifest describes a backup.
type Manifest struct {
	Format  int       `json:"format"`   // 1
	LogHead uint64    `json:"log_head"` // the last entry the backup holds
	Files   int       `json:"files"`    // members before the manifest
	Bytes   int64     `json:"bytes"`    // their total size
	TakenAt time.Time `json:"taken_at"`
}

// Handler serves GET /api/backup: one backup at a time (409 otherwise).
type Handler struct {
	// Checkpoint writes a consistent copy of the log into dir (which must
	// not exist) and returns its head: pebblelog.Log.Checkpoint.
	Checkpoint func(dir string) (uint64, error)
	// StateDir is the engine's state directory: the checkpoint is made in
	// a temporary directory inside it (same file system: Pebble links its
	// tables rather than copying them) and removed once sent.
	StateDir string
	// Extra names files of StateDir sent along when they exist (the
	// replication secret: without it a restored engine would generate
	// another and rewrite every subscription's password).
	Extra  []string
	Logger *slog.Logger

	busy atomic.Bool
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !h.busy.CompareAndSwap(false, true) {
		httpError(w, http.StatusConflict, "a backup is already being taken; retry when it is done")
		return
	}
	defer h.busy.Store(false)
	start := time.Now()
	tmp, err := os.MkdirTemp(h.StateDir, tmpPrefix)
	if err != nil {
		log.Error("backup failed", "err", err)
		httpError(w, http.StatusInternalServerError, "backup: "+err.Error())
		return
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "log")
	head, err := h.Checkpoint(dir)
	if err != nil {
		log.Error("backup failed", "err", err)
		httpError(w, http.StatusInternalServerError, "backup: "+err.Error())
		return
	}
	files, err := h.members(dir)
	if err != nil {
		log.Error("backup failed", "err", err)
		httpError(w, http.StatusInternalServerError, "backup: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set(HeadHeader, strconv.FormatUint(head, 10))
	m, err := writeArchive(w, files, head)
	if err != nil {
		// The status line is gone: the client sees an archive without
		// its manifest.
		log.Error("backup cut short while being sent", "log_head", head, "err", err)
		return
	}
	log.Info("backup taken", "log_head", head, "files", m.Files, "bytes", m.Bytes,
		"remote", r.RemoteAddr, "took", time.Since(start).Round(time.Millisecond))
}

// members lists the checkpoint's files and the extra files of the state
// directory that exist.
func (h *Handler) members(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range ents {
		if !e.Type().IsRegular() {
			return nil, fmt.Errorf("checkpoint holds %s, not a regular file", e.Name())
		}
		files = append(files, filepath.Join(dir, e.Name()))
	}
	for _, name := range h.Extra {
		p := filepath.Join(h.StateDir, name)
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	return files, nil
}

func writeArchive(w io.Writer, files []string, head uint64) (Manifest, error) {
	tw := tar.NewWriter(w)
	m := Manifest{Format: 1, LogHead: head, TakenAt: time.Now().UTC()}
	for _, p := range files {
		n, err := addFile(tw, p)
		if err != nil {
			return m, err
		}
		m.Files++
		m.Bytes += n
	}
	body, err := json.Marshal(m)
	if err != nil {
		return m, err
	}
	if err := tw.WriteHeader(&tar.Header{Name: ManifestName, Mode: 0o600, Size: int64(len(body)), ModTime: m.TakenAt, Typeflag: tar.TypeReg}); err != nil {
		return m, err
	}
	if _, err := tw.Write(body); err != nil {
		return m, err
	}
	return m, tw.Close()
}

func addFile(tw *tar.Writer, path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	hdr := &tar.Header{Name: filepath.Base(path), Mode: 0o600, Size: st.Size(), ModTime: st.ModTime(), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return 0, err
	}
	n, err := io.Copy(tw, f)
	if err != nil {
		return n, fmt.Errorf("sending %s: %w", filepath.Base(path), err)
	}
	return n, nil
}

// RestoredName is what MarkRestored renames a backup's manifest to once an
// engine has started on it.
const RestoredName = "ELECTRIC_BACKUP.restored.json"

// PendingRestore reports whether stateDir is a backup no engine has
// started on yet (its manifest, written by Fetch, is there). Nil: not a
// fresh restore. The engine records the restore in its state, then calls
// MarkRestored, so that a crash in between only records it again.
func PendingRestore(stateDir string) (*Manifest, error) {
	p := filepath.Join(stateDir, ManifestName)
	body, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the backup manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("reading the backup manifest %s: %w", p, err)
	}
	return &m, nil
}

// MarkRestored records that an engine has started on the backup in
// stateDir: PendingRestore reports nothing from then on.
func MarkRestored(stateDir string) error {
	if err := os.Rename(filepath.Join(stateDir, ManifestName), filepath.Join(stateDir, RestoredName)); err != nil {
		return fmt.Errorf("marking the restored backup started: %w", err)
	}
	return nil
}

// CleanTemp removes the checkpoint directories a crashed engine left in its
// state directory. Call it before the engine serves.
func CleanTemp(stateDir string) error {
	ents, err := os.ReadDir(stateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cleaning backup leftovers: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), tmpPrefix) {
			if err := os.RemoveAll(filepath.Join(stateDir, e.Name())); err != nil {
				return fmt.Errorf("cleaning backup leftovers: %w", err)
			}
		}
	}
	return nil
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
