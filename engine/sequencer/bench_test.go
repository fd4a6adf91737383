package sequencer

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog/pebblelog"
)

// The ingest benchmark of issue 3 item 6, for the part after decoding:
// 1,000-row transactions of new rows with 4 text columns, merged and made
// durable by the sequencer and txlog. 1M rows:
//
//	go test -run '^$' -bench Ingest -benchtime 1000x ./engine/sequencer
//
// "merge-only" is the baseline in the same run: the same transactions merged
// into an in-memory map, nothing written. It runs second because peak-RSS-MB
// is the process's high-water mark and the baseline keeps every row in
// memory. rows/cpu-s (rows per CPU-second of the whole process) is the
// figure to compare on a shared machine; rows/s is wall-clock.

const benchTxRows = 1000

// benchTx builds source transaction n (rows n*1000 …).
func benchTx(n int) merge.Tx {
	tx := merge.Tx{Origin: "pg_a", CommitTime: 1_700_000_000_000_000 + uint64(n), Ops: make([]merge.Op, benchTxRows)}
	for i := range tx.Ops {
		key := strconv.Itoa(n*benchTxRows + i)
		tx.Ops[i] = merge.Op{Kind: merge.OpInsert, Table: "public.items", Key: key, Columns: map[string]merge.Value{
			"id":      {Text: key},
			"name":    {Text: "item name " + key},
			"content": {Text: "some longer text content for the row, about sixty bytes long"},
			"status":  {Text: "active"},
		}}
	}
	return tx
}

// memStore is merge.Store over a map, for the baseline.
type memStore map[rowID]*merge.Row

func (m memStore) Row(table, key string) (*merge.Row, error) { return m[rowID{table, key}], nil }
func (m memStore) Keys(string) ([]string, error)             { return nil, nil }

// vmHWM is the process's peak resident set size in bytes (0 if unknown).
func vmHWM() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb * 1024
		}
	}
	return 0
}

func BenchmarkIngest(b *testing.B) {
	b.Run("sequencer-txlog", func(b *testing.B) {
		l, err := pebblelog.Open(b.TempDir(), pebblelog.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		s := New(l, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go s.Run(ctx)
		runtime.GC()
		var peakHeap uint64
		stopSampling := make(chan struct{})
		var sampler sync.WaitGroup
		sampler.Add(1)
		go func() {
			defer sampler.Done()
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				peakHeap = max(peakHeap, ms.HeapInuse)
				select {
				case <-stopSampling:
					return
				case <-b.Context().Done():
					return
				default:
				}
				waitAWhile(stopSampling)
			}
		}()
		b.ResetTimer()
		cpu0 := cpuSeconds()
		var wg sync.WaitGroup
		wg.Add(b.N)
		var failed error
		var mu sync.Mutex
		for n := 0; n < b.N; n++ {
			it := Item{Source: "pg_a", Position: []byte(strconv.Itoa(n)), Tx: benchTx(n), Done: func(_ uint64, err error) {
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
				}
				wg.Done()
			}}
			if err := s.Enqueue(ctx, it); err != nil {
				b.Fatal(err)
			}
		}
		wg.Wait()
		b.StopTimer()
		cpu := cpuSeconds() - cpu0
		close(stopSampling)
		sampler.Wait()
		if failed != nil {
			b.Fatal(failed)
		}
		if l.Head() != uint64(b.N) {
			b.Fatalf("head %d after %d transactions", l.Head(), b.N)
		}
		st := s.Status()
		b.ReportMetric(float64(b.N*benchTxRows)/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(float64(b.N*benchTxRows)/cpu, "rows/cpu-s")
		b.ReportMetric(float64(st.Commits), "commits")
		b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MB")
		b.ReportMetric(vmHWM()/(1<<20), "peak-RSS-MB")
		b.ReportMetric(float64(l.Stats().SizeBytes)/(1<<20), "disk-MB")
	})
	b.Run("merge-only", func(b *testing.B) {
		st := memStore{}
		cpu0 := cpuSeconds()
		for n := 0; n < b.N; n++ {
			tx := benchTx(n)
			tx.Offset = uint64(n) + 1
			res, err := merge.Apply(st, 0, tx)
			if err != nil {
				b.Fatal(err)
			}
			for _, c := range res.Changes {
				st[rowID{c.Table, c.Key}] = c.State
			}
		}
		b.ReportMetric(float64(b.N*benchTxRows)/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(float64(b.N*benchTxRows)/(cpuSeconds()-cpu0), "rows/cpu-s")
	})
}

// cpuSeconds is the process's user+system CPU time. The machine is shared,
// so rows per CPU-second is reported beside rows per wall-second.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// waitAWhile sleeps ~10 ms unless stop is closed.
func waitAWhile(stop chan struct{}) {
	select {
	case <-stop:
	case <-time.After(10 * time.Millisecond):
	}
}
