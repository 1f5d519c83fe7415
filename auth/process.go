package auth

import (
	"context"
	"errors"
	"time"

	"github.com/finproxy/finproxy/finapi"
)

// MaxProcessExchanges is how often finAPI lets one process token be
// exchanged for an access token (within a period set per mandator).
const MaxProcessExchanges = 10

// ProcessLogin is the SessionSource of process mode: a session seen for the
// first time gets a Process Controller process, whose token is exchanged
// for the access token that is injected: once (invalidate=true), or, when
// Resumable, again whenever the access token expired or was refused.
type ProcessLogin struct {
	// Client talks to the Process Controller (its BaseURL is
	// FINPROXY_PROCESSCTL_URL) with the client credentials. Required.
	Client *finapi.Client
	// ProcessID is the processId sent on creation. Required.
	ProcessID string
	// TTL is how long the access token is used: the Process Controller
	// does not say. Optional. Default one hour, finAPI's default token
	// validity.
	TTL time.Duration
	// Resumable exchanges with invalidate=false and keeps the process
	// token in the session's Token, so that a new access token comes from
	// the same process: up to MaxProcessExchanges exchanges, then (or when
	// an exchange is refused) a new process. Optional. Default false:
	// invalidate=true, as finAPI recommends, and a new process each time.
	Resumable bool
	// Audit records process creations. Optional.
	Audit Audit
}

var _ SessionSource = (*ProcessLogin)(nil)

// SessionToken implements SessionSource. Unless Resumable, prev is
// ignored: a process token cannot be renewed, only replaced by a new
// process. When Resumable, prev's process token is exchanged again while it
// has exchanges left; a refusal (used up, expired, unknown) starts a new
// process, an outage is returned as is (the process stays for the next
// attempt).
func (p *ProcessLogin) SessionToken(ctx context.Context, s Session, prev Token) (Token, error) {
	if p.Resumable && prev.ProcessToken != "" && prev.Exchanges < MaxProcessExchanges {
		t, err := p.exchange(ctx, prev.ProcessToken, prev.Exchanges)
		if err == nil || !errors.Is(err, finapi.ErrRejected) {
			return t, err
		}
	}
	if refused := newIdentityRefused(ctx); refused != nil {
		return Token{}, refused // a process is always a new identity
	}
	pt, err := p.Client.CreateProcess(ctx, p.ProcessID, s.Reference())
	if err != nil {
		return Token{}, err
	}
	p.Audit.Record(ctx, EventProcessCreated, s, "")
	return p.exchange(ctx, pt, 0)
}

// exchange exchanges pt, exchanged done times before, for an access token.
func (p *ProcessLogin) exchange(ctx context.Context, pt string, done int) (Token, error) {
	issued := p.now()
	access, err := p.Client.ExchangeProcess(ctx, pt, !p.Resumable)
	if err != nil {
		return Token{}, err
	}
	ttl := p.TTL
	if ttl <= 0 {
		ttl = time.Hour
	}
	t := Token{AccessToken: access, Issued: issued, Expiry: issued.Add(ttl)}
	if p.Resumable {
		t.ProcessToken, t.Exchanges = pt, done+1
	}
	return t, nil
}

func (p *ProcessLogin) now() time.Time {
	if p.Client.Now != nil {
		return p.Client.Now()
	}
	return time.Now()
}
