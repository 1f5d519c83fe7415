package auth

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/finproxy/finproxy/finapi"
)

// Per-session back-off after a failed token fetch: the first failure holds
// the session for sessionBackoffFirst, each further one doubles that up to
// sessionBackoffCap; a success clears it.
const (
	sessionBackoffFirst = time.Second
	sessionBackoffCap   = 30 * time.Second
	// refusedLoginHold is the first hold after finAPI refused a password
	// grant with a 400 that finproxy does not read as bad credentials: if
	// it was one in other words, each attempt counts toward finAPI's lock
	// of the user, so attempts are minutes apart, not seconds.
	refusedLoginHold = 10 * time.Minute
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
	defer b.mu.Unlock()
	h, ok := b.m[id]
	if !ok || !now.Before(h.until) {
		return nil
	}
	return withRetryAfter(h.err, h.until.Sub(now), true)
}

// failed starts or lengthens the session's hold after err and returns err
// with the hold as its RetryAfter (or finAPI's own, when that is longer).
func (b *backoffs) failed(id string, err error, now time.Time) error {
	first := sessionBackoffFirst
	if refusedLogin(err) {
		first = refusedLoginHold
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]heldSession{}
	}
	h, ok := b.m[id]
	switch {
	case !ok:
		b.makeRoomLocked(now)
		h.wait = first
	case now.Sub(h.until) > sessionBackoffCap: // failing again long after
		h.wait = first
	default:
		h.wait = max(first, min(sessionBackoffCap, 2*h.wait))
	}
	wait := max(h.wait, finapi.RetryAfter(err))
	h.until, h.err = now.Add(wait), err
	b.m[id] = h
	return withRetryAfter(err, wait, false)
}

// refusedLogin reports a password grant refused with a 400 that is not
// known to be bad credentials.
func refusedLogin(err error) bool {
	var e *finapi.Error
	return errors.As(err, &e) && e.Op == finapi.OpPasswordGrant && e.Kind == finapi.ErrRejected && e.Status == http.StatusBadRequest
}

// withRetryAfter returns err asking to wait d: a copy of a *finapi.Error
// with RetryAfter d, or err wrapped in one (its kind is err itself). A
// replay (an answer from the hold) has no Status or request id: code that
// branches on a fresh 401 must not act on a replayed one.
func withRetryAfter(err error, d time.Duration, replay bool) error {
	var e *finapi.Error
	if !errors.As(err, &e) {
		e = &finapi.Error{Op: "token fetch", Kind: err}
	}
	if replay {
		return e.Replayed(d)
	}
	c := *e
	c.RetryAfter = d
	return &c
}

// succeeded clears the session's hold.
func (b *backoffs) succeeded(id string) {
	b.mu.Lock()
	delete(b.m, id)
	b.mu.Unlock()
}

// makeRoomLocked keeps the table below maxHeldSessions: it drops the
// entries whose hold and doubling window have passed first and, if that
// frees too little, arbitrary ones (a dropped session only loses its hold).
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

// holding is the SessionSource decorator that fills a backoffs table: a
// session's failed fetch starts or lengthens its hold (its following
// requests are answered from the table before they reach the flight), a
// success clears it. Identity conflicts have a hold of their own
// (ConflictGuard); a caller's cancellation is no verdict.
type holding struct {
	source SessionSource
	table  *backoffs
	now    func() time.Time
}

func (h *holding) SessionToken(ctx context.Context, s Session, prev Token) (Token, error) {
	t, err := h.source.SessionToken(ctx, s, prev)
	switch {
	case err == nil:
		h.table.succeeded(s.ID)
	case errors.Is(err, finapi.ErrIdentityConflict), errors.Is(err, context.Canceled),
		errors.Is(err, ErrNotDerivable): // an admin call on a hash: no failure of the session's
	default:
		err = h.table.failed(s.ID, err, h.now())
	}
	return t, err
}
