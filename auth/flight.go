package auth

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/finproxy/finproxy/cache"
	"github.com/finproxy/finproxy/finapi"
)

// saveTimeout bounds storing a token just obtained, independent of what
// is left of the fetch's budget.
const saveTimeout = 2 * time.Second

// flight obtains a session's token once at a time: one fetch per session
// on this replica (singleflight) and, with a Locker, across replicas. Under
// the lock it reads the store itself (another replica may have stored a
// token meanwhile), bounds new identities (admit), calls its source, and
// stores the result before it lets go of the lock. It owns the fetch's time
// budget: timeout, whatever its callers' contexts say.
type flight struct {
	source      SessionSource
	store       cache.Store[Token]
	locker      cache.Locker // nil: one replica
	timeout     time.Duration
	idle        time.Duration
	renewBefore float64
	admit       func(ctx context.Context) error // nil: no bound
	waiting     func(delta int)                 // nil: not observed
	now         func() time.Time
	group       singleflight.Group
}

// reloader is a Store that can read past a cache of its own (cache.Redis
// and its L1): under the cross-replica lock, what another replica stored
// counts, not this replica's copy.
type reloader interface {
	Reload(ctx context.Context, key string) (Token, bool, error)
}

// do waits for the session's fetch (starting it if none runs); the caller
// can give up with its own context while the fetch goes on for the others.
// stale is a token finAPI refused, if any.
func (f *flight) do(ctx context.Context, s Session, stale Token) (Token, error) {
	ch := f.start(ctx, s, stale, nil)
	if f.waiting != nil {
		f.waiting(1)
		defer f.waiting(-1)
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			return Token{}, r.Err
		}
		return r.Val.(Token), nil
	case <-ctx.Done():
		return Token{}, &finapi.Error{Op: "wait for token", Kind: finapi.ErrUnavailable, Err: ctx.Err()}
	}
}

// start starts the session's fetch unless one runs, and returns where its
// result arrives; nobody has to wait for it (the channel is buffered).
// around, if not nil, wraps the fetch when this call starts it.
func (f *flight) start(ctx context.Context, s Session, stale Token, around func(fetch func() (Token, error)) (Token, error)) <-chan singleflight.Result {
	return f.group.DoChan(s.ID, func() (any, error) {
		if around != nil {
			return around(func() (Token, error) { return f.fetch(ctx, s, stale) })
		}
		return f.fetch(ctx, s, stale)
	})
}

// fetch is one flight: within the flight's own budget, under the session's
// cross-replica lock.
func (f *flight) fetch(ctx context.Context, s Session, stale Token) (Token, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.timeout)
	defer cancel()
	if f.locker != nil {
		unlock, err := f.locker.Lock(ctx, s.ID)
		switch {
		case err == nil:
			defer unlock()
		case errors.Is(err, cache.ErrLockUnavailable):
			// Degraded: fetch without the shared lock (the store's Conn
			// logs the outage, once).
		case errors.Is(err, cache.ErrLockTimeout):
			// The holder is slow or gone; its lock expires by itself.
		default:
			return Token{}, &finapi.Error{Op: "wait for token", Kind: finapi.ErrUnavailable, Err: err}
		}
	}
	return f.obtain(ctx, s, stale)
}

// forget drops the session's running flight, so that the next request
// starts anew.
func (f *flight) forget(s Session) { f.group.Forget(s.ID) }

// obtain runs inside the session's flight. It re-reads the store first, so
// that a caller that lost a race uses the winner's token.
func (f *flight) obtain(ctx context.Context, s Session, stale Token) (Token, error) {
	cur, ok, _ := f.reload(ctx, s)
	now := f.now()
	usable := ok && !cur.Expired(now.Add(safetyMargin(cur)))
	switch {
	case stale.AccessToken != "":
		if usable && cur.AccessToken != stale.AccessToken {
			return cur, nil // already replaced
		}
		if ok && cur.AccessToken != "" {
			// Mark the refused access token dead, keeping what renews
			// it: should this renewal fail, the next one still has the
			// refresh token (a deleted entry would force a password
			// grant, or a second user creation attempt).
			dead := cur
			dead.AccessToken = ""
			f.save(ctx, s, dead)
		}
	case isAhead(ctx) && usable:
		if at := cur.renewAt(f.renewBefore, jitter(s)); at.IsZero() || now.Before(at) {
			return cur, nil // renewed meanwhile
		}
	case usable: // on demand; a renewal ahead whose token expired meanwhile
		// falls through and fetches, for the requests that joined it.
		return cur, nil
	}
	if !ok && stale.AccessToken == "" && f.admit != nil {
		// First sight (the store knows nothing of it, or cannot answer):
		// a new identity, within the budget. Over it, the source may
		// still log in an identity that exists, but creates none.
		if refused := f.admit(ctx); refused != nil {
			ctx = withNewIdentityRefused(ctx, refused)
		}
	}
	prev := cur
	if stale.AccessToken != "" {
		prev.RefreshToken, prev.UserID = stale.RefreshToken, stale.UserID
		if cur.ProcessToken == "" { // the store lost it: resume from the request's copy
			prev.ProcessToken, prev.Exchanges = stale.ProcessToken, stale.Exchanges
		}
	}
	t, err := f.source.SessionToken(ctx, s, prev)
	if err != nil {
		return Token{}, err
	}
	t.After401 = stale.AccessToken != ""
	f.save(ctx, s, t)
	return t, nil
}

// reload is the store's Get past its own cache, where it has one; it also
// says whether the store answered.
func (f *flight) reload(ctx context.Context, s Session) (Token, bool, error) {
	get := f.store.Get
	if r, can := f.store.(reloader); can {
		get = r.Reload
	}
	t, ok, err := get(ctx, s.ID)
	return t, ok && err == nil, err
}

// save stores t until it expires and, when it can be refreshed (or its
// process exchanged again), for idle longer, so that a session back from a
// pause renews with one refresh_token grant (or one exchange). A token
// without expiry is kept for idle.
func (f *flight) save(ctx context.Context, s Session, t Token) {
	ttl := f.idle
	if !t.Expiry.IsZero() {
		ttl = t.Expiry.Sub(f.now())
		if t.RefreshToken != "" || t.ProcessToken != "" {
			ttl += f.idle
		}
	}
	// The fetch may have used up its budget: the token must land anyway.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer cancel()
	_ = f.store.Set(sctx, s.ID, t, ttl) // a failing store keeps it in its L1, and its Conn logs
}

type newIdentityKey struct{}

// withNewIdentityRefused marks ctx: the budget of new identities refused
// this session (refused is the answer), so its source must create none.
func withNewIdentityRefused(ctx context.Context, refused error) context.Context {
	return context.WithValue(ctx, newIdentityKey{}, refused)
}

// newIdentityRefused returns the refusal ctx carries, or nil.
func newIdentityRefused(ctx context.Context) error {
	err, _ := ctx.Value(newIdentityKey{}).(error)
	return err
}
