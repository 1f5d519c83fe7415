package auth

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/finproxy/finproxy/finapi"
)

// Errors of the admin API's actions that callers branch on.
var (
	// ErrNoSession: no session of that hash is known to the store.
	ErrNoSession = errors.New("auth: no such session in the store")
	// ErrAdoptionOff: adoption needs the data decryption key.
	ErrAdoptionOff = errors.New("auth: adoption needs FINPROXY_DATA_DECRYPTION_KEY")
)

// Operator carries out the admin API's actions on a session known by the
// hash the logs show. It reads and writes the same store as the sessions,
// so with the redis store an action on one replica holds on every replica.
type Operator struct {
	// Keys names sessions by hash. Required.
	Keys *Keys
	// Sessions is the session cache; its Store holds tokens, holds,
	// bindings and the short-hash index. Required.
	Sessions *Sessions
	// Lifecycle revokes and deletes. Required.
	Lifecycle *Lifecycle
	// Adopter adopts users; nil turns adoption off. Optional.
	Adopter *Adopter
	// UserOf names a session's finAPI user (UserLogin.UserOf). Optional.
	UserOf func(ctx context.Context, s Session) string
	// Audit records every action. Optional.
	Audit Audit
	// Now is the clock of the refused-call bound. Optional. Default
	// time.Now.
	Now Clock

	refused refusedBound
}

// refusedPerSecond bounds the admin_refused lines: whoever reaches the
// admin listener can send calls without the token as fast as it likes,
// and each would otherwise be a log line. Past the bound, refusals are
// counted and the next line says how many it left out.
const refusedPerSecond = 10

// refusedBound counts refused calls per one-second window.
type refusedBound struct {
	mu         sync.Mutex
	window     time.Time
	n, dropped int
}

// admit reports whether a refused call gets its line, and how many were
// left out since the last one.
func (b *refusedBound) admit(now time.Time) (bool, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Sub(b.window) >= time.Second || now.Before(b.window) {
		b.window, b.n = now, 0
	}
	if b.n >= refusedPerSecond {
		b.dropped++
		return false, 0
	}
	b.n++
	dropped := b.dropped
	b.dropped = 0
	return true, dropped
}

// SessionInfo is what the admin API shows of a session: never a token.
type SessionInfo struct {
	// Session is the short hash, as the logs show it.
	Session string `json:"session"`
	// FinAPIUser is the finAPI user id the session logs in as, when known.
	FinAPIUser string `json:"finapiUser,omitempty"`
	// Adopted is true when the session is bound to an adopted user.
	Adopted bool `json:"adopted"`
	// Token describes the stored token, nil when there is none.
	Token *TokenInfo `json:"token"`
	// Holds lists what keeps the session from logging in now.
	Holds Holds `json:"holds"`
}

// TokenInfo describes a stored token without revealing it.
type TokenInfo struct {
	IssuedAt  time.Time  `json:"issuedAt"`
	ExpiresAt *time.Time `json:"expiresAt"`
	// Refreshable is true when a refresh token is held.
	Refreshable bool `json:"refreshable"`
	// Renewal is "valid", "renew_ahead" (in the last part of its life:
	// the next request renews it in the background) or "expired".
	Renewal string `json:"renewal"`
}

// Holds are the holds of a session.
type Holds struct {
	// IdentityConflict is the identity-conflict hold, in the store.
	IdentityConflict *Hold `json:"identityConflict"`
	// Backoff is this replica's back-off after failed fetches (memory
	// only, per replica).
	Backoff *Hold `json:"backoff"`
}

// Hold is one hold.
type Hold struct {
	Until time.Time `json:"until"`
}

// find resolves hash (12 or 64 hex characters) to a session known to the
// store.
func (o *Operator) find(ctx context.Context, hash string) (Session, error) {
	id, ok, err := lookupHash(ctx, o.Sessions.index(), hash)
	if err != nil {
		return Session{}, err
	}
	if !ok {
		return Session{}, ErrNoSession
	}
	s := o.Keys.SessionByHash(id)
	if len(hash) == 64 {
		// A full hash needs no index, but must name a session with
		// something stored.
		if info := o.info(ctx, s); info.Token == nil && info.Holds.IdentityConflict == nil && !info.Adopted {
			return Session{}, ErrNoSession
		}
	}
	return s, nil
}

// Lookup describes the session of hash.
func (o *Operator) Lookup(ctx context.Context, hash string) (SessionInfo, error) {
	s, err := o.find(ctx, hash)
	o.record(ctx, "admin_lookup", hash, s, err)
	if err != nil {
		return SessionInfo{}, err
	}
	return o.info(ctx, s), nil
}

// ClearConflict lifts the session's identity-conflict hold (on every
// replica, with the redis store) and this replica's back-off: its next
// request tries finAPI again.
func (o *Operator) ClearConflict(ctx context.Context, hash string) (SessionInfo, error) {
	s, err := o.find(ctx, hash)
	if err == nil {
		err = o.Sessions.Store.Delete(ctx, conflictPrefix+s.ID)
		o.Sessions.held.succeeded(s.ID)
	}
	o.record(ctx, "admin_clear_conflict", hash, s, err)
	if err != nil {
		return SessionInfo{}, err
	}
	return o.info(ctx, s), nil
}

// Logout revokes the session's tokens at finAPI and drops them; the finAPI
// user stays, and so does an identity-conflict hold.
func (o *Operator) Logout(ctx context.Context, hash string) error {
	s, err := o.find(ctx, hash)
	if err == nil {
		err = o.Lifecycle.Logout(ctx, s)
	}
	o.record(ctx, "admin_logout", hash, s, err)
	return err
}

// DeleteUser deletes the session's finAPI user with the session's token
// (its stored one, renewed if need be, or a login as its adopted user) and
// forgets the session. A session with neither is ErrNotDerivable: its own
// next request, or DELETE /proxy/v1/session, can.
func (o *Operator) DeleteUser(ctx context.Context, hash string) error {
	s, err := o.find(ctx, hash)
	if err == nil {
		err = o.Lifecycle.Delete(ctx, s)
		if err == nil {
			_ = o.Sessions.Store.Delete(ctx, adoptedPrefix+s.ID)
		}
	}
	o.record(ctx, "admin_delete_user", hash, s, err)
	return err
}

// Adopt adopts the finAPI user userID for the session (Adopter) and
// describes the session afterwards.
func (o *Operator) Adopt(ctx context.Context, hash, userID string) (SessionInfo, error) {
	s, err := o.find(ctx, hash)
	if err == nil && o.Adopter == nil {
		err = ErrAdoptionOff
	}
	if err == nil {
		if _, err = o.Adopter.Adopt(ctx, s, userID); err == nil {
			_ = o.Sessions.Forget(ctx, s)
			o.Sessions.held.succeeded(s.ID)
			indexSession(ctx, o.Sessions.index(), s, bindingTTL)
		}
	}
	o.record(ctx, "admin_adopt", hash, s, err)
	if err != nil {
		return SessionInfo{}, err
	}
	return o.info(ctx, s), nil
}

// info collects what the store and this replica hold of s.
func (o *Operator) info(ctx context.Context, s Session) SessionInfo {
	now := o.Sessions.now()
	info := SessionInfo{Session: s.Short()}
	store := o.Sessions.Store
	if id, ok := binding(ctx, store, s); ok {
		info.FinAPIUser, info.Adopted = id, true
	}
	if t, ok, err := store.Get(ctx, s.ID); err == nil && ok {
		ti := &TokenInfo{IssuedAt: t.Issued, Refreshable: t.RefreshToken != "", Renewal: "valid"}
		if !t.Expiry.IsZero() {
			e := t.Expiry
			ti.ExpiresAt = &e
		}
		switch {
		case t.Expired(now):
			ti.Renewal = "expired"
		case !o.Sessions.NoRenewAhead && !t.Expiry.IsZero() && !now.Before(t.renewAt(o.Sessions.renewBefore(), 0)):
			ti.Renewal = "renew_ahead"
		}
		info.Token = ti
		if info.FinAPIUser == "" {
			info.FinAPIUser = t.UserID
		}
	}
	if m, ok, err := store.Get(ctx, conflictPrefix+s.ID); err == nil && ok && now.Before(m.Expiry) {
		info.Holds.IdentityConflict = &Hold{Until: m.Expiry}
		if info.FinAPIUser == "" {
			info.FinAPIUser = m.UserID
		}
	}
	if until, ok := o.Sessions.held.until(s.ID, now); ok {
		info.Holds.Backoff = &Hold{Until: until}
	}
	return info
}

// record writes the audit event of one admin action: the action, the
// session's short hash, the finAPI user and the outcome; never a token.
func (o *Operator) record(ctx context.Context, action, hash string, s Session, err error) {
	if o.Audit.Log == nil {
		return
	}
	short := s.Short()
	if short == "" && isHex(hash) && len(hash) <= 64 {
		short = hash[:min(12, len(hash))]
	}
	ev := o.Audit.Log.Info().Str("event", action).Str("session", short)
	if s.ID != "" && o.UserOf != nil {
		if u := o.UserOf(ctx, s); u != "" {
			ev = ev.Str("finapi_user", u)
		}
	}
	outcome := "ok"
	if err != nil {
		outcome = "failed"
		var e *finapi.Error
		switch {
		case errors.Is(err, ErrNoSession):
			outcome = "not_found"
		case errors.As(err, &e):
			ev = ev.Str("finapi_error", e.Kind.Error())
		}
	}
	if id := finapi.RequestID(ctx); id != "" {
		ev = ev.Str("request_id", id)
	}
	ev.Str("outcome", outcome).Msg("audit")
}

// Refused records an admin call refused before any action (wrong token,
// no such endpoint, wrong method, malformed body) with its reason; hash is
// recorded only when it reads as a session hash.
func (o *Operator) Refused(ctx context.Context, reason, hash string) {
	if o.Audit.Log == nil {
		return
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	ok, dropped := o.refused.admit(now())
	if !ok {
		return
	}
	ev := o.Audit.Log.Info().Str("event", "admin_refused").Str("reason", reason)
	if dropped > 0 {
		ev = ev.Int("suppressed", dropped) // refused calls left out before this one
	}
	if isHex(hash) && len(hash) <= 64 {
		ev = ev.Str("session", hash[:min(12, len(hash))])
	}
	if id := finapi.RequestID(ctx); id != "" {
		ev = ev.Str("request_id", id)
	}
	ev.Str("outcome", "refused").Msg("audit")
}

// until returns the end of the session's back-off on this replica.
func (b *backoffs) until(id string, now time.Time) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	h, ok := b.m[id]
	if !ok || !now.Before(h.until) {
		return time.Time{}, false
	}
	return h.until, true
}
