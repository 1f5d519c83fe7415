package proxy

import (
	"errors"
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// sweepEvery is the least time between sweeps of idle buckets: a sweep
// walks every bucket under the lock, so not on every short refill time.
const sweepEvery = 30 * time.Second

// errRateLimited is answered 429 with Retry-After.
var errRateLimited = errors.New("rate limited")

// rateLimitedError carries the wait for Retry-After; kind is set for the
// budget of new identities (counted when answered).
type rateLimitedError struct {
	wait time.Duration
	kind string
}

func (e *rateLimitedError) Error() string { return "rate limited" }
func (e *rateLimitedError) Unwrap() error { return errRateLimited }

// limiters is a set of token buckets by key (a session hash or a client IP)
// with bounded memory: buckets idle long enough to be full again are swept,
// and past max entries some are dropped (a dropped bucket starts full, so
// eviction only ever errs toward letting a request through).
//
// The buckets are plain values in the map (16 bytes each), not
// golang.org/x/time/rate limiters: one of those with its bucket pointer
// cost about 150 bytes per active session, a fifth of a cached session's
// memory, for features (reservations, waiting) finproxy does not use.
//
// Nor does the map keep the keys: it is keyed by their 64-bit hash under
// a seed of the process's own (hash/maphash), 8 bytes in the map instead
// of a 16-byte string header that kept the key's characters alive (a
// client IP's own; a session hash's are the store key's too): 17.5 bytes
// less per cached session (BenchmarkSessionMemory), and nothing for the
// collector to follow. Two keys that hash alike share a bucket: with the seed unknown
// outside the process nobody can make that happen, and by chance the odds
// are below one in 10^9 with 100 000 keys at once; it would only ever err
// toward limiting.
type limiters struct {
	rate  float64 // tokens per nanosecond
	burst float64
	max   int
	idle  time.Duration // a bucket idle this long is full again
	seed  maphash.Seed

	mu      sync.Mutex
	buckets map[uint64]bucket
	swept   time.Time
}

// bucket is one key's tokens as of last (Unix nanoseconds).
type bucket struct {
	tokens float64
	last   int64
}

// newLimiters returns limiters of perSecond with burst, at most size keys.
// perSecond <= 0 returns nil: no limit.
func newLimiters(perSecond float64, burst, size int) *limiters {
	if perSecond <= 0 {
		return nil
	}
	burst = max(burst, 1)
	return &limiters{
		rate:    perSecond / float64(time.Second),
		burst:   float64(burst),
		max:     size,
		idle:    time.Duration(float64(burst)/perSecond*float64(time.Second)) + time.Second,
		seed:    maphash.MakeSeed(),
		buckets: map[uint64]bucket{},
	}
}

// allow takes a token from key's bucket, or reports how long to wait until
// one is there.
func (l *limiters) allow(key string, now time.Time) (ok bool, wait time.Duration) {
	if l == nil {
		return true, 0
	}
	t, k := now.UnixNano(), maphash.String(l.seed, key)
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > max(l.idle, sweepEvery) {
		l.sweep(t)
	}
	b, found := l.buckets[k]
	switch {
	case !found:
		if len(l.buckets) >= l.max {
			l.evictSome()
		}
		b = bucket{tokens: l.burst, last: t}
	case t > b.last:
		b.tokens = min(l.burst, b.tokens+float64(t-b.last)*l.rate)
		b.last = t
	}
	if b.tokens >= 1 {
		b.tokens--
		l.buckets[k] = b
		return true, 0
	}
	l.buckets[k] = b
	return false, time.Duration(math.Ceil((1 - b.tokens) / l.rate))
}

// sweep drops buckets idle long enough to be full again: forgetting them
// changes nothing.
func (l *limiters) sweep(now int64) {
	for k, b := range l.buckets {
		if time.Duration(now-b.last) > l.idle {
			delete(l.buckets, k)
		}
	}
	l.swept = time.Unix(0, now)
}

// evictSome drops a tenth of the buckets, picked by map order (random).
// A dropped bucket starts full again, so an attacker who floods the table
// with new keys only resets others' buckets in their favour.
func (l *limiters) evictSome() {
	n := max(1, len(l.buckets)/10)
	for k := range l.buckets {
		if n == 0 {
			break
		}
		delete(l.buckets, k)
		n--
	}
}

// len returns the number of buckets held.
func (l *limiters) len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
