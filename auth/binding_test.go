package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/finproxy/finproxy/auth"
	"github.com/finproxy/finproxy/cache"
	"github.com/finproxy/finproxy/finapi"
	"github.com/finproxy/finproxy/test/emulator"
)

// TestAdoptedSessionRenewsAsAdoptedUser: a token of the session's derived
// user that outlived the adoption (a fetch in flight while the operator
// adopted, another replica's copy) is not refreshed: the session's next
// renewal logs in as the user it is bound to, as README promises ("A
// session with a binding logs in as that user").
func TestAdoptedSessionRenewsAsAdoptedUser(t *testing.T) {
	clock := newClock()
	emu := emulator.New(emulator.Config{ClientID: testClientID, ClientSecret: testClientSecret, Now: clock.Now})
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(srv.Close)
	client := newClient(t, srv.URL, clock, &sleeps{})
	keys := mustKeys(t, secretA)
	s := keys.Session("session-adopted-0001")
	store := cache.NewMemory(0, auth.TokenCodec)
	login := &auth.UserLogin{Client: client, ClientToken: &auth.ReuseToken{Source: auth.ClientCredentials{Client: client}, Now: clock.Now}, Bindings: store}
	ctx := context.Background()

	before, err := login.SessionToken(ctx, s, auth.Token{})
	if err != nil || before.RefreshToken == "" || before.UserID != s.UserID() {
		t.Fatalf("first login: %+v, %v; want a refreshable token of the derived user", before.UserID, err)
	}
	const alice = "alice@backend.example"
	emu.CreateUser(alice, keys.AdoptedPassword(alice)) // as adoption leaves it
	if err := store.Set(ctx, "adopted:"+s.ID, auth.Token{UserID: alice}, time.Hour); err != nil {
		t.Fatal(err)
	}

	after, err := login.SessionToken(ctx, s, before)
	if err != nil {
		t.Fatalf("renewal after adoption: %v", err)
	}
	if after.UserID != alice {
		t.Errorf("renewed token names user %q, want the adopted %q", after.UserID, alice)
	}
	if got := userOfToken(t, srv.URL, after.AccessToken); got != alice {
		t.Errorf("finAPI says the renewed token is %q's, want the adopted %q", got, alice)
	}
}

func userOfToken(t *testing.T, base, token string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v2/users", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var u struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&u); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /api/v2/users: %d %v", resp.StatusCode, err)
	}
	return u.ID
}

// TestDeletingAdoptedUserUnbindsSession: after the session deletes its
// adopted finAPI user (DELETE /proxy/v1/session), the binding goes with
// it; a binding left behind would point at a deleted user, and the
// session, never creating a bound user, would meet an identity conflict
// on every later request, for ever (bindings do not expire).
func TestDeletingAdoptedUserUnbindsSession(t *testing.T) {
	clock := newClock()
	emu := emulator.New(emulator.Config{ClientID: testClientID, ClientSecret: testClientSecret, Now: clock.Now})
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(srv.Close)
	client := newClient(t, srv.URL, clock, &sleeps{})
	keys := mustKeys(t, secretA)
	s := keys.Session("session-adopted-0002")
	store := cache.NewMemory(0, auth.TokenCodec)
	clientToken := &auth.ReuseToken{Source: auth.ClientCredentials{Client: client}, Now: clock.Now}
	sessions := &auth.Sessions{
		Source:  &auth.UserLogin{Client: client, ClientToken: clientToken, Bindings: store},
		Store:   store,
		Timeout: time.Minute,
		Now:     clock.Now,
	}
	lc := &auth.Lifecycle{Sessions: sessions, Client: client, ClientToken: clientToken, Users: true}
	ctx := context.Background()
	const alice = "alice@backend.example"
	emu.CreateUser(alice, keys.AdoptedPassword(alice))
	if err := store.Set(ctx, "adopted:"+s.ID, auth.Token{UserID: alice}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if tok, err := sessions.Token(ctx, s); err != nil || tok.UserID != alice {
		t.Fatalf("bound session: %q, %v; want a token of %q", tok.UserID, err, alice)
	}
	if err := lc.Delete(ctx, s); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, ok, _ := store.Get(ctx, "adopted:"+s.ID); ok {
		t.Error("the binding to the deleted user is still stored")
	}
	tok, err := sessions.Token(ctx, s)
	if err != nil {
		t.Fatalf("the session's next request after deleting its user: %v; want a new user, as for any deleted session", err)
	}
	if tok.UserID != s.UserID() {
		t.Errorf("next token is %q's, want the session's derived %q", tok.UserID, s.UserID())
	}
}

// TestNotDerivableHoldsNothing: an admin action on a session known by its
// hash only (ErrNotDerivable: nothing to log in with) is no failure of the
// session's: its own next request, which can derive its user, is not held
// back by a back-off the admin call started.
func TestNotDerivableHoldsNothing(t *testing.T) {
	clock := newClock()
	emu := emulator.New(emulator.Config{ClientID: testClientID, ClientSecret: testClientSecret, Now: clock.Now})
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(srv.Close)
	client := newClient(t, srv.URL, clock, &sleeps{})
	keys := mustKeys(t, secretA)
	s := keys.Session("session-hash-only-0003")
	store := cache.NewMemory(0, auth.TokenCodec)
	clientToken := &auth.ReuseToken{Source: auth.ClientCredentials{Client: client}, Now: clock.Now}
	sessions := &auth.Sessions{
		Source:  &auth.UserLogin{Client: client, ClientToken: clientToken, Bindings: store},
		Store:   store,
		Timeout: time.Minute,
		Now:     clock.Now,
	}
	ctx := context.Background()
	if _, err := sessions.Token(ctx, keys.SessionByHash(s.ID)); !errors.Is(err, auth.ErrNotDerivable) {
		t.Fatalf("hash-only session: %v, want ErrNotDerivable", err)
	}
	if tok, err := sessions.Token(ctx, s); err != nil || tok.UserID != s.UserID() {
		t.Errorf("the session's own request right after: %q, %v; want its derived user's token", tok.UserID, err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestAdoptionCompletesWhenTheCallerHangsUp: once finAPI changed the
// user's password, the binding must be stored even if the operator's call
// is cancelled; else the user has a password no session logs in with and
// the session meets its conflict again (the lifecycle calls detach for the
// same reason).
func TestAdoptionCompletesWhenTheCallerHangsUp(t *testing.T) {
	clock := newClock()
	emu := emulator.New(emulator.Config{ClientID: testClientID, ClientSecret: testClientSecret, Now: clock.Now})
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := newClient(t, srv.URL, clock, &sleeps{})
	client.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err == nil && r.URL.Path == "/api/v2/users/executePasswordChange" {
			cancel() // the operator hangs up as finAPI answers
		}
		return resp, err
	})}
	keys := mustKeys(t, secretA)
	s := keys.Session("session-adopt-hangup-0006")
	store := ctxStore{cache.NewMemory(0, auth.TokenCodec)} // like Redis: a cancelled context fails the call
	ddk, err := finapi.NewDataDecryptionKey(emulator.DefaultDataDecryptionKey)
	if err != nil {
		t.Fatal(err)
	}
	const alice = "alice@backend.example"
	emu.CreateUser(alice, "alice-own-password")
	a := &auth.Adopter{Client: client, ClientToken: &auth.ReuseToken{Source: auth.ClientCredentials{Client: client}, Now: clock.Now},
		Key: ddk, Keys: keys, Store: store, Now: clock.Now}
	_, err = a.Adopt(ctx, s, alice)
	if n := emu.Count(emulator.CounterPasswordChangeExecute); n != 1 {
		t.Fatalf("executePasswordChange answered 200 %d times, want 1 (adopt: %v)", n, err)
	}
	if b, ok, _ := store.Get(context.Background(), "adopted:"+s.ID); !ok || b.UserID != alice {
		t.Errorf("password changed but no binding stored (adopt: %v); the user is lost to every session", err)
	}
}

// ctxStore fails calls whose context ended, as the Redis store does.
type ctxStore struct{ cache.Store[auth.Token] }

func (c ctxStore) Set(ctx context.Context, k string, v auth.Token, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.Store.Set(ctx, k, v, ttl)
}
