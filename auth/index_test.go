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

// recordingStore remembers the time to live of each key's last write.
type recordingStore struct {
	cache.Store[auth.Token]
	ttl map[string]time.Duration
}

func (r *recordingStore) Set(ctx context.Context, k string, v auth.Token, ttl time.Duration) error {
	r.ttl[k] = ttl
	return r.Store.Set(ctx, k, v, ttl)
}

type fixedSource struct{ t auth.Token }

func (f fixedSource) SessionToken(context.Context, auth.Session, auth.Token) (auth.Token, error) {
	return f.t, nil
}

// TestIndexOfAdoptedSessionLivesWithItsBinding: the index lives as long
// as the entry it points to; an adopted session's binding never expires,
// so a token fetch must not shorten its index entry to the token's life
// (the short hash of the logs would stop finding the session).
func TestIndexOfAdoptedSessionLivesWithItsBinding(t *testing.T) {
	clock := newClock()
	store := cache.NewMemory(0, auth.TokenCodec)
	index := &recordingStore{Store: cache.NewMemory(0, auth.TokenCodec), ttl: map[string]time.Duration{}}
	sessions := &auth.Sessions{
		Source:  fixedSource{auth.Token{AccessToken: "a", Issued: clock.Now(), Expiry: clock.Now().Add(time.Hour), UserID: "alice"}},
		Store:   store,
		Index:   index,
		Timeout: time.Minute,
		Now:     clock.Now,
	}
	s := testSession(t, "session-adopted-index-0005")
	ctx := context.Background()
	if err := store.Set(ctx, "adopted:"+s.ID, auth.Token{UserID: "alice"}, 24*time.Hour*365); err != nil {
		t.Fatal(err)
	}
	if _, err := sessions.Token(ctx, s); err != nil {
		t.Fatal(err)
	}
	if ttl := index.ttl["short:"+s.Short()]; ttl < 24*time.Hour*365 {
		t.Errorf("index entry of an adopted session written for %v, shorter than its binding", ttl)
	}
}

// TestNoIndexKeepsNone: without the admin API (NoIndex, as main wires it
// when FINPROXY_ADMIN_TOKEN is unset) a token fetch or a conflict writes
// no index entry: nobody looks sessions up by short hash, and an entry per
// session would cost a fifth more memory per cached session.
func TestNoIndexKeepsNone(t *testing.T) {
	clock := newClock()
	store := &countingStore{Store: cache.NewMemory(0, auth.TokenCodec)}
	for name, src := range map[string]auth.SessionSource{
		"token":    &fixedSource{t: auth.Token{AccessToken: "a", UserID: "u", Issued: clock.Now(), Expiry: clock.Now().Add(time.Hour)}},
		"conflict": &conflictSource{},
	} {
		t.Run(name, func(t *testing.T) {
			store.sets.Store(0)
			sessions := &auth.Sessions{Source: src, Store: store, NoIndex: true, Timeout: time.Minute, Now: clock.Now}
			_, _ = sessions.Token(context.Background(), testSession(t, "session-without-index-"+name))
			want := int64(1) // the token, or the conflict marker
			if n := store.sets.Load(); n != want {
				t.Errorf("%d writes to the store, want %d (no index entry)", n, want)
			}
		})
	}
}
