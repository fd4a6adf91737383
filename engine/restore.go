package engine

import (
	"fmt"
	"log/slog"

	"github.com/electric-sql/electric-go/engine/backup"
	"github.com/electric-sql/electric-go/engine/satellite"
	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/engine/txlog/pebblelog"
)

// generationSource is where the log records the restores of its state:
// one fence (the head it was restored at) per restore.
const generationSource = "engine:generation"

// restoreGeneration returns the fences of the state's restores. At the
// first start on a backup (electric backup) it logs the restore and adds
// its fence, durably, before anything is served: Satellite clients that
// synced after the backup are then told apart (satellite generation.go).
func restoreGeneration(tl *pebblelog.Log, stateDir string, log *slog.Logger) ([]uint64, error) {
	raw, err := tl.Position(generationSource)
	if err != nil {
		return nil, fmt.Errorf("reading the state's restores: %w", err)
	}
	fences, ok := satellite.DecodeGeneration(raw)
	if !ok {
		return nil, fmt.Errorf("reading the state's restores: %d bytes stored under %s are not a list of offsets", len(raw), generationSource)
	}
	m, err := backup.PendingRestore(stateDir)
	if err != nil || m == nil {
		return fences, err
	}
	if len(fences) >= satellite.MaxGenerations {
		return nil, fmt.Errorf("this state was restored %d times: the most a log records", len(fences))
	}
	fences = append(fences, tl.Head())
	b := &txlog.Batch{}
	b.SetPosition(generationSource, satellite.EncodeGeneration(fences))
	if err := tl.Commit(b); err != nil {
		return nil, fmt.Errorf("recording the restore: %w", err)
	}
	if err := backup.MarkRestored(stateDir); err != nil {
		return nil, err
	}
	log.Warn("engine state restored from a backup: writes made after it are not in the log; subscribers that applied them are rewound to the log head, Satellite clients that synced after it get every entry since (see README, Backup and restore)",
		"backup_log_head", m.LogHead, "taken_at", m.TakenAt, "log_head", tl.Head(), "restores", len(fences))
	return fences, nil
}
