package sequencer

import "github.com/electric-sql/electric-go/engine/merge"

type clockAt struct {
	offset uint64
	clock  merge.Clock
}

func (s *Sequencer) remember(offset uint64, c merge.Clock) {
	s.clocks[offset%uint64(len(s.clocks))] = clockAt{offset: offset, clock: c}
}

// clockOf returns the Clock of the entry at offset.
func (s *Sequencer) clockOf(offset uint64) (merge.Clock, error) {
	if c := s.clocks[offset%uint64(len(s.clocks))]; c.offset == offset && c.clock != nil {
		return c.clock, nil
	}
	e, err := s.log.Entry(offset)
	if err != nil {
		return nil, err
	}
	s.remember(offset, e.Clock)
	return e.Clock, nil
}
