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
// of new sessions queues for a slot instead of flooding finAPI. No endpoint
// class takes more than half of the slots (at least one), so a class whose
// endpoint hangs cannot starve the others. A nil Limiter is no bound. It
// is safe for concurrent use.
type Limiter struct {
	slots   chan struct{}
	classes [numClasses + 1]chan struct{} // classOwn included
	waiting atomic.Int64
}

// NewLimiter returns a Limiter of n slots.
func NewLimiter(n int) *Limiter {
	n = max(n, 1)
	l := &Limiter{slots: make(chan struct{}, n)}
	for i := range l.classes {
		l.classes[i] = make(chan struct{}, max(1, (n+1)/2))
	}
	return l
}

// acquire waits for a slot of class cl and of the whole until ctx ends,
// and returns their release.
func (l *Limiter) acquire(ctx context.Context, cl class, op string) (func(), error) {
	if l == nil {
		return func() {}, nil
	}
	own := l.classes[cl]
	if !l.take(ctx, own) {
		return nil, l.refusal(ctx, op)
	}
	if !l.take(ctx, l.slots) {
		<-own
		return nil, l.refusal(ctx, op)
	}
	return func() { <-l.slots; <-own }, nil
}

// take takes a slot of ch, waiting until ctx ends.
func (l *Limiter) take(ctx context.Context, ch chan struct{}) bool {
	select {
	case ch <- struct{}{}:
		return true
	default:
	}
	l.waiting.Add(1)
	defer l.waiting.Add(-1)
	select {
	case ch <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// refusal is the answer to a call that found no slot in time: no call was
// made, so it is held back, not counted, and no verdict on finAPI.
func (l *Limiter) refusal(ctx context.Context, op string) error {
	return &Error{Op: op, Kind: ErrUnavailable, RetryAfter: limitRetryAfter, Err: context.Cause(ctx), heldBack: true}
}

// InUse returns the slots taken, and Waiting the calls queued for one,
// for metrics.
func (l *Limiter) InUse() int   { return len(l.slots) }
func (l *Limiter) Waiting() int { return int(l.waiting.Load()) }
