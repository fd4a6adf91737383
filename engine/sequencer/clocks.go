package sequencer

import "fmt"

// maxEffAt is the MaxEff of one recent entry, for ContextOffset lookups.
type maxEffAt struct {
	offset uint64
	maxEff uint64
}

func (s *Sequencer) remember(offset, maxEff uint64) {
	s.maxEffs[offset%uint64(len(s.maxEffs))] = maxEffAt{offset: offset, maxEff: maxEff}
}

// maxEffOf returns the MaxEff of the entry at offset (0 for offset 0): the
// highest eff a source that applied the log up to there has seen.
func (s *Sequencer) maxEffOf(offset uint64) (uint64, error) {
	if offset == 0 {
		return 0, nil
	}
	if c := s.maxEffs[offset%uint64(len(s.maxEffs))]; c.offset == offset {
		return c.maxEff, nil
	}
	e, err := s.log.Entry(offset)
	if err != nil {
		return 0, err
	}
	s.remember(offset, e.MaxEff)
	return e.MaxEff, nil
}

// originLastOf returns the highest eff of origin's entries, merged ones
// included: from the map once known, else from the log (which has every
// committed one; an origin with entries in groups not yet committed is in
// the map). The map is not bounded: one number per origin that wrote since
// the start, never a per-entry cost.
func (s *Sequencer) originLastOf(origin string) (uint64, error) {
	if eff, ok := s.originLast[origin]; ok {
		return eff, nil
	}
	eff, err := s.log.OriginEff(origin)
	if err != nil {
		return 0, fmt.Errorf("read the last eff of %s: %w", origin, err)
	}
	s.originLast[origin] = eff
	return eff, nil
}
