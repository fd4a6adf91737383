package faultproxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// Postgres protocol request codes sent in place of a protocol version.
const (
	sslRequestCode    = 80877103
	gssencRequestCode = 80877104
	// maxStartup bounds a startup packet, as Postgres does (10,000 bytes).
	maxStartup = 10000
)

// PostgresUser is a Handshake for a proxy in front of a Postgres-protocol
// server: it relays the SSL/GSS encryption requests and their one-byte
// answers (only a refusal, 'N', is supported: an encrypted session cannot
// be read), then the startup packet, and tags the connection with the
// packet's "user" parameter.
func PostgresUser(client, server net.Conn) (string, error) {
	for {
		body, err := readStartup(client)
		if err != nil {
			return "", err
		}
		if _, err := server.Write(body); err != nil {
			return "", fmt.Errorf("relaying the startup packet: %w", err)
		}
		code := binary.BigEndian.Uint32(body[4:8])
		if code != sslRequestCode && code != gssencRequestCode {
			return startupUser(body[8:]), nil
		}
		var answer [1]byte
		if _, err := io.ReadFull(server, answer[:]); err != nil {
			return "", fmt.Errorf("reading the answer to an encryption request: %w", err)
		}
		if _, err := client.Write(answer[:]); err != nil {
			return "", err
		}
		if answer[0] != 'N' {
			return "", errors.New("faultproxy: the server accepted encryption; the proxy cannot tag an encrypted session")
		}
	}
}

// readStartup reads one length-prefixed startup-phase packet, length
// included in the result.
func readStartup(c net.Conn) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, fmt.Errorf("reading a startup packet: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 8 || n > maxStartup {
		return nil, fmt.Errorf("faultproxy: startup packet of %d bytes", n)
	}
	body := make([]byte, n)
	copy(body, hdr[:])
	if _, err := io.ReadFull(c, body[4:]); err != nil {
		return nil, fmt.Errorf("reading a startup packet: %w", err)
	}
	return body, nil
}

// startupUser finds "user" in the startup parameters (name\0value\0 pairs).
func startupUser(params []byte) string {
	parts := bytes.Split(params, []byte{0})
	for i := 0; i+1 < len(parts); i += 2 {
		if string(parts[i]) == "user" {
			return string(parts[i+1])
		}
	}
	return ""
}
