package auth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/finproxy/finproxy/auth"
	"github.com/finproxy/finproxy/cache"
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
