// Package auth turns an app session into a finAPI access token.
//
// A session maps to a finAPI identity derived from the identity secret (user
// mode) or to a Process Controller process (process mode). Sources obtain
// tokens from finAPI; decorators add caching, single-flighting, renewal ahead
// of expiry and back-off, in the manner of golang.org/x/oauth2's
// ReuseTokenSource.
package auth

import (
	"context"
	"time"
)

// A Token is a finAPI access token with what finproxy needs to renew it.
type Token struct {
	AccessToken  string `json:"a"`
	RefreshToken string `json:"r,omitempty"`
	// Expiry is when the access token expires; zero means never.
	Expiry time.Time `json:"e,omitzero"`
	// Issued is when the token was obtained; with Expiry it gives the
	// token's lifetime.
	Issued time.Time `json:"i"`
	// UserID is the finAPI user the token belongs to; empty for client
	// and process tokens.
	UserID string `json:"u,omitempty"`
	// After401 marks a token obtained because finAPI refused the one
	// before it: a 401 to it soon after is not renewed again (no renewal
	// storm against an upstream that refuses every token).
	After401 bool `json:"x,omitempty"`
}

// Expired reports whether the token can no longer be used at now.
func (t Token) Expired(now time.Time) bool {
	return t.AccessToken == "" || !t.Expiry.IsZero() && !now.Before(t.Expiry)
}

// renewAt returns when a token should be renewed ahead of expiry: when the
// share `before` of its lifetime is left, moved earlier by up to jitter
// (a share of the lifetime in [0,1)).
func (t Token) renewAt(before, jitter float64) time.Time {
	if t.Expiry.IsZero() {
		return time.Time{}
	}
	life := t.Expiry.Sub(t.Issued)
	return t.Expiry.Add(-time.Duration(float64(life) * (before + jitter*before/2)))
}

// A TokenSource returns a finAPI access token.
// Token must be safe for concurrent use.
type TokenSource interface {
	Token(ctx context.Context) (Token, error)
}

// A SessionSource obtains a new token for a session from finAPI.
// prev is the session's current or last token, if any (zero otherwise); a
// source may use it to renew rather than log in again.
// SessionToken must be safe for concurrent use.
type SessionSource interface {
	SessionToken(ctx context.Context, s Session, prev Token) (Token, error)
}

// Clock returns the current time; tests inject their own.
type Clock func() time.Time
