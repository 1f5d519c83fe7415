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

// admit is auth.Sessions' Admit hook: it takes one token from the
// replica's bucket (and the client IP's), or answers 429 rate_limited.
func (n *newIdentities) admit(ctx context.Context) error {
	now := time.Now()
	kind := "new_session"
	ok, wait := n.all.allow("", now)
	if ok {
		if st, _ := ctx.Value(stateKey{}).(*state); st != nil {
			ok, wait = n.perIP.allow(st.clientIP, now)
			kind = "new_session_ip"
		}
	}
	if ok {
		return nil
	}
	if n.observer != nil {
		n.observer.RateLimited(kind)
	}
	if last := n.warned.Load(); now.Unix()-last >= 60 && n.warned.CompareAndSwap(last, now.Unix()) {
		n.log.Warn().Str("limit", kind).Dur("retry_after", wait).
			Msg("new sessions refused: the bound on new finAPI identities is reached (FINPROXY_NEW_SESSION_RATE); existing sessions are not affected; logged at most once a minute")
	}
	return &rateLimitedError{wait}
}
