package auth

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"

	"github.com/finproxy/finproxy/cache"
)

// tracer names the token acquisition spans; a no-op unless tracing is on.
var tracer = otel.Tracer("github.com/finproxy/finproxy/auth")

// DefaultConflictHold is how long a session whose derived identity finAPI
// refused is not tried again. finAPI locks a user after a few failed logins
// and resets the count only on a successful one, so every attempt counts:
// one a day, across all replicas, leaves an operator days to resolve it.
const DefaultConflictHold = 24 * time.Hour

// conflictPrefix keys a session's identity-conflict marker in the store.
const conflictPrefix = "conflict:"

// saveTimeout bounds storing a token just obtained, independent of what
// is left of the fetch's budget.
const saveTimeout = 2 * time.Second

// Hooks are told what the session cache does, for metrics and audit logs.
// Every field is optional.
type Hooks struct {
	// Lookup is called for every token lookup with whether a usable
	// token was cached.
	Lookup func(hit bool)
	// Obtained is called after every attempt to obtain a session token:
	// ahead is true for a renewal ahead of expiry, renewal for any
	// renewal of an existing token; err is the outcome.
	Obtained func(ctx context.Context, s Session, t Token, ahead, renewal bool, err error)
	// Waiting is called with +1 when a request starts waiting for a
	// token fetch another request started, and -1 when it stops.
	Waiting func(delta int)
	// Conflict is called once per session when its identity conflicts.
	Conflict func(ctx context.Context, s Session, err error)
}

// Sessions is the caching decorator around a SessionSource: it keeps each
// session's token in a Store, single-flights fetches per session (and,
// with a Locker, across replicas), renews a token in the background when it
// enters the last part of its life (no request waits while the token is
// valid), and holds off sessions whose identity finAPI refuses.
type Sessions struct {
	// Source obtains tokens. Required.
	Source SessionSource
	// Store keeps tokens by session hash. Required.
	Store cache.Store[Token]
	// Locker, if not nil, single-flights fetches across replicas that
	// share the Store: the holder fetches, the others then find its token
	// in the store. When the lock cannot be had (its backend is down, or
	// the holder is too slow) the fetch goes on without it. Optional.
	Locker cache.Locker
	// Timeout bounds one fetch from finAPI, retries included. Required.
	Timeout time.Duration
	// RenewBefore is the share of a token's lifetime left when it is
	// renewed ahead; each session adds up to half of it again as jitter.
	// Optional. Default value 0.2.
	RenewBefore float64
	// Idle is how long an expired token's entry (with its refresh token)
	// is kept, so that a session idle for a while renews with one
	// refresh_token grant; after that it is evicted. Optional. Default 30m.
	Idle time.Duration
	// NoRenewAhead turns renewal ahead of expiry off: process tokens
	// cannot be renewed, only replaced by a new process, so they are used
	// until they expire. Optional. Default false.
	NoRenewAhead bool
	// ConflictHold is how long a session whose identity finAPI refused
	// is not tried again; the marker lives in the Store, so every replica
	// honours it. Optional. Default DefaultConflictHold.
	ConflictHold time.Duration
	// Now is the clock. Optional. Default time.Now.
	Now Clock
	// Log receives store trouble and identity conflicts. Optional.
	Log zerolog.Logger
	// Hooks observe the cache. Optional.
	Hooks Hooks
	// Audit records tokens obtained and renewed, and identity
	// conflicts. Optional.
	Audit Audit

	group    singleflight.Group
	held     backoffs     // sessions whose last fetch failed
	renewing atomic.Int64 // renewals ahead running in the background
}

// reloader is a Store that can read past a cache of its own (cache.Redis
// and its L1): under the cross-replica lock, what another replica stored
// counts, not this replica's copy.
type reloader interface {
	Reload(ctx context.Context, key string) (Token, bool, error)
}

// Token returns a usable token for s, from the store or, on a miss, from
// the source. A token that is due for renewal is returned at once while one
// background renewal runs.
func (c *Sessions) Token(ctx context.Context, s Session) (Token, error) {
	t, ok := c.load(ctx, s)
	now := c.now()
	if ok && !t.Expired(now.Add(safetyMargin(t))) {
		c.lookup(true)
		if at := t.renewAt(c.renewBefore(), jitter(s)); !c.NoRenewAhead && !at.IsZero() && !now.Before(at) {
			c.renewAhead(ctx, s)
		}
		return t, nil
	}
	c.lookup(false)
	if err := c.held.held(s.ID, now); err != nil {
		return Token{}, err
	}
	return c.flight(ctx, s, func(ctx context.Context) (Token, error) {
		return c.obtain(ctx, s, false, Token{})
	})
}

// Renew replaces stale, a token finAPI refused, with a new one. Concurrent
// callers of one session share one fetch; a caller whose stale token was
// already replaced gets the replacement.
func (c *Sessions) Renew(ctx context.Context, s Session, stale Token) (Token, error) {
	if err := c.held.held(s.ID, c.now()); err != nil {
		return Token{}, err
	}
	fetch := func(ctx context.Context) (Token, error) { return c.obtain(ctx, s, false, stale) }
	t, err := c.flight(ctx, s, fetch)
	if err == nil && t.AccessToken == stale.AccessToken {
		// Joined a renewal ahead that kept the refused token.
		t, err = c.flight(ctx, s, fetch)
	}
	return t, err
}

// Cached returns the session's stored token, if any, without fetching.
func (c *Sessions) Cached(ctx context.Context, s Session) (Token, bool) {
	return c.load(ctx, s)
}

// Forget removes the session's token from the store. An identity-conflict
// hold stays: a client that logs out and retries on every error must not
// turn the hold into a stream of failed logins.
func (c *Sessions) Forget(ctx context.Context, s Session) error {
	c.group.Forget(s.ID)
	return c.Store.Delete(ctx, s.ID)
}

// Invalidate forgets the session's token if it is still stale, a token
// finAPI refused; a newer token another request stored stays.
func (c *Sessions) Invalidate(ctx context.Context, s Session, stale Token) error {
	if cur, ok := c.load(ctx, s); !ok || cur.AccessToken != stale.AccessToken {
		return nil
	}
	return c.Store.Delete(ctx, s.ID)
}

// renewAhead starts one background renewal, unless the session is held
// off after a failure; nobody waits for it (DoChan's channel is buffered),
// its result lands in the store. It runs under a request id of its own,
// which its log lines and the calls to finAPI carry.
func (c *Sessions) renewAhead(ctx context.Context, s Session) {
	if c.held.held(s.ID, c.now()) != nil {
		return
	}
	c.group.DoChan(s.ID, func() (any, error) {
		c.renewing.Add(1)
		defer c.renewing.Add(-1)
		id := NewRequestID()
		fctx, cancel := context.WithTimeout(WithRequestID(context.WithoutCancel(ctx), id), c.Timeout)
		defer cancel()
		t, err := c.locked(fctx, s, func(ctx context.Context) (Token, error) { return c.obtain(ctx, s, true, Token{}) })
		if err != nil {
			c.Log.Warn().Err(err).Str("session", s.Short()).Str("request_id", id).
				Msg("renewal ahead of expiry failed; the token stays in use while valid")
		} else {
			c.Log.Debug().Str("session", s.Short()).Str("request_id", id).Msg("token renewed ahead of expiry")
		}
		return t, err
	})
}

// Wait waits until no renewal runs in the background, or ctx ends: at
// shutdown, a renewal that was started stores its token before the process
// exits. Renewals started meanwhile count too.
func (c *Sessions) Wait(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for c.renewing.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("auth: %d renewals still running: %w", c.renewing.Load(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// locked runs fetch holding the session's cross-replica lock, if there is
// a Locker. fetch re-reads the store first, so a replica that waited uses
// the holder's token.
func (c *Sessions) locked(ctx context.Context, s Session, fetch func(context.Context) (Token, error)) (Token, error) {
	if c.Locker == nil {
		return fetch(ctx)
	}
	unlock, err := c.Locker.Lock(ctx, s.ID)
	switch {
	case err == nil:
		defer unlock()
	case errors.Is(err, cache.ErrLockUnavailable):
		// Degraded: fetch without the shared lock (the store's Conn
		// logs the outage, once).
	case errors.Is(err, cache.ErrLockTimeout):
		// The holder is slow or gone; its lock expires by itself.
	default:
		return Token{}, &Error{Op: "wait for token", Kind: ErrUnavailable, Err: err}
	}
	return fetch(ctx)
}

// flight runs fetch once per session at a time; waiters can give up with
// their own context while the fetch goes on for the others.
func (c *Sessions) flight(ctx context.Context, s Session, fetch func(context.Context) (Token, error)) (Token, error) {
	ch := c.group.DoChan(s.ID, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.Timeout)
		defer cancel()
		return c.locked(fctx, s, fetch)
	})
	if c.Hooks.Waiting != nil {
		c.Hooks.Waiting(1)
		defer c.Hooks.Waiting(-1)
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			return Token{}, r.Err
		}
		return r.Val.(Token), nil
	case <-ctx.Done():
		return Token{}, &Error{Op: "wait for token", Kind: ErrUnavailable, Err: ctx.Err()}
	}
}

// obtain runs inside the session's flight. It re-reads the store first, so
// that a caller that lost a race uses the winner's token. ahead marks a
// renewal ahead of expiry; stale, a token finAPI refused.
func (c *Sessions) obtain(ctx context.Context, s Session, ahead bool, stale Token) (Token, error) {
	cur, ok := c.reload(ctx, s)
	now := c.now()
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
			c.save(ctx, s, dead)
		}
	case ahead && usable:
		if at := cur.renewAt(c.renewBefore(), jitter(s)); at.IsZero() || now.Before(at) {
			return cur, nil // renewed meanwhile
		}
	case usable: // on demand; a renewal ahead whose token expired meanwhile
		// falls through and fetches, for the requests that joined it.
		return cur, nil
	}
	if hold, ok := c.conflictHeld(ctx, s, now); ok {
		return Token{}, &Error{Op: "password grant", Kind: ErrIdentityConflict, RetryAfter: hold, Err: errors.New("identity refused by finAPI; not retried before the hold ends")}
	}
	prev := cur
	if stale.AccessToken != "" {
		prev.RefreshToken, prev.UserID = stale.RefreshToken, stale.UserID
	}
	ctx, span := tracer.Start(ctx, "finproxy.token_acquisition", trace.WithAttributes(
		attribute.Bool("finproxy.renewal", prev.AccessToken != "" || prev.RefreshToken != ""),
		attribute.Bool("finproxy.ahead", ahead),
		attribute.String("finproxy.session", s.Short()),
	))
	t, err := c.Source.SessionToken(ctx, s, prev)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	if c.Hooks.Obtained != nil {
		c.Hooks.Obtained(ctx, s, t, ahead, prev.AccessToken != "" || prev.RefreshToken != "", err)
	}
	if err != nil {
		switch {
		case errors.Is(err, ErrIdentityConflict):
			err = c.conflict(ctx, s, err)
		case !errors.Is(err, context.Canceled):
			err = c.held.failed(s.ID, err, c.now())
		}
		return Token{}, err
	}
	c.held.succeeded(s.ID)
	t.After401 = stale.AccessToken != ""
	c.save(ctx, s, t)
	event := EventTokenObtained
	if prev.AccessToken != "" || prev.RefreshToken != "" {
		event = EventTokenRenewed
	}
	c.Audit.Record(ctx, event, s, t.UserID)
	return t, nil
}

func (c *Sessions) load(ctx context.Context, s Session) (Token, bool) {
	t, ok, err := c.Store.Get(ctx, s.ID)
	return t, ok && err == nil
}

// reload is load past the store's own cache, where it has one.
func (c *Sessions) reload(ctx context.Context, s Session) (Token, bool) {
	r, can := c.Store.(reloader)
	if !can {
		return c.load(ctx, s)
	}
	t, ok, err := r.Reload(ctx, s.ID)
	return t, ok && err == nil
}

// save stores t until it expires and, when it can be refreshed, for Idle
// longer, so that a session back from a pause renews with one
// refresh_token grant. A token without expiry is kept for Idle.
func (c *Sessions) save(ctx context.Context, s Session, t Token) {
	ttl := c.idle()
	if !t.Expiry.IsZero() {
		ttl = t.Expiry.Sub(c.now())
		if t.RefreshToken != "" {
			ttl += c.idle()
		}
	}
	// The fetch may have used up its budget: the token must land anyway.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer cancel()
	_ = c.Store.Set(sctx, s.ID, t, ttl) // a failing store keeps it in its L1, and logs
}

// conflict holds the session off for ConflictHold, in the store so that
// every replica honours it, logs it (once per hold: only one attempt is
// made per hold), and returns err with the hold as RetryAfter.
func (c *Sessions) conflict(ctx context.Context, s Session, err error) error {
	hold := c.conflictHold()
	now := c.now()
	_ = c.Store.Set(ctx, conflictPrefix+s.ID, Token{Issued: now, Expiry: now.Add(hold), UserID: s.UserID()}, hold)
	c.Log.Error().Err(err).Str("session", s.Short()).Str("finapi_user", s.UserID()).Dur("hold", hold).
		Msg("finAPI refuses the derived identity of this session (identity secret changed, or user created elsewhere); not retrying before the hold ends: delete that finAPI user or restore the identity secret")
	c.Audit.Record(ctx, EventIdentityConflict, s, s.UserID())
	if c.Hooks.Conflict != nil {
		c.Hooks.Conflict(ctx, s, err)
	}
	var e *Error
	if errors.As(err, &e) {
		e.RetryAfter = hold
	}
	return err
}

// conflictHeld reports whether the session is held off after a conflict,
// and for how long still.
func (c *Sessions) conflictHeld(ctx context.Context, s Session, now time.Time) (time.Duration, bool) {
	m, ok, err := c.Store.Get(ctx, conflictPrefix+s.ID)
	if !ok || err != nil || !now.Before(m.Expiry) {
		return 0, false
	}
	return m.Expiry.Sub(now), true
}

func (c *Sessions) conflictHold() time.Duration {
	if c.ConflictHold <= 0 {
		return DefaultConflictHold
	}
	return c.ConflictHold
}

func (c *Sessions) lookup(hit bool) {
	if c.Hooks.Lookup != nil {
		c.Hooks.Lookup(hit)
	}
}

func (c *Sessions) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Sessions) renewBefore() float64 {
	if c.RenewBefore <= 0 || c.RenewBefore >= 1 {
		return 0.2
	}
	return c.RenewBefore
}

func (c *Sessions) idle() time.Duration {
	if c.Idle <= 0 {
		return 30 * time.Minute
	}
	return c.Idle
}

// jitter spreads sessions' renewals: a share in [0,1) taken from the
// session hash, stable for a session.
func jitter(s Session) float64 {
	if len(s.ID) < 2 {
		return 0
	}
	return float64(hexVal(s.ID[0])<<4|hexVal(s.ID[1])) / 256
}

func hexVal(b byte) int {
	switch {
	case b >= '0' && b <= '9':
		return int(b - '0')
	case b >= 'a' && b <= 'f':
		return int(b-'a') + 10
	}
	return 0
}
