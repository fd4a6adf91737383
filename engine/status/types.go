// Package status owns the engine's operator-facing HTTP API on STATUS_PORT:
// the seed's GET /api/status, the dashboard's snapshot endpoints
// (/api/connectors, /api/log, /api/sessions), the server-sent event stream
// (/api/events), Prometheus /metrics, and a typed Go client for all of them.
//
// It must not import the engine's component packages: the engine adapts its
// components to the Provider interface, whose snapshot types are defined
// here as plain JSON-tagged structs. It never touches Postgres or the log.
package status

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Provider is what the engine implements for the status API. Every method
// returns a snapshot; implementations should answer from cached state and
// return quickly, since /metrics calls all of them on every scrape.
type Provider interface {
	// Status is the readiness summary behind the seed's GET /api/status.
	Status(ctx context.Context) (Status, error)
	// Connectors lists the Postgres connectors, in a stable order.
	Connectors(ctx context.Context) ([]Connector, error)
	// Log describes the transaction log.
	Log(ctx context.Context) (Log, error)
	// Sessions lists the connected Satellite clients, in a stable order.
	Sessions(ctx context.Context) ([]Session, error)
}

// ConnectorState is the lifecycle state of a Postgres connector.
type ConnectorState string

// Connector states. Only StateReady counts as up for /api/status;
// StateMigration is reported there as the string "migration".
const (
	StateInit      ConnectorState = "init"
	StateSubscribe ConnectorState = "subscribe"
	StateReady     ConnectorState = "ready"
	StateMigration ConnectorState = "migration"
	// StateSnapshot: streaming, and reading the rows its tables held before
	// they were replicated (Connector.Snapshot has the progress).
	StateSnapshot ConnectorState = "snapshot"
	StateReinit   ConnectorState = "reinit"
	StateStopped  ConnectorState = "stopped"
	StateError    ConnectorState = "error"
)

// Status is the readiness summary: each connector's state by name, and
// whether the log store is healthy (the seed's "vaxine" key).
type Status struct {
	Connectors map[string]ConnectorState
	LogHealthy bool
}

// LSN is a Postgres log sequence number; it is written as "X/X" in JSON,
// as Postgres prints it.
type LSN uint64

func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint32(l)) }

// ParseLSN parses the "X/X" form.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("parsing lsn %q: missing '/'", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parsing lsn %q: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parsing lsn %q: %w", s, err)
	}
	return LSN(h<<32 | l), nil
}

// MarshalText writes the "X/X" form.
func (l LSN) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads the "X/X" form.
func (l *LSN) UnmarshalText(b []byte) error {
	v, err := ParseLSN(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Connector is one Postgres connector: the source side (logical replication
// slot the engine reads) and the subscriber side (the Postgres subscription
// that applies the log back into that instance).
type Connector struct {
	Name  string         `json:"name"`
	State ConnectorState `json:"state"`
	// Error is the last error when State is error or the connector is retrying.
	Error string `json:"error,omitempty"`
	// NotReadyReason says why the connector is not ready (State is not
	// ready): what is being set up, the error it is retrying, a subscriber
	// whose apply keeps failing or lags. Empty when ready.
	NotReadyReason string `json:"not_ready_reason,omitempty"`

	Slot         string `json:"slot"`
	ConfirmedLSN LSN    `json:"confirmed_lsn"` // confirmed_flush_lsn acked to Postgres
	FlushedLSN   LSN    `json:"flushed_lsn"`   // highest commit end LSN received from the slot
	// WALRetainedBytes is pg_current_wal_lsn() - restart_lsn of the slot.
	WALRetainedBytes int64 `json:"wal_retained_bytes"`
	// WALStatus is the slot's pg_replication_slots.wal_status (reserved,
	// extended, unreserved: about to be invalidated, lost); empty if unknown.
	WALStatus string `json:"wal_status,omitempty"`
	// SlotInvalidations counts slots Postgres invalidated that the engine
	// recreated since it started; SlotLost says what that lost and what to do.
	SlotInvalidations uint64 `json:"slot_invalidations"`
	SlotLost          string `json:"slot_lost,omitempty"`
	// SourceLagBytes is pg_current_wal_lsn() - ConfirmedLSN.
	SourceLagBytes int64 `json:"source_lag_bytes"`
	// SourceLagSeconds is how far behind the source the engine is in time
	// (now - commit time of the oldest transaction not yet durable), 0 when caught up.
	SourceLagSeconds float64 `json:"source_lag_seconds"`
	// LastTxTime is the commit time of the last transaction received; nil if none.
	LastTxTime   *time.Time `json:"last_tx_time,omitempty"`
	Transactions uint64     `json:"transactions"`  // received from the source since start
	TxPerSecond  float64    `json:"tx_per_second"` // recent rate of Transactions

	// Snapshot is the progress of reading existing rows; nil before the
	// first pass started.
	Snapshot *Snapshot `json:"snapshot,omitempty"`

	Subscriber Subscriber `json:"subscriber"`
}

// Snapshot is how far a connector is in reading the rows its replicated
// tables held before they were replicated.
type Snapshot struct {
	Active         bool    `json:"active"` // reading now: the connector is not ready
	Done           bool    `json:"done"`   // every replicated table was read
	Table          string  `json:"table,omitempty"`
	Tables         int     `json:"tables"`       // read in full in the current (or last) pass
	TablesTotal    int     `json:"tables_total"` // to read in that pass
	Rows           uint64  `json:"rows"`         // read in all
	ElapsedSeconds float64 `json:"elapsed_seconds"`
}

// Subscriber is the apply side of a connector: how far the Postgres
// subscription has applied the log.
type Subscriber struct {
	State         string `json:"state"` // e.g. "streaming", "waiting", "stopped"
	AppliedOffset uint64 `json:"applied_offset"`
	AppliedLSN    LSN    `json:"applied_lsn"`
	LagEntries    uint64 `json:"lag_entries"` // log head - AppliedOffset
	// ApplyErrors counts the subscription's apply errors
	// (pg_stat_subscription_stats.apply_error_count, Postgres 15+).
	ApplyErrors int64 `json:"apply_errors"`
	// WithheldRows counts the rows held back from this subscriber because
	// its Postgres cannot apply them (listed with their error by the
	// engine's withheld set).
	WithheldRows int `json:"withheld_rows"`
}

// Log describes the transaction log.
type Log struct {
	Head             uint64  `json:"head"` // offset of the last committed entry, 0 when empty
	SizeBytes        int64   `json:"size_bytes"`
	EntriesPerSecond float64 `json:"entries_per_second"`
	Healthy          bool    `json:"healthy"`
}

// Session is one connected Satellite client.
type Session struct {
	ClientID       string    `json:"client_id"`
	User           string    `json:"user"`
	RemoteAddr     string    `json:"remote_addr"`
	ConnectedSince time.Time `json:"connected_since"`
	State          string    `json:"state"` // e.g. "authenticating", "replicating", "stopped"
	// InboundLSN is the last client LSN the engine made durable, as the
	// client encodes it; OutboundLSN the last log position sent to it.
	InboundLSN     string  `json:"inbound_lsn"`
	OutboundLSN    string  `json:"outbound_lsn"`
	OutboundOffset uint64  `json:"outbound_offset"`
	TxIn           uint64  `json:"tx_in"`  // transactions received from the client
	TxOut          uint64  `json:"tx_out"` // transactions sent to the client
	LagEntries     uint64  `json:"lag_entries"`
	LagSeconds     float64 `json:"lag_seconds"`
}

// ConnectorsResponse is the body of GET /api/connectors.
type ConnectorsResponse struct {
	Connectors []Connector `json:"connectors"`
}

// SessionsResponse is the body of GET /api/sessions.
type SessionsResponse struct {
	Sessions []Session `json:"sessions"`
}

// Event kinds.
const (
	KindConnector = "connector" // connector state changes
	KindSession   = "session"   // Satellite sessions coming and going
	KindMigration = "migration"
	KindError     = "error"
)

// Event is one entry of the /api/events stream.
type Event struct {
	ID        uint64    `json:"id"` // assigned by Events.Publish, increasing from 1
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	Connector string    `json:"connector,omitempty"`
	Session   string    `json:"session,omitempty"`
	Message   string    `json:"message"`
}
