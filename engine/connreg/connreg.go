// Package connreg is the engine's record of the Postgres connectors its
// state has served: name, connection URI, slot and publication, kept in
// OFFSET_STORAGE_FILE/connectors.json (mode 0600: the URIs carry
// passwords). It is what lets the engine find a connector that was taken
// out of CONNECTORS while its slot still holds WAL on that Postgres, and
// reach that Postgres to remove it (electric connectors remove). It owns
// that file only; it never connects to Postgres nor touches the log.
package connreg

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// File is the registry's file name in the state directory.
const File = "connectors.json"

// maxFileBytes bounds what Open reads: a registry of a few connectors is a
// few KiB; anything larger is not ours.
const maxFileBytes = 4 << 20

const version = 1

// Entry is one connector the state has served.
type Entry struct {
	Name        string    `json:"name"`
	URI         string    `json:"uri"`
	Slot        string    `json:"slot"`
	Publication string    `json:"publication"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"` // last start with it in CONNECTORS
}

type onDisk struct {
	Version    int     `json:"version"`
	Connectors []Entry `json:"connectors"`
}

// Registry is the set of entries, saved on every change.
type Registry struct {
	path string

	mu      sync.Mutex
	entries map[string]Entry
}

// Open loads the registry from dir (empty when the file does not exist).
func Open(dir string) (*Registry, error) {
	r := &Registry{path: filepath.Join(dir, File), entries: map[string]Entry{}}
	f, err := os.Open(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the connector registry: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the connector registry: %w", err)
	}
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("reading the connector registry %s: larger than %d bytes (move it away to start with an empty one)", r.path, maxFileBytes)
	}
	var d onDisk
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("reading the connector registry %s: %w (move it away to start with an empty one)", r.path, err)
	}
	if d.Version != version {
		return nil, fmt.Errorf("reading the connector registry %s: unknown version %d (this electric knows %d)", r.path, d.Version, version)
	}
	for _, e := range d.Connectors {
		if e.Name == "" {
			return nil, fmt.Errorf("reading the connector registry %s: an entry without a name", r.path)
		}
		r.entries[e.Name] = e
	}
	return r, nil
}

// Record adds or updates entries (FirstSeen kept, LastSeen set to now) and
// saves the registry.
func (r *Registry) Record(now time.Time, es ...Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range es {
		if old, ok := r.entries[e.Name]; ok {
			e.FirstSeen = old.FirstSeen
		} else {
			e.FirstSeen = now
		}
		e.LastSeen = now
		r.entries[e.Name] = e
	}
	return r.saveLocked()
}

// Get returns the entry of name.
func (r *Registry) Get(name string) (Entry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[name]
	return e, ok
}

// List returns every entry, by name.
func (r *Registry) List() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Entry, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Remove drops the entry of name and saves the registry.
func (r *Registry) Remove(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.entries[name]; !ok {
		return nil
	}
	delete(r.entries, name)
	return r.saveLocked()
}

// saveLocked writes the registry atomically (temporary file, fsync,
// rename).
func (r *Registry) saveLocked() error {
	d := onDisk{Version: version, Connectors: make([]Entry, 0, len(r.entries))}
	for _, e := range r.entries {
		d.Connectors = append(d.Connectors, e)
	}
	sort.Slice(d.Connectors, func(i, j int) bool { return d.Connectors[i].Name < d.Connectors[j].Name })
	b, err := json.MarshalIndent(d, "", " ")
	if err != nil {
		return fmt.Errorf("encoding the connector registry: %w", err)
	}
	tmp := r.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("writing the connector registry: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("writing the connector registry: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing the connector registry: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing the connector registry: %w", err)
	}
	if err := os.Rename(tmp, r.path); err != nil {
		return fmt.Errorf("writing the connector registry: %w", err)
	}
	return nil
}
