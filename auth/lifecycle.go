package auth

import (
	"context"
	"errors"
)

// Lifecycle carries out the session endpoints: warm-up, logout and
// deletion of a session's finAPI identity.
type Lifecycle struct {
	// Sessions caches the session tokens. Required.
	Sessions *Sessions
	// Client talks to finAPI Access (revoke, delete user). Required.
	Client *Client
	// ClientToken supplies the client token for revoking. Required.
	ClientToken *ReuseToken
	// Users is true in user mode: deleting a session deletes its finAPI
	// user. In process mode deleting only forgets the token.
	Users bool
	// Audit records revocations and deletions. Optional.
	Audit Audit
}

// Logout revokes the session's tokens at finAPI and forgets them; the finAPI
// user stays. A session without a cached token has nothing to revoke.
func (l *Lifecycle) Logout(ctx context.Context, s Session) error {
	t, ok := l.Sessions.Cached(ctx, s)
	if ok {
		if err := l.revoke(ctx, t); err != nil {
			return err
		}
		l.Audit.Record(ctx, EventTokenRevoked, s, t.UserID)
	}
	return l.Sessions.Forget(ctx, s)
}

// Delete deletes the session's finAPI user with its own token (user mode),
// revokes what is left and forgets the session. A busy user (a bank
// connection being updated) is an error of kind ErrBusy and nothing is
// forgotten.
func (l *Lifecycle) Delete(ctx context.Context, s Session) error {
	if !l.Users {
		if t, ok := l.Sessions.Cached(ctx, s); ok {
			_ = l.revoke(ctx, t) // best effort: the process token is forgotten anyway
		}
		return l.Sessions.Forget(ctx, s)
	}
	t, err := l.Sessions.Token(ctx, s)
	if err != nil {
		return err
	}
	if err := l.Client.DeleteUser(ctx, t.AccessToken); err != nil {
		var e *Error
		if !errors.As(err, &e) || e.Status != 401 {
			return err
		}
		// The cached token was refused: renew once and try again.
		if t, err = l.Sessions.Renew(ctx, s, t); err != nil {
			return err
		}
		if err := l.Client.DeleteUser(ctx, t.AccessToken); err != nil {
			return err
		}
	}
	l.Audit.Record(ctx, EventUserDeleted, s, t.UserID)
	_ = l.revoke(ctx, t) // finAPI drops a deleted user's tokens; revoking is belt and braces
	return l.Sessions.Forget(ctx, s)
}

// revoke revokes the whole grant behind t: without a hint finAPI revokes
// every access and refresh token of the grant.
func (l *Lifecycle) revoke(ctx context.Context, t Token) error {
	tok := t.RefreshToken
	if tok == "" {
		tok = t.AccessToken
	}
	for attempt := 0; ; attempt++ {
		ct, err := l.ClientToken.Token(ctx)
		if err != nil {
			return err
		}
		err = l.Client.Revoke(ctx, ct.AccessToken, tok, "")
		var e *Error
		if attempt == 0 && errors.As(err, &e) && e.Status == 401 {
			l.ClientToken.Invalidate(ct)
			continue
		}
		return err
	}
}
