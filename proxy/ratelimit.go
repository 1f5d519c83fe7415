package proxy

import (
	"errors"
	"sync"
	"time"

	"golang.org/x/time/rate"
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
type limiters struct {
	rate  rate.Limit
	burst int
	max   int
	idle  time.Duration // a bucket idle this long is full again

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// newLimiters returns limiters of perSecond with burst, at most size keys.
// perSecond <= 0 returns nil: no limit.
func newLimiters(perSecond float64, burst, size int) *limiters {
	if perSecond <= 0 {
		return nil
	}
	burst = max(burst, 1)
	return &limiters{
		rate:    rate.Limit(perSecond),
		burst:   burst,
		max:     size,
		idle:    time.Duration(float64(burst)/perSecond*float64(time.Second)) + time.Second,
		buckets: map[string]*bucket{},
	}
}

// allow takes a token from key's bucket, or reports how long to wait.
func (l *limiters) allow(key string, now time.Time) (ok bool, wait time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > max(l.idle, sweepEvery) {
		l.sweep(now)
	}
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.max {
			l.evictSome()
		}
		b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep drops buckets idle long enough to be full again: forgetting them
// changes nothing.
func (l *limiters) sweep(now time.Time) {
	for k, b := range l.buckets {
		if now.Sub(b.seen) > l.idle {
			delete(l.buckets, k)
		}
	}
	l.swept = now
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
