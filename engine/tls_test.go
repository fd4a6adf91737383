package engine

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/electric-sql/electric-go/engine/config"
	"github.com/electric-sql/electric-go/engine/tlsconf"
)

// newTestEngine makes an engine on free ports from env (state in a temp
// directory), logging to log.
func newTestEngine(t *testing.T, env map[string]string, log io.Writer) *Engine {
	t.Helper()
	dir := t.TempDir()
	all := map[string]string{
		"OFFSET_STORAGE_FILE": filepath.Join(dir, "state"),
		"MIGRATIONS_DIR":      filepath.Join(dir, "migrations"),
	}
	for k, v := range env {
		all[k] = v
	}
	cfg, errs := config.Load(func(k string) (string, bool) { v, ok := all[k]; return v, ok })
	if len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	cfg.ReplicationPort, cfg.WebsocketPort, cfg.StatusPort = 0, 0, 0
	e, err := New(cfg, slog.New(slog.NewTextHandler(log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// run runs e until the test ends.
func run(t *testing.T, e *Engine) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine: %v", err)
		}
	})
}

// TestTLS: with a certificate the websocket serves wss and the status API
// https; plain http on the status port gets no answer from the API.
func TestTLS(t *testing.T) {
	certFile, keyFile, _, err := tlsconf.EnsureLocal(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pool, err := tlsconf.CertPool(certFile)
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEngine(t, map[string]string{"TLS_CERT_FILE": certFile, "TLS_KEY_FILE": keyFile}, io.Discard)
	run(t, e)
	a := e.Addrs()
	clientTLS := &tls.Config{RootCAs: pool}

	d := websocket.Dialer{TLSClientConfig: clientTLS, HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.Dial("wss://"+a.Websocket.String()+"/ws", nil)
	if err != nil {
		t.Fatalf("wss dial: %v (response %v)", err, resp)
	}
	if st := ws.UnderlyingConn().(*tls.Conn).ConnectionState(); st.Version < tls.VersionTLS12 {
		t.Errorf("websocket TLS version %x, want 1.2 or later", st.Version)
	}
	ws.Close()
	if _, _, err := (&websocket.Dialer{HandshakeTimeout: 10 * time.Second}).Dial("ws://"+a.Websocket.String()+"/ws", nil); err == nil {
		t.Error("plain ws dial to the wss port succeeded")
	}

	https := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}, Timeout: 10 * time.Second}
	// By name too: the certificate is for localhost as well as 127.0.0.1.
	port := a.Status.(*net.TCPAddr).Port
	for _, url := range []string{"https://" + a.Status.String() + "/api/status", "https://localhost:" + strconv.Itoa(port) + "/api/status"} {
		resp, err := https.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.TLS == nil {
			t.Fatalf("GET %s: %s %s", url, resp.Status, body)
		}
	}

	// Go's server answers a plain request on a TLS port with a 400 that
	// says so; the status API itself never sees it.
	resp, err = (&http.Client{Timeout: 10 * time.Second}).Get("http://" + a.Status.String() + "/api/status")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || !bytes.Contains(body, []byte("HTTPS")) {
			t.Fatalf("plain http to the https port: %s %s", resp.Status, body)
		}
	}
}

// TestListenAddress: an insecure engine binds loopback unless LISTEN_ADDRESS
// says otherwise, and logs why; a secure one binds every interface.
func TestListenAddress(t *testing.T) {
	secure := map[string]string{"SATELLITE_AUTH_SIGNING_KEY": strings.Repeat("k", 32), "SATELLITE_AUTH_SIGNING_ISS": "iss"}
	tests := []struct {
		name    string
		env     map[string]string
		want    net.IP // nil: every interface
		wantLog string
	}{
		{"insecure", nil, net.IPv4(127, 0, 0, 1), "SATELLITE_AUTH_SIGNING_KEY is not set"},
		{"insecure, told otherwise", map[string]string{"LISTEN_ADDRESS": "0.0.0.0"}, nil, ""},
		{"secure", secure, nil, ""},
		{"secure, one address", map[string]string{"LISTEN_ADDRESS": "127.0.0.1", "SATELLITE_AUTH_SIGNING_KEY": strings.Repeat("k", 32), "SATELLITE_AUTH_SIGNING_ISS": "iss"}, net.IPv4(127, 0, 0, 1), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			e := newTestEngine(t, tt.env, &log)
			defer e.close()
			a := e.Addrs()
			for role, addr := range map[string]net.Addr{"publisher": a.Publisher, "websocket": a.Websocket, "status": a.Status} {
				ip := addr.(*net.TCPAddr).IP
				if tt.want == nil && !ip.IsUnspecified() || tt.want != nil && !ip.Equal(tt.want) {
					t.Errorf("%s bound to %s, want %v", role, ip, tt.want)
				}
			}
			if got := strings.Contains(log.String(), "listening on loopback only"); got != (tt.wantLog != "") || !strings.Contains(log.String(), tt.wantLog) {
				t.Errorf("log %q, want the loopback reason: %v", log.String(), tt.wantLog != "")
			}
		})
	}
}
