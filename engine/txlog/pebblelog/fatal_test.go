package pebblelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// A Pebble fatal error (a WAL write on a full disk, found by the nemesis
// run) stops the engine with one clear log line and status 1, not a panic.
func TestFatalStopsWithOneLine(t *testing.T) {
	for _, tc := range []struct{ msg, hint string }{
		{"pebble: fatal commit error: write /s/000029.log: no space left on device", "disk is full: free space"},
		{"pebble: corruption", "restart electric"},
	} {
		var buf bytes.Buffer
		code := -1
		type exited struct{}
		l := pebbleLogger{log: slog.New(slog.NewTextHandler(&buf, nil)), exit: func(c int) { code = c; panic(exited{}) }}
		func() {
			defer func() {
				if r := recover(); r != (exited{}) {
					t.Fatalf("Fatalf did not exit: %v", r)
				}
			}()
			l.Fatalf("%s", tc.msg)
		}()
		out := buf.String()
		if code != 1 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "level=ERROR") ||
			!strings.Contains(out, tc.msg) || !strings.Contains(out, tc.hint) {
			t.Errorf("exit %d, log %q: want status 1 and one ERROR line with %q and %q", code, out, tc.msg, tc.hint)
		}
	}
}
