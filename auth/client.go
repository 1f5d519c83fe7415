package auth

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/singleflight"

	"github.com/finproxy/finproxy/finapi"
)

// ClientCredentials is a TokenSource of client tokens (the
// client_credentials grant). It does not cache; wrap it in a ReuseToken.
type ClientCredentials struct {
	Client *finapi.Client
}

var _ TokenSource = ClientCredentials{}

// Token implements TokenSource.
func (s ClientCredentials) Token(ctx context.Context) (Token, error) {
	g, err := s.Client.ClientToken(ctx)
	return tokenOf(g, ""), err
}

// ReuseToken caches the token of a TokenSource until shortly before it
// expires. Callers that need a new token at the same time share one fetch,
// and each can give up waiting with its own context.
type ReuseToken struct {
	// Source obtains new tokens. Required.
	Source TokenSource
	// Timeout bounds one fetch. Optional. Default 30s.
	Timeout time.Duration
	// Now is the clock. If nil, time.Now is used.
	Now Clock
	// OnFirst, if not nil, is called once, after the first token was
	// obtained (readiness: the client credentials are proven).
	OnFirst func()

	mu    sync.Mutex
	tok   Token
	group singleflight.Group
	first sync.Once
}

var _ TokenSource = (*ReuseToken)(nil)

// Token implements TokenSource.
func (r *ReuseToken) Token(ctx context.Context) (Token, error) {
	r.mu.Lock()
	t := r.tok
	r.mu.Unlock()
	if !t.Expired(r.now().Add(safetyMargin(t))) {
		return t, nil
	}
	ch := r.group.DoChan("", func() (any, error) {
		timeout := r.Timeout
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		t, err := r.Source.Token(fctx)
		if err != nil {
			return Token{}, err
		}
		r.mu.Lock()
		r.tok = t
		r.mu.Unlock()
		if r.OnFirst != nil {
			r.first.Do(r.OnFirst)
		}
		return t, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return Token{}, res.Err
		}
		return res.Val.(Token), nil
	case <-ctx.Done():
		return Token{}, &finapi.Error{Op: "wait for client token", Kind: finapi.ErrUnavailable, Err: ctx.Err()}
	}
}

// Invalidate drops the cached token if it is still t (finAPI refused it).
func (r *ReuseToken) Invalidate(t Token) {
	r.mu.Lock()
	if r.tok.AccessToken == t.AccessToken {
		r.tok = Token{}
	}
	r.mu.Unlock()
}

// With calls fn with the cached token; when finAPI refuses that token
// (401), it fetches a new one and calls fn once more.
func (r *ReuseToken) With(ctx context.Context, fn func(token string) error) error {
	for attempt := 0; ; attempt++ {
		t, err := r.Token(ctx)
		if err != nil {
			return err
		}
		err = fn(t.AccessToken)
		var e *finapi.Error
		if attempt == 0 && errors.As(err, &e) && e.Status == http.StatusUnauthorized {
			r.Invalidate(t)
			continue
		}
		return err
	}
}

func (r *ReuseToken) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Prove obtains the first token in the background, so that readiness does
// not wait for traffic, retrying with capped back-off (1 s doubling to
// 30 s) until it succeeds or ctx ends. Each attempt carries a request id
// of its own, which its log line names.
func (r *ReuseToken) Prove(ctx context.Context, log zerolog.Logger) {
	wait := time.Second
	for attempt := 1; ; attempt++ {
		id := finapi.NewRequestID()
		_, err := r.Token(finapi.WithRequestID(ctx, id))
		if err == nil {
			log.Info().Str("request_id", id).Msg("client credentials proven: client token obtained")
			return
		}
		ev := log.Warn()
		if errors.Is(err, finapi.ErrClientRejected) {
			ev = log.Error()
		}
		ev.Err(err).Str("request_id", id).Int("attempt", attempt).Dur("retry_in", wait).Msg("cannot obtain a client token; not ready")
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(30*time.Second, 2*wait)
	}
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
