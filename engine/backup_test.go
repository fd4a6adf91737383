package engine_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/electric-sql/electric-go/engine/backup"
)

// Issue 14 point 5: a backup taken while the engine runs, restored after
// writes it does not hold. The engine started on it replicates on, and a
// subscriber that applied entries of the lost tail is rewound rather than
// left to skip the new entries that reuse their offsets (before: the write
// made after the restore never reached postgres_2).
func TestBackupRestoreAfterLaterWrites(t *testing.T) {
	c := newCluster(t, 2, kvSQL)
	live := t.TempDir()
	c.start(live)
	c.exec("postgres_1", "INSERT INTO public.kv (k, a) VALUES (1, 'before')")
	c.waitAll("SELECT k, a FROM public.kv ORDER BY k", "1|before")

	restored := t.TempDir()
	m, err := backup.Fetch(context.Background(), nil, c.statusURL(), "", filepath.Join(restored, "state"))
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if m.LogHead == 0 {
		t.Fatalf("backup manifest %+v", m)
	}
	// Written after the backup: postgres_2 applies it, the backup lacks it.
	c.exec("postgres_1", "INSERT INTO public.kv (k, a) VALUES (2, 'lost')")
	c.waitAll("SELECT k, a FROM public.kv ORDER BY k", "1|before", "2|lost")
	c.stop()

	c.start(restored)
	c.exec("postgres_1", "INSERT INTO public.kv (k, a) VALUES (3, 'after')")
	c.exec("postgres_2", "INSERT INTO public.kv (k, a) VALUES (4, 'back')")
	c.waitAll("SELECT k, a FROM public.kv WHERE k > 2 ORDER BY k", "3|after", "4|back")
	if !c.logBuf.Contains("rewinding its subscription") {
		t.Errorf("no log line for the subscriber found ahead of the restored log")
	}
	if !c.logBuf.Contains("engine state restored from a backup") {
		t.Errorf("no log line for the restore")
	}
}
