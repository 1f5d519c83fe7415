package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/finproxy/finproxy/cache"
	"github.com/finproxy/finproxy/finapi"
)

// UserLogin is the SessionSource of user mode: it creates the session's
// finAPI user if needed and logs it in with the password grant, or renews
// with the refresh_token grant when it can.
type UserLogin struct {
	// Client talks to finAPI Access. Required.
	Client *finapi.Client
	// ClientToken supplies the client token for creating users. Required.
	ClientToken *ReuseToken
	// Audit records user creations. Optional.
	Audit Audit
	// Bindings, if not nil, holds the sessions bound to an adopted finAPI
	// user (Adopter; the token store): such a session logs in as that user
	// with its adopted password and never creates one. Optional.
	Bindings cache.Store[Token]
}

// UserOf returns the finAPI user the session logs in as: the adopted user
// it is bound to, else its derived one ("" for a session known by its hash
// only).
func (u *UserLogin) UserOf(ctx context.Context, s Session) string {
	if id, ok := binding(ctx, u.Bindings, s); ok {
		return id
	}
	if !s.derivable() {
		return ""
	}
	return s.UserID()
}

var _ SessionSource = (*UserLogin)(nil)

// SessionToken implements SessionSource. With a refresh token in prev it
// tries the refresh_token grant first and falls back to the password grant
// when finAPI refuses the refresh token; an outage is returned as is.
// finAPI sets refresh_token for the password grant only, so a refresh
// answer without one keeps the refresh token held.
func (u *UserLogin) SessionToken(ctx context.Context, s Session, prev Token) (Token, error) {
	bound, isBound := binding(ctx, u.Bindings, s)
	// A bound session refreshes only a token of the user it is bound to:
	// one of another user (fetched before the adoption, or left on another
	// replica) would otherwise be refreshed for ever.
	if prev.RefreshToken != "" && (!isBound || strings.EqualFold(prev.UserID, bound)) {
		g, err := u.Client.RefreshToken(ctx, prev.RefreshToken)
		if err == nil {
			uid := s.UserID()
			if isBound || !s.derivable() {
				uid = prev.UserID
			}
			t := tokenOf(g, uid)
			if t.RefreshToken == "" {
				t.RefreshToken = prev.RefreshToken
			}
			return t, nil
		}
		if !errors.Is(err, finapi.ErrRejected) {
			return Token{}, err
		}
	}
	if isBound {
		return u.loginAdopted(ctx, s, bound)
	}
	if !s.derivable() {
		return Token{}, ErrNotDerivable
	}
	return u.login(ctx, s, prev.UserID != "")
}

// loginAdopted logs the session in as the adopted user id. The user is
// never created: a refused password is an identity conflict (the password
// was changed again elsewhere).
func (u *UserLogin) loginAdopted(ctx context.Context, s Session, id string) (Token, error) {
	t, err := u.passwordToken(ctx, id, s.keys.AdoptedPassword(id))
	if errors.Is(err, finapi.ErrBadCredentials) {
		return Token{}, &finapi.Error{Op: finapi.OpPasswordGrant, Kind: finapi.ErrIdentityConflict, Status: http.StatusBadRequest, Code: codeOf(err)}
	}
	return t, err
}

// login obtains a token with the password grant. Unless the user is known
// to exist it is created first. A refused password is tried once at most:
// finAPI locks a user after a few failed logins.
func (u *UserLogin) login(ctx context.Context, s Session, known bool) (Token, error) {
	id, password := s.UserID(), s.Password()
	if refused := newIdentityRefused(ctx); refused != nil {
		// Over the budget of new identities: an existing user (after a
		// restart, or an entry the store lost) still logs in; no user is
		// created, and a user that does not exist gets the refusal.
		t, err := u.passwordToken(ctx, id, password)
		if errors.Is(err, finapi.ErrBadCredentials) {
			return Token{}, refused
		}
		return t, err
	}
	if !known {
		created, err := u.createUser(ctx, id, password)
		if err != nil {
			return Token{}, err
		}
		if created {
			u.Audit.Record(ctx, EventUserCreated, s, id)
		}
	}
	t, err := u.passwordToken(ctx, id, password)
	if !errors.Is(err, finapi.ErrBadCredentials) {
		return t, err
	}
	if known {
		// The user may have been deleted elsewhere; a created user
		// takes the password, an existing one is a conflict.
		created, cerr := u.createUser(ctx, id, password)
		if cerr != nil {
			return Token{}, cerr
		}
		if created {
			u.Audit.Record(ctx, EventUserCreated, s, id)
			if t, err = u.passwordToken(ctx, id, password); !errors.Is(err, finapi.ErrBadCredentials) {
				return t, err
			}
		}
	}
	return Token{}, &finapi.Error{Op: "password grant", Kind: finapi.ErrIdentityConflict, Status: http.StatusBadRequest, Code: codeOf(err)}
}

// createUser creates the user with the cached client token, fetching a new
// client token once if finAPI refuses the cached one.
func (u *UserLogin) createUser(ctx context.Context, id, password string) (created bool, err error) {
	err = u.ClientToken.With(ctx, func(token string) error {
		created, err = u.Client.CreateUser(ctx, token, id, password)
		return err
	})
	return created, err
}

// passwordToken logs the user in. finAPI answers 403 to the password
// grant of a user that is not verified yet (a client with
// isUserAutoVerificationEnabled=false): then the user is verified once,
// with the client token, and the grant tried again. Clients with
// auto-verification (finAPI's default) never pay for the extra call.
func (u *UserLogin) passwordToken(ctx context.Context, id, password string) (Token, error) {
	g, err := u.Client.PasswordToken(ctx, id, password)
	var e *finapi.Error
	if errors.As(err, &e) && e.Status == http.StatusForbidden {
		if verr := u.ClientToken.With(ctx, func(token string) error {
			return u.Client.VerifyUser(ctx, token, id)
		}); verr != nil {
			return Token{}, verr
		}
		g, err = u.Client.PasswordToken(ctx, id, password)
	}
	if err != nil {
		return Token{}, err
	}
	return tokenOf(g, id), nil
}

// tokenOf is the Token of what finAPI's token endpoint handed out.
func tokenOf(g finapi.Grant, userID string) Token {
	return Token{AccessToken: g.AccessToken, RefreshToken: g.RefreshToken, Issued: g.Issued, Expiry: g.Expiry, UserID: userID}
}

func codeOf(err error) string {
	var e *finapi.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
