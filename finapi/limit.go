package finapi

import (
	"context"
	"sync/atomic"
	"time"
)

// limitRetryAfter is what a caller that found no slot in time is told.
const limitRetryAfter = time.Second

// A Limiter bounds how many calls to finAPI's token, user and Process
// Controller endpoints run at once (FINPROXY_FINAPI_CONCURRENCY): a burst
// of new sessions queues for a slot instead of flooding finAPI. A nil
// Limiter is no bound. It is safe for concurrent use.
type Limiter struct {
	slots   chan struct{}
	waiting atomic.Int64
}

// NewLimiter returns a Limiter of n slots.
func NewLimiter(n int) *Limiter {
	return &Limiter{slots: make(chan struct{}, max(n, 1))}
}

// acquire waits for a slot until ctx ends, and returns its release.
func (l *Limiter) acquire(ctx context.Context, op string) (func(), error) {
	if l == nil {
		return func() {}, nil
	}
	select {
	case l.slots <- struct{}{}:
		return l.release, nil
	default:
	}
	l.waiting.Add(1)
	defer l.waiting.Add(-1)
	select {
	case l.slots <- struct{}{}:
		return l.release, nil
	case <-ctx.Done():
		return nil, &Error{Op: op, Kind: ErrUnavailable, RetryAfter: limitRetryAfter, Err: context.Cause(ctx),
			heldBack: true}
	}
}

func (l *Limiter) release() { <-l.slots }

// InUse returns the slots taken, and Waiting the calls queued for one,
// for metrics.
func (l *Limiter) InUse() int   { return len(l.slots) }
func (l *Limiter) Waiting() int { return int(l.waiting.Load()) }
