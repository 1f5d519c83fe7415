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
	"encoding/binary"
	"errors"
	"time"

	"github.com/finproxy/finproxy/cache"
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
	// ProcessToken is the Process Controller process the access token was
	// exchanged from, kept to exchange it again (resumable processes);
	// empty otherwise. It is as secret as the tokens: stored sealed.
	ProcessToken string `json:"p,omitempty"`
	// Exchanges counts the exchanges of ProcessToken so far.
	Exchanges int `json:"n,omitempty"`
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

// TokenCodec keeps tokens in the memory store as one string each: a
// header of 25 bytes (expiry and issue time as Unix nanoseconds, 0 for
// none; a flag byte; the lengths of the access and refresh tokens) and
// the three strings after it. Decoding returns substrings: no allocation
// per request, and less memory per cached session than the boxed struct
// with its three strings (BenchmarkSessionMemory in proxy). A token of a
// resumable process (flag 2; it has no user id) carries, in the user id's
// place, one byte of its exchange count and the process token.
var TokenCodec = cache.Codec[Token]{Encode: encodeToken, Decode: decodeToken}

const tokenHeader = 8 + 8 + 1 + 4 + 4

func encodeToken(t Token) string {
	b := make([]byte, 0, tokenHeader+len(t.AccessToken)+len(t.RefreshToken)+len(t.UserID))
	b = binary.LittleEndian.AppendUint64(b, uint64(unixNano(t.Expiry)))
	b = binary.LittleEndian.AppendUint64(b, uint64(unixNano(t.Issued)))
	var flags byte
	if t.After401 {
		flags = 1
	}
	if t.ProcessToken != "" {
		flags |= flagProcess
	}
	b = append(b, flags)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(t.AccessToken)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(t.RefreshToken)))
	b = append(append(b, t.AccessToken...), t.RefreshToken...)
	if t.ProcessToken != "" {
		return string(append(append(b, byte(min(max(t.Exchanges, 0), 255))), t.ProcessToken...))
	}
	return string(append(b, t.UserID...))
}

func decodeToken(s string) (Token, error) {
	if len(s) < tokenHeader {
		return Token{}, errors.New("auth: stored token too short")
	}
	a, r := int(le(s[17:21])), int(le(s[21:25]))
	if a < 0 || r < 0 || len(s)-tokenHeader < a+r {
		return Token{}, errors.New("auth: stored token truncated")
	}
	rest := s[tokenHeader:]
	t := Token{
		Expiry:       fromUnixNano(int64(le(s[0:8]))),
		Issued:       fromUnixNano(int64(le(s[8:16]))),
		After401:     s[16]&1 != 0,
		AccessToken:  rest[:a],
		RefreshToken: rest[a : a+r],
	}
	tail := rest[a+r:]
	if s[16]&flagProcess == 0 {
		t.UserID = tail
		return t, nil
	}
	if tail == "" {
		return Token{}, errors.New("auth: stored process token truncated")
	}
	t.Exchanges, t.ProcessToken = int(tail[0]), tail[1:]
	return t, nil
}

// flagProcess marks a stored token that carries a process token.
const flagProcess = 2

// le decodes a little-endian number of up to 8 bytes from s without
// converting s to a slice.
func le(s string) uint64 {
	var v uint64
	for i := len(s) - 1; i >= 0; i-- {
		v = v<<8 | uint64(s[i])
	}
	return v
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
