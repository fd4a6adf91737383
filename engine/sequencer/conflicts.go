package sequencer

import "github.com/electric-sql/electric-go/engine/merge"

// Conflict is a cell a concurrent write lost (merge.Conflict) in the log
// entry at Offset.
type Conflict struct {
	Offset uint64
	merge.Conflict
}

// noteConflicts keeps the conflicts of the entry at offset for the group's
// OnConflicts call, made once the group is durable.
func (g *group) noteConflicts(offset uint64, cs []merge.Conflict) {
	for _, c := range cs {
		g.conflicts = append(g.conflicts, Conflict{Offset: offset, Conflict: c})
	}
}

// reportConflicts hands a committed group's conflicts to Options.OnConflicts.
func (s *Sequencer) reportConflicts(g *group) {
	if len(g.conflicts) > 0 && s.opts.OnConflicts != nil {
		s.opts.OnConflicts(g.conflicts)
	}
}
