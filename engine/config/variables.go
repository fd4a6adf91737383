// The table of variables: names, flags, defaults and usage texts.

package config

import "strconv"

// Variable describes one configuration variable.
type Variable struct {
	// Name is the environment variable.
	Name string
	// Flag is the long flag of `electric serve` (empty: no flag).
	Flag string
	// Default is the value used when the variable is not set.
	Default string
	// Usage says what the variable means, in one line.
	Usage string
	// Secret values are masked when printed.
	Secret bool
	// Unused variables are accepted for compatibility with the seed and only
	// produce a warning when set.
	Unused bool
}

// Variable names.
const (
	EnvElectricHost        = "ELECTRIC_HOST"
	EnvConnectors          = "CONNECTORS"
	EnvReplicationPort     = "POSTGRES_REPLICATION_PORT"
	EnvReplicationPassword = "POSTGRES_REPLICATION_PASSWORD"
	EnvStatusPort          = "STATUS_PORT"
	EnvStatusAPIToken      = "STATUS_API_TOKEN"
	EnvWebsocketPort       = "WEBSOCKET_PORT"
	EnvListenAddress       = "LISTEN_ADDRESS"
	EnvTLSCertFile         = "TLS_CERT_FILE"
	EnvTLSKeyFile          = "TLS_KEY_FILE"
	EnvOffsetStorageFile   = "OFFSET_STORAGE_FILE"
	EnvMigrationsDir       = "MIGRATIONS_DIR"
	EnvMigrationsSuffix    = "MIGRATIONS_FILE_NAME_SUFFIX"
	EnvSigningKey          = "SATELLITE_AUTH_SIGNING_KEY"
	EnvSigningIssuer       = "SATELLITE_AUTH_SIGNING_ISS"
	EnvVerifyKeys          = "SATELLITE_AUTH_VERIFY_KEYS"
	EnvGlobalClusterID     = "GLOBAL_CLUSTER_ID"
	EnvRegionalID          = "ELECTRIC_REGIONAL_ID"
	EnvInstanceID          = "ELECTRIC_INSTANCE_ID"
	EnvLogLevel            = "LOG_LEVEL"
	EnvPublication         = "POSTGRES_PUBLICATION"
	EnvSlot                = "POSTGRES_SLOT"
	EnvSatelliteTables     = "SATELLITE_TABLES"
	EnvWebsocketMaxFrame   = "WEBSOCKET_MAX_FRAME_BYTES"
	EnvSatelliteMaxTx      = "SATELLITE_MAX_TRANSACTION_BYTES"
	EnvAuditMaxEvents      = "AUDIT_MAX_EVENTS"
	EnvAuditMaxAge         = "AUDIT_MAX_AGE"
	EnvVaxineHost          = "VAXINE_HOST"
	EnvVaxineAPIPort       = "VAXINE_API_PORT"
	EnvVaxineReplPort      = "VAXINE_REPLICATION_PORT"
	EnvVaxineConnTimeoutMs = "VAXINE_CONNECTION_TIMEOUT"
)

// Defaults of the engine's listeners and migration files (the seed's), for the
// engine and for every command that talks to it or starts it.
const (
	DefaultReplicationPort = 5433
	DefaultStatusPort      = 5050
	DefaultWebsocketPort   = 5133
	// DefaultMigrationsDir is where migrations are looked for when
	// MIGRATIONS_DIR is not set (relative to the working directory).
	DefaultMigrationsDir    = "migrations"
	DefaultMigrationsSuffix = "/postgres.sql"
)

// MinReplicationPasswordBytes is the shortest accepted
// POSTGRES_REPLICATION_PASSWORD.
const MinReplicationPasswordBytes = 16

// MinSigningKeyBytes is the shortest accepted SATELLITE_AUTH_SIGNING_KEY.
const MinSigningKeyBytes = 32

// MinStatusAPITokenBytes is the shortest accepted STATUS_API_TOKEN: 16
// random bytes (32 hex digits from `openssl rand -hex 16`) cannot be
// guessed through an API that rate-limits failed attempts.
const MinStatusAPITokenBytes = 16

// defaultConnectTimeoutMs is the seed's default for a connector URI's `timeout`.
const defaultConnectTimeoutMs = 5000

// Variables lists every variable electric reads, in the order it prints them.
// It returns a new slice on every call.
func Variables() []Variable {
	return []Variable{
		{Name: EnvElectricHost, Flag: "electric-host", Usage: "host name the Postgres instances use to connect back to electric (required when CONNECTORS is set)"},
		{Name: EnvConnectors, Flag: "connectors", Usage: "Postgres instances of the cluster: name=postgresql://user:pass@host:port/db;name2=…", Secret: true},
		{Name: EnvReplicationPort, Flag: "postgres-replication-port", Default: strconv.Itoa(DefaultReplicationPort), Usage: "port where electric is a logical-replication publisher for the Postgres subscriptions"},
		{Name: EnvReplicationPassword, Flag: "postgres-replication-password", Usage: "master secret, at least 16 bytes, of the passwords the connectors' subscriptions log in to the publisher with (unset: generated and kept in the state directory)", Secret: true},
		{Name: EnvStatusPort, Flag: "status-port", Default: strconv.Itoa(DefaultStatusPort), Usage: "port of the HTTP status, migrations and metrics API"},
		{Name: EnvStatusAPIToken, Flag: "status-api-token", Usage: "bearer token the status API requires on every route but /api/status, /healthz and /metrics, at least 16 bytes (unset: those routes answer loopback clients only)", Secret: true},
		{Name: EnvWebsocketPort, Flag: "websocket-port", Default: strconv.Itoa(DefaultWebsocketPort), Usage: "port of the Satellite WebSocket API (path /ws)"},
		{Name: EnvListenAddress, Flag: "listen-address", Usage: "IP address or host name the three ports listen on (unset: every interface, or 127.0.0.1 only with insecure Satellite auth)"},
		{Name: EnvTLSCertFile, Flag: "tls-cert-file", Usage: "PEM certificate (chain) for wss on the websocket port and https on the status port; set with TLS_KEY_FILE"},
		{Name: EnvTLSKeyFile, Flag: "tls-key-file", Usage: "PEM private key of TLS_CERT_FILE"},
		{Name: EnvOffsetStorageFile, Flag: "offset-storage-file", Default: "./offset_storage_data.dat", Usage: "directory of the engine's durable state (log, merged rows, source positions); keep it across restarts"},
		{Name: EnvMigrationsDir, Flag: "migrations-dir", Usage: "directory of migration folders"},
		{Name: EnvMigrationsSuffix, Flag: "migrations-file-name-suffix", Default: DefaultMigrationsSuffix, Usage: "appended to a migration name to find its SQL file"},
		{Name: EnvSigningKey, Flag: "satellite-auth-signing-key", Usage: "HS256 key for Satellite JWTs, at least 32 bytes (unset with the issuer: insecure auth)", Secret: true},
		{Name: EnvSigningIssuer, Flag: "satellite-auth-signing-iss", Usage: "issuer (iss claim) Satellite JWTs must carry"},
		{Name: EnvVerifyKeys, Flag: "satellite-auth-verify-keys", Usage: "comma-separated further HS256 keys accepted for Satellite JWTs but never used to sign, each at least 32 bytes (key rotation)", Secret: true},
		{Name: EnvGlobalClusterID, Flag: "global-cluster-id", Default: "dev.electric-db", Usage: "cluster id (logging metadata)"},
		{Name: EnvRegionalID, Flag: "electric-regional-id", Default: "region-1.dev.electric-db", Usage: "regional id, sent to Satellites in SatAuthResp.id"},
		{Name: EnvInstanceID, Flag: "electric-instance-id", Default: "instance-1.region-1.dev.electric-db", Usage: "instance id (logging metadata)"},
		{Name: EnvLogLevel, Flag: "log-level", Default: "info", Usage: "log level: debug, info, warn or error"},
		{Name: EnvPublication, Flag: "postgres-publication", Default: "all_tables", Usage: "publication electric reads on each connector"},
		{Name: EnvSlot, Flag: "postgres-slot", Default: "all_changes", Usage: "logical replication slot electric consumes on each connector"},
		{Name: EnvSatelliteTables, Flag: "satellite-tables", Usage: "comma-separated schema.table list streamed to Satellites, overriding the published migration (empty: the schema of 'electric migrate publish')"},
		{Name: EnvWebsocketMaxFrame, Flag: "websocket-max-frame-bytes", Default: "1048576", Usage: "largest Satellite WebSocket message accepted, in bytes"},
		{Name: EnvSatelliteMaxTx, Flag: "satellite-max-transaction-bytes", Default: "268435456", Usage: "largest Satellite client transaction accepted, in bytes; a client sending more is disconnected"},
		{Name: EnvAuditMaxEvents, Flag: "audit-max-events", Default: "100000", Usage: "conflicts and rejections kept for GET /api/conflicts and /api/rejected (oldest deleted first)"},
		{Name: EnvAuditMaxAge, Flag: "audit-max-age", Default: "720h", Usage: "conflicts and rejections older than this are deleted (a duration: 720h, 90m)"},
		{Name: EnvVaxineHost, Usage: "accepted for compatibility; unused (there is no Vaxine)", Unused: true},
		{Name: EnvVaxineAPIPort, Default: "8087", Usage: "accepted for compatibility; unused", Unused: true},
		{Name: EnvVaxineReplPort, Default: "8088", Usage: "accepted for compatibility; unused", Unused: true},
		{Name: EnvVaxineConnTimeoutMs, Default: "5000", Usage: "accepted for compatibility; unused", Unused: true},
	}
}

// Default is the default of the variable called name, "" when it has none or
// is not one of Variables.
func Default(name string) string {
	for _, v := range Variables() {
		if v.Name == name {
			return v.Default
		}
	}
	return ""
}
