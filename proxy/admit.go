package proxy

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// newIdentities bounds how many new finAPI identities (users, or billable
// processes) this replica creates: in header mode anyone who reaches
// finproxy can invent session ids, and each would create one. Sessions
// that already exist never pass through it.
type newIdentities struct {
	all      *limiters // one bucket for the replica
	perIP    *limiters // nil: no per-IP bound
	observer Observer
	log      zerolog.Logger
	warned   atomic.Int64 // unix seconds of the last warning
}

// admit is auth.Sessions' Admit hook: it takes one token from the client
// IP's bucket (when there is one) and the replica's, or answers 429
// rate_limited.
func (n *newIdentities) admit(ctx context.Context) error {
	now := time.Now()
	// Per IP first: an address over its own bound must not use up the
	// replica's budget for everyone else.
	kind, ok, wait := "new_session_ip", true, time.Duration(0)
	if st, _ := ctx.Value(stateKey{}).(*state); st != nil {
		ok, wait = n.perIP.allow(st.clientIP, now)
	}
	if ok {
		kind = "new_session"
		ok, wait = n.all.allow("", now)
	}
	if ok {
		return nil
	}
	// Counted and logged when it is answered (refused): over the budget
	// an existing user still logs in, and that is no refusal.
	return &rateLimitedError{wait: wait, kind: kind}
}

// refused counts and logs (once a minute) a request refused by the
// budget, when it is answered.
func (n *newIdentities) refused(e *rateLimitedError) {
	if n.observer != nil {
		n.observer.RateLimited(e.kind)
	}
	now := time.Now().Unix()
	if last := n.warned.Load(); now-last >= 60 && n.warned.CompareAndSwap(last, now) {
		n.log.Warn().Str("limit", e.kind).Dur("retry_after", e.wait).
			Msg("new sessions refused: the bound on new finAPI identities is reached (FINPROXY_NEW_SESSION_RATE); existing sessions are not affected; logged at most once a minute")
	}
}
