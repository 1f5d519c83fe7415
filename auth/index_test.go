package auth_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finproxy/finproxy/auth"
	"github.com/finproxy/finproxy/cache"
	"github.com/finproxy/finproxy/finapi"
)

// countingStore counts the writes to a store.
type countingStore struct {
	cache.Store[auth.Token]
	sets atomic.Int64
}

func (c *countingStore) Set(ctx context.Context, k string, v auth.Token, ttl time.Duration) error {
	c.sets.Add(1)
	return c.Store.Set(ctx, k, v, ttl)
}

type conflictSource struct{ calls atomic.Int64 }

func (c *conflictSource) SessionToken(context.Context, auth.Session, auth.Token) (auth.Token, error) {
	c.calls.Add(1)
	return auth.Token{}, &finapi.Error{Op: finapi.OpPasswordGrant, Kind: finapi.ErrIdentityConflict, Status: http.StatusBadRequest}
}

// TestIndexWrittenOncePerConflict: README says the short-hash index is
// written with every token fetch and every conflict, never per request; a
// session held by its identity conflict must not write it on each request.
func TestIndexWrittenOncePerConflict(t *testing.T) {
	clock := newClock()
	src := &conflictSource{}
	index := &countingStore{Store: cache.NewMemory(0, auth.TokenCodec)}
	sessions := &auth.Sessions{
		Source:  src,
		Store:   cache.NewMemory(0, auth.TokenCodec),
		Index:   index,
		Timeout: time.Minute,
		Now:     clock.Now,
	}
	s := testSession(t, "session-held-by-conflict-0004")
	for range 5 {
		if _, err := sessions.Token(context.Background(), s); err == nil {
			t.Fatal("a conflicting session got a token")
		}
	}
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("the source was asked %d times, want 1 (the hold)", n)
	}
	if n := index.sets.Load(); n != 1 {
		t.Errorf("the index was written %d times for one conflict, want 1", n)
	}
}
