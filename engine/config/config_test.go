package config

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/tlsconf"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const (
	key32  = "0123456789abcdef0123456789abcdef"
	key32b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	key32c = "cccccccccccccccccccccccccccccccc"
)

func TestLoadDefaults(t *testing.T) {
	c, errs := Load(envOf(nil))
	if len(errs) != 0 {
		t.Fatalf("defaults do not validate: %v", errs)
	}
	want := Config{
		ReplicationPort:              5433,
		StatusPort:                   5050,
		WebsocketPort:                5133,
		OffsetStorageFile:            "./offset_storage_data.dat",
		MigrationsFileNameSuffix:     "/postgres.sql",
		GlobalClusterID:              "dev.electric-db",
		RegionalID:                   "region-1.dev.electric-db",
		InstanceID:                   "instance-1.region-1.dev.electric-db",
		LogLevel:                     slog.LevelInfo,
		Publication:                  "all_tables",
		Slot:                         "all_changes",
		WebsocketMaxFrameBytes:       1 << 20,
		SatelliteMaxTransactionBytes: 256 << 20,
		AuditMaxEvents:               100000,
		AuditMaxAge:                  720 * time.Hour,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if got := c.DataDir(); got != "offset_storage_data.dat" {
		t.Errorf("DataDir() = %q", got)
	}
}

// tlsPair writes a self-signed certificate and key under a new directory.
func tlsPair(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile, _, err := tlsconf.EnsureLocal(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestLoadEverySet(t *testing.T) {
	mig := t.TempDir()
	certFile, keyFile := tlsPair(t)
	c, errs := Load(envOf(map[string]string{
		"ELECTRIC_HOST":                   "electric.internal",
		"CONNECTORS":                      " a=postgresql://electric:password@localhost:54321/electric ; b=postgres://u:p%40ss@db-b:54322/app?timeout=100&sslmode=disable;",
		"POSTGRES_REPLICATION_PORT":       "15433",
		"POSTGRES_REPLICATION_PASSWORD":   "replication-master",
		"STATUS_PORT":                     "15050",
		"WEBSOCKET_PORT":                  "15133",
		"LISTEN_ADDRESS":                  "10.0.0.5",
		"TLS_CERT_FILE":                   certFile,
		"TLS_KEY_FILE":                    keyFile,
		"OFFSET_STORAGE_FILE":             "/var/lib/electric/state",
		"MIGRATIONS_DIR":                  mig,
		"MIGRATIONS_FILE_NAME_SUFFIX":     "/pg.sql",
		"SATELLITE_AUTH_SIGNING_KEY":      key32,
		"SATELLITE_AUTH_SIGNING_ISS":      "my.electric.server",
		"SATELLITE_AUTH_VERIFY_KEYS":      " " + key32b + " ,, " + key32c + ",",
		"GLOBAL_CLUSTER_ID":               "g",
		"ELECTRIC_REGIONAL_ID":            "r",
		"ELECTRIC_INSTANCE_ID":            "i",
		"LOG_LEVEL":                       "DEBUG",
		"POSTGRES_PUBLICATION":            "pub",
		"POSTGRES_SLOT":                   "slot_1",
		"SATELLITE_TABLES":                "public.items, app.other",
		"WEBSOCKET_MAX_FRAME_BYTES":       "65536",
		"SATELLITE_MAX_TRANSACTION_BYTES": "2097152",
		"AUDIT_MAX_EVENTS":                "500",
		"AUDIT_MAX_AGE":                   "48h",
	}))
	if len(errs) != 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	want := Config{
		ElectricHost: "electric.internal",
		Connectors: []Connector{
			{Name: "a", URI: "postgresql://electric:password@localhost:54321/electric", Host: "localhost", Port: 54321, DBName: "electric", User: "electric", Password: "password", ConnectTimeoutMs: 5000},
			{Name: "b", URI: "postgres://u:p%40ss@db-b:54322/app?timeout=100&sslmode=disable", Host: "db-b", Port: 54322, DBName: "app", User: "u", Password: "p@ss", ConnectTimeoutMs: 100},
		},
		ReplicationPort:              15433,
		ReplicationPassword:          "replication-master",
		StatusPort:                   15050,
		WebsocketPort:                15133,
		ListenAddress:                "10.0.0.5",
		TLSCertFile:                  certFile,
		TLSKeyFile:                   keyFile,
		OffsetStorageFile:            "/var/lib/electric/state",
		MigrationsDir:                mig,
		MigrationsFileNameSuffix:     "/pg.sql",
		SigningKey:                   key32,
		SigningIssuer:                "my.electric.server",
		VerifyKeys:                   []string{key32b, key32c},
		GlobalClusterID:              "g",
		RegionalID:                   "r",
		InstanceID:                   "i",
		LogLevel:                     slog.LevelDebug,
		Publication:                  "pub",
		Slot:                         "slot_1",
		SatelliteTables:              []string{"public.items", "app.other"},
		WebsocketMaxFrameBytes:       65536,
		SatelliteMaxTransactionBytes: 2 << 20,
		AuditMaxEvents:               500,
		AuditMaxAge:                  48 * time.Hour,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("config:\n got %+v\nwant %+v", c, want)
	}
}

// TestLoadErrors checks that each bad input gives exactly the expected
// problems, each as its own line.
func TestLoadErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "offset_storage_data.dat")
	if err := os.WriteFile(file, []byte("dets"), 0o600); err != nil {
		t.Fatal(err)
	}
	certA, keyA := tlsPair(t)
	_, keyB := tlsPair(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	tests := []struct {
		name string
		env  map[string]string
		want []string // substrings, one per expected error, in order
	}{
		{"port not a number", map[string]string{"WEBSOCKET_PORT": "ws"}, []string{`WEBSOCKET_PORT="ws" is not a port`}},
		{"audit events", map[string]string{"AUDIT_MAX_EVENTS": "0"}, []string{`AUDIT_MAX_EVENTS="0" is not a number of events`}},
		{"audit age", map[string]string{"AUDIT_MAX_AGE": "30d"}, []string{`AUDIT_MAX_AGE="30d" is not a duration`}},
		{"port zero", map[string]string{"STATUS_PORT": "0"}, []string{`STATUS_PORT="0" is not a port`}},
		{"port too big", map[string]string{"POSTGRES_REPLICATION_PORT": "70000"}, []string{`POSTGRES_REPLICATION_PORT="70000" is not a port`}},
		{"ports collide", map[string]string{"STATUS_PORT": "5133"}, []string{"WEBSOCKET_PORT and STATUS_PORT are both 5133"}},
		{"connector without name", map[string]string{"ELECTRIC_HOST": "h", "CONNECTORS": "postgresql://u:secret@h/db"}, []string{"CONNECTORS entry 1 (postgresql://u:xxxxx@h/db) has no name"}},
		{"connector with empty name", map[string]string{"ELECTRIC_HOST": "h", "CONNECTORS": "a=postgresql://u@h/db;=postgresql://u@h/db"}, []string{"CONNECTORS entry 2 (=postgresql://u@h/db) has no name"}},
		{"connector bad name", map[string]string{"ELECTRIC_HOST": "h", "CONNECTORS": "a:b=postgresql://u@h/db"}, []string{`name "a:b" is not valid`}},
		{"duplicate connector", map[string]string{"ELECTRIC_HOST": "h", "CONNECTORS": "a=postgresql://u@h/db;a=postgresql://u@h2/db"}, []string{`CONNECTORS entry 2: name "a" is used twice`}},
		{"non-postgres URI", map[string]string{"ELECTRIC_HOST": "h", "CONNECTORS": "a=mysql://u:secret@h/db"}, []string{`CONNECTORS entry 1 (a): "mysql://u:xxxxx@h/db" is not a postgres URI`}},
		{"conninfo instead of URI", map[string]string{"ELECTRIC_HOST": "h", "CONNECTORS": "a=host=h user=u"}, []string{`"host=h user=u" is not a postgres URI`}},
		{"connector bad port", map[string]string{"ELECTRIC_HOST": "h", "CONNECTORS": "a=postgresql://u@h:99999/db"}, []string{`CONNECTORS entry 1 (a): port "99999" is not a number`}},
		{"connector without user", map[string]string{"ELECTRIC_HOST": "h", "CONNECTORS": "a=postgresql://h/db"}, []string{"has no user name"}},
		{"connector bad timeout", map[string]string{"ELECTRIC_HOST": "h", "CONNECTORS": "a=postgresql://u@h/db?timeout=soon"}, []string{`timeout="soon" is not a positive number`}},
		{"connectors without host", map[string]string{"CONNECTORS": "a=postgresql://u@h/db"}, []string{"ELECTRIC_HOST is not set"}},
		{"short key", map[string]string{"SATELLITE_AUTH_SIGNING_KEY": "short", "SATELLITE_AUTH_SIGNING_ISS": "iss"}, []string{"SATELLITE_AUTH_SIGNING_KEY is 5 bytes: it must be at least 32 bytes"}},
		{"short replication password", map[string]string{"POSTGRES_REPLICATION_PASSWORD": "short"}, []string{"POSTGRES_REPLICATION_PASSWORD is 5 bytes: it must be at least 16 bytes"}},
		{"issuer without key", map[string]string{"SATELLITE_AUTH_SIGNING_ISS": "iss"}, []string{"SATELLITE_AUTH_SIGNING_ISS is set but SATELLITE_AUTH_SIGNING_KEY is not"}},
		{"key without issuer", map[string]string{"SATELLITE_AUTH_SIGNING_KEY": key32}, []string{"SATELLITE_AUTH_SIGNING_KEY is set but SATELLITE_AUTH_SIGNING_ISS is not"}},
		{"verify keys without signing key", map[string]string{"SATELLITE_AUTH_VERIFY_KEYS": key32b}, []string{"SATELLITE_AUTH_VERIFY_KEYS is set but SATELLITE_AUTH_SIGNING_KEY is not"}},
		{"short verify keys", map[string]string{"SATELLITE_AUTH_SIGNING_KEY": key32, "SATELLITE_AUTH_SIGNING_ISS": "iss", "SATELLITE_AUTH_VERIFY_KEYS": "secret1," + key32b + ",, secret22 "}, []string{
			"SATELLITE_AUTH_VERIFY_KEYS entry 1 is 7 bytes: each key must be at least 32 bytes",
			"SATELLITE_AUTH_VERIFY_KEYS entry 3 is 8 bytes: each key must be at least 32 bytes",
		}},
		{"listen address with port", map[string]string{"LISTEN_ADDRESS": "0.0.0.0:5133"}, []string{`LISTEN_ADDRESS="0.0.0.0:5133" holds a port: give the host only`}},
		{"listen address as URL", map[string]string{"LISTEN_ADDRESS": "http://localhost"}, []string{`LISTEN_ADDRESS="http://localhost" is not an IP address or host name`}},
		{"listen address with space", map[string]string{"LISTEN_ADDRESS": "my host"}, []string{`LISTEN_ADDRESS="my host" is not an IP address or host name`}},
		{"listen address bad label", map[string]string{"LISTEN_ADDRESS": "-a.example"}, []string{`LISTEN_ADDRESS="-a.example" is not an IP address or host name`}},
		{"listen address bad IPv4", map[string]string{"LISTEN_ADDRESS": "127.0.0.256"}, []string{`LISTEN_ADDRESS="127.0.0.256" is not a valid IP address`}},
		{"cert without key", map[string]string{"TLS_CERT_FILE": certA}, []string{"TLS_CERT_FILE is set but TLS_KEY_FILE is not: set both for TLS, or neither"}},
		{"key without cert", map[string]string{"TLS_KEY_FILE": keyA}, []string{"TLS_KEY_FILE is set but TLS_CERT_FILE is not"}},
		{"cert unreadable", map[string]string{"TLS_CERT_FILE": missing, "TLS_KEY_FILE": keyA}, []string{"TLS_CERT_FILE=" + missing + ": reading the certificate: "}},
		{"neither readable", map[string]string{"TLS_CERT_FILE": missing, "TLS_KEY_FILE": missing + "2"}, []string{
			"TLS_CERT_FILE=" + missing + ": reading the certificate",
			"TLS_KEY_FILE=" + missing + "2: reading the key",
		}},
		{"not a matching pair", map[string]string{"TLS_CERT_FILE": certA, "TLS_KEY_FILE": keyB}, []string{"TLS_CERT_FILE and TLS_KEY_FILE: " + certA + " and " + keyB + " are not a certificate and its key: tls: private key does not match public key"}},
		{"cert is not PEM", map[string]string{"TLS_CERT_FILE": file, "TLS_KEY_FILE": keyA}, []string{"are not a certificate and its key"}},
		{"bad log level", map[string]string{"LOG_LEVEL": "loud"}, []string{`LOG_LEVEL: unknown level "loud"`}},
		{"bad slot", map[string]string{"POSTGRES_SLOT": "All-Changes"}, []string{`POSTGRES_SLOT="All-Changes" is not a valid slot name`}},
		{"bad publication", map[string]string{"POSTGRES_PUBLICATION": "all tables"}, []string{`POSTGRES_PUBLICATION="all tables" is not a valid publication name`}},
		{"unqualified satellite table", map[string]string{"SATELLITE_TABLES": "public.items,items"}, []string{`SATELLITE_TABLES entry "items" is not schema-qualified`}},
		{"duplicate satellite table", map[string]string{"SATELLITE_TABLES": "public.items,public.items"}, []string{`SATELLITE_TABLES lists "public.items" twice`}},
		{"transaction cap too small", map[string]string{"SATELLITE_MAX_TRANSACTION_BYTES": "10"}, []string{`SATELLITE_MAX_TRANSACTION_BYTES="10" is not a size`}},
		{"frame too small", map[string]string{"WEBSOCKET_MAX_FRAME_BYTES": "10"}, []string{`WEBSOCKET_MAX_FRAME_BYTES="10" is not a size`}},
		{"offset storage is a file", map[string]string{"OFFSET_STORAGE_FILE": file}, []string{"is a file: electric keeps its state in a directory"}},
		{"migrations dir is a file", map[string]string{"MIGRATIONS_DIR": file}, []string{"is not a directory"}},
		{"several problems", map[string]string{"WEBSOCKET_PORT": "x", "SATELLITE_AUTH_SIGNING_ISS": "iss", "LOG_LEVEL": "nope"}, []string{
			`WEBSOCKET_PORT="x" is not a port`,
			"SATELLITE_AUTH_SIGNING_ISS is set but SATELLITE_AUTH_SIGNING_KEY is not",
			`LOG_LEVEL: unknown level "nope"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := Load(envOf(tt.env))
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors %q, want %d", len(errs), errs, len(tt.want))
			}
			for i, err := range errs {
				msg := err.Error()
				if !strings.Contains(msg, tt.want[i]) {
					t.Errorf("error %d = %q, want it to contain %q", i, msg, tt.want[i])
				}
				if strings.Contains(msg, "\n") {
					t.Errorf("error %d spans several lines: %q", i, msg)
				}
				if strings.Contains(msg, "secret") {
					t.Errorf("error %d leaks a password: %q", i, msg)
				}
			}
		})
	}
}

func TestLoadWarnings(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	c, errs := Load(envOf(map[string]string{
		"VAXINE_HOST":               "localhost",
		"VAXINE_API_PORT":           "8087",
		"VAXINE_REPLICATION_PORT":   "",
		"VAXINE_CONNECTION_TIMEOUT": "5000",
		"MIGRATIONS_DIR":            missing,
	}))
	if len(errs) != 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	want := []string{
		"MIGRATIONS_DIR=" + missing + " does not exist yet",
		"VAXINE_HOST is set but unused: this electric keeps its log in-process, there is no Vaxine",
		"VAXINE_API_PORT is set but unused: this electric keeps its log in-process, there is no Vaxine",
		"VAXINE_CONNECTION_TIMEOUT is set but unused: this electric keeps its log in-process, there is no Vaxine",
	}
	if !reflect.DeepEqual(c.Warnings, want) {
		t.Fatalf("warnings:\n got %q\nwant %q", c.Warnings, want)
	}
}

// TestListenHost: LISTEN_ADDRESS wins; without it an insecure engine stays on
// loopback and says why, and a secure one keeps every interface.
func TestListenHost(t *testing.T) {
	secure := map[string]string{"SATELLITE_AUTH_SIGNING_KEY": key32, "SATELLITE_AUTH_SIGNING_ISS": "iss"}
	with := func(m map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name     string
		env      map[string]string
		wantHost string
		wantWhy  string // substring; "" means none
	}{
		{"insecure", nil, "127.0.0.1", "SATELLITE_AUTH_SIGNING_KEY is not set (insecure Satellite authentication), so electric listens on 127.0.0.1 only; set LISTEN_ADDRESS"},
		{"insecure, told otherwise", map[string]string{"LISTEN_ADDRESS": "0.0.0.0"}, "0.0.0.0", ""},
		{"secure", secure, "", ""},
		{"secure, one interface", with(secure, "LISTEN_ADDRESS", "::1"), "::1", ""},
		{"host name", map[string]string{"LISTEN_ADDRESS": "electric.internal."}, "electric.internal.", ""},
		{"bracketed IPv6", map[string]string{"LISTEN_ADDRESS": "[::]"}, "::", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, errs := Load(envOf(tt.env))
			if len(errs) != 0 {
				t.Fatalf("unexpected errors: %v", errs)
			}
			host, why := c.ListenHost()
			if host != tt.wantHost || (tt.wantWhy == "") != (why == "") || !strings.Contains(why, tt.wantWhy) {
				t.Errorf("ListenHost() = %q, %q; want %q, %q", host, why, tt.wantHost, tt.wantWhy)
			}
		})
	}
}

// TestLoopbackWarning: an insecure engine on loopback warns when the
// Postgres instances are told to connect back to another host.
func TestLoopbackWarning(t *testing.T) {
	conns := "a=postgresql://u@db/electric"
	for _, tt := range []struct {
		env  map[string]string
		warn bool
	}{
		{map[string]string{"CONNECTORS": conns, "ELECTRIC_HOST": "electric"}, true},
		{map[string]string{"CONNECTORS": conns, "ELECTRIC_HOST": "localhost"}, false},
		{map[string]string{"CONNECTORS": conns, "ELECTRIC_HOST": "127.0.0.1"}, false},
		{map[string]string{"CONNECTORS": conns, "ELECTRIC_HOST": "electric", "LISTEN_ADDRESS": "0.0.0.0"}, false},
	} {
		c, errs := Load(envOf(tt.env))
		if len(errs) != 0 {
			t.Fatalf("%v: unexpected errors: %v", tt.env, errs)
		}
		got := len(c.Warnings) == 1 && strings.Contains(c.Warnings[0], "ELECTRIC_HOST=electric is not a loopback address")
		if got != tt.warn || (!tt.warn && len(c.Warnings) != 0) {
			t.Errorf("%v: warnings %q, want the loopback warning: %v", tt.env, c.Warnings, tt.warn)
		}
	}
}

func TestParseLogLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "Info": slog.LevelInfo, "": slog.LevelInfo, "warn": slog.LevelWarn, "WARNING": slog.LevelWarn, "error": slog.LevelError} {
		got, err := ParseLogLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseLogLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseLogLevel("trace"); err == nil {
		t.Error("ParseLogLevel(trace) accepted")
	}
}

func TestWriteEnvMasksSecrets(t *testing.T) {
	c, errs := Load(envOf(map[string]string{
		"ELECTRIC_HOST":                 "localhost",
		"CONNECTORS":                    "a=postgresql://electric:hunter2hunter2@localhost:54321/electric;b=postgresql://nopass@localhost:54322/electric",
		"SATELLITE_AUTH_SIGNING_KEY":    key32,
		"SATELLITE_AUTH_SIGNING_ISS":    "my.electric.server",
		"SATELLITE_AUTH_VERIFY_KEYS":    key32b + "," + key32c,
		"SATELLITE_TABLES":              "public.items",
		"STATUS_API_TOKEN":              statusToken,
		"POSTGRES_REPLICATION_PASSWORD": "replication-master-secret",
	}))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	var buf bytes.Buffer
	if err := c.WriteEnv(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, secret := range []string{"hunter2hunter2", key32, key32b, key32c, statusToken, "replication-master-secret"} {
		if strings.Contains(out, secret) {
			t.Errorf("output leaks %q:\n%s", secret, out)
		}
	}
	for _, line := range []string{
		"CONNECTORS='a=postgresql://electric:xxxxx@localhost:54321/electric;b=postgresql://nopass@localhost:54322/electric'\n",
		"SATELLITE_AUTH_SIGNING_KEY=xxxxx\n",
		"POSTGRES_REPLICATION_PASSWORD=xxxxx\n",
		"SATELLITE_AUTH_SIGNING_ISS=my.electric.server\n",
		"SATELLITE_AUTH_VERIFY_KEYS=xxxxx,xxxxx\n",
		"STATUS_API_TOKEN=xxxxx\n",
		"WEBSOCKET_PORT=5133\n",
		"LOG_LEVEL=info\n",
		"SATELLITE_TABLES=public.items\n",
		"MIGRATIONS_DIR=\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
	if strings.Contains(out, "VAXINE") {
		t.Errorf("output lists unused variables:\n%s", out)
	}
	// Masking must not touch the original.
	if c.SigningKey != key32 || c.StatusAPIToken != statusToken || c.Connectors[0].Password != "hunter2hunter2" || !reflect.DeepEqual(c.VerifyKeys, []string{key32b, key32c}) {
		t.Error("Masked modified the original config")
	}
	// One line per variable that is not unused.
	n := 0
	for _, v := range Variables() {
		if !v.Unused {
			n++
		}
	}
	if got := strings.Count(out, "\n"); got != n {
		t.Errorf("printed %d lines, want %d", got, n)
	}
}

const statusToken = "s3cr3t-status-token-abcdef"

// STATUS_API_TOKEN must be long enough not to be guessed and fit an HTTP
// header; errors never print the token.
func TestStatusAPIToken(t *testing.T) {
	for _, tc := range []struct {
		name, token, wantErr string
	}{
		{"unset", "", ""},
		{"16 bytes", "0123456789abcdef", ""},
		{"long", statusToken, ""},
		{"short", "short-token", "STATUS_API_TOKEN is 11 bytes: it must be at least 16 bytes"},
		{"space inside", "0123456789 abcdef", "STATUS_API_TOKEN holds spaces, control or non-ASCII characters"},
		{"non-ascii", "0123456789abcdéf", "STATUS_API_TOKEN holds spaces, control or non-ASCII characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, errs := Load(envOf(map[string]string{"STATUS_API_TOKEN": tc.token}))
			if tc.wantErr == "" {
				if len(errs) != 0 || c.StatusAPIToken != tc.token {
					t.Fatalf("token %q: %v, config has %q", tc.token, errs, c.StatusAPIToken)
				}
				return
			}
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.wantErr) {
				t.Fatalf("token %q: errors %v, want one containing %q", tc.token, errs, tc.wantErr)
			}
			if strings.Contains(errs[0].Error(), tc.token) {
				t.Errorf("error prints the token: %v", errs[0])
			}
		})
	}
}

func TestVariablesHaveFlagsAndUsage(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range Variables() {
		if v.Usage == "" {
			t.Errorf("%s has no usage", v.Name)
		}
		if v.Unused {
			continue
		}
		if v.Flag != strings.ReplaceAll(strings.ToLower(v.Name), "_", "-") {
			t.Errorf("%s has flag %q, want its kebab-case name", v.Name, v.Flag)
		}
		if seen[v.Flag] {
			t.Errorf("flag %q used twice", v.Flag)
		}
		seen[v.Flag] = true
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "",
		"plain":             "plain",
		"/postgres.sql":     "/postgres.sql",
		"a b":               "'a b'",
		"it's":              `'it'\''s'`,
		"a=x://u@h/d;b=y":   "'a=x://u@h/d;b=y'",
		"public.a,public.b": "public.a,public.b",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

// The exported defaults are the ones the variable table applies: commands
// that start or reach the engine read them instead of repeating the values.
func TestDefaultsAgreeWithVariables(t *testing.T) {
	for _, tc := range []struct {
		name, want string
	}{
		{EnvStatusPort, "5050"},
		{EnvWebsocketPort, "5133"},
		{EnvReplicationPort, "5433"},
		{EnvMigrationsSuffix, "/postgres.sql"},
		{EnvMigrationsDir, ""}, // unset: the engine and the CLI use DefaultMigrationsDir
		{EnvLogLevel, "info"},
		{"NO_SUCH_VARIABLE", ""},
	} {
		if got := Default(tc.name); got != tc.want {
			t.Errorf("Default(%s) = %q, want %q", tc.name, got, tc.want)
		}
	}
	c, errs := Load(envOf(nil))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if c.StatusPort != DefaultStatusPort || c.WebsocketPort != DefaultWebsocketPort || c.ReplicationPort != DefaultReplicationPort ||
		c.MigrationsFileNameSuffix != DefaultMigrationsSuffix {
		t.Errorf("Load's defaults %d/%d/%d/%q differ from the exported constants", c.StatusPort, c.WebsocketPort, c.ReplicationPort, c.MigrationsFileNameSuffix)
	}
}
