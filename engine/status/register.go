package status

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register adds collectors of other parts of the engine to /metrics.
func (s *Server) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := s.registry.Register(c); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
	}
	return nil
}
