// Where the listeners bind (LISTEN_ADDRESS, loopback in insecure mode) and
// whether they serve TLS.

package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/electric-sql/electric-go/engine/tlsconf"
)

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
