package auth

import (
	"context"
	"errors"
	"time"

	"github.com/finproxy/finproxy/cache"
	"github.com/finproxy/finproxy/finapi"
)

// shortPrefix keys the index from a session's short hash (the 12
// characters the logs show) to its full hash, the key of its entries. The
// index entry is a Token whose UserID holds the full hash.
//
// An index, not a scan: the store is a key-value Store (memory, Redis,
// Redis Cluster) without a portable scan, and a SCAN over a cluster's
// every master costs the whole keyspace per lookup. The index is bounded as
// the store is: one entry per session that obtained a token or met an
// identity conflict, living as long as what it points to, written once per
// token fetch (never per request).
const shortPrefix = "short:"

// indexing is a SessionSource decorator that keeps the short-hash index
// of every session it fetches for.
type indexing struct {
	source SessionSource
	store  cache.Store[Token]
	// bindings holds adoption bindings (the token store): a bound
	// session's index lives as long as its binding. Optional.
	bindings cache.Store[Token]
	idle     time.Duration // how long a token's entry outlives its expiry
	hold     time.Duration // the identity-conflict hold
	now      Clock
}

func (x *indexing) SessionToken(ctx context.Context, s Session, prev Token) (Token, error) {
	t, err := x.source.SessionToken(ctx, s, prev)
	ttl := x.idle + x.hold
	switch {
	case err == nil && !t.Expiry.IsZero():
		ttl = max(t.Expiry.Sub(x.now())+x.idle, x.idle)
	case errors.Is(err, finapi.ErrIdentityConflict):
		ttl = max(finapi.RetryAfter(err), x.hold)
	}
	if err == nil || errors.Is(err, finapi.ErrIdentityConflict) {
		if _, bound := binding(ctx, x.bindings, s); bound {
			ttl = bindingTTL
		}
		_ = x.store.Set(ctx, shortPrefix+s.Short(), Token{UserID: s.ID}, ttl)
	}
	return t, err
}

// indexSession writes the short-hash index of s for ttl (adoption).
func indexSession(ctx context.Context, store cache.Store[Token], s Session, ttl time.Duration) {
	_ = store.Set(ctx, shortPrefix+s.Short(), Token{UserID: s.ID}, ttl)
}

// lookupHash returns the full session hash for what the admin API was
// given: a full hash (64 hex characters) as it is, a short one (12) through
// the index.
func lookupHash(ctx context.Context, store cache.Store[Token], hash string) (string, bool, error) {
	if !isHex(hash) {
		return "", false, nil
	}
	switch len(hash) {
	case 64:
		return hash, true, nil
	case 12:
		e, ok, err := store.Get(ctx, shortPrefix+hash)
		if err != nil || !ok || len(e.UserID) != 64 || e.UserID[:12] != hash {
			return "", false, err
		}
		return e.UserID, true, nil
	}
	return "", false, nil
}

func isHex(s string) bool {
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != ""
}

func (c *Sessions) conflictHold() time.Duration {
	if c.ConflictHold <= 0 {
		return DefaultConflictHold
	}
	return c.ConflictHold
}

func (c *Sessions) index() cache.Store[Token] {
	if c.Index != nil {
		return c.Index
	}
	return c.Store
}
