package connreg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRegistryRoundTrip(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := r.Record(t0, Entry{Name: "a", URI: "postgresql://u:secret@h/a", Slot: "all_changes", Publication: "all_tables"}, Entry{Name: "b", URI: "postgresql://h/b"}); err != nil {
		t.Fatal(err)
	}
	t1 := t0.Add(time.Hour)
	if err := r.Record(t1, Entry{Name: "a", URI: "postgresql://u:new@h/a"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, File))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600: the URIs carry passwords", fi.Mode().Perm())
	}
	r2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, ok := r2.Get("a")
	if !ok || a.URI != "postgresql://u:new@h/a" || !a.FirstSeen.Equal(t0) || !a.LastSeen.Equal(t1) {
		t.Errorf("a after reopen: %+v", a)
	}
	if l := r2.List(); len(l) != 2 || l[0].Name != "a" || l[1].Name != "b" {
		t.Errorf("list: %+v", l)
	}
	if err := r2.Remove("b"); err != nil {
		t.Fatal(err)
	}
	r3, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r3.Get("b"); ok {
		t.Errorf("b still there after Remove")
	}
}

func TestRegistryRefusesForeignFiles(t *testing.T) {
	for name, body := range map[string]string{
		"not json":      "{",
		"other version": `{"version": 9, "connectors": []}`,
		"no name":       `{"version": 1, "connectors": [{"uri": "x"}]}`,
		"too large":     `{"version": 1, "connectors": [], "x": "` + strings.Repeat("y", maxFileBytes) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, File), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "connector registry") {
				t.Errorf("Open: want an error naming the registry, got %v", err)
			}
		})
	}
}
