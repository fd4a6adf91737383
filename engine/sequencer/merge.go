package sequencer

import (
	"errors"
	"fmt"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// merge merges a group of items into one batch.
func (s *Sequencer) merge(seq uint64, items []Item) *group {
	g := &group{seq: seq, batch: &txlog.Batch{}, outs: make([]outcome, len(items))}
	changed := map[rowID]*merge.Row{}
	var order []rowID
	now := s.opts.Now()
	for i := range items {
		it := &items[i]
		g.outs[i].done = it.Done
		if err := s.brokenErr(it); err != nil {
			g.outs[i].err = err
			g.failures++
			continue
		}
		if it.Owner != "" {
			if err := s.checkOwner(it.Source, it.Owner); err != nil {
				g.outs[i].err = err
				g.failures++
				s.lg.Warn("sequencer: item failed", "source", it.Source, "err", err)
				continue
			}
		}
		if len(it.Tx.Ops) > 0 {
			e, cs, err := s.mergeItem(seq, now, it, changed, &order)
			switch {
			case err != nil && errors.Is(err, merge.ErrInvalidTx):
				// A deliberate refusal of this one transaction: its
				// position is stored, so the source moves past it.
				g.outs[i].err = fmt.Errorf("%w: %w", ErrRefused, err)
				g.refused++
				s.refuse(it, err)
			case err != nil:
				// A failure (the store, a bug): nothing of it is
				// stored, its position included, and no later item of
				// the source may store a position past it.
				g.outs[i].err = err
				g.failures++
				s.breakSource(it, err)
				continue
			case e != nil:
				g.batch.Append(e)
				g.outs[i].offset = e.Offset
				g.rows += uint64(len(e.Changes))
				g.noteConflicts(e.Offset, cs)
			}
		}
		if it.Source != "" && it.Position != nil {
			g.batch.SetPosition(it.Source, it.Position)
		}
		if it.Owner != "" {
			s.owners[it.Source] = it.Owner
			g.batch.SetOwner(it.Source, it.Owner)
		}
	}
	g.batch.Rows = make([]txlog.RowState, 0, len(order))
	for _, id := range order {
		g.batch.Rows = append(g.batch.Rows, txlog.RowState{Table: id.table, Key: id.key, Row: changed[id]})
	}
	s.groups = append(s.groups, pendingGroup{seq: seq, rows: order})
	return g
}

// checkOwner checks that source is unbound or bound to user. Bindings made
// by merged groups count before they are committed (a failed commit stops
// the sequencer).
func (s *Sequencer) checkOwner(source, user string) error {
	if source == "" {
		return fmt.Errorf("binding owner %q: item without a source", user)
	}
	cur, ok := s.owners[source]
	if !ok {
		var err error
		if cur, err = s.log.Owner(source); err != nil {
			return fmt.Errorf("binding %s: %w", source, err)
		}
	}
	if cur != "" && cur != user {
		return fmt.Errorf("binding %s to %q: %w", source, user, ErrOwnedByOther)
	}
	s.owners[source] = cur
	return nil
}

// mergeItem merges one item into the overlay and returns its entry, or nil
// if the transaction changed no row, and the cells concurrent writes lost.
func (s *Sequencer) mergeItem(seq uint64, now time.Time, it *Item, changed map[rowID]*merge.Row, order *[]rowID) (*txlog.Entry, []merge.Conflict, error) {
	tx := it.Tx
	tx.Now = uint64(max(0, now.UnixMicro()))
	tx.Offset = s.next
	if it.ContextOffset >= s.next {
		// The source saw entries this log does not have: the state was
		// restored from a backup older than what the source applied. Those
		// entries are gone from this log, so the source's write is counted
		// as concurrent with everything after the head (a smaller context
		// only keeps more tags alive: nothing is lost).
		if s.shouldWarn("context:"+tx.Origin, now) {
			s.lg.Warn("sequencer: a source's causal context is beyond the log head (state restored from an older backup?): counted as the head",
				"source", it.Source, "origin", tx.Origin, "context_offset", it.ContextOffset, "head", s.next-1)
		}
		it.ContextOffset = s.next - 1
	}
	tx.Context = it.ContextOffset
	var err error
	if tx.ContextEff, err = s.maxEffOf(it.ContextOffset); err != nil {
		return nil, nil, fmt.Errorf("merge %s: read the context's MaxEff: %w", tx.Origin, err)
	}
	last, err := s.originLastOf(tx.Origin)
	if err != nil {
		return nil, nil, fmt.Errorf("merge %s: %w", tx.Origin, err)
	}
	if s.ov.absent == nil {
		s.ov.absent = map[rowID]bool{}
	}
	clear(s.ov.absent)
	res, err := merge.Apply(&s.ov, last, tx)
	if err != nil {
		return nil, nil, fmt.Errorf("merge %s: %w", tx.Origin, err)
	}
	for _, c := range res.Changes {
		id := rowID{c.Table, c.Key}
		if _, ok := changed[id]; !ok {
			*order = append(*order, id)
		}
		changed[id] = c.State
		s.ov.rows[id] = ovRow{row: c.State, seq: seq}
	}
	if len(res.Changes) == 0 {
		return nil, nil, nil
	}
	commit := merge.Bound(tx.CommitTime, tx.Now)
	if commit < tx.CommitTime {
		s.warnClamped(now, tx)
	}
	e := &txlog.Entry{
		Offset:     s.next,
		Origin:     tx.Origin,
		Eff:        res.Eff,
		CommitTime: commit, // what the merge counted; sinks convert it to timestamptz
		MaxEff:     max(s.maxEff, res.Eff),
		Changes:    make([]txlog.RowChange, len(res.Changes)),
	}
	for i, c := range res.Changes {
		rc := &e.Changes[i]
		rc.Table, rc.Key = c.Table, c.Key
		if c.Live {
			rc.Row = c.Image
		} else {
			rc.Deleted = true
			rc.Row = c.State.Image() // the last image, so sinks can name the row
		}
	}
	e.EchoSafe = s.echoSafe(it.ContextOffset, tx.Origin, tx.Ops, &res)
	for _, c := range e.Changes {
		s.touches.set(rowID{c.Table, c.Key}, touch{offset: e.Offset, origin: tx.Origin, safe: e.EchoSafe})
	}
	s.next++
	s.maxEff = e.MaxEff
	s.originLast[tx.Origin] = res.Eff
	s.remember(e.Offset, e.MaxEff)
	return e, res.Conflicts, nil
}

// clampWarnEvery spaces the warnings about one origin's clamped clock: a
// client whose clock runs ahead does so for every transaction.
const clampWarnEvery = time.Minute

// warnClamped logs that tx's commit time was beyond the window and counted
// as the engine's time + merge.MaxAhead.
func (s *Sequencer) warnClamped(now time.Time, tx merge.Tx) {
	if !s.shouldWarn(tx.Origin, now) {
		return
	}
	s.lg.Warn("sequencer: commit timestamp ahead of the engine clock, counted as engine time + 1s; check the source's clock",
		"origin", tx.Origin, "commit_us", tx.CommitTime, "engine_us", tx.Now, "ahead_s", (tx.CommitTime-min(tx.Now, tx.CommitTime))/1_000_000)
}

// shouldWarn spaces warnings about one subject (an origin) by
// clampWarnEvery: a misbehaving source does so for every transaction.
func (s *Sequencer) shouldWarn(subject string, now time.Time) bool {
	if last, ok := s.clampWarned[subject]; ok && now.Sub(last) < clampWarnEvery && !now.Before(last) {
		return false
	}
	if s.clampWarned == nil || len(s.clampWarned) >= 4096 {
		s.clampWarned = map[string]time.Time{} // bounded: forgetting only repeats a warning
	}
	s.clampWarned[subject] = now
	return true
}
