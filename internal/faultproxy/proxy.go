// Package faultproxy is a TCP proxy on loopback that a test controls to cut
// the network between two processes: it relays every connection it accepts
// to one target, and on demand resets them (Cut) or stops relaying without
// closing anything (Stall), as a partition does, until Heal. Connections may
// be tagged by a handshake hook (e.g. by the Postgres user of a startup
// packet) so that one listener can cut one peer and not another. It is test
// support only; production code must not import it.
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is how a cut behaves.
type Mode int

const (
	// Reset closes every connection and refuses new ones (accepted, then
	// closed at once): both peers see the connection drop.
	Reset Mode = iota
	// Stall stops relaying bytes in both directions on every connection,
	// new ones included, without closing anything: peers only notice by
	// their timeouts. Heal lets the held bytes through.
	Stall
)

func (m Mode) String() string {
	if m == Stall {
		return "stall"
	}
	return "reset"
}

// Handshake runs on each new connection before bytes are relayed, with the
// client and the dialled server; it may relay a protocol's opening itself
// and returns the connection's tag ("" for none).
type Handshake func(client, server net.Conn) (tag string, err error)

// Proxy relays connections from its listener to a target.
type Proxy struct {
	ln        net.Listener
	target    string
	handshake Handshake

	mu    sync.Mutex
	conns map[*link]struct{}
	cuts  map[string]Mode // tag → active cut; "" cuts every connection
	gate  chan struct{}   // closed and replaced on every Heal: wakes stalled copies
	done  bool

	accepted atomic.Int64
	refused  atomic.Int64
	wg       sync.WaitGroup
}

type link struct {
	tag            string
	client, server net.Conn
}

// New listens on addr ("127.0.0.1:0" for any port) and relays to target.
// handshake may be nil.
func New(addr, target string, handshake Handshake) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listening on %s: %w", addr, err)
	}
	p := &Proxy{ln: ln, target: target, handshake: handshake, conns: map[*link]struct{}{},
		cuts: map[string]Mode{}, gate: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Port is the port the proxy listens on.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Accepted is the number of connections accepted so far; Refused, those
// closed at once because a Reset cut was active.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// Refused is the number of connections refused by a Reset cut.
func (p *Proxy) Refused() int64 { return p.refused.Load() }

// Cut cuts the connections tagged tag ("" for all of them), now and until
// Heal(tag).
func (p *Proxy) Cut(tag string, m Mode) {
	p.mu.Lock()
	p.cuts[tag] = m
	// Wake stalled copies: they re-check and, under a Reset, close.
	close(p.gate)
	p.gate = make(chan struct{})
	var drop []*link
	if m == Reset {
		for l := range p.conns {
			if tag == "" || l.tag == tag {
				drop = append(drop, l)
				delete(p.conns, l)
			}
		}
	}
	p.mu.Unlock()
	for _, l := range drop {
		l.close()
	}
}

// Heal ends the cut of tag; stalled bytes flow again.
func (p *Proxy) Heal(tag string) {
	p.mu.Lock()
	delete(p.cuts, tag)
	close(p.gate)
	p.gate = make(chan struct{})
	p.mu.Unlock()
}

// Close stops listening and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return
	}
	p.done = true
	conns := p.conns
	p.conns = map[*link]struct{}{}
	close(p.gate)
	p.gate = make(chan struct{})
	p.mu.Unlock()
	p.ln.Close()
	for l := range conns {
		l.close()
	}
	p.wg.Wait()
}

// cut returns the active cut for tag and the current gate.
func (p *Proxy) cut(tag string) (Mode, bool, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, ok := p.cuts[tag]
	if !ok && tag != "" {
		m, ok = p.cuts[""]
	}
	return m, ok && !p.done, p.gate
}

func (l *link) close() {
	l.client.Close()
	if l.server != nil {
		l.server.Close()
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	// A cut that covers every connection refuses before dialling; a tagged
	// one is only known after the handshake.
	if m, on, _ := p.cut(""); on && m == Reset {
		p.refused.Add(1)
		c.Close()
		return
	}
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	l := &link{client: c, server: s}
	if p.handshake != nil {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		tag, err := p.handshake(c, s)
		c.SetDeadline(time.Time{})
		if err != nil {
			l.close()
			return
		}
		l.tag = tag
	}
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		l.close()
		return
	}
	p.conns[l] = struct{}{}
	p.mu.Unlock()
	if m, on, _ := p.cut(l.tag); on && m == Reset {
		p.refused.Add(1)
		p.drop(l)
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.copy(l, s, c) }()
	go func() { defer wg.Done(); p.copy(l, c, s) }()
	wg.Wait()
	p.drop(l)
}

func (p *Proxy) drop(l *link) {
	p.mu.Lock()
	delete(p.conns, l)
	p.mu.Unlock()
	l.close()
}

// copy relays src to dst, holding each chunk while the link is stalled.
func (p *Proxy) copy(l *link, dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			for {
				m, on, gate := p.cut(l.tag)
				if !on {
					break
				}
				if m == Reset {
					l.close()
					return
				}
				<-gate
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				l.close()
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				l.close()
				return
			}
			// Half-close: the other direction may still carry data.
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			} else {
				l.close()
			}
			return
		}
	}
}
