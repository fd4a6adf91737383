package merge

import (
	"encoding/json"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// measure runs fn and baseline b.N times each and reports fn's time per op
// (the benchmark's own ns/op), the ratio to the baseline, measured in the
// same run so the figure does not depend on the machine, and the process's
// CPU time per op (cpu-ns/op, GC included), which stays meaningful when the
// machine is shared and wall time includes waiting for a core.
func measure(b *testing.B, fn, baseline func()) {
	b.Helper()
	b.StopTimer()
	start := time.Now()
	for range b.N {
		baseline()
	}
	base := time.Since(start)
	runtime.GC() // the baseline's garbage is not fn's CPU time
	b.ReportAllocs()
	b.ResetTimer()
	b.StartTimer()
	cpu0 := cpuTime()
	start = time.Now()
	for range b.N {
		fn()
	}
	own := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	if base > 0 {
		b.ReportMetric(float64(own)/float64(base), "x-baseline")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func insertTx(rows int) Tx {
	tx := Tx{Origin: "pg_a", CommitTime: 1_700_000_000_000_000, Offset: 2, Context: 1, ContextEff: 1_699_999_999_000_000}
	for i := range rows {
		id := fmt.Sprint(i)
		tx.Ops = append(tx.Ops, Op{Kind: OpInsert, Table: "public.items", Key: EncodeKey([]Value{txt(id)}), Columns: map[string]Value{
			"id": txt(id), "content": txt("some content of a typical row"), "title": txt("title"), "n": txt("12345"), "note": null,
		}})
	}
	return tx
}

// BenchmarkApplyInsert1000 merges one 1,000-row insert transaction into an
// empty store. Baseline: copying every row's columns into a fresh map, the
// least any merge that returns full row images must do.
func BenchmarkApplyInsert1000(b *testing.B) {
	tx := insertTx(1000)
	s := memStore{}
	var sink int
	measure(b, func() {
		res, err := Apply(s, 0, tx)
		if err != nil {
			b.Fatal(err)
		}
		sink += len(res.Changes)
	}, func() {
		for _, op := range tx.Ops {
			m := make(map[string]Value, len(op.Columns))
			for k, v := range op.Columns {
				m[k] = v
			}
			sink += len(m)
		}
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/row")
	_ = sink
}

// BenchmarkApplyUpdate merges a one-column update into an existing
// five-column row that two origins wrote. Baseline: Row.Clone, which Apply
// must do to leave the stored row untouched.
func BenchmarkApplyUpdate(b *testing.B) {
	s := memStore{}
	res, err := Apply(s, 0, insertTx(1))
	if err != nil {
		b.Fatal(err)
	}
	s.commit(res)
	res, err = Apply(s, 0, Tx{Origin: "pg_b", CommitTime: 1_700_000_000_000_100, Offset: 3, Ops: []Op{{Kind: OpUpdate, Table: "public.items", Key: "0", Columns: map[string]Value{"title": txt("b")}}}})
	if err != nil {
		b.Fatal(err)
	}
	s.commit(res)
	stored := s[rowID{"public.items", "0"}]
	tx := Tx{Origin: "pg_a", CommitTime: 1_700_000_000_000_200, Offset: 4, Context: 3, ContextEff: 1_700_000_000_000_100, Ops: []Op{
		{Kind: OpUpdate, Table: "public.items", Key: "0", Columns: map[string]Value{"content": txt("changed")}, Old: map[string]Value{"content": txt("some content of a typical row")}},
	}}
	var sink int
	measure(b, func() {
		res, err := Apply(s, 1_700_000_000_000_000, tx)
		if err != nil {
			b.Fatal(err)
		}
		sink += len(res.Changes)
	}, func() {
		sink += len(stored.Clone().Cells)
	})
	_ = sink
}

func typicalRow() *Row {
	return &Row{
		Cells: map[string]Cell{
			"id":      {Value: txt("8c2e7d2a-4b1f-4f7e-9a57-1f0e6a1c2b3d"), Eff: 1_700_000_000_000_000, Origin: "pg_a"},
			"content": {Value: txt("some content of a typical row"), Eff: 1_700_000_000_000_100, Origin: "pg_b"},
			"title":   {Value: txt("title"), Eff: 1_700_000_000_000_000, Origin: "pg_a"},
			"n":       {Value: txt("12345"), Eff: 1_700_000_000_000_000, Origin: "pg_a"},
			"note":    {Value: null, Eff: 1_700_000_000_000_000, Origin: "pg_a"},
		},
		Tags: []Tag{{Origin: "pg_a", Eff: 1_700_000_000_000_000, Offset: 1_000_000}, {Origin: "pg_b", Eff: 1_700_000_000_000_100, Offset: 1_000_001}},
	}
}

// BenchmarkMarshalRow encodes a typical five-column row state. Baseline:
// encoding/json of the same row.
func BenchmarkMarshalRow(b *testing.B) {
	r := typicalRow()
	buf := make([]byte, 0, 512)
	var sink int
	measure(b, func() {
		buf = AppendRow(buf[:0], r)
		sink += len(buf)
	}, func() {
		j, err := json.Marshal(r)
		if err != nil {
			b.Fatal(err)
		}
		sink += len(j)
	})
	j, _ := json.Marshal(r)
	b.ReportMetric(float64(len(MarshalRow(r))), "bytes")
	b.ReportMetric(float64(len(j)), "json-bytes")
	_ = sink
}

// BenchmarkUnmarshalRow decodes a typical five-column row state. Baseline:
// encoding/json of the same row.
func BenchmarkUnmarshalRow(b *testing.B) {
	enc := MarshalRow(typicalRow())
	j, err := json.Marshal(typicalRow())
	if err != nil {
		b.Fatal(err)
	}
	var sink int
	measure(b, func() {
		r, err := UnmarshalRow(enc)
		if err != nil {
			b.Fatal(err)
		}
		sink += len(r.Cells)
	}, func() {
		var r Row
		if err := json.Unmarshal(j, &r); err != nil {
			b.Fatal(err)
		}
		sink += len(r.Cells)
	})
	_ = sink
}

// BenchmarkEncodeKey encodes a single text key and a two-column key.
// Baseline: strings joined with ":" (the seed's ambiguous encoding).
func BenchmarkEncodeKey(b *testing.B) {
	vals := []Value{txt("8c2e7d2a-4b1f-4f7e-9a57-1f0e6a1c2b3d"), txt("42")}
	var sink int
	measure(b, func() {
		sink += len(EncodeKey(vals[:1])) + len(EncodeKey(vals))
	}, func() {
		sink += len(vals[0].Text) + len(vals[0].Text+":"+vals[1].Text)
	})
	_ = sink
}
