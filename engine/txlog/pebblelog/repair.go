package pebblelog

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// repairClocks is the step from format 1 to 2. Format 1 took a source's
// commit timestamp as it came: one far in the future (a client sent
// 18446744073709551 ms) poisoned every later effective timestamp and ended
// in a "timestamp overflow" that stopped the Postgres connectors on every
// restart. Format 2 states hold no timestamp beyond the engine's time +
// merge.MaxAhead except by the +1 steps of causality (see package merge,
// "Bounded clocks").
//
// The step moves every timestamp above limit (the upgrade time + MaxAhead)
// to just above the highest one at or below it: the n poisoned values, in
// their order, become base+1 … base+n, base = max(highest sane value, the
// upgrade time − n). The map is strictly increasing over all stored
// values, so every comparison the merge makes (which cell wins, which tag a
// delete has seen) and so every row comes out as before: the repair keeps
// what was merged, it does not re-decide it. It rewrites entries (Eff and
// a poisoned CommitTime, which becomes the entry's new Eff) and row states
// (cell and tag timestamps); positions hold no timestamps. The per-origin
// clocks of format 2 entries and the removed clocks of its row states are
// dropped by the next step (flatten.go), so this one leaves them out: the
// records it rewrites are in the current encodings, which that step reads
// too.
//
// What it cannot restore: conflicts the poisoned writer won before the
// upgrade stay won (that is the merged state every replica holds; the
// repair only stops it winning later ones); the source's raw commit time
// of a poisoned entry is gone; Satellites keep the effective timestamps
// they already received as commit timestamps of old transactions; and a
// value poisoned but still within the window is left alone.
func repairClocks(now time.Time) upgradeStep {
	return func(st kvReader, b kvBatch, _ *slog.Logger) error {
		nowUs := uint64(max(0, now.UnixMicro()))
		limit := merge.Bound(merge.MaxTimestamp, nowUs) // now + MaxAhead
		poisoned := map[uint64]struct{}{}
		var sane uint64
		see := func(v uint64) {
			if v > limit {
				poisoned[v] = struct{}{}
			} else {
				sane = max(sane, v)
			}
		}
		err := forEachRecord(st, func(_ []byte, e *txlog.Entry, r *merge.Row) error {
			if e != nil {
				see(e.Eff)
				return nil
			}
			for _, c := range r.Cells {
				see(c.Eff)
			}
			for _, t := range r.Tags {
				see(t.Eff)
			}
			return nil
		})
		if err != nil || len(poisoned) == 0 {
			return err
		}
		order := make([]uint64, 0, len(poisoned))
		for v := range poisoned {
			order = append(order, v)
		}
		slices.Sort(order)
		n := uint64(len(order))
		base := sane
		if nowUs > n {
			base = max(base, nowUs-n)
		}
		to := make(map[uint64]uint64, len(order))
		for i, v := range order {
			to[v] = base + 1 + uint64(i)
		}
		fix := func(v *uint64) bool {
			if w, ok := to[*v]; ok {
				*v = w
				return true
			}
			return false
		}
		return forEachRecord(st, func(k []byte, e *txlog.Entry, r *merge.Row) error {
			if e != nil {
				changed := fix(&e.Eff)
				if e.CommitTime > limit {
					e.CommitTime = e.Eff
					changed = true
				}
				if changed {
					b.set(k, txlog.AppendEntry(nil, e))
				}
				return nil
			}
			changed := false
			for col, c := range r.Cells {
				if fix(&c.Eff) {
					r.Cells[col] = c
					changed = true
				}
			}
			for i := range r.Tags {
				changed = fix(&r.Tags[i].Eff) || changed
			}
			if changed {
				b.set(k, merge.AppendRow(nil, r))
			}
			return nil
		})
	}
}

// forEachRecord decodes every entry (e set) and row state (r set) of st and
// calls fn with a copy of its key. It reads the encodings of every format
// (upgrade steps run on older states; a step may have rewritten some
// records in the current encoding before a crash stopped the next one).
func forEachRecord(st kvReader, fn func(k []byte, e *txlog.Entry, r *merge.Row) error) error {
	err := st.scan([]byte{prefixEntry}, []byte{prefixEntry + 1}, func(k, v []byte) error {
		e, err := txlog.DecodeEntry(v)
		if err != nil {
			e, err = txlog.DecodeLegacyEntry(v)
		}
		if err != nil {
			return fmt.Errorf("entry %x: %w", k, err)
		}
		return fn(slices.Clone(k), e, nil)
	})
	if err != nil {
		return err
	}
	return st.scan([]byte{prefixRow}, []byte{prefixRow + 1}, func(k, v []byte) error {
		r, err := merge.UnmarshalRow(v)
		if err != nil {
			r, err = merge.UnmarshalLegacyRow(v)
		}
		if err != nil {
			return fmt.Errorf("row %q: %w", k, err)
		}
		return fn(slices.Clone(k), nil, r)
	})
}
