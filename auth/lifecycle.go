package auth

import (
	"context"
	"errors"
	"time"

	"github.com/finproxy/finproxy/finapi"
)

// Lifecycle carries out the session endpoints: warm-up, logout and
// deletion of a session's finAPI identity.
type Lifecycle struct {
	// Sessions caches the session tokens. Required.
	Sessions *Sessions
	// Client talks to finAPI Access (revoke, delete user). Required.
	Client *finapi.Client
	// ClientToken supplies the client token for revoking. Required.
	ClientToken *ReuseToken
	// Users is true in user mode: deleting a session deletes its finAPI
	// user. In process mode deleting only forgets the token.
	Users bool
	// Audit records revocations and deletions. Optional.
	Audit Audit
}

// Logout revokes the session's tokens at finAPI and forgets them; the finAPI
// user stays. A session without a cached token has nothing to revoke. The
// work goes on if the caller hangs up: it is cut short only by the
// sessions' timeout.
func (l *Lifecycle) Logout(ctx context.Context, s Session) error {
	ctx, cancel := l.detach(ctx)
	defer cancel()
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
// connection being updated) is an error of kind finapi.ErrBusy and nothing is
// forgotten.
func (l *Lifecycle) Delete(ctx context.Context, s Session) error {
	ctx, cancel := l.detach(ctx)
	defer cancel()
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
		var e *finapi.Error
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
	l.Sessions.Unbind(ctx, s)
	return l.Sessions.Forget(ctx, s)
}

// revoke revokes the whole grant behind t: without a hint finAPI revokes
// every access and refresh token of the grant.
func (l *Lifecycle) revoke(ctx context.Context, t Token) error {
	tok := t.RefreshToken
	if tok == "" {
		tok = t.AccessToken
	}
	return l.ClientToken.With(ctx, func(client string) error {
		return l.Client.Revoke(ctx, client, tok, "")
	})
}

// detach keeps the request's values (request id, trace) but not its
// cancellation: a caller that hangs up mid-logout must neither leave the
// work half done nor make finAPI look unavailable to everyone else.
func (l *Lifecycle) detach(ctx context.Context) (context.Context, context.CancelFunc) {
	timeout := l.Sessions.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return context.WithTimeout(context.WithoutCancel(ctx), timeout)
}
