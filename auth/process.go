package auth

import (
	"context"
	"time"

	"github.com/finproxy/finproxy/finapi"
)

// ProcessLogin is the SessionSource of process mode: a session seen for the
// first time gets a Process Controller process, whose token is exchanged
// once (invalidate=true) for the access token that is injected.
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
	// Audit records process creations. Optional.
	Audit Audit
}

var _ SessionSource = (*ProcessLogin)(nil)

// SessionToken implements SessionSource. prev is ignored: a process token
// cannot be renewed, only replaced by a new process.
func (p *ProcessLogin) SessionToken(ctx context.Context, s Session, _ Token) (Token, error) {
	if refused := newIdentityRefused(ctx); refused != nil {
		return Token{}, refused // a process is always a new identity
	}
	pt, err := p.Client.CreateProcess(ctx, p.ProcessID, s.Reference())
	if err != nil {
		return Token{}, err
	}
	p.Audit.Record(ctx, EventProcessCreated, s, "")
	issued := p.now()
	access, err := p.Client.ExchangeProcess(ctx, pt)
	if err != nil {
		return Token{}, err
	}
	ttl := p.TTL
	if ttl <= 0 {
		ttl = time.Hour
	}
	return Token{AccessToken: access, Issued: issued, Expiry: issued.Add(ttl)}, nil
}

func (p *ProcessLogin) now() time.Time {
	if p.Client.Now != nil {
		return p.Client.Now()
	}
	return time.Now()
}
