package pgsource

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

// slotHealth is what is known of the slot's WAL reservation (guarded by
// Source.mu). Postgres invalidates a slot that would keep more than
// max_slot_wal_keep_size of WAL (pg_replication_slots.wal_status = 'lost'):
// it can never stream again, and the changes it had not delivered are gone
// from WAL. setup then drops it and creates a new one; what was lost is
// reported until the rows are read again.
type slotHealth struct {
	walStatus     string // reserved, extended, unreserved, lost; "" unknown
	invalidations uint64 // slots found lost and recreated since start
	lost          string // what was lost and what to do; "" when nothing
}

// WAL statuses of pg_replication_slots.
const (
	walLost       = "lost"
	walUnreserved = "unreserved"
)

// slotWALStatus reads the slot's wal_status ("" when Postgres has none).
func (s *Source) slotWALStatus(ctx context.Context, conn *pgx.Conn) (string, error) {
	var st *string
	err := conn.QueryRow(ctx, `SELECT wal_status FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`, s.opts.Slot).Scan(&st)
	if err != nil {
		return "", fmt.Errorf("reading the wal_status of replication slot %s: %w", s.opts.Slot, err)
	}
	if st == nil {
		return "", nil
	}
	return *st, nil
}

// dropLostSlot drops an invalidated slot so setup creates a new one. It
// reports false when the slot is not lost.
func (s *Source) dropLostSlot(ctx context.Context, conn *pgx.Conn, confirmed pglogrepl.LSN) (bool, error) {
	st, err := s.slotWALStatus(ctx, conn)
	if err != nil {
		return false, err
	}
	s.noteWALStatus(st)
	if st != walLost {
		return false, nil
	}
	s.log.Error("replication slot was invalidated by Postgres (it held more WAL than max_slot_wal_keep_size): the changes it had not delivered are lost; dropping and recreating it",
		"slot", s.opts.Slot, "confirmed", confirmed.String())
	if _, err := conn.Exec(ctx, "SELECT pg_catalog.pg_drop_replication_slot($1)", s.opts.Slot); err != nil {
		return false, fmt.Errorf("dropping invalidated replication slot %s: %w", s.opts.Slot, err)
	}
	return true, nil
}

// noteSlotRecreated records that the slot was recreated at lsn after being
// lost at confirmed: changes committed in between never reached the log.
func (s *Source) noteSlotRecreated(confirmed, lsn pglogrepl.LSN) {
	msg := fmt.Sprintf("replication slot %s was invalidated by Postgres (max_slot_wal_keep_size) and recreated at %s on %s: changes committed on this Postgres after %s and before then never reached the engine; the connector's tables need a snapshot (their rows read again)",
		s.opts.Slot, lsn, time.Now().UTC().Format(time.RFC3339), confirmed)
	s.mu.Lock()
	s.slot.invalidations++
	s.slot.lost = msg
	s.slot.walStatus = ""
	s.mu.Unlock()
	s.log.Error("replication slot recreated after invalidation: rows changed meanwhile must be read again", "slot", s.opts.Slot, "lost_after", confirmed.String(), "recreated_at", lsn.String())
}

// noteWALStatus records a wal_status read; a slot close to invalidation
// (unreserved) is logged once per episode.
func (s *Source) noteWALStatus(st string) {
	s.mu.Lock()
	prev := s.slot.walStatus
	s.slot.walStatus = st
	s.mu.Unlock()
	if st == walUnreserved && prev != walUnreserved {
		s.log.Warn("replication slot holds more WAL than max_slot_wal_keep_size: Postgres will invalidate it at its next checkpoint unless the engine catches up", "slot", s.opts.Slot)
	}
}
