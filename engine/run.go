// Package engine wires the replication engine's parts (sources, merge, txlog,
// publisher, Satellite sessions, status API) together from a Config.
package engine

import (
	"context"
	"errors"
	"log/slog"

	"github.com/electric-sql/electric-go/engine/config"
)

// Run runs the engine until ctx is done or a part fails.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	return errors.New("the replication engine is not built yet")
}
