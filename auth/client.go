package auth

import (
	"context"
	"sync"
	"time"
)

// ClientCredentials is a TokenSource of client tokens (the
// client_credentials grant). It does not cache; wrap it in a ReuseToken.
type ClientCredentials struct {
	Client *Client
}

var _ TokenSource = ClientCredentials{}

// Token implements TokenSource.
func (s ClientCredentials) Token(ctx context.Context) (Token, error) {
	return s.Client.ClientToken(ctx)
}

// ReuseToken caches the token of a TokenSource until shortly before it
// expires. Callers that need a token at the same time share one fetch.
type ReuseToken struct {
	// Source obtains new tokens. Required.
	Source TokenSource
	// Now is the clock. If nil, time.Now is used.
	Now Clock
	// OnFirst, if not nil, is called once, after the first token was
	// obtained (readiness: the client credentials are proven).
	OnFirst func()

	mu    sync.Mutex // held while fetching: callers wait for one fetch
	tok   Token
	first sync.Once
}

var _ TokenSource = (*ReuseToken)(nil)

// Token implements TokenSource.
func (r *ReuseToken) Token(ctx context.Context) (Token, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if !r.tok.Expired(now.Add(safetyMargin(r.tok))) {
		return r.tok, nil
	}
	t, err := r.Source.Token(ctx)
	if err != nil {
		return Token{}, err
	}
	r.tok = t
	if r.OnFirst != nil {
		r.first.Do(r.OnFirst)
	}
	return t, nil
}

// Invalidate drops the cached token if it is still t (finAPI refused it).
func (r *ReuseToken) Invalidate(t Token) {
	r.mu.Lock()
	if r.tok.AccessToken == t.AccessToken {
		r.tok = Token{}
	}
	r.mu.Unlock()
}

func (r *ReuseToken) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// safetyMargin is how long before its expiry a token is no longer used: a
// tenth of its lifetime, at most 30 seconds, so that a token is never sent
// that expires in flight.
func safetyMargin(t Token) time.Duration {
	if t.Expiry.IsZero() {
		return 0
	}
	return min(30*time.Second, t.Expiry.Sub(t.Issued)/10)
}
