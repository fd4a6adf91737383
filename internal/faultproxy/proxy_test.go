package faultproxy

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer answers every line with itself; for a Postgres-like opening it
// refuses SSL ('N') and then echoes.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(c, c)
		}
	}()
	return ln.Addr().String()
}

func dialLine(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// roundTrip sends a line and reads it back within d; ok is false on a
// timeout or a closed connection.
func roundTrip(c net.Conn, r *bufio.Reader, d time.Duration) bool {
	c.SetDeadline(time.Now().Add(d))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return false
	}
	line, err := r.ReadString('\n')
	return err == nil && line == "ping\n"
}

func TestResetCutAndHeal(t *testing.T) {
	p, err := New("127.0.0.1:0", echoServer(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, r := dialLine(t, p.Addr())
	if !roundTrip(c, r, 5*time.Second) {
		t.Fatal("no relay before the cut")
	}
	p.Cut("", Reset)
	if roundTrip(c, r, 2*time.Second) {
		t.Fatal("a connection survived a reset cut")
	}
	c2, r2 := dialLine(t, p.Addr())
	if roundTrip(c2, r2, 2*time.Second) {
		t.Fatal("a new connection was relayed during a reset cut")
	}
	p.Heal("")
	c3, r3 := dialLine(t, p.Addr())
	if !roundTrip(c3, r3, 5*time.Second) {
		t.Fatal("no relay after heal")
	}
	if p.Refused() < 1 {
		t.Errorf("refused = %d, want >= 1", p.Refused())
	}
}

func TestStallHoldsBytesUntilHeal(t *testing.T) {
	p, err := New("127.0.0.1:0", echoServer(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, r := dialLine(t, p.Addr())
	p.Cut("", Stall)
	if _, err := c.Write([]byte("held\n")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("bytes went through a stall")
	}
	c.SetReadDeadline(time.Time{})
	p.Heal("")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := r.ReadString('\n')
	if err != nil || line != "held\n" {
		t.Fatalf("after heal got %q, %v; want the held line", line, err)
	}
}

func startup(code uint32, params ...string) []byte {
	var body []byte
	for _, p := range params {
		body = append(append(body, p...), 0)
	}
	body = append(body, 0)
	b := make([]byte, 8, 8+len(body))
	binary.BigEndian.PutUint32(b, uint32(8+len(body)))
	binary.BigEndian.PutUint32(b[4:], code)
	return append(b, body...)
}

// pgLikeServer answers an SSLRequest with 'N' and then echoes.
func pgLikeServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				b, err := readStartup(c)
				if err != nil {
					c.Close()
					return
				}
				if binary.BigEndian.Uint32(b[4:8]) == sslRequestCode {
					c.Write([]byte{'N'})
					if _, err := readStartup(c); err != nil {
						c.Close()
						return
					}
				}
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// A tagged cut drops only the connections of that Postgres user.
func TestPostgresUserTaggedCut(t *testing.T) {
	p, err := New("127.0.0.1:0", pgLikeServer(t), PostgresUser)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	open := func(user string) (net.Conn, *bufio.Reader) {
		c, r := dialLine(t, p.Addr())
		c.Write(startup(sslRequestCode))
		var a [1]byte
		if _, err := io.ReadFull(r, a[:]); err != nil || a[0] != 'N' {
			t.Fatalf("ssl answer %q, %v", a, err)
		}
		c.Write(startup(196608, "user", user, "database", "x"))
		return c, r
	}
	a, ra := open("db_a")
	b, rb := open("db_b")
	if !roundTrip(a, ra, 5*time.Second) || !roundTrip(b, rb, 5*time.Second) {
		t.Fatal("no relay before the cut")
	}
	p.Cut("db_a", Reset)
	if roundTrip(a, ra, 2*time.Second) {
		t.Error("db_a survived its cut")
	}
	if !roundTrip(b, rb, 5*time.Second) {
		t.Error("db_b was cut with db_a")
	}
	p.Heal("db_a")
	a2, ra2 := open("db_a")
	if !roundTrip(a2, ra2, 5*time.Second) {
		t.Error("db_a not relayed after heal")
	}
}

func TestStartupPacketBounded(t *testing.T) {
	p, err := New("127.0.0.1:0", pgLikeServer(t), PostgresUser)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, r := dialLine(t, p.Addr())
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 1<<30)
	c.Write(hdr[:])
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadByte(); err == nil {
		t.Fatal("an oversized startup packet was answered")
	}
}
