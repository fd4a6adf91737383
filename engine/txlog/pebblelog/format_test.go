package pebblelog

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/electric-sql/electric-go/engine/txlog"
)

// setMarker rewrites the format marker of a closed state directory, as a
// newer binary or a foreign tool would have left it.
func setMarker(t *testing.T, dir string, v []byte) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(metaKey, v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFormatTooNew(t *testing.T) {
	dir := copyDir(t, fixtureDir)
	setMarker(t, dir, formatValue(99))
	_, err := Open(dir, Options{})
	if !errors.Is(err, txlog.ErrFormatTooNew) {
		t.Fatalf("open of a format 99 state: %v", err)
	}
	for _, want := range []string{dir, "format 99", "formats 1 to 3", "OFFSET_STORAGE_FILE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestFormatMarkerForeign(t *testing.T) {
	for _, v := range []string{"electric-txlog format 0", "electric-txlog format 01", "electric-txlog format x", "someone else's"} {
		dir := copyDir(t, fixtureDir)
		setMarker(t, dir, []byte(v))
		if _, err := Open(dir, Options{}); !errors.Is(err, txlog.ErrForeignDir) {
			t.Errorf("marker %q: %v", v, err)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		v    int
		isOK bool
	}{
		{"electric-txlog format 1", 1, true},
		{"electric-txlog format 12", 12, true},
		{"electric-txlog format 0", 0, false},
		{"electric-txlog format -1", 0, false},
		{"electric-txlog format +2", 0, false},
		{"electric-txlog format ", 0, false},
		{"electric-txlog format 1 ", 0, false},
		{"", 0, false},
	} {
		v, ok := parseFormat([]byte(tc.in))
		if v != tc.v || ok != tc.isOK {
			t.Errorf("parseFormat(%q) = %d, %v", tc.in, v, ok)
		}
	}
}

// The upgrade machinery, with a made-up format 4 whose step adds a key: an
// old state is upgraded at Open one atomic step at a time, each with its
// marker, after which a binary that knows only format 3 refuses it; a
// failing or missing step leaves the state as the steps before it left it.
func TestFormatUpgrade(t *testing.T) {
	upgradedKey := []byte("\x00upgraded")
	open := func(dir string, f formats) (*Log, error) {
		st, err := openPebble(dir, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		l, err := openWith(dir, st, f, Options{})
		if err != nil {
			_ = st.close()
		}
		return l, err
	}
	v4 := func(step upgradeStep) formats {
		f := knownFormats(time.Now())
		f.current = 4
		if step != nil {
			f.steps[3] = step
		}
		return f
	}
	dir := copyDir(t, fixtureDir)

	if _, err := open(dir, v4(nil)); err == nil || !strings.Contains(err.Error(), "no upgrade from format 3 to 4") {
		t.Errorf("missing step: %v", err)
	}
	if m := marker(t, dir); m != "electric-txlog format 3" {
		t.Errorf("marker after a missing step = %q, want format 3 (the steps that exist are done)", m)
	}
	boom := errors.New("boom")
	_, err := open(dir, v4(func(st kvReader, b kvBatch, _ *slog.Logger) error {
		b.set(upgradedKey, []byte("half"))
		return boom
	}))
	if !errors.Is(err, boom) {
		t.Errorf("failing step: %v", err)
	}
	if m := marker(t, dir); m != "electric-txlog format 3" {
		t.Errorf("marker after a failed step = %q, want format 3 untouched", m)
	}
	l := openTest(t, dir, Options{})
	if v, _ := l.get(upgradedKey); v != nil {
		t.Errorf("a failed upgrade left %q", v)
	}
	checkFixture(t, l)
	l.Close()

	l, err = open(dir, v4(func(st kvReader, b kvBatch, _ *slog.Logger) error {
		head, err := st.last([]byte{prefixEntry}, []byte{prefixEntry + 1})
		if err != nil {
			return err
		}
		b.set(upgradedKey, head)
		return nil
	}))
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if v, _ := l.get(upgradedKey); !bytes.Equal(v, entryKey(3)) {
		t.Errorf("upgrade step wrote %q", v)
	}
	if m, _ := l.get(metaKey); !bytes.Equal(m, formatValue(4)) {
		t.Errorf("marker after upgrade = %q", m)
	}
	checkFixture(t, l)
	l.Close()
	if _, err := Open(dir, Options{}); !errors.Is(err, txlog.ErrFormatTooNew) {
		t.Errorf("format 3 binary on an upgraded state: %v", err)
	}
}

// marker reads the format marker of a closed state directory.
func marker(t *testing.T, dir string) string {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m, closer, err := db.Get(metaKey)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	return string(m)
}

// A new directory gets the current format.
func TestFormatNewDir(t *testing.T) {
	l := openTest(t, t.TempDir(), Options{})
	if m, err := l.get(metaKey); err != nil || !bytes.Equal(m, formatValue(FormatVersion)) {
		t.Errorf("marker of a new dir = %q, %v", m, err)
	}
}
