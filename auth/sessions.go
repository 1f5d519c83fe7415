package auth

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/finproxy/finproxy/cache"
)

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

// Sessions gives sessions their finAPI tokens. It is assembled from
// decorators around the Source, each with one concern and its own time
// budget:
//
//	cache      the Store: a usable token is returned at once (Token, Cached)
//	renewer    a token in the last part of its life is renewed in the
//	           background; no request waits while it is valid
//	holds      a session whose fetch failed waits out a back-off of its own
//	           (1 s doubling to 30 s), answered from memory
//	flight     one fetch per session at a time, across replicas with a
//	           Locker; under the lock it reads the store itself, bounds new
//	           identities (Admit) and stores the token it obtained; the
//	           fetch's budget is Timeout
//	observed   spans, hooks and audit events of every attempt
//	conflict   a session whose identity finAPI refused is held for
//	           ConflictHold, in the store, on every replica
//	Source     finAPI (UserLogin, ProcessLogin)
//
// Store and Locker calls have the budget of their backend (cache.Conn).
// The fields configure the pipeline; it is built on first use, so change
// no field after that.
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
	// Log receives identity conflicts and failed renewals. Optional.
	Log zerolog.Logger
	// Hooks observe the cache. Optional.
	Hooks Hooks
	// Audit records tokens obtained and renewed, and identity
	// conflicts. Optional.
	Audit Audit
	// Admit, if not nil, is asked before a session that the store has
	// never seen gets a new finAPI identity (a user, or a process); its
	// error is returned to the session's callers. Sessions with a stored
	// entry never pass through it. Optional.
	Admit func(ctx context.Context) error
	// UserOf names a session's finAPI user in conflict logs and holds
	// (UserLogin.UserOf). Optional. Default Session.UserID.
	UserOf func(ctx context.Context, s Session) string
	// Index keeps the admin API's index from short session hashes to
	// full ones, shared like Store. Optional. Default Store.
	Index cache.Store[Token]
	// NoIndex keeps no index: without the admin API nobody looks sessions
	// up by their short hash, and an index entry per session would cost
	// memory (memory store) or a key (Redis) for nothing. Optional.
	// Default false.
	NoIndex bool
	// AdoptOnConflict, if not nil, is tried once per identity-conflict
	// hold (ConflictGuard.Adopt). Optional.
	AdoptOnConflict func(ctx context.Context, s Session, userID string) error

	once    sync.Once
	held    backoffs
	flight  *flight
	renewer *renewer
}

// build assembles the pipeline from the fields.
func (c *Sessions) build() {
	c.once.Do(func() {
		// The index sees what the source answers, not the conflict hold's
		// replays: written per fetch and per conflict, never per request.
		src := c.Source
		if !c.NoIndex {
			src = &indexing{source: src, store: c.index(), bindings: c.Store, idle: c.idle(), hold: c.conflictHold(), now: c.now}
		}
		src = &ConflictGuard{Source: src, Markers: c.Store, Hold: c.ConflictHold, Now: c.Now,
			Log: c.Log, Audit: c.Audit, OnConflict: c.Hooks.Conflict, UserOf: c.UserOf, Adopt: c.AdoptOnConflict}
		src = &observed{source: src, hooks: c.Hooks, audit: c.Audit}
		src = &holding{source: src, table: &c.held, now: c.now}
		c.flight = &flight{source: src, store: c.Store, locker: c.Locker, timeout: c.Timeout, idle: c.idle(),
			renewBefore: c.renewBefore(), admit: c.Admit, waiting: c.Hooks.Waiting, now: c.now}
		c.renewer = &renewer{flight: c.flight, held: &c.held, before: c.renewBefore(), now: c.now, log: c.Log}
	})
}

// Token returns a usable token for s, from the store or, on a miss, from
// the source. A token that is due for renewal is returned at once while one
// background renewal runs.
func (c *Sessions) Token(ctx context.Context, s Session) (Token, error) {
	c.build()
	t, ok := c.load(ctx, s)
	now := c.now()
	if ok && !t.Expired(now.Add(safetyMargin(t))) {
		c.lookup(true)
		if !c.NoRenewAhead && c.renewer.due(s, t, now) {
			c.renewer.start(ctx, s)
		}
		return t, nil
	}
	c.lookup(false)
	if err := c.held.held(s.ID, now); err != nil {
		return Token{}, err
	}
	return c.flight.do(ctx, s, Token{})
}

// Renew replaces stale, a token finAPI refused, with a new one. Concurrent
// callers of one session share one fetch; a caller whose stale token was
// already replaced gets the replacement.
func (c *Sessions) Renew(ctx context.Context, s Session, stale Token) (Token, error) {
	c.build()
	if err := c.held.held(s.ID, c.now()); err != nil {
		return Token{}, err
	}
	t, err := c.flight.do(ctx, s, stale)
	if err == nil && t.AccessToken == stale.AccessToken {
		// Joined a renewal ahead that kept the refused token.
		t, err = c.flight.do(ctx, s, stale)
	}
	return t, err
}

// Cached returns the session's stored token, if any, without fetching.
func (c *Sessions) Cached(ctx context.Context, s Session) (Token, bool) {
	return c.load(ctx, s)
}

// Forget removes the session's token from the store. An identity-conflict
// hold stays: a client that logs out and retries on every error must not
// turn the hold into a stream of failed logins. A store that cannot delete
// is no failure of the caller's: the tokens are revoked or deleted at
// finAPI already, this replica's copy is gone, and a copy left elsewhere
// is refused by finAPI and renewed; it is logged.
func (c *Sessions) Forget(ctx context.Context, s Session) error {
	c.build()
	c.flight.forget(s)
	c.delete(ctx, s)
	return nil
}

// Invalidate forgets the session's token if it is still stale, a token
// finAPI refused; a newer token another request stored stays.
func (c *Sessions) Invalidate(ctx context.Context, s Session, stale Token) error {
	if cur, ok := c.load(ctx, s); ok && cur.AccessToken == stale.AccessToken {
		c.delete(ctx, s)
	}
	return nil
}

func (c *Sessions) delete(ctx context.Context, s Session) {
	if err := c.Store.Delete(ctx, s.ID); err != nil {
		c.Log.Warn().Err(err).Str("session", s.Short()).
			Msg("token store could not delete the session's entry; finAPI refuses the tokens it holds, so the session renews")
	}
}

// Wait waits until no renewal runs in the background, or ctx ends: at
// shutdown, a renewal that was started stores its token before the process
// exits. Renewals started meanwhile count too.
func (c *Sessions) Wait(ctx context.Context) error {
	c.build()
	return c.renewer.wait(ctx)
}

func (c *Sessions) load(ctx context.Context, s Session) (Token, bool) {
	t, ok, err := c.Store.Get(ctx, s.ID)
	return t, ok && err == nil
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
