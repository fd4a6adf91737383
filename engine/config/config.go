// Package config owns electric's configuration: the environment variables of the
// seed (plus a few of our own), their defaults, how they are parsed and validated,
// and how the effective configuration is printed with its secrets masked.
//
// It reads nothing by itself: Load takes a lookup function, so the caller decides
// where values come from (the process environment, command-line flags that beat
// it, or a test table).
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/electric-sql/electric-go/engine/tlsconf"
)

// Config is electric's effective configuration.
type Config struct {
	// ElectricHost is the host name Postgres uses to connect back to electric's
	// publisher (it goes into CREATE SUBSCRIPTION … CONNECTION 'host=…').
	ElectricHost string
	// Connectors are the Postgres instances that are part of the cluster.
	Connectors []Connector
	// ReplicationPort is where electric acts as a logical-replication publisher.
	ReplicationPort int
	// ReplicationPassword is the master secret each connector's password at
	// the publisher derives from (empty: a generated one is kept in the
	// state directory).
	ReplicationPassword string
	// StatusPort serves the HTTP status, migrations and metrics API.
	StatusPort int
	// StatusAPIToken is the bearer token the status API requires on every
	// route but /api/status, /healthz and /metrics. Empty: those routes
	// answer loopback clients only.
	StatusAPIToken string
	// WebsocketPort serves the Satellite protocol on /ws.
	WebsocketPort int
	// ListenAddress is the IP address or host name the three listeners bind
	// to; empty means the default of ListenHost.
	ListenAddress string
	// TLSCertFile and TLSKeyFile, both set or neither, make the websocket
	// serve wss and the status API https.
	TLSCertFile string
	TLSKeyFile  string
	// OffsetStorageFile is where the engine's durable state (log, merged rows,
	// source positions) lives. See DataDir.
	OffsetStorageFile string
	// MigrationsDir is the directory of migration folders (may be empty).
	MigrationsDir string
	// MigrationsFileNameSuffix is appended to a migration name to find its SQL file.
	MigrationsFileNameSuffix string
	// SigningKey and SigningIssuer turn on JWT authentication of Satellites when
	// both are set; with neither, authentication is insecure (token = user id).
	SigningKey    string
	SigningIssuer string
	// VerifyKeys are further keys Satellite JWTs may be signed with, accepted
	// for verification only (key rotation).
	VerifyKeys []string
	// GlobalClusterID, RegionalID and InstanceID name this deployment. RegionalID
	// is sent to Satellites as SatAuthResp.id; the others are logging metadata.
	GlobalClusterID string
	RegionalID      string
	InstanceID      string
	// LogLevel is the minimum level of the engine's log.
	LogLevel slog.Level
	// Publication and Slot are the names electric uses on each connector for the
	// publication it reads and the logical replication slot it consumes.
	Publication string
	Slot        string
	// SatelliteTables lists the schema-qualified tables streamed to Satellites.
	// Empty means every replicated table that has a primary key.
	SatelliteTables []string
	// WebsocketMaxFrameBytes bounds one Satellite WebSocket message.
	WebsocketMaxFrameBytes int

	// Warnings are problems that do not stop electric (e.g. VAXINE_* variables
	// that are set but have no meaning here). The caller logs them.
	Warnings []string
}

// Connector is one entry of CONNECTORS: a named Postgres instance.
type Connector struct {
	// Name is the connector's name: its origin in the log and the name of the
	// subscription electric creates on that Postgres.
	Name string
	// URI is the connection string as given.
	URI      string
	Host     string
	Port     int
	DBName   string
	User     string
	Password string
	// ConnectTimeoutMs is the URI's `timeout` query parameter (milliseconds),
	// also used as connect_timeout of the reverse connection. Default 5000.
	ConnectTimeoutMs int
}

// MaskedURI is the connector's URI with its password replaced.
func (c Connector) MaskedURI() string { return maskURI(c.URI) }

// DataDir is the directory holding the engine's durable state: the path given
// by OFFSET_STORAGE_FILE itself, used as a directory. (The seed kept a single
// DETS file there; a volume mounted at that path keeps working.)
func (c Config) DataDir() string { return filepath.Clean(c.OffsetStorageFile) }

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
		{Name: EnvSatelliteTables, Flag: "satellite-tables", Usage: "comma-separated schema.table list streamed to Satellites (empty: every replicated table with a primary key)"},
		{Name: EnvWebsocketMaxFrame, Flag: "websocket-max-frame-bytes", Default: "1048576", Usage: "largest Satellite WebSocket message accepted, in bytes"},
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

var (
	connectorNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,62}$`)
	// Postgres accepts only lower-case letters, digits and underscores in slot names.
	slotNameRE = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)
	// Identifiers electric creates unquoted on each connector.
	identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
)

// Load builds the configuration from env (which reports a variable's value and
// whether it is set; an empty value counts as unset, as in the seed). It returns
// every problem found, one error per problem; the Config is only usable when
// the list is empty.
func Load(env func(string) (string, bool)) (Config, []error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	get := func(name string) string {
		if v, ok := env(name); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return Default(name)
	}
	port := func(name string) int {
		s := get(name)
		p, err := strconv.Atoi(s)
		if err != nil || p < 1 || p > 65535 {
			bad("%s=%q is not a port: use a number from 1 to 65535", name, s)
			return 0
		}
		return p
	}

	c := Config{
		ElectricHost:             get(EnvElectricHost),
		ReplicationPort:          port(EnvReplicationPort),
		ReplicationPassword:      get(EnvReplicationPassword),
		StatusPort:               port(EnvStatusPort),
		StatusAPIToken:           get(EnvStatusAPIToken),
		WebsocketPort:            port(EnvWebsocketPort),
		ListenAddress:            get(EnvListenAddress),
		TLSCertFile:              get(EnvTLSCertFile),
		TLSKeyFile:               get(EnvTLSKeyFile),
		OffsetStorageFile:        get(EnvOffsetStorageFile),
		MigrationsDir:            get(EnvMigrationsDir),
		MigrationsFileNameSuffix: get(EnvMigrationsSuffix),
		SigningKey:               get(EnvSigningKey),
		SigningIssuer:            get(EnvSigningIssuer),
		GlobalClusterID:          get(EnvGlobalClusterID),
		RegionalID:               get(EnvRegionalID),
		InstanceID:               get(EnvInstanceID),
		Publication:              get(EnvPublication),
		Slot:                     get(EnvSlot),
	}

	// The three listeners must not collide.
	ports := []struct {
		name string
		p    int
	}{{EnvWebsocketPort, c.WebsocketPort}, {EnvStatusPort, c.StatusPort}, {EnvReplicationPort, c.ReplicationPort}}
	for i := range ports {
		for j := i + 1; j < len(ports); j++ {
			if ports[i].p != 0 && ports[i].p == ports[j].p {
				bad("%s and %s are both %d: each listener needs its own port", ports[i].name, ports[j].name, ports[i].p)
			}
		}
	}

	if c.ListenAddress != "" {
		// [::1] as in a URL is ::1: the port is joined on at listen time.
		if a := strings.TrimSuffix(strings.TrimPrefix(c.ListenAddress, "["), "]"); net.ParseIP(a) != nil {
			c.ListenAddress = a
		}
		if err := checkListenAddress(c.ListenAddress); err != nil {
			bad("%s=%q %v", EnvListenAddress, c.ListenAddress, err)
		}
	}
	errs = append(errs, checkTLS(c.TLSCertFile, c.TLSKeyFile)...)

	conns, cerrs := ParseConnectors(get(EnvConnectors))
	c.Connectors = conns
	errs = append(errs, cerrs...)
	if len(c.Connectors) > 0 && c.ElectricHost == "" {
		bad("%s is not set: with CONNECTORS it is required, as the host the Postgres instances use to connect back to electric (e.g. localhost)", EnvElectricHost)
	}

	if c.ReplicationPassword != "" && len(c.ReplicationPassword) < MinReplicationPasswordBytes {
		bad("%s is %d bytes: it must be at least %d bytes", EnvReplicationPassword, len(c.ReplicationPassword), MinReplicationPasswordBytes)
	}

	switch {
	case c.SigningKey != "" && c.SigningIssuer == "":
		bad("%s is set but %s is not: set both for JWT authentication, or neither for insecure mode", EnvSigningKey, EnvSigningIssuer)
	case c.SigningKey == "" && c.SigningIssuer != "":
		bad("%s is set but %s is not: set both for JWT authentication, or neither for insecure mode", EnvSigningIssuer, EnvSigningKey)
	}
	if host, _ := c.ListenHost(); host == loopback && c.ElectricHost != "" && !isLoopback(c.ElectricHost) && len(c.Connectors) > 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s=%s is not a loopback address, but without %s electric listens on %s only: the Postgres subscriptions may not reach it; set %s", EnvElectricHost, c.ElectricHost, EnvSigningKey, loopback, EnvListenAddress))
	}
	if c.SigningKey != "" && len(c.SigningKey) < MinSigningKeyBytes {
		bad("%s is %d bytes: it must be at least %d bytes", EnvSigningKey, len(c.SigningKey), MinSigningKeyBytes)
	}
	if s := get(EnvVerifyKeys); s != "" {
		if c.SigningKey == "" {
			bad("%s is set but %s is not: verification keys only apply to JWT authentication", EnvVerifyKeys, EnvSigningKey)
		}
		n := 0
		for _, k := range strings.Split(s, ",") {
			k = strings.TrimSpace(k)
			if k == "" {
				continue
			}
			n++
			// Never print a key, even a bad one: say which entry it is.
			if len(k) < MinSigningKeyBytes {
				bad("%s entry %d is %d bytes: each key must be at least %d bytes", EnvVerifyKeys, n, len(k), MinSigningKeyBytes)
				continue
			}
			c.VerifyKeys = append(c.VerifyKeys, k)
		}
	}

	if t := c.StatusAPIToken; t != "" {
		// Never print the token, even a bad one.
		switch {
		case len(t) < MinStatusAPITokenBytes:
			bad("%s is %d bytes: it must be at least %d bytes (e.g. openssl rand -hex 16)", EnvStatusAPIToken, len(t), MinStatusAPITokenBytes)
		case strings.IndexFunc(t, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
			bad("%s holds spaces, control or non-ASCII characters: it is sent in an HTTP header, use printable ASCII (e.g. openssl rand -hex 16)", EnvStatusAPIToken)
		}
	}

	if lvl, err := ParseLogLevel(get(EnvLogLevel)); err != nil {
		bad("%s: %v", EnvLogLevel, err)
	} else {
		c.LogLevel = lvl
	}

	if !identRE.MatchString(c.Publication) {
		bad("%s=%q is not a valid publication name: use letters, digits and underscores", EnvPublication, c.Publication)
	}
	if !slotNameRE.MatchString(c.Slot) {
		bad("%s=%q is not a valid slot name: use lower-case letters, digits and underscores (at most 63)", EnvSlot, c.Slot)
	}

	if s := get(EnvSatelliteTables); s != "" {
		seen := map[string]bool{}
		for _, t := range strings.Split(s, ",") {
			t = strings.TrimSpace(t)
			if t == "" {
				continue
			}
			schema, table, ok := strings.Cut(t, ".")
			if !ok || schema == "" || table == "" || strings.Contains(table, ".") {
				bad("%s entry %q is not schema-qualified: write it as schema.table, e.g. public.items", EnvSatelliteTables, t)
				continue
			}
			if seen[t] {
				bad("%s lists %q twice", EnvSatelliteTables, t)
				continue
			}
			seen[t] = true
			c.SatelliteTables = append(c.SatelliteTables, t)
		}
	}

	if s := get(EnvWebsocketMaxFrame); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1024 || n > 1<<30 {
			bad("%s=%q is not a size in bytes between 1024 and 1073741824", EnvWebsocketMaxFrame, s)
		} else {
			c.WebsocketMaxFrameBytes = n
		}
	}

	if c.MigrationsFileNameSuffix == "" {
		bad("%s must not be empty", EnvMigrationsSuffix)
	}
	if c.MigrationsDir != "" {
		switch fi, err := os.Stat(c.MigrationsDir); {
		case errors.Is(err, os.ErrNotExist):
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s=%s does not exist yet", EnvMigrationsDir, c.MigrationsDir))
		case err != nil:
			bad("%s=%s: %v", EnvMigrationsDir, c.MigrationsDir, err)
		case !fi.IsDir():
			bad("%s=%s is not a directory", EnvMigrationsDir, c.MigrationsDir)
		}
	}

	if c.OffsetStorageFile == "" {
		bad("%s must not be empty", EnvOffsetStorageFile)
	} else if fi, err := os.Stat(c.OffsetStorageFile); err == nil && !fi.IsDir() {
		// Most likely the seed's DETS file: refuse rather than overwrite it.
		bad("%s=%s is a file: electric keeps its state in a directory at that path; move the file away or choose another path", EnvOffsetStorageFile, c.OffsetStorageFile)
	}

	for _, v := range Variables() {
		if !v.Unused {
			continue
		}
		if val, ok := env(v.Name); ok && strings.TrimSpace(val) != "" {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s is set but unused: this electric keeps its log in-process, there is no Vaxine", v.Name))
		}
	}
	return c, errs
}

// loopback is where an insecure engine listens unless told otherwise.
const loopback = "127.0.0.1"

// ListenHost is the host the three listeners bind to ("" is every
// interface), and why when it is not what LISTEN_ADDRESS says: with insecure
// Satellite authentication anyone who reaches the websocket port is whoever
// they claim to be, so such an engine stays on loopback unless LISTEN_ADDRESS
// asks for more.
func (c Config) ListenHost() (host, why string) {
	switch {
	case c.ListenAddress != "":
		return c.ListenAddress, ""
	case c.SigningKey == "":
		return loopback, fmt.Sprintf("%s is not set (insecure Satellite authentication), so electric listens on %s only; set %s (e.g. 0.0.0.0) to listen on other interfaces", EnvSigningKey, loopback, EnvListenAddress)
	}
	return "", ""
}

// TLS reports whether the websocket and status listeners serve TLS.
func (c Config) TLS() bool { return c.TLSCertFile != "" && c.TLSKeyFile != "" }

var hostLabelRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// checkListenAddress accepts an IP address or a host name, and explains the
// likely mistakes (a port, a URL) in the error.
func checkListenAddress(s string) error {
	if net.ParseIP(s) != nil {
		return nil
	}
	if strings.Contains(s, "://") || strings.Contains(s, "/") {
		return errors.New("is not an IP address or host name: give the host only, e.g. 127.0.0.1 or 0.0.0.0")
	}
	if _, _, err := net.SplitHostPort(s); err == nil {
		return errors.New("holds a port: give the host only; the ports are " + EnvWebsocketPort + ", " + EnvStatusPort + " and " + EnvReplicationPort)
	}
	if len(s) > 253 {
		return errors.New("is not an IP address or host name: a host name has at most 253 characters")
	}
	labels := strings.Split(strings.TrimSuffix(s, "."), ".")
	for _, label := range labels {
		if !hostLabelRE.MatchString(label) {
			return errors.New("is not an IP address or host name: use e.g. 127.0.0.1, 0.0.0.0, ::1 or localhost")
		}
	}
	// No top-level domain is all digits: this was meant as an IPv4 address.
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return errors.New("is not a valid IP address")
	}
	return nil
}

// checkTLS validates TLS_CERT_FILE and TLS_KEY_FILE: both or neither, each
// readable, and a matching pair. Each problem is one error.
func checkTLS(certFile, keyFile string) []error {
	switch {
	case certFile == "" && keyFile == "":
		return nil
	case keyFile == "":
		return []error{fmt.Errorf("%s is set but %s is not: set both for TLS, or neither", EnvTLSCertFile, EnvTLSKeyFile)}
	case certFile == "":
		return []error{fmt.Errorf("%s is set but %s is not: set both for TLS, or neither", EnvTLSKeyFile, EnvTLSCertFile)}
	}
	var errs []error
	certErr, keyErr, pairErr := tlsconf.Check(certFile, keyFile)
	if certErr != nil {
		errs = append(errs, fmt.Errorf("%s=%s: %w", EnvTLSCertFile, certFile, certErr))
	}
	if keyErr != nil {
		errs = append(errs, fmt.Errorf("%s=%s: %w", EnvTLSKeyFile, keyFile, keyErr))
	}
	if pairErr != nil {
		errs = append(errs, fmt.Errorf("%s and %s: %w", EnvTLSCertFile, EnvTLSKeyFile, pairErr))
	}
	return errs
}

// isLoopback reports whether host names this machine only.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParseLogLevel parses a LOG_LEVEL value (case-insensitive).
func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown level %q: use debug, info, warn or error", s)
}

// ParseConnectors parses the CONNECTORS syntax `name=postgresql://…;name2=…`:
// entries are split on ';' and trimmed, empty entries are ignored, the name is
// everything before the first '='. Every problem is its own error.
func ParseConnectors(s string) ([]Connector, []error) {
	var (
		out  []Connector
		errs []error
		seen = map[string]bool{}
	)
	n := 0
	for _, entry := range strings.Split(s, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		n++
		name, uri, found := strings.Cut(entry, "=")
		name, uri = strings.TrimSpace(name), strings.TrimSpace(uri)
		if !found || name == "" || strings.Contains(name, "://") {
			errs = append(errs, fmt.Errorf("CONNECTORS entry %d (%s) has no name: write it as name=postgresql://…", n, maskURI(entry)))
			continue
		}
		if !connectorNameRE.MatchString(name) {
			errs = append(errs, fmt.Errorf("CONNECTORS entry %d: name %q is not valid: use letters, digits, '_' and '-', starting with a letter or '_' (at most 63)", n, name))
			continue
		}
		if seen[name] {
			errs = append(errs, fmt.Errorf("CONNECTORS entry %d: name %q is used twice", n, name))
			continue
		}
		seen[name] = true
		c, err := parseConnectorURI(name, uri)
		if err != nil {
			errs = append(errs, fmt.Errorf("CONNECTORS entry %d (%s): %w", n, name, err))
			continue
		}
		out = append(out, c)
	}
	return out, errs
}

func parseConnectorURI(name, uri string) (Connector, error) {
	if !strings.HasPrefix(uri, "postgres://") && !strings.HasPrefix(uri, "postgresql://") {
		return Connector{}, fmt.Errorf("%q is not a postgres URI: it must start with postgresql:// or postgres://", maskURI(uri))
	}
	u, err := url.Parse(uri)
	if err != nil {
		// url errors quote the input; do not leak a password through them.
		return Connector{}, fmt.Errorf("cannot parse the URI: %s", strings.ReplaceAll(err.Error(), uri, maskURI(uri)))
	}
	c := Connector{Name: name, URI: uri, Host: u.Hostname(), Port: 5432, ConnectTimeoutMs: defaultConnectTimeoutMs}
	if c.Host == "" {
		c.Host = "localhost"
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Connector{}, fmt.Errorf("port %q is not a number from 1 to 65535", p)
		}
		c.Port = n
	}
	if u.User != nil {
		c.User = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	if c.User == "" {
		return Connector{}, fmt.Errorf("%s has no user name: write postgresql://user:password@host:port/db", maskURI(uri))
	}
	c.DBName = strings.TrimPrefix(u.Path, "/")
	if c.DBName == "" {
		c.DBName = c.User // as libpq does
	}
	if t := u.Query().Get("timeout"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n <= 0 {
			return Connector{}, fmt.Errorf("timeout=%q is not a positive number of milliseconds", t)
		}
		c.ConnectTimeoutMs = n
	}
	return c, nil
}

// maskURI replaces the password of a URI; strings that do not parse as a URI
// with a password are returned as they are.
func maskURI(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); !has {
		return s
	}
	return u.Redacted()
}

// mask is what a secret is printed as.
const mask = "xxxxx"

// Masked returns a copy of c with every secret (connector passwords, the
// replication password, the signing and verification keys, the status API
// token) replaced, for printing.
func (c Config) Masked() Config {
	m := c
	m.Connectors = make([]Connector, len(c.Connectors))
	for i, conn := range c.Connectors {
		conn.URI = conn.MaskedURI()
		if conn.Password != "" {
			conn.Password = mask
		}
		m.Connectors[i] = conn
	}
	if m.SigningKey != "" {
		m.SigningKey = mask
	}
	if m.StatusAPIToken != "" {
		m.StatusAPIToken = mask
	}
	if m.ReplicationPassword != "" {
		m.ReplicationPassword = mask
	}
	// One mask per key: how many there are is worth seeing, not what they are.
	m.VerifyKeys = nil
	for range c.VerifyKeys {
		m.VerifyKeys = append(m.VerifyKeys, mask)
	}
	m.SatelliteTables = append([]string(nil), c.SatelliteTables...)
	m.Warnings = append([]string(nil), c.Warnings...)
	return m
}

// Value returns the variable's value in c, formatted as it would be set in
// the environment ("" for unused variables).
func (c Config) Value(name string) string {
	switch name {
	case EnvElectricHost:
		return c.ElectricHost
	case EnvConnectors:
		parts := make([]string, len(c.Connectors))
		for i, conn := range c.Connectors {
			parts[i] = conn.Name + "=" + conn.URI
		}
		return strings.Join(parts, ";")
	case EnvReplicationPort:
		return strconv.Itoa(c.ReplicationPort)
	case EnvReplicationPassword:
		return c.ReplicationPassword
	case EnvStatusPort:
		return strconv.Itoa(c.StatusPort)
	case EnvStatusAPIToken:
		return c.StatusAPIToken
	case EnvWebsocketPort:
		return strconv.Itoa(c.WebsocketPort)
	case EnvListenAddress:
		return c.ListenAddress
	case EnvTLSCertFile:
		return c.TLSCertFile
	case EnvTLSKeyFile:
		return c.TLSKeyFile
	case EnvOffsetStorageFile:
		return c.OffsetStorageFile
	case EnvMigrationsDir:
		return c.MigrationsDir
	case EnvMigrationsSuffix:
		return c.MigrationsFileNameSuffix
	case EnvSigningKey:
		return c.SigningKey
	case EnvSigningIssuer:
		return c.SigningIssuer
	case EnvVerifyKeys:
		return strings.Join(c.VerifyKeys, ",")
	case EnvGlobalClusterID:
		return c.GlobalClusterID
	case EnvRegionalID:
		return c.RegionalID
	case EnvInstanceID:
		return c.InstanceID
	case EnvLogLevel:
		return strings.ToLower(c.LogLevel.String())
	case EnvPublication:
		return c.Publication
	case EnvSlot:
		return c.Slot
	case EnvSatelliteTables:
		return strings.Join(c.SatelliteTables, ",")
	case EnvWebsocketMaxFrame:
		return strconv.Itoa(c.WebsocketMaxFrameBytes)
	}
	return ""
}

// WriteEnv prints c as NAME=value lines in Variables order, values shell-quoted
// where needed, with secrets masked. Unused variables are left out.
func (c Config) WriteEnv(w io.Writer) error {
	m := c.Masked()
	for _, v := range Variables() {
		if v.Unused {
			continue
		}
		if _, err := fmt.Fprintf(w, "%s=%s\n", v.Name, shellQuote(m.Value(v.Name))); err != nil {
			return fmt.Errorf("writing the configuration: %w", err)
		}
	}
	return nil
}

// shellQuote quotes s for a POSIX shell when it holds anything but plain characters.
func shellQuote(s string) string {
	if s == "" {
		return ""
	}
	plain := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:,@%+=", r)) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
