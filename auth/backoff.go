package auth

import (
	"errors"
	"sync"
	"time"
)

// Per-session back-off after a failed token fetch: the first failure holds
// the session for sessionBackoffFirst, each further one doubles that up to
// sessionBackoffCap; a success clears it.
const (
	sessionBackoffFirst = time.Second
	sessionBackoffCap   = 30 * time.Second
	// maxHeldSessions bounds the table: a flood of new sessions that all
	// fail must not grow it without limit.
	maxHeldSessions = 100_000
)

// backoffs remembers the sessions whose last token fetch failed, so that
// their following requests get the same answer at once instead of asking
// finAPI again: a refusing or nonsense-answering Process Controller would
// otherwise leave one orphaned process per request. The zero value is
// ready to use; it is safe for concurrent use.
type backoffs struct {
	mu sync.Mutex
	m  map[string]heldSession
}

type heldSession struct {
	until time.Time
	wait  time.Duration // the length of the current hold
	err   error
}

// held returns the error that started the session's hold, with the time
// still to wait as its RetryAfter, or nil when the session is not held.
func (b *backoffs) held(id string, now time.Time) error {
	b.mu.Lock()
	h, ok := b.m[id]
	b.mu.Unlock()
	if !ok || !now.Before(h.until) {
		return nil
	}
	var e *Error
	if !errors.As(h.err, &e) {
		return &Error{Op: "token fetch", Kind: ErrUnavailable, RetryAfter: h.until.Sub(now), Err: h.err}
	}
	c := *e
	c.RetryAfter, c.RequestID = h.until.Sub(now), ""
	return &c
}

// failed starts or lengthens the session's hold after err and returns err
// with the hold as its RetryAfter (or finAPI's own, when that is longer).
func (b *backoffs) failed(id string, err error, now time.Time) error {
	b.mu.Lock()
	if b.m == nil {
		b.m = map[string]heldSession{}
	}
	h, ok := b.m[id]
	switch {
	case !ok:
		b.makeRoomLocked(now)
		h.wait = sessionBackoffFirst
	case now.Sub(h.until) > sessionBackoffCap: // failing again long after
		h.wait = sessionBackoffFirst
	default:
		h.wait = min(sessionBackoffCap, 2*h.wait)
	}
	h.until, h.err = now.Add(h.wait), err
	b.m[id] = h
	b.mu.Unlock()

	var e *Error
	if errors.As(err, &e) && e.RetryAfter < h.wait {
		e.RetryAfter = h.wait
	}
	return err
}

// succeeded clears the session's hold.
func (b *backoffs) succeeded(id string) {
	b.mu.Lock()
	if _, ok := b.m[id]; ok {
		delete(b.m, id)
	}
	b.mu.Unlock()
}

// makeRoomLocked keeps the table below maxHeldSessions: it drops the
// entries whose hold and doubling window have passed and, if that frees
// too little, arbitrary ones (a dropped session only loses its hold).
func (b *backoffs) makeRoomLocked(now time.Time) {
	if len(b.m) < maxHeldSessions {
		return
	}
	for id, h := range b.m {
		if now.Sub(h.until) > sessionBackoffCap {
			delete(b.m, id)
		}
	}
	for id := range b.m {
		if len(b.m) < maxHeldSessions*9/10 {
			break
		}
		delete(b.m, id)
	}
}

// len returns the number of sessions in the table, for tests.
func (b *backoffs) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}
