package sequencer

import (
	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
)

type pendingGroup struct {
	seq  uint64
	rows []rowID
}

// forgetCommitted drops from the overlay the row states of committed groups
// (the log serves them now), unless a later group changed them again.
func (s *Sequencer) forgetCommitted() {
	done := s.committed.Load()
	n := 0
	for n < len(s.groups) && s.groups[n].seq <= done {
		g := s.groups[n]
		for _, id := range g.rows {
			if r, ok := s.ov.rows[id]; ok && r.seq == g.seq {
				delete(s.ov.rows, id)
			}
		}
		n++
	}
	clear(s.groups[:n])
	s.groups = s.groups[n:]
}

type rowID struct{ table, key string }

type ovRow struct {
	row *merge.Row
	seq uint64 // group that wrote it
}

// overlay is the merge.Store the sequencer merges against: the row states of
// groups not yet committed over the log's committed states.
type overlay struct {
	log  txlog.Log
	rows map[rowID]ovRow
	// absent collects, while one transaction is merged, the rows that had
	// no state at all: no entry ever changed them.
	absent map[rowID]bool
}

func (o *overlay) Row(table, key string) (*merge.Row, error) {
	if r, ok := o.rows[rowID{table, key}]; ok {
		return r.row, nil
	}
	r, err := o.log.Row(table, key)
	if err == nil && r == nil && o.absent != nil {
		o.absent[rowID{table, key}] = true
	}
	return r, err
}

func (o *overlay) Keys(table string) ([]string, error) {
	keys, err := o.log.Keys(table)
	if err != nil {
		return nil, err
	}
	var seen map[string]bool
	for id := range o.rows {
		if id.table != table {
			continue
		}
		if seen == nil {
			seen = make(map[string]bool, len(keys))
			for _, k := range keys {
				seen[k] = true
			}
		}
		if !seen[id.key] {
			seen[id.key] = true
			keys = append(keys, id.key)
		}
	}
	return keys, nil
}
