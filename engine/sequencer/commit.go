package sequencer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/electric-sql/electric-go/engine/txlog"
)

// group is one merged group on its way to the committer.
type group struct {
	seq            uint64
	batch          *txlog.Batch
	outs           []outcome
	rows, failures uint64
	conflicts      []Conflict
	refused        uint64
}

type outcome struct {
	done   func(uint64, error)
	offset uint64
	err    error
}

// Run processes items until ctx is done or the log fails. Items still
// queued when it returns are failed with its error; items already merged are
// committed (or failed) first.
func (s *Sequencer) Run(ctx context.Context) (err error) {
	s.runMu.Lock()
	if s.started {
		s.runMu.Unlock()
		return errors.New("sequencer: Run called twice")
	}
	s.started = true
	s.runMu.Unlock()
	defer func() { s.stop(err) }()

	if err := s.init(); err != nil {
		return err
	}
	s.setRunning(true)
	defer s.setRunning(false)
	s.lg.Info("sequencer started", "head", s.next-1, "origins", len(s.originLast))

	// One group waits while one commits: enough to overlap, and it bounds
	// the memory of merged but uncommitted groups.
	toCommit := make(chan *group, 1)
	failed := make(chan struct{})
	var commitErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		commitErr = s.committer(toCommit, failed)
	}()
	defer func() {
		close(toCommit)
		wg.Wait()
		if commitErr != nil {
			err = commitErr
		}
	}()

	var seq uint64
	var items []Item
	for {
		if err := ctx.Err(); err != nil {
			return err // stop before taking more work
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-failed:
			return nil // commitErr is returned by the deferred func
		case <-s.ready:
		}
		items = s.take(items[:0])
		if len(items) == 0 {
			continue
		}
		s.forgetCommitted()
		seq++
		g := s.merge(seq, items)
		clear(items) // drop references to items now owned by g
		select {
		case toCommit <- g:
		case <-failed:
			s.finish(g, fmt.Errorf("sequencer: %w (an earlier commit failed)", ErrStopped))
			return nil
		}
	}
}

// committer commits groups in order and then reports their items done. After
// a failed commit it fails every later group without writing it.
func (s *Sequencer) committer(in <-chan *group, failed chan struct{}) error {
	var ferr error
	for g := range in {
		if ferr != nil {
			s.finish(g, ferr)
			continue
		}
		start := time.Now()
		if err := s.log.Commit(g.batch); err != nil {
			ferr = fmt.Errorf("sequencer: commit: %w", err)
			s.lg.Error("sequencer: commit failed; stopping", "err", err)
			close(failed)
			s.finish(g, ferr)
			continue
		}
		dur := time.Since(start)
		s.committed.Store(g.seq)
		s.statusMu.Lock()
		s.status.Items += uint64(len(g.outs))
		s.status.Entries += uint64(len(g.batch.Entries))
		s.status.Rows += g.rows
		s.status.Failed += g.failures
		s.status.Refused += g.refused
		s.status.Commits++
		s.status.LastBatch = len(g.outs)
		s.status.LastCommitDur = dur
		s.statusMu.Unlock()
		s.finish(g, nil)
		s.reportConflicts(g)
	}
	return ferr
}

// finish calls every Done of g: with err if the group failed as a whole.
func (s *Sequencer) finish(g *group, err error) {
	for _, o := range g.outs {
		if o.done == nil {
			continue
		}
		if err != nil {
			o.done(0, err)
		} else {
			o.done(o.offset, o.err)
		}
	}
}
