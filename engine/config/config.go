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
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
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
	// SatelliteMaxTransactionBytes caps one client transaction while it is
	// received; a client that sends more is closed.
	SatelliteMaxTransactionBytes int64
	// AuditMaxEvents and AuditMaxAge bound the retention of recorded
	// conflicts and rejections (package audit).
	AuditMaxEvents int
	AuditMaxAge    time.Duration

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

	if s := get(EnvSatelliteMaxTx); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1<<20 || n > 1<<40 {
			bad("%s=%q is not a size in bytes between 1048576 and 1099511627776", EnvSatelliteMaxTx, s)
		} else {
			c.SatelliteMaxTransactionBytes = n
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

	if s := get(EnvAuditMaxEvents); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100_000_000 {
			bad("%s=%q is not a number of events between 1 and 100000000", EnvAuditMaxEvents, s)
		} else {
			c.AuditMaxEvents = n
		}
	}
	if s := get(EnvAuditMaxAge); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Minute {
			bad("%s=%q is not a duration of at least a minute (e.g. 720h)", EnvAuditMaxAge, s)
		} else {
			c.AuditMaxAge = d
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
