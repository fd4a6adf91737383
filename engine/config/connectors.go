// The CONNECTORS syntax.

package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

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
		if name == "bundle" || name == "published" {
			// GET /api/migrations/bundle and /api/migrations/published.
			errs = append(errs, fmt.Errorf("CONNECTORS entry %d: name %q is reserved (a route of the migrations API): choose another", n, name))
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
