package pgsource

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/electric-sql/electric-go/internal/pgcluster"
	"github.com/electric-sql/electric-go/internal/pgtest"
	"github.com/electric-sql/electric-go/internal/testkit"
)

// corruptingProxy forwards TCP to Postgres and, when armed, slips one forged
// CopyData message into a server-to-client stream that is in copy-both mode
// (a replication stream), at a message boundary.
type corruptingProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	forged [][]byte // messages to inject, one per injection
	wg     sync.WaitGroup
}

func newCorruptingProxy(t *testing.T, target string) *corruptingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &corruptingProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *corruptingProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *corruptingProxy) arm(msg []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forged = append(p.forged, msg)
}

func (p *corruptingProxy) take() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.forged) == 0 {
		return nil
	}
	m := p.forged[0]
	p.forged = p.forged[1:]
	return m
}

func (p *corruptingProxy) pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.forged)
}

func (p *corruptingProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			io.Copy(s, c)
			s.Close()
		}()
		go func() {
			defer p.wg.Done()
			p.serverToClient(s, c)
			c.Close()
		}()
	}
}

// serverToClient copies backend messages one by one (the client asks for no
// TLS, so the stream is framed from the first byte).
func (p *corruptingProxy) serverToClient(s, c net.Conn) {
	copyBoth := false
	hdr := make([]byte, 5)
	for {
		if _, err := io.ReadFull(s, hdr); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(hdr[1:])) - 4
		if n < 0 {
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(s, body); err != nil {
			return
		}
		if copyBoth && hdr[0] == 'd' {
			if m := p.take(); m != nil {
				if _, err := c.Write(m); err != nil {
					return
				}
			}
		}
		if hdr[0] == 'W' {
			copyBoth = true
		}
		if _, err := c.Write(append(hdr, body...)); err != nil {
			return
		}
	}
}

// copyData frames a CopyData message.
func copyData(payload []byte) []byte {
	m := []byte{'d', 0, 0, 0, 0}
	binary.BigEndian.PutUint32(m[1:], uint32(len(payload)+4))
	return append(m, payload...)
}

// xlogData wraps a pgoutput message in an XLogData header.
func xlogData(msg []byte) []byte {
	return copyData(append(append([]byte{'w'}, make([]byte, 24)...), msg...))
}

func TestMalformedMessagesReconnect(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	pg.Exec(workloadDDL)
	proxy := newCorruptingProxy(t, fmt.Sprintf("127.0.0.1:%d", pg.Port))
	uri := fmt.Sprintf("postgresql://%s:%s@127.0.0.1:%d/%s?sslmode=disable",
		pgcluster.DefaultUser, pgcluster.DefaultPassword, proxy.port(), pgcluster.DefaultDatabase)

	logger, logs := testLogger(t)
	h, err := startEngine(t, uri, t.TempDir(), "pg1", logger)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := h.stop(); err != nil {
			t.Errorf("stopping: %v", err)
		}
	}()
	testkit.Eventually(t, "ready", h.src.Ready)
	w := &writer{rowsPerTx: 2}
	conn := pg.Connect()
	ctx := context.Background()
	T := 0
	write := func(n int) {
		for i := 0; i < n; i++ {
			T++
			if err := w.tx(ctx, conn, T); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(5)
	testkit.Eventually(t, "5 entries", func() bool { return h.log.Head() >= 5 })

	cases := []struct {
		msg  []byte
		want string
	}{
		{xlogData([]byte("Zgarbage")), `decoding pgoutput message 'Z'`},                       // unknown pgoutput message
		{xlogData([]byte{'I', 0, 0, 0, 1}), "decoding pgoutput"},                              // truncated insert
		{xlogData([]byte{'I', 0, 0, 0x7f, 0xff, 'N', 0, 1, 'n'}), "change to relation 32767"}, // unknown relation
		{copyData([]byte("?what")), `unexpected CopyData message '?'`},                        // not XLogData nor keepalive
		{copyData([]byte("k")), "parsing keepalive"},                                          // short keepalive
	}
	for i, c := range cases {
		proxy.arm(c.msg)
		write(3)
		testkit.Eventually(t, "injection", func() bool { return proxy.pending() == 0 })
		testkit.Eventually(t, fmt.Sprintf("case %d: error %q logged", i, c.want), func() bool { return strings.Contains(logs.String(), c.want) })
		testkit.Eventually(t, "entries after reconnect", func() bool { return h.log.Head() >= uint64(T) })
		testkit.Eventually(t, "ready again", h.src.Ready)
	}
	if st := h.src.Status(); st.LastError == "" {
		t.Errorf("status keeps no last error: %+v", st)
	}
	target := currentLSN(t, pg)
	testkit.Eventually(t, "caught up", func() bool { return h.src.Status().ConfirmedLSN >= target })
	validateLog(t, pg, h.log, "pg1", 2, w.committed)
}

func TestDecoderRejectsGarbage(t *testing.T) {
	t.Parallel()
	// Every prefix of these truncated, misplaced or unknown messages is an
	// error, never a panic or a silent success.
	msgs := [][]byte{
		{}, {'B'}, {'C', 0}, {'O', 0, 0, 0, 0, 0, 0, 0, 1, 'x'}, {'R', 0, 0, 0, 1, 'p', 0, 't', 0, 'f', 0, 5},
		{'I', 0, 0, 0, 1, 'N', 0, 2, 't', 0, 0, 0, 9, 'x'}, {'U', 0, 0, 0, 1, 'Q'}, {'D', 0, 0, 0, 1, 'K', 0, 0},
		{'T', 0, 0, 0, 5, 0}, {'Y', 0}, {'M', 1, 0}, {'S'}, {0xff},
	}
	for _, m := range msgs {
		for i := 0; i <= len(m); i++ {
			d := newDecoder(nopResolver{}, nopWarner{})
			if _, err := d.handle(context.Background(), m[:i]); err == nil {
				t.Errorf("message %q accepted", m[:i])
			}
		}
	}
}

type nopResolver struct{}

func (nopResolver) resolve(context.Context, *pglogrepl.RelationMessage) (*relation, error) {
	return nil, errors.New("no relation")
}

type nopWarner struct{}

func (nopWarner) warnChange(string, string) {}
