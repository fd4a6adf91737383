package withhold

// Forget drops every record of connector, recorded skips included, and
// stores the set: the connector was removed, nothing is withheld from it any
// more. It returns how many records went.
func (s *Set) Forget(connector string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.recs[connector])
	delete(s.recs, connector)
	s.counter(connector).Store(0)
	kept := s.skipped[:0]
	for _, r := range s.skipped {
		if r.Connector == connector {
			n++
			continue
		}
		kept = append(kept, r)
	}
	s.skipped = kept
	if n == 0 {
		return 0, nil
	}
	return n, s.saveLocked()
}
