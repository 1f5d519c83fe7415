package auth

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/finproxy/finproxy/cache"
	"github.com/finproxy/finproxy/finapi"
)

// Store keys of adoption, beside the session's token (its hash) and its
// identity-conflict hold ("conflict:" + hash).
const (
	// adoptedPrefix keys a session's binding to an adopted finAPI user.
	adoptedPrefix = "adopted:"
	// bindingTTL is the lifetime of a binding: bindings do not expire, but
	// every store needs a time to live.
	bindingTTL = 50 * 365 * 24 * time.Hour
	// adoptTimeout bounds one adoption (up to four finAPI calls, each
	// bounded by the HTTP client, and three store writes).
	adoptTimeout = 30 * time.Second
)

// Audit events of adoption (the admin API's calls are admin_<action>).
const (
	EventUserAdopted    = "user_adopted"
	EventAdoptionFailed = "adoption_failed"
)

// AdoptedPassword returns the password finproxy gives an adopted finAPI
// user: the password of that user id as a named user id
// (Keys.UserSession(id).Password(): a keyed hash of the lower-cased id,
// finAPI's ids being case-insensitive). It depends on the id alone, not on
// the session, so an operator who knows only the session's hash can adopt,
// every replica with the identity secret logs in, and a JWT naming the
// same id (FINPROXY_JWT_USER_ID_CLAIM) reaches the same user with the same
// password: one user id, one password, whichever way finproxy meets it.
func (k *Keys) AdoptedPassword(userID string) string {
	return k.UserSession(userID).Password()
}

// SessionByHash returns the session whose hash is id, as the admin API
// knows it: its finAPI identity cannot be derived (the raw session is not
// known), only its stored entries and an adopted user reached.
func (k *Keys) SessionByHash(id string) Session { return Session{ID: id, keys: k} }

// derivable reports whether the session's own finAPI identity can be
// derived: false for a session known by its hash only.
func (s Session) derivable() bool { return s.raw != "" }

// ErrNotDerivable: a session known by its hash only has no stored token
// and no adopted user to log in with; its own requests derive its
// identity.
var ErrNotDerivable = errors.New("auth: the session's finAPI identity is derived only from its own requests")

// binding returns the finAPI user the session is bound to by adoption.
func binding(ctx context.Context, store cache.Store[Token], s Session) (string, bool) {
	if store == nil {
		return "", false
	}
	b, ok, err := store.Get(ctx, adoptedPrefix+s.ID)
	if err != nil || !ok || b.UserID == "" {
		return "", false
	}
	return b.UserID, true
}

// Unbind drops the session's binding to an adopted finAPI user, once that
// user is deleted: the session is its own again (its next request creates
// its derived user), instead of meeting an identity conflict for ever.
func (c *Sessions) Unbind(ctx context.Context, s Session) {
	if err := c.Store.Delete(ctx, adoptedPrefix+s.ID); err != nil {
		c.Log.Warn().Err(err).Str("session", s.Short()).
			Msg("token store could not delete the session's adoption binding; its next request meets an identity conflict until it is deleted")
	}
}

// Adopter adopts an existing finAPI user for a session: it changes the
// user's password as the client (finAPI's requestPasswordChange and
// executePasswordChange) to one finproxy can derive, binds the session to
// the user in the store, lifts the session's identity-conflict hold and
// forgets its token, so that its next request logs in. finAPI revokes every
// token of that user, for every client, when the password changes.
type Adopter struct {
	// Client talks to finAPI Access. Required.
	Client *finapi.Client
	// ClientToken supplies the client token. Required.
	ClientToken *ReuseToken
	// Key decrypts the password change token. Required.
	Key *finapi.DataDecryptionKey
	// Keys derives the adopted user's password. Required.
	Keys *Keys
	// Store keeps the binding and the holds (the token store). Required.
	Store cache.Store[Token]
	// Now is the clock. Optional. Default time.Now.
	Now Clock
	// Audit records adoptions. Optional.
	Audit Audit
	// Log receives failed adoptions. Optional.
	Log zerolog.Logger
}

// Adopt adopts the finAPI user userID for session s. It returns the id as
// finAPI spells it. An unknown user is an error of kind
// finapi.ErrUnknownUser.
func (a *Adopter) Adopt(ctx context.Context, s Session, userID string) (string, error) {
	// Detached, like the lifecycle calls: once finAPI changed the password
	// the binding must be stored, whether or not the caller still waits.
	// A deadline of the caller's (a token fetch's budget) still holds.
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(adoptTimeout) // a context deadline is wall-clock time
	}
	ctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	id, err := a.adopt(ctx, s, userID)
	if err != nil {
		a.Audit.Record(ctx, EventAdoptionFailed, s, userID)
		a.Log.Warn().Err(err).Str("session", s.Short()).Str("finapi_user", userID).Msg("adopting the finAPI user failed")
		return "", err
	}
	a.Audit.Record(ctx, EventUserAdopted, s, id)
	a.Log.Info().Str("session", s.Short()).Str("finapi_user", id).
		Msg("adopted the finAPI user: its password changed, every token of it revoked for every client; the session's next request logs in")
	return id, nil
}

func (a *Adopter) adopt(ctx context.Context, s Session, userID string) (string, error) {
	var pc finapi.PasswordChange
	err := a.ClientToken.With(ctx, func(token string) (err error) {
		pc, err = a.Client.RequestPasswordChange(ctx, token, userID)
		return err
	})
	if err != nil {
		return "", err
	}
	changeToken, err := a.Key.DecryptToken(pc.PasswordChangeToken)
	if err != nil {
		return "", &finapi.Error{Op: "request password change", Kind: finapi.ErrInvalidAnswer, Err: err}
	}
	id := userID
	if strings.EqualFold(pc.UserID, userID) {
		id = pc.UserID
	}
	if err := a.ClientToken.With(ctx, func(token string) error {
		return a.Client.ExecutePasswordChange(ctx, token, id, a.Keys.AdoptedPassword(id), changeToken)
	}); err != nil {
		return "", err
	}
	now := a.now()
	if err := a.Store.Set(ctx, adoptedPrefix+s.ID, Token{UserID: id, Issued: now}, bindingTTL); err != nil {
		return "", err
	}
	_ = a.Store.Delete(ctx, conflictPrefix+s.ID)
	_ = a.Store.Delete(ctx, s.ID) // finAPI revoked the session's tokens
	return id, nil
}

func (a *Adopter) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}
