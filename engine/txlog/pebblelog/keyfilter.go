package pebblelog

import (
	"hash/maphash"
	"sync"
)

// keyFilter answers "is there possibly a row state under this key?" from
// memory. Most rows the sequencer merges during an ingest are new, and
// without it each one costs a store lookup that finds nothing (a memtable
// search plus a bloom filter probe per sstable). It is a scalable Bloom
// filter: a list of filters, each twice the capacity of the previous, added
// to when the last is full, so it never needs rebuilding; ~1% false
// positives, which just fall through to the store. Deleted rows stay in it
// (harmless for the same reason). Built at Open from the stored keys.
type keyFilter struct {
	mu      sync.RWMutex
	seed    maphash.Seed
	filters []*bloomFilter
}

const (
	filterBitsPerKey = 10
	filterHashes     = 7
	filterFirstCap   = 1 << 16
)

type bloomFilter struct {
	bits  []uint64
	mask  uint64 // number of bits - 1 (a power of two)
	n     int
	limit int
}

func newKeyFilter() *keyFilter {
	return &keyFilter{seed: maphash.MakeSeed()}
}

func newBloom(capacity int) *bloomFilter {
	nbits := uint64(64)
	for nbits < uint64(capacity*filterBitsPerKey) {
		nbits <<= 1
	}
	return &bloomFilter{bits: make([]uint64, nbits/64), mask: nbits - 1, limit: capacity}
}

func (f *keyFilter) hash(k []byte) (uint64, uint64) {
	h := maphash.Bytes(f.seed, k)
	return h, h>>33 | h<<31 | 1 // second hash for double hashing, odd
}

func (f *keyFilter) add(k []byte) {
	h1, h2 := f.hash(k)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.filters) == 0 || f.filters[len(f.filters)-1].n >= f.filters[len(f.filters)-1].limit {
		c := filterFirstCap
		if len(f.filters) > 0 {
			c = 2 * f.filters[len(f.filters)-1].limit
		}
		f.filters = append(f.filters, newBloom(c))
	}
	b := f.filters[len(f.filters)-1]
	for i := uint64(0); i < filterHashes; i++ {
		bit := (h1 + i*h2) & b.mask
		b.bits[bit/64] |= 1 << (bit % 64)
	}
	b.n++
}

func (f *keyFilter) mayContain(k []byte) bool {
	h1, h2 := f.hash(k)
	f.mu.RLock()
	defer f.mu.RUnlock()
next:
	for _, b := range f.filters {
		for i := uint64(0); i < filterHashes; i++ {
			bit := (h1 + i*h2) & b.mask
			if b.bits[bit/64]&(1<<(bit%64)) == 0 {
				continue next
			}
		}
		return true
	}
	return false
}

// sizeBytes is the filter's memory.
func (f *keyFilter) sizeBytes() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n := 0
	for _, b := range f.filters {
		n += 8 * len(b.bits)
	}
	return n
}
