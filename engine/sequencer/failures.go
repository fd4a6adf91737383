package sequencer

import (
	"errors"
	"fmt"

	"github.com/electric-sql/electric-go/engine/merge"
)

// Failed and refused items (issue 12, "positions"). A source's stored
// position must never pass a transaction that is not in the log, so the
// sequencer tells two outcomes apart:
//
//   - A refusal: merge refused the transaction itself (merge.ErrInvalidTx:
//     malformed, or a timestamp beyond merge.MaxTimestamp). Taking it again
//     would refuse it again, so its position is stored (the source moves
//     past it), Done gets an error wrapping ErrRefused, the refusal is
//     logged, counted (Status.Refused) and passed to Options.OnRefused.
//     Sources treat it as done: a Postgres source confirms the LSN, a
//     Satellite session acks the client's transaction.
//   - A failure: anything else (reading the store, a context offset beyond
//     the head, a bug). Nothing of the item is stored, its position
//     included, and every later item of the same Source and Attempt fails
//     too, in this group and in later ones: they come after the failed one,
//     and storing one of their positions would skip it for good. The source
//     must start again from its stored position under a new Attempt (a
//     Postgres source stops with the error and re-reads from its confirmed
//     position when started again; a Satellite session is closed and the
//     client re-sends on its next session).

// ErrRefused is wrapped by the error Done gets for a refused transaction:
// the transaction is not in the log but its position is stored.
var ErrRefused = errors.New("transaction refused")

// ErrSourceFailed is wrapped by the error of an item that follows a failed
// item of the same source and attempt.
var ErrSourceFailed = errors.New("an earlier transaction of this source failed")

// Refusal describes a refused transaction for Options.OnRefused.
type Refusal struct {
	Source   string
	Position []byte // stored: the source moved past the transaction
	Tx       merge.Tx
	Err      error // wraps merge.ErrInvalidTx
}

type attemptKey struct {
	source  string
	attempt uint64
}

// brokenErr returns the error an item gets because an earlier item of its
// source and attempt failed, nil if none did.
func (s *Sequencer) brokenErr(it *Item) error {
	if it.Source == "" {
		return nil
	}
	cause, ok := s.broken[attemptKey{it.Source, it.Attempt}]
	if !ok {
		return nil
	}
	return fmt.Errorf("sequencer: %s: %w (%v); it must start again from its stored position", it.Source, ErrSourceFailed, cause)
}

// breakSource records that it failed: later items of its source and
// attempt fail until the source starts again under another attempt.
func (s *Sequencer) breakSource(it *Item, err error) {
	s.lg.Error("sequencer: transaction failed; later transactions of the source fail until it starts again from its stored position",
		"source", it.Source, "origin", it.Tx.Origin, "attempt", it.Attempt, "err", err)
	if it.Source == "" {
		return
	}
	if s.broken == nil {
		s.broken = map[attemptKey]error{}
	}
	// A source that broke in an earlier attempt and started again does
	// not need that record any more.
	for k := range s.broken {
		if k.source == it.Source {
			delete(s.broken, k)
		}
	}
	s.broken[attemptKey{it.Source, it.Attempt}] = err
}

// refuse logs a refused transaction and hands it to Options.OnRefused.
func (s *Sequencer) refuse(it *Item, err error) {
	s.lg.Warn("sequencer: transaction refused; its position is stored and the source goes on after it",
		"source", it.Source, "origin", it.Tx.Origin, "ops", len(it.Tx.Ops), "err", err)
	if s.opts.OnRefused != nil {
		s.opts.OnRefused(Refusal{Source: it.Source, Position: it.Position, Tx: it.Tx, Err: err})
	}
}
