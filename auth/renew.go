package auth

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/finproxy/finproxy/finapi"
)

// renewer renews tokens ahead of expiry, in the background: a request that
// finds its session's token in the last part of its life starts one
// renewal through the session's flight and goes on with the still valid
// token. Renewals of a session held off after a failure wait out the hold.
// Each runs under a request id of its own, which its log lines and its
// calls to finAPI carry, and within the flight's budget.
type renewer struct {
	flight *flight
	held   *backoffs
	before float64 // share of the lifetime left when renewing
	now    func() time.Time
	log    zerolog.Logger
	active atomic.Int64 // renewals running
}

// due reports whether t, valid at now, is due for renewal.
func (r *renewer) due(s Session, t Token, now time.Time) bool {
	at := t.renewAt(r.before, jitter(s))
	return !at.IsZero() && !now.Before(at)
}

// start starts a renewal of s unless one runs or the session is held.
func (r *renewer) start(ctx context.Context, s Session) {
	if r.held.held(s.ID, r.now()) != nil {
		return
	}
	id := finapi.NewRequestID()
	r.flight.start(withAhead(finapi.WithRequestID(context.WithoutCancel(ctx), id)), s, Token{}, func(fetch func() (Token, error)) (Token, error) {
		r.active.Add(1)
		defer r.active.Add(-1)
		t, err := fetch()
		if err != nil {
			r.log.Warn().Err(err).Str("session", s.Short()).Str("request_id", id).
				Msg("renewal ahead of expiry failed; the token stays in use while valid")
		} else {
			r.log.Debug().Str("session", s.Short()).Str("request_id", id).Msg("token renewed ahead of expiry")
		}
		return t, err
	})
}

// wait waits until no renewal runs, or ctx ends.
func (r *renewer) wait(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for r.active.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("auth: %d renewals still running: %w", r.active.Load(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// jitter spreads sessions' renewals: a share in [0,1) taken from the
// session hash, stable for a session.
func jitter(s Session) float64 {
	if len(s.ID) < 2 {
		return 0
	}
	return float64(hexVal(s.ID[0])<<4|hexVal(s.ID[1])) / 256
}

func hexVal(b byte) int {
	switch {
	case b >= '0' && b <= '9':
		return int(b - '0')
	case b >= 'a' && b <= 'f':
		return int(b-'a') + 10
	}
	return 0
}
