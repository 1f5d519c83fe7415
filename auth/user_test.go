package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/finproxy/finproxy/auth"
	"github.com/finproxy/finproxy/finapi"
)

// fakeFinAPI is a small finAPI Access: the token endpoint (client
// credentials, password and refresh_token grants) and user creation. It
// counts what it is asked.
type fakeFinAPI struct {
	t *testing.T

	mu      sync.Mutex
	users   map[string]string // id → password
	refresh map[string]string // valid refresh token → user id
	counts  map[string]int    // "password", "refresh_token", "client_credentials", "create"
	// locked users answer 423 to the password grant.
	locked map[string]bool
	// refreshDown answers the refresh_token grant with 503.
	refreshDown bool
	// refuseCreates answers this many user creations with 401.
	refuseCreates int
	// unverified users answer 403 to the password grant until verified
	// (a client with isUserAutoVerificationEnabled=false).
	unverified map[string]bool
	// passwordAnswer, if set, answers every password grant instead.
	passwordAnswer func(w http.ResponseWriter)
	serial         int
}

func newFakeFinAPI(t *testing.T) (*fakeFinAPI, *httptest.Server) {
	f := &fakeFinAPI{
		t:          t,
		users:      map[string]string{},
		refresh:    map[string]string{},
		counts:     map[string]int{},
		locked:     map[string]bool{},
		unverified: map[string]bool{},
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeFinAPI) count(kind string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[kind]
}

func (f *fakeFinAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/api/v2/oauth/token":
		f.token(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/api/v2/users":
		f.counts["create"]++
		if f.refuseCreates > 0 {
			f.refuseCreates--
			writeJSON(w, 401, finAPIError("UNAUTHORIZED_ACCESS", "invalid token"))
			return
		}
		var u struct{ ID, Password string }
		if err := json.NewDecoder(r.Body).Decode(&u); err != nil {
			f.t.Errorf("create user: %v", err)
		}
		if _, ok := f.users[u.ID]; ok {
			writeJSON(w, 422, finAPIError("ENTITY_EXISTS", "user exists"))
			return
		}
		f.users[u.ID] = u.Password
		writeJSON(w, 201, map[string]any{"id": u.ID})
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/v2/users/verify/"):
		f.counts["verify"]++
		id := strings.TrimPrefix(r.URL.Path, "/api/v2/users/verify/")
		if _, ok := f.users[id]; !ok || r.Header.Get("Authorization") != "Bearer client_credentials-1" {
			writeJSON(w, 404, finAPIError("UNKNOWN_ENTITY", "no such user"))
			return
		}
		if !f.unverified[id] {
			writeJSON(w, 422, finAPIError("USER_ALREADY_VERIFIED", "verified"))
			return
		}
		delete(f.unverified, id)
		w.WriteHeader(200)
	default:
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		w.WriteHeader(404)
	}
}

func (f *fakeFinAPI) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		f.t.Errorf("token request: %v", err)
	}
	if r.PostForm.Get("client_id") != testClientID || r.PostForm.Get("client_secret") != testClientSecret {
		writeJSON(w, 401, map[string]any{"error": "invalid_client"})
		return
	}
	grant := r.PostForm.Get("grant_type")
	f.counts[grant]++
	f.serial++
	issue := func(user string) {
		rt := "" // finAPI: "only set in case of grant_type='password'"
		if grant == "password" {
			rt = fmt.Sprintf("refresh-%d", f.serial)
			f.refresh[rt] = user
		}
		writeJSON(w, 200, map[string]any{
			"access_token": fmt.Sprintf("%s-%d", grant, f.serial), "token_type": "bearer",
			"refresh_token": rt, "expires_in": 3600,
		})
	}
	switch grant {
	case "client_credentials":
		issue("")
	case "password":
		user, pw := r.PostForm.Get("username"), r.PostForm.Get("password")
		switch want, ok := f.users[user]; {
		case f.passwordAnswer != nil:
			f.passwordAnswer(w)
		case ok && want == pw && f.unverified[user]:
			writeJSON(w, 403, finAPIError("USER_NOT_VERIFIED", "user not verified"))
		case f.locked[user]:
			writeJSON(w, 423, finAPIError("LOCKED", "user locked"))
		case !ok || want != pw:
			writeJSON(w, 400, map[string]any{"error": "invalid_grant", "error_description": "Bad credentials"})
		default:
			issue(user)
		}
	case "refresh_token":
		if f.refreshDown {
			writeJSON(w, 503, finAPIError("UNEXPECTED_ERROR", "down"))
			return
		}
		user, ok := f.refresh[r.PostForm.Get("refresh_token")]
		if !ok {
			writeJSON(w, 400, map[string]any{"error": "invalid_grant", "error_description": "Invalid refresh token"})
			return
		}
		issue(user)
	default:
		writeJSON(w, 400, map[string]any{"error": "unsupported_grant_type"})
	}
}

func TestUserLogin(t *testing.T) {
	s := testSession(t, "session-user-login-1")
	id, pw := s.UserID(), s.Password()
	type counts struct{ create, password, refresh, client, verify int }
	tests := []struct {
		name      string
		setup     func(f *fakeFinAPI)
		prev      auth.Token
		wantToken string // prefix of the access token; "" if an error
		// wantRefresh is the refresh token the result must hold; "" means
		// any non-empty one.
		wantRefresh string
		wantErr     error
		want        counts
	}{
		{
			name:      "new session: user created, password grant",
			wantToken: "password-",
			want:      counts{create: 1, password: 1, client: 1},
		},
		{
			name:      "user exists with the derived password",
			setup:     func(f *fakeFinAPI) { f.users[id] = pw },
			wantToken: "password-",
			want:      counts{create: 1, password: 1, client: 1},
		},
		{
			name:        "valid refresh token: refresh grant only, the refresh token kept",
			setup:       func(f *fakeFinAPI) { f.users[id] = pw; f.refresh["good-refresh"] = id },
			prev:        auth.Token{AccessToken: "old", RefreshToken: "good-refresh", UserID: id},
			wantToken:   "refresh_token-",
			wantRefresh: "good-refresh",
			want:        counts{refresh: 1},
		},
		{
			name:      "unverified user: verified once with the client token, then logged in",
			setup:     func(f *fakeFinAPI) { f.users[id] = pw; f.unverified[id] = true },
			wantToken: "password-",
			want:      counts{create: 1, password: 2, client: 1, verify: 1},
		},
		{
			name: "403 that verifying does not cure: an error, not a loop",
			setup: func(f *fakeFinAPI) {
				f.passwordAnswer = func(w http.ResponseWriter) { writeJSON(w, 403, finAPIError("FORBIDDEN", "not allowed")) }
			},
			wantErr: finapi.ErrRejected,
			want:    counts{create: 1, password: 2, client: 1, verify: 1},
		},
		{
			name: "another 400 on the password grant: a plain error, no conflict",
			setup: func(f *fakeFinAPI) {
				f.passwordAnswer = func(w http.ResponseWriter) {
					writeJSON(w, 400, finAPIError("BAD_REQUEST", "Missing parameter 'username'"))
				}
			},
			wantErr: finapi.ErrRejected,
			want:    counts{create: 1, password: 1, client: 1},
		},
		{
			name: "bad credentials as an ErrorMessage: conflict",
			setup: func(f *fakeFinAPI) {
				f.passwordAnswer = func(w http.ResponseWriter) { writeJSON(w, 400, finAPIError("BAD_REQUEST", "Bad user credentials")) }
			},
			wantErr: finapi.ErrIdentityConflict,
			want:    counts{create: 1, password: 1, client: 1},
		},
		{
			name:      "refresh refused (400): falls back to the password grant",
			setup:     func(f *fakeFinAPI) { f.users[id] = pw },
			prev:      auth.Token{AccessToken: "old", RefreshToken: "revoked-refresh", UserID: id},
			wantToken: "password-",
			want:      counts{refresh: 1, password: 1},
		},
		{
			name:      "refresh refused for an unknown user: created first",
			prev:      auth.Token{RefreshToken: "revoked-refresh"},
			wantToken: "password-",
			want:      counts{refresh: 1, create: 1, password: 1, client: 1},
		},
		{
			name:    "refresh during an outage: no password grant",
			setup:   func(f *fakeFinAPI) { f.users[id] = pw; f.refreshDown = true },
			prev:    auth.Token{AccessToken: "old", RefreshToken: "any", UserID: id},
			wantErr: finapi.ErrUnavailable,
			want:    counts{refresh: 3},
		},
		{
			name:    "user exists with another password: one password grant, conflict",
			setup:   func(f *fakeFinAPI) { f.users[id] = "another-password" },
			wantErr: finapi.ErrIdentityConflict,
			want:    counts{create: 1, password: 1, client: 1},
		},
		{
			name:    "refresh and password refused: one password grant, conflict",
			setup:   func(f *fakeFinAPI) { f.users[id] = "another-password" },
			prev:    auth.Token{AccessToken: "old", RefreshToken: "revoked-refresh", UserID: id},
			wantErr: finapi.ErrIdentityConflict,
			want:    counts{refresh: 1, password: 1, create: 1, client: 1},
		},
		{
			name:      "known user deleted elsewhere: created again",
			prev:      auth.Token{AccessToken: "old", UserID: id},
			wantToken: "password-",
			want:      counts{password: 2, create: 1, client: 1},
		},
		{
			name:    "locked user: conflict",
			setup:   func(f *fakeFinAPI) { f.users[id] = pw; f.locked[id] = true },
			wantErr: finapi.ErrIdentityConflict,
			want:    counts{create: 1, password: 1, client: 1},
		},
		{
			name:      "client token refused on create: one new client token",
			setup:     func(f *fakeFinAPI) { f.refuseCreates = 1 },
			wantToken: "password-",
			want:      counts{create: 2, password: 1, client: 2},
		},
		{
			name:    "client token refused twice on create: error",
			setup:   func(f *fakeFinAPI) { f.refuseCreates = 2 },
			wantErr: finapi.ErrRejected,
			want:    counts{create: 2, client: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFakeFinAPI(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			clock := newClock()
			client := newClient(t, srv.URL, clock, &sleeps{})
			login := &auth.UserLogin{
				Client:      client,
				ClientToken: &auth.ReuseToken{Source: auth.ClientCredentials{Client: client}, Now: clock.Now},
			}

			tok, err := login.SessionToken(context.Background(), s, tt.prev)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
			} else {
				if err != nil {
					t.Fatalf("SessionToken: %v", err)
				}
				if !strings.HasPrefix(tok.AccessToken, tt.wantToken) {
					t.Errorf("access token = %q, want one from %q", tok.AccessToken, tt.wantToken)
				}
				if tok.UserID != id {
					t.Errorf("UserID = %q, want %q", tok.UserID, id)
				}
				if tok.RefreshToken == "" || !tok.Expiry.Equal(t0.Add(time.Hour)) {
					t.Errorf("token = %+v, want a refresh token and an hour's life", tok)
				}
				if tt.wantRefresh != "" && tok.RefreshToken != tt.wantRefresh {
					t.Errorf("refresh token = %q, want %q kept", tok.RefreshToken, tt.wantRefresh)
				}
			}
			got := counts{f.count("create"), f.count("password"), f.count("refresh_token"), f.count("client_credentials"), f.count("verify")}
			if got != tt.want {
				t.Errorf("finAPI saw %+v, want %+v", got, tt.want)
			}
			if f.count("password") > 1 && errors.Is(err, finapi.ErrIdentityConflict) {
				t.Errorf("%d password grants before a conflict, want at most 1", f.count("password"))
			}
			checkNoSecrets(t, err)
			if err != nil && (strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), "another-password")) {
				t.Errorf("error %q contains a password", err)
			}
		})
	}
}

// TestUserLoginThroughSessions drives the user source through the session
// cache: concurrent first requests create one user with one password grant
// (CONTRACT.md item 4).
func TestUserLoginThroughSessions(t *testing.T) {
	f, srv := newFakeFinAPI(t)
	clock := newClock()
	client := newClient(t, srv.URL, clock, &sleeps{})
	sessions := newSessions(&auth.UserLogin{
		Client:      client,
		ClientToken: &auth.ReuseToken{Source: auth.ClientCredentials{Client: client}, Now: clock.Now},
	}, clock, &counters{})
	s := testSession(t, "session-user-login-through-sessions")

	var wg sync.WaitGroup
	tokens := make(chan string, 20)
	for range 20 {
		wg.Go(func() {
			tok, err := sessions.Token(context.Background(), s)
			if err != nil {
				t.Errorf("Token: %v", err)
			}
			tokens <- tok.AccessToken
		})
	}
	wg.Wait()
	close(tokens)
	first := ""
	for tok := range tokens {
		if first == "" {
			first = tok
		}
		if tok != first {
			t.Errorf("callers got different tokens %q and %q", first, tok)
		}
	}
	if c, p := f.count("create"), f.count("password"); c != 1 || p != 1 {
		t.Errorf("%d creations and %d password grants, want 1 and 1", c, p)
	}

	// A refused access token is renewed with the refresh token.
	stale, _ := sessions.Cached(context.Background(), s)
	renewed, err := sessions.Renew(context.Background(), s, stale)
	if err != nil || renewed.AccessToken == stale.AccessToken || renewed.UserID != s.UserID() {
		t.Errorf("Renew = %+v, %v; want a new token of the same user", renewed, err)
	}
	if r := f.count("refresh_token"); r != 1 {
		t.Errorf("%d refresh grants, want 1", r)
	}
}
