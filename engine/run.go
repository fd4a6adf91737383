// Package engine wires the replication engine's parts (sources, merge, txlog,
// publisher, Satellite sessions, status API) together from a Config. It owns
// the lifecycle of those parts and the cross-cutting flows between them
// (migrations, backfill, readiness); each part's logic lives in its package.
package engine

import (
	"context"
	"log/slog"

	"github.com/electric-sql/electric-go/engine/config"
)

// Run runs the engine until ctx is done or a part fails.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	e, err := New(cfg, log)
	if err != nil {
		return err
	}
	return e.Run(ctx)
}
