package auth

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"

	"github.com/finproxy/finproxy/cache"
	"github.com/finproxy/finproxy/finapi"
)

// DefaultConflictHold is how long a session whose derived identity finAPI
// refused is not tried again. finAPI locks a user after a few failed logins
// and resets the count only on a successful one, so every attempt counts:
// one a day, across all replicas, leaves an operator days to resolve it.
const DefaultConflictHold = 24 * time.Hour

// conflictPrefix keys a session's identity-conflict marker in the store.
const conflictPrefix = "conflict:"

// ConflictGuard is a SessionSource decorator that holds off sessions whose
// derived identity finAPI refused (finapi.ErrIdentityConflict): after one refusal
// the session is not tried again for Hold, so that the attempts never add
// up to finAPI's lock of the user. The marker lives in Markers (the shared
// token store), so every replica and every restart honours it.
type ConflictGuard struct {
	// Source obtains tokens. Required.
	Source SessionSource
	// Markers keeps the holds, under "conflict:" + the session hash.
	// Required.
	Markers cache.Store[Token]
	// Hold is how long a session is held off. Optional. Default
	// DefaultConflictHold.
	Hold time.Duration
	// Now is the clock. Optional. Default time.Now.
	Now Clock
	// Log receives each conflict once. Optional.
	Log zerolog.Logger
	// Audit records each conflict. Optional.
	Audit Audit
	// OnConflict, if not nil, is told of each conflict (metrics).
	OnConflict func(ctx context.Context, s Session, err error)
	// UserOf names the finAPI user of a session (an adopted one, or the
	// derived one). Optional. Default Session.UserID.
	UserOf func(ctx context.Context, s Session) string
	// Adopt, if not nil, is tried once when a session's identity conflicts
	// (FINPROXY_ADOPT_ON_CONFLICT): when it succeeds the session logs in
	// again at once; when it fails the hold starts as it would without it,
	// so there is one adoption per hold, never one per request. Optional.
	Adopt func(ctx context.Context, s Session, userID string) error
}

var _ SessionSource = (*ConflictGuard)(nil)

// SessionToken implements SessionSource.
func (g *ConflictGuard) SessionToken(ctx context.Context, s Session, prev Token) (Token, error) {
	now := g.now()
	if m, ok, err := g.Markers.Get(ctx, conflictPrefix+s.ID); ok && err == nil && now.Before(m.Expiry) {
		return Token{}, &finapi.Error{Op: finapi.OpPasswordGrant, Kind: finapi.ErrIdentityConflict, RetryAfter: m.Expiry.Sub(now),
			Err: errors.New("identity refused by finAPI; not retried before the hold ends")}
	}
	t, err := g.Source.SessionToken(ctx, s, prev)
	if errors.Is(err, finapi.ErrIdentityConflict) && g.Adopt != nil {
		if user := g.userOf(ctx, s); user != "" && g.Adopt(ctx, s, user) == nil {
			t, err = g.Source.SessionToken(ctx, s, Token{})
		}
	}
	if errors.Is(err, finapi.ErrIdentityConflict) {
		return Token{}, g.conflict(ctx, s, err, now)
	}
	return t, err
}

func (g *ConflictGuard) userOf(ctx context.Context, s Session) string {
	if g.UserOf != nil {
		return g.UserOf(ctx, s)
	}
	return s.UserID()
}

// conflict stores the hold, logs it (once per hold: only one attempt is
// made per hold), and returns err with the hold as RetryAfter.
func (g *ConflictGuard) conflict(ctx context.Context, s Session, err error, now time.Time) error {
	hold := g.Hold
	if hold <= 0 {
		hold = DefaultConflictHold
	}
	user := g.userOf(ctx, s)
	_ = g.Markers.Set(ctx, conflictPrefix+s.ID, Token{Issued: now, Expiry: now.Add(hold), UserID: user}, hold)
	g.Log.Error().Err(err).Str("session", s.Short()).Str("finapi_user", user).Dur("hold", hold).
		Msg("finAPI refuses the derived identity of this session (identity secret changed, or user created elsewhere); not retrying before the hold ends: delete that finAPI user, restore the identity secret, or adopt the user (admin API: POST /admin/v1/sessions/<session>/adopt)")
	g.Audit.Record(ctx, EventIdentityConflict, s, user)
	if g.OnConflict != nil {
		g.OnConflict(ctx, s, err)
	}
	return withRetryAfter(err, hold, false)
}

func (g *ConflictGuard) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}
