package satellite

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/satellite/satpb"
	"github.com/electric-sql/electric-go/internal/testkit"
	"github.com/gorilla/websocket"
)

// BenchmarkFanout: N concurrent sessions receive a stream of log
// transactions (one row each). Reported per run:
//   - p50/p99 ms: delivery latency from handing the transaction to the
//     sequencer (merge, group commit with fsync, fan-out, WebSocket) to the
//     frame received by a client, paced at 10,000 frames/s offered (100 tx/s
//     to 100 sessions, 10 tx/s to 1,000);
//   - frames/s: frames delivered per second when the transactions are
//     enqueued as fast as the sequencer takes them (burst);
//   - B/session: heap and stacks per idle session (server and test client
//     in one process), and the same for a bare gorilla WebSocket connection;
//   - ratios against a baseline hub that writes the same frames to the same
//     connections from one goroutine per connection, with no log, merge or
//     protocol (the transport floor).
//
// Run: go test -run '^$' -bench Fanout -benchtime 200x ./engine/satellite
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) { benchFanout(b, n) })
	}
}

// benchClient reads frames and records when each transaction arrived.
type benchClient struct {
	conn    *websocket.Conn
	sent    []atomic.Int64 // unix nanos when transaction i was handed over
	base    uint64         // offset of transaction 0 minus one
	lat     []time.Duration
	got     atomic.Int64
	lastLSN []byte
	done    chan struct{}
}

func (c *benchClient) read() {
	defer close(c.done)
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		now := time.Now().UnixNano()
		if len(data) == 0 {
			continue
		}
		switch satpb.MsgType(data[0]) {
		case satpb.TypePingReq:
			resp := &satpb.SatPingResp{}
			if c.lastLSN != nil {
				resp.Lsn = c.lastLSN
			}
			f, _ := satpb.Encode(resp)
			if c.conn.WriteMessage(websocket.BinaryMessage, f) != nil {
				return
			}
		case satpb.TypeOpLog:
			m, err := satpb.Decode(data)
			if err != nil {
				return
			}
			for _, op := range m.(*satpb.SatOpLog).Ops {
				bg := op.GetBegin()
				if bg == nil {
					continue
				}
				c.lastLSN = bg.Lsn
				off, _ := OffsetOfServerLSN(bg.Lsn)
				i := int(off - c.base - 1)
				if i >= 0 && i < len(c.sent) {
					c.lat = append(c.lat, time.Duration(now-c.sent[i].Load()))
					c.got.Add(1)
				}
			}
		}
	}
}

func heapAndStacks() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

func benchFanout(b *testing.B, n int) {
	// Baseline: bare connections and a hub.
	hub := &benchHub{}
	hs := httptest.NewServer(hub)
	defer hs.Close()
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	m0 := heapAndStacks()
	baseClients := make([]*benchClient, n)
	for i := range baseClients {
		conn, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		baseClients[i] = &benchClient{conn: conn, done: make(chan struct{})}
	}
	testkit.Eventually(b, "hub connections", func() bool { return hub.count() == n })
	bareBytes := float64(heapAndStacks()-m0) / float64(n)
	baseP50, baseP99 := benchStream(b, baseClients, 0, func(i int) { hub.broadcast(b, i) })
	for _, c := range baseClients {
		_ = c.conn.Close()
		<-c.done
	}

	env := newEnv(b, func(o *Options) { o.ResendAfter = -1 })
	m1 := heapAndStacks()
	clients := make([]*benchClient, n)
	for i := range clients {
		tc := env.dial()
		tc.handshake(fmt.Sprintf("bench-%d", i), "user", &satpb.SatInStartReplicationReq{
			Options: []satpb.SatInStartReplicationReq_Option{satpb.SatInStartReplicationReq_LAST_LSN}})
		clients[i] = &benchClient{conn: tc.conn, done: make(chan struct{})}
	}
	sessBytes := float64(heapAndStacks()-m1) / float64(n)
	head := env.log.Head()
	val := strings.Repeat("v", 64)
	write := func(ctx context.Context, i int, wait bool) {
		item := Item{Source: "pg_bench", Position: []byte{1},
			Tx: merge.Tx{Origin: "pg_bench", CommitTime: uint64(time.Now().UnixMicro()),
				Ops: []merge.Op{itemOp(fmt.Sprintf("k%d", i%64), val, null)}}}
		var err error
		if wait {
			_, err = env.seq.Submit(ctx, item)
		} else {
			err = env.seq.Enqueue(ctx, item)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	p50, p99 := benchStream(b, clients, head, func(i int) { write(context.Background(), i, false) })

	// Burst: as fast as the sequencer takes them.
	head = env.log.Head()
	for _, c := range clients {
		c.sent = make([]atomic.Int64, b.N)
		c.base, c.lat = head, c.lat[:0]
		c.got.Store(0)
	}
	start := time.Now()
	for i := 0; i < b.N; i++ {
		now := time.Now().UnixNano()
		for _, c := range clients {
			c.sent[i].Store(now)
		}
		write(context.Background(), i, false)
	}
	waitAll(b, clients, b.N)
	elapsed := time.Since(start)

	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(b.N*n)/elapsed.Seconds(), "frames/s")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tx/s")
	b.ReportMetric(sessBytes, "B/session")
	b.ReportMetric(bareBytes, "B/bare-conn")
	b.ReportMetric(float64(p50)/float64(max(baseP50, 1)), "p50-vs-hub")
	b.ReportMetric(float64(p99)/float64(max(baseP99, 1)), "p99-vs-hub")
	b.ReportMetric(sessBytes/bareBytes, "mem-vs-bare")
	for _, c := range clients {
		_ = c.conn.Close()
	}
}

// benchStream sends b.N transactions, paced at 10,000 frames/s in all, and
// returns the delivery latency percentiles over every client.
func benchStream(b *testing.B, clients []*benchClient, base uint64, send func(i int)) (p50, p99 time.Duration) {
	for _, c := range clients {
		c.sent = make([]atomic.Int64, b.N)
		c.base = base
		c.lat = make([]time.Duration, 0, b.N)
		go c.read()
	}
	tick := time.NewTicker(time.Duration(len(clients)) * 100 * time.Microsecond)
	defer tick.Stop()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		<-tick.C
		now := time.Now().UnixNano()
		for _, c := range clients {
			c.sent[i].Store(now)
		}
		send(i)
	}
	waitAll(b, clients, b.N)
	b.StopTimer()
	var all []time.Duration
	for _, c := range clients {
		all = append(all, c.lat...)
	}
	slices.Sort(all)
	return all[len(all)/2], all[len(all)*99/100]
}

func waitAll(b *testing.B, clients []*benchClient, want int) {
	deadline := time.Now().Add(5 * time.Minute)
	for _, c := range clients {
		for c.got.Load() < int64(want) {
			if time.Now().After(deadline) {
				b.Fatalf("a client got %d of %d transactions", c.got.Load(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// benchHub is the baseline: it writes every frame to every connection,
// one writer goroutine and a bounded queue per connection.
type benchHub struct {
	mu    sync.Mutex
	conns []chan []byte
}

func (h *benchHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	ch := make(chan []byte, 32)
	h.mu.Lock()
	h.conns = append(h.conns, ch)
	h.mu.Unlock()
	go func() {
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				_ = conn.Close()
				return
			}
		}
	}()
	for f := range ch {
		if conn.WriteMessage(websocket.BinaryMessage, f) != nil {
			return
		}
	}
}

func (h *benchHub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

func (h *benchHub) broadcast(b *testing.B, i int) {
	off := uint64(i + 1)
	lsn := ServerLSN(off)
	f, err := satpb.Encode(&satpb.SatOpLog{Ops: []*satpb.SatTransOp{
		begin(lsn, uint64(time.Now().UnixMilli())), insert(1, txt(fmt.Sprintf("k%d", i%64)), txt(strings.Repeat("v", 64)), null), commit()}})
	if err != nil {
		b.Fatal(err)
	}
	h.mu.Lock()
	conns := slices.Clone(h.conns)
	h.mu.Unlock()
	for _, ch := range conns {
		ch <- f
	}
}
