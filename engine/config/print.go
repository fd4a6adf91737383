// Printing the effective configuration with its secrets masked.

package config

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

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
	case EnvSatelliteMaxTx:
		return strconv.FormatInt(c.SatelliteMaxTransactionBytes, 10)
	case EnvAuditMaxEvents:
		return strconv.Itoa(c.AuditMaxEvents)
	case EnvAuditMaxAge:
		return c.AuditMaxAge.String()
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
