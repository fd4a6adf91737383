package pebblelog

import (
	"bytes"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/electric-sql/electric-go/engine/txlog"
)

// The stored format version lives in the marker key as "electric-txlog
// format N". It stays text in the key format 1 already had, so that a binary
// of format 1 (which compares the whole value) refuses a newer state instead
// of misreading it, with a message naming both formats.
var metaKey = []byte("\x00meta")

const metaPrefix = "electric-txlog format "

// FormatVersion is the stored format this binary writes. Format 1 is the
// base: entries keyed 'e'+offset holding txlog.AppendEntry records, row
// states 'r'+table+NUL+key holding merge.AppendRow records, positions
// 'p'+source. Format 2 has the same records, with every timestamp within
// the engine's time + merge.MaxAhead (bounded clocks): its step repairs
// the timestamps a far-future commit time poisoned (repair.go). Format 3
// has flat causal contexts: entries carry MaxEff instead of a per-origin
// clock, tags carry the offset of the entry that wrote them, row states
// have no removed clock, and each origin's highest eff is kept under
// 'l'+origin (flatten.go). Source owners 'o'+source (holding the user id)
// came later under their own prefix: a store without them has no owners,
// and an older binary never reads the prefix, so they need no version of
// their own.
const FormatVersion = 3

// upgradeStep adds to b the writes that turn state of one format into the
// next. It reads the state as the earlier steps left it.
type upgradeStep func(st kvReader, b kvBatch, log *slog.Logger) error

// formats is what Open knows: the current version and the step from each
// older version v to v+1.
type formats struct {
	current int
	steps   map[int]upgradeStep
}

// knownFormats: format 1 is the base. A change of the stored format bumps
// FormatVersion and adds its step here. now is the upgrade time, which
// bounds the repaired timestamps of format 2.
func knownFormats(now time.Time) formats {
	return formats{current: FormatVersion, steps: map[int]upgradeStep{
		1: repairClocks(now),
		2: flattenContexts,
	}}
}

func formatValue(v int) []byte { return []byte(metaPrefix + strconv.Itoa(v)) }

// parseFormat returns the version in a marker value, false when the value
// is not a marker.
func parseFormat(meta []byte) (int, bool) {
	s, ok := strings.CutPrefix(string(meta), metaPrefix)
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || !bytes.Equal(formatValue(v), meta) {
		return 0, false
	}
	return v, true
}

// checkFormat makes the state in st of format f.current: it marks a new
// store, upgrades an older one in one atomic batch, and refuses a foreign
// store (txlog.ErrForeignDir) or one of a newer format (txlog.ErrFormatTooNew).
func checkFormat(dir string, st kvStore, f formats, log *slog.Logger) error {
	meta, err := st.get(metaKey)
	if err != nil {
		return fmt.Errorf("open txlog in %s: read format: %w", dir, err)
	}
	if meta == nil {
		// A new store, or someone else's Pebble: refuse the latter.
		var any bool
		if err := st.scan(nil, nil, func(k, v []byte) error { any = true; return errStopScan }); err != nil {
			return fmt.Errorf("open txlog in %s: %w", dir, err)
		}
		if any {
			return fmt.Errorf("open txlog in %s: %w (a store without the txlog format marker)", dir, txlog.ErrForeignDir)
		}
		b := st.newBatch(64)
		b.set(metaKey, formatValue(f.current))
		if err := b.commit(); err != nil {
			return fmt.Errorf("open txlog in %s: write format: %w", dir, err)
		}
		return nil
	}
	v, ok := parseFormat(meta)
	switch {
	case !ok:
		return fmt.Errorf("open txlog in %s: %w (format marker %q)", dir, txlog.ErrForeignDir, meta)
	case v > f.current:
		return fmt.Errorf("open txlog in %s: %w: the state is format %d, this electric reads formats 1 to %d; run the newer electric that wrote it, or point OFFSET_STORAGE_FILE at another directory",
			dir, txlog.ErrFormatTooNew, v, f.current)
	case v == f.current:
		return nil
	}
	// One atomic write per step, with the marker of the format it reaches:
	// a crash between steps leaves a state of the format in between, which
	// the next Open upgrades on from there.
	for from := v; from < f.current; from++ {
		step := f.steps[from]
		if step == nil {
			return fmt.Errorf("open txlog in %s: no upgrade from format %d to %d", dir, from, from+1)
		}
		b := st.newBatch(64)
		if err := step(st, b, log); err != nil {
			b.abandon()
			return fmt.Errorf("open txlog in %s: upgrade format %d to %d: %w", dir, from, from+1, err)
		}
		b.set(metaKey, formatValue(from+1))
		if err := b.commit(); err != nil {
			return fmt.Errorf("open txlog in %s: upgrade format %d to %d: %w", dir, from, from+1, err)
		}
		log.Info("txlog format upgraded", "dir", dir, "from", from, "to", from+1)
	}
	return nil
}
