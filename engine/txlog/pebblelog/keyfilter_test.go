package pebblelog

import (
	"fmt"
	"testing"
)

func TestKeyFilter(t *testing.T) {
	f := newKeyFilter()
	const n = 300_000 // several filters: 64k, 128k, 256k
	for i := 0; i < n; i++ {
		f.add(fmt.Appendf(nil, "present-%d", i))
	}
	if len(f.filters) < 3 {
		t.Errorf("%d filters for %d keys", len(f.filters), n)
	}
	for i := 0; i < n; i++ {
		if !f.mayContain(fmt.Appendf(nil, "present-%d", i)) {
			t.Fatalf("key %d added but not found", i)
		}
	}
	fp := 0
	const probes = 100_000
	for i := 0; i < probes; i++ {
		if f.mayContain(fmt.Appendf(nil, "absent-%d", i)) {
			fp++
		}
	}
	// ~1% per filter; a few filters are checked.
	if rate := float64(fp) / probes; rate > 0.05 {
		t.Errorf("false positive rate %.3f", rate)
	}
	if f.sizeBytes() <= 0 || f.sizeBytes() > n*filterBitsPerKey { // bits-per-key in bytes: generous
		t.Errorf("filter size %d bytes for %d keys", f.sizeBytes(), n)
	}
}
