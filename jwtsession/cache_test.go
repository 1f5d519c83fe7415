package jwtsession

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"
)

func cacheKey(i int) *[32]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	sum := sha256.Sum256(b[:])
	return &sum
}

func TestBoundedCacheNeverExceedsItsSize(t *testing.T) {
	now := newClock().Now()
	for _, size := range []int{1, 10, 1000, 100_000} {
		c := newBoundedCache[int](size)
		for i := range 2 * size {
			c.put(cacheKey(i), i, now.Add(time.Hour), now)
			if i%max(size/100, 1) != 0 {
				continue
			}
			if n := c.len(); n > size {
				t.Fatalf("size %d: %d entries after %d puts", size, n, i+1)
			}
		}
		if n := c.len(); n < size*9/10 {
			t.Errorf("size %d: only %d entries kept", size, n)
		}
	}
}

func TestBoundedCacheDropsExpiredEntriesFirst(t *testing.T) {
	clk := newClock()
	c := newBoundedCache[int](10)
	for i := range 10 {
		c.put(cacheKey(i), i, clk.Now().Add(time.Minute), clk.Now())
	}
	clk.Add(2 * time.Minute)
	c.put(cacheKey(100), 100, clk.Now().Add(time.Minute), clk.Now())
	if n := c.len(); n != 1 {
		t.Errorf("%d entries after a put into a shard of expired entries, want 1", n)
	}
	if v, _, ok := c.get(cacheKey(100)); !ok || v != 100 {
		t.Errorf("get = %d, %v; want 100, true", v, ok)
	}
}

func TestBoundedCacheIgnoresPastDeadlines(t *testing.T) {
	now := newClock().Now()
	c := newBoundedCache[int](10)
	c.put(cacheKey(1), 1, now, now)
	if _, _, ok := c.get(cacheKey(1)); ok {
		t.Error("an entry whose deadline has passed was stored")
	}
}
