package satellite

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/satellite/satpb"
	"github.com/electric-sql/electric-go/internal/testkit"
)

// spillFiles lists the spilled transactions in dir.
func spillFiles(t testing.TB, dir string) []os.DirEntry {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []os.DirEntry
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), spillPrefix) {
			out = append(out, e)
		}
	}
	return out
}

// The ops a session holds in memory for one open transaction never exceed
// SpillAfterBytes, whatever the transaction's size; the rest is in the
// spill file, and reading it back gives the ops as received, in order
// (NULLs, empty strings and deletes' old values included).
func TestHoldOpBoundsMemory(t *testing.T) {
	dir := t.TempDir()
	const threshold = 8 << 10
	srv := &Server{opts: (&Options{SpillAfterBytes: threshold, SpillDir: dir}).withDefaults()}
	s := &session{srv: srv, log: slog.New(slog.DiscardHandler), clientID: "c", tx: &pendingTx{lsn: be32(9)}}
	var want []merge.Op
	for i := range 500 {
		op := merge.Op{Kind: merge.OpInsert, Table: "public.items", Key: fmt.Sprintf("k%d", i),
			Columns: map[string]merge.Value{"id": txt(fmt.Sprint(i)), "content": txt(strings.Repeat("x", i%97)), "content_b": {Null: true}, "e": txt("")}}
		if i%5 == 0 {
			op = merge.Op{Kind: merge.OpDelete, Table: "public.items", Key: op.Key, Old: op.Columns}
		}
		s.tx.bytes += int64(txOpOverhead + 2*4 + 2 + i%97 + len(op.Key)) // as countTxBytes counts, roughly
		if err := s.holdOp(op); err != nil {
			t.Fatal(err)
		}
		want = append(want, op)
		held := int64(0)
		for _, o := range s.tx.ops {
			held += int64(txOpOverhead + len(o.Key) + 2*4 + 2 + len(o.Columns["content"].Text) + len(o.Old["content"].Text))
		}
		if held > threshold {
			t.Fatalf("after %d ops, %d bytes of ops held in memory (spill after %d)", i+1, held, threshold)
		}
	}
	if s.tx.spill == nil || len(spillFiles(t, dir)) != 1 {
		t.Fatalf("a %d-byte transaction was not spilled", s.tx.bytes)
	}
	tx := s.tx
	s.tx = nil
	release, err := s.loadSpilled(context.Background(), tx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if !reflect.DeepEqual(tx.ops, want) {
		t.Fatalf("read back %d ops, not the %d received", len(tx.ops), len(want))
	}
	if n := len(spillFiles(t, dir)); n != 0 {
		t.Fatalf("%d spill files left after the read-back", n)
	}
	if n := srv.Status().TxSpilled; n != 1 {
		t.Fatalf("TxSpilled = %d, want 1", n)
	}
}

// At most one spilled transaction is held in memory for the merge at a
// time, engine-wide: a second read-back waits until the first is released.
func TestSpilledReadBackOneAtATime(t *testing.T) {
	dir := t.TempDir()
	srv := &Server{opts: (&Options{SpillAfterBytes: 1, SpillDir: dir}).withDefaults()}
	spilled := func(id string) (*session, *pendingTx) {
		s := &session{srv: srv, log: slog.New(slog.DiscardHandler), clientID: id, tx: &pendingTx{lsn: be32(2), bytes: 100}}
		if err := s.holdOp(merge.Op{Kind: merge.OpInsert, Table: "public.items", Key: id, Columns: map[string]merge.Value{"id": txt(id)}}); err != nil {
			t.Fatal(err)
		}
		tx := s.tx
		s.tx = nil
		return s, tx
	}
	a, atx := spilled("a")
	b, btx := spilled("b")
	releaseA, err := a.loadSpilled(context.Background(), atx)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		release, err := b.loadSpilled(ctx, btx)
		if err == nil {
			release()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("second read-back did not wait for the first: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	releaseA()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	cancel()
}

// End to end: a client transaction far over SpillAfterBytes is spilled
// while it arrives, then taken whole and acked once; no file is left.
func TestLargeTransactionSpilledAndTaken(t *testing.T) {
	dir := t.TempDir()
	var logs testkit.SyncBuffer
	env := newEnv(t, func(o *Options) {
		o.SpillAfterBytes = 32 << 10
		o.SpillDir = dir
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	c := env.dial()
	c.handshake("c", "alice", nil)
	c.send(clientItems)
	c.writeAcked(be32(1), "small")
	const n = 400
	big := strings.Repeat("y", 4<<10) // 1.6 MB in all
	c.send(oplog(begin(be32(1+n), nowMs())))
	for i := range n {
		c.send(oplog(insert(0, txt(fmt.Sprintf("big%03d", i)), txt(big), null)))
	}
	testkit.Eventually(t, "the transaction spilled before its commit", func() bool { return len(spillFiles(t, dir)) == 1 })
	c.send(oplog(commit()))
	for {
		if ack, ok := c.recv().(*satpb.SatPingResp); ok {
			if !bytes.Equal(ack.Lsn, be32(1+n)) {
				t.Fatalf("ack %x, want %x", ack.Lsn, be32(1+n))
			}
			break
		}
	}
	for i := range n {
		if r := env.row("public.items", fmt.Sprintf("big%03d", i)); r == nil || r["content"].Text != big {
			t.Fatalf("row big%03d not taken whole", i)
		}
	}
	if f := spillFiles(t, dir); len(f) != 0 {
		t.Fatalf("spill files left: %v", f)
	}
	if n := env.srv.Status().TxSpilled; n != 1 {
		t.Errorf("TxSpilled = %d, want 1", n)
	}
	if !logs.Contains("spilling it to disk") {
		t.Errorf("no log line for the spilled transaction:\n%s", logs.String())
	}
}

// A spilled transaction cut short by the end of its session leaves no
// file behind; files left by a crash are removed by CleanSpillDir.
func TestSpillFileRemoved(t *testing.T) {
	dir := t.TempDir()
	env := newEnv(t, func(o *Options) {
		o.SpillAfterBytes = 1 << 10
		o.SpillDir = dir
	})
	c := env.dial()
	c.handshake("c", "alice", nil)
	c.send(clientItems)
	c.send(oplog(begin(be32(100), nowMs())))
	for i := range 10 {
		c.send(oplog(insert(0, txt(fmt.Sprint(i)), txt(strings.Repeat("z", 1<<10)), null)))
	}
	testkit.Eventually(t, "spilled", func() bool { return len(spillFiles(t, dir)) == 1 })
	_ = c.conn.Close()
	testkit.Eventually(t, "spill file removed with the session", func() bool { return len(spillFiles(t, dir)) == 0 })

	if err := os.WriteFile(dir+"/"+spillPrefix+"left", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/other", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CleanSpillDir(dir); err != nil {
		t.Fatal(err)
	}
	if len(spillFiles(t, dir)) != 0 {
		t.Fatal("CleanSpillDir left a spill file")
	}
	if _, err := os.Stat(dir + "/other"); err != nil {
		t.Fatalf("CleanSpillDir removed another file: %v", err)
	}
}

// BenchmarkLargeTransactionHeap sends one client transaction of b.N MiB of
// row data and reports the peak heap in use while it arrived (before its
// commit) and during its merge, against its size.
func BenchmarkLargeTransactionHeap(b *testing.B) {
	env := newEnv(b, func(o *Options) { o.SpillDir = b.TempDir() })
	c := env.dial()
	c.handshake("c", "alice", nil)
	c.send(clientItems)
	value := strings.Repeat("v", 64<<10)
	ops := b.N * 16 // 16 ops of 64 KiB per MiB
	var peakRecv, peakMerge uint64
	var ms runtime.MemStats
	sample := func(peak *uint64) {
		runtime.ReadMemStats(&ms)
		*peak = max(*peak, ms.HeapInuse)
	}
	runtime.GC()
	sample(new(uint64))
	base := ms.HeapInuse
	b.ResetTimer()
	c.send(oplog(begin(be32(uint32(ops)), nowMs())))
	for i := range ops {
		c.send(oplog(insert(0, txt(fmt.Sprint(i)), txt(value), null)))
		if i%64 == 0 {
			sample(&peakRecv)
		}
	}
	c.reply(oplog(commit()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, ok := c.recv().(*satpb.SatPingResp); ok {
				return
			}
		}
	}()
	for {
		select {
		case <-done:
			b.ReportMetric(float64(b.N), "MiB/tx")
			b.ReportMetric(float64(peakRecv-min(peakRecv, base))/(1<<20), "MiB-heap-receiving")
			b.ReportMetric(float64(peakMerge-min(peakMerge, base))/(1<<20), "MiB-heap-merging")
			return
		case <-time.After(20 * time.Millisecond):
			sample(&peakMerge)
		}
	}
}
