package status

import (
	"context"
	"net/http"
	"time"
)

// healthzTimeout bounds a liveness probe's wait on the Provider.
const healthzTimeout = 2 * time.Second

// handleHealthz is the liveness probe GET /healthz: 200 "ok" while the
// engine works (its status server answers only while every part runs, and
// the log store is healthy). It never depends on a Postgres being reachable:
// that is readiness, GET /api/status.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthzTimeout)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	l, err := s.opts.Provider.Log(ctx)
	switch {
	case err != nil:
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("not ok: reading the log state: " + err.Error() + "\n"))
	case !l.Healthy:
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("not ok: the log store is not running\n"))
	default:
		w.Write([]byte("ok\n"))
	}
}
