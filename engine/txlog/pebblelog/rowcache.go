package pebblelog

import (
	"bytes"
	"sync"
)

// rowCache keeps encoded row states by store key. It holds encoded bytes,
// not *merge.Row, so that no caller can alter the cache through a row it was
// given. Rows enter it when they are read (the sequencer reads the rows it
// merges) and commits keep cached rows current; a commit does not add rows,
// so an ingest of new rows does not churn it. Eviction is random (Go map
// order).
type rowCache struct {
	mu   sync.Mutex
	m    map[string][]byte
	used int
	max  int
	// gen counts writes, so that a value read from the store before a
	// commit is not cached over the committed one (see fill).
	gen uint64
}

type cachedRow struct {
	k, v []byte // v nil: deleted
}

func (c *rowCache) get(k []byte) (v []byte, gen uint64, ok bool) {
	c.mu.Lock()
	v, ok = c.m[string(k)]
	gen = c.gen
	c.mu.Unlock()
	return v, gen, ok
}

// fill caches a value read from the store, unless a commit changed the cache
// since gen (the value read may then be older than the committed one).
func (c *rowCache) fill(k, v []byte, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	c.putLocked(k, v)
}

// update applies a commit's row states to the rows already cached.
func (c *rowCache) update(rows []cachedRow) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if len(c.m) == 0 {
		return
	}
	for _, r := range rows {
		old, ok := c.m[string(r.k)]
		if !ok {
			continue
		}
		if r.v == nil {
			c.used -= len(r.k) + len(old)
			delete(c.m, string(r.k))
			continue
		}
		c.putLocked(r.k, bytes.Clone(r.v))
	}
}

func (c *rowCache) putLocked(k, v []byte) {
	if old, ok := c.m[string(k)]; ok {
		c.used -= len(k) + len(old)
	}
	c.m[string(k)] = v
	c.used += len(k) + len(v)
	for c.used > c.max {
		for ek, ev := range c.m {
			delete(c.m, ek)
			c.used -= len(ek) + len(ev)
			break
		}
	}
}

func (c *rowCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}
