package pebblelog

import (
	"encoding/binary"
	"log/slog"
	"math"
	"slices"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// flattenContexts is the step from format 2 to 3 (issue 12, "flat
// entries"). Format 2 entries carried the log's per-origin clock, one
// counter per origin ever seen (about 68 KB per entry after 1,000 Satellite
// clients), and row states a removed clock as large. Format 3 contexts are
// offsets (see package merge, "Causal context"):
//
//   - every entry is rewritten without its clock and with MaxEff, the
//     highest Eff of the entries up to it;
//   - every tag and written cell (origin, eff) of a row state gets the
//     offset of the first entry of that origin with an Eff >= eff. Under format 2 a context
//     taken at offset k had seen the tag iff origin's clock at k was >= eff,
//     i.e. iff that entry is at or before k: the same deletes see the same
//     tags. (It is the entry that wrote the tag; a tag with no such entry,
//     which the sequencer never writes, gets the largest offset: no other
//     origin's context covers it, and it is logged.) Removed clocks are
//     dropped: no tag they cover can arrive after the upgrade, every new
//     entry has a higher offset than the deletes that made them;
//   - each origin's highest Eff is written under its own key (Log.OriginEff),
//     where the sequencer used to read the head entry's clock.
//
// It reads tags first, so that only the offsets they need are kept in
// memory (one per distinct tag), not one per entry.
func flattenContexts(st kvReader, b kvBatch, log *slog.Logger) error {
	type tagKey struct {
		origin string
		eff    uint64
	}
	wanted := map[string][]uint64{} // origin → tag effs, sorted
	err := forEachRecord(st, func(_ []byte, e *txlog.Entry, r *merge.Row) error {
		if r == nil {
			return nil
		}
		for _, t := range r.Tags {
			wanted[t.Origin] = append(wanted[t.Origin], t.Eff)
		}
		for _, c := range r.Cells {
			if c.Eff > 0 {
				wanted[c.Origin] = append(wanted[c.Origin], c.Eff)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for o, effs := range wanted {
		slices.Sort(effs)
		wanted[o] = slices.Compact(effs)
	}
	offsets := map[tagKey]uint64{}
	originEff := map[string]uint64{}
	var maxEff uint64
	err = forEachRecord(st, func(k []byte, e *txlog.Entry, r *merge.Row) error {
		if e == nil {
			return nil
		}
		maxEff = max(maxEff, e.Eff)
		e.MaxEff = maxEff
		originEff[e.Origin] = max(originEff[e.Origin], e.Eff)
		// Entries come in offset order and an origin's effs
		// increase: this entry is the first one at or above every
		// wanted eff up to its own.
		w := wanted[e.Origin]
		n := 0
		for n < len(w) && w[n] <= e.Eff {
			offsets[tagKey{e.Origin, w[n]}] = e.Offset
			n++
		}
		if n > 0 {
			wanted[e.Origin] = w[n:]
		}
		b.set(k, txlog.AppendEntry(nil, e))
		return nil
	})
	if err != nil {
		return err
	}
	orphans := 0
	err = forEachRecord(st, func(k []byte, e *txlog.Entry, r *merge.Row) error {
		if r == nil {
			return nil
		}
		for i, t := range r.Tags {
			off, ok := offsets[tagKey{t.Origin, t.Eff}]
			if !ok {
				off = math.MaxUint64
				orphans++
			}
			r.Tags[i].Offset = off
		}
		for col, c := range r.Cells {
			if c.Eff == 0 {
				continue // from an old row image: no write
			}
			off, ok := offsets[tagKey{c.Origin, c.Eff}]
			if !ok {
				off = math.MaxUint64
				orphans++
			}
			c.Offset = off
			r.Cells[col] = c
		}
		b.set(k, merge.AppendRow(nil, r))
		return nil
	})
	if err != nil {
		return err
	}
	if orphans > 0 {
		log.Warn("txlog upgrade: row tags or cells without the entry that wrote them; no other origin counts as having seen them", "count", orphans)
	}
	for o, eff := range originEff {
		b.set(originEffKey(o), binary.AppendUvarint(nil, eff))
	}
	return nil
}
