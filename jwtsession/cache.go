package jwtsession

import (
	"sync"
	"time"
)

// maxShards is the most shards a boundedCache splits into; a shard holds at
// least minPerShard entries so small caches keep an exact bound.
const (
	maxShards   = 64
	minPerShard = 256
	// sweepEvery limits how often a full shard is scanned for expired entries.
	sweepEvery = time.Second
)

// A boundedCache maps token hashes to values until a per-entry deadline. It
// never holds more than its size: a full shard first drops its expired
// entries (at most once per sweepEvery) and otherwise evicts an arbitrary
// entry (Go's randomised map iteration order picks it). Sharding keeps the
// read path, which takes one shard's read lock, free of contention.
type boundedCache[V any] struct {
	shards   []cacheShard[V]
	perShard int
	mask     byte
}

type cacheShard[V any] struct {
	mu        sync.RWMutex
	m         map[[32]byte]cacheEntry[V]
	lastSweep time.Time
}

type cacheEntry[V any] struct {
	val   V
	until time.Time
}

// newBoundedCache returns a cache of at most size entries (size ≥ 1).
func newBoundedCache[V any](size int) *boundedCache[V] {
	n := 1
	for n < maxShards && size/(n*2) >= minPerShard {
		n *= 2
	}
	c := &boundedCache[V]{
		shards:   make([]cacheShard[V], n),
		perShard: max(size/n, 1),
		mask:     byte(n - 1),
	}
	for i := range c.shards {
		c.shards[i].m = make(map[[32]byte]cacheEntry[V])
	}
	return c
}

// shard picks a shard by the key's first byte; keys are SHA-256 sums, so
// that byte is uniform.
func (c *boundedCache[V]) shard(k *[32]byte) *cacheShard[V] {
	return &c.shards[k[0]&c.mask]
}

// get returns the value stored under k and its deadline. An entry past its
// deadline may still be returned (until a sweep or eviction drops it): the
// caller decides, so an expired token can be refused without new work.
func (c *boundedCache[V]) get(k *[32]byte) (V, time.Time, bool) {
	s := c.shard(k)
	s.mu.RLock()
	e, ok := s.m[*k]
	s.mu.RUnlock()
	return e.val, e.until, ok
}

// put stores v under k until the deadline; a deadline not after now stores nothing.
func (c *boundedCache[V]) put(k *[32]byte, v V, until, now time.Time) {
	if !now.Before(until) {
		return
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[*k]; !ok && len(s.m) >= c.perShard {
		if now.Sub(s.lastSweep) >= sweepEvery || now.Before(s.lastSweep) {
			s.lastSweep = now
			for key, e := range s.m {
				if !now.Before(e.until) {
					delete(s.m, key)
				}
			}
		}
		for key := range s.m {
			if len(s.m) < c.perShard {
				break
			}
			delete(s.m, key)
		}
	}
	s.m[*k] = cacheEntry[V]{val: v, until: until}
}

// delete forgets k.
func (c *boundedCache[V]) delete(k *[32]byte) {
	s := c.shard(k)
	s.mu.Lock()
	delete(s.m, *k)
	s.mu.Unlock()
}

// len returns the number of entries, expired ones included.
func (c *boundedCache[V]) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
