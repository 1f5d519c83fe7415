package proxy

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/finproxy/finproxy/auth"
	"github.com/finproxy/finproxy/jwtsession"
)

// TestDeriveSession: the session a verified token's identity or finAPI
// user id names, as jwt mode has always derived it, now once per token.
func TestDeriveSession(t *testing.T) {
	keys, err := auth.NewKeys(benchIdentitySecret)
	if err != nil {
		t.Fatal(err)
	}
	derive := DeriveSession(keys)
	for _, c := range []struct {
		name   string
		id     jwtsession.Identity
		want   auth.Session
		refuse bool
	}{
		{name: "identity", id: jwtsession.Identity{Key: "iss\x00sub"}, want: keys.Session("iss\x00sub")},
		{name: "user id", id: jwtsession.Identity{Key: "iss\x00sub", UserID: "Alice.B"}, want: keys.UserSession("alice.b")},
		{name: "user id of 36", id: jwtsession.Identity{Key: "k", UserID: "a23456789012345678901234567890123456"}, want: keys.UserSession("a23456789012345678901234567890123456")},
		{name: "user id with slash", id: jwtsession.Identity{Key: "k", UserID: "a/b"}, refuse: true},
		{name: "user id of 37", id: jwtsession.Identity{Key: "k", UserID: "a234567890123456789012345678901234567"}, refuse: true},
	} {
		got, err := derive(c.id)
		if c.refuse {
			if !errors.Is(err, jwtsession.ErrBadUserID) || got != nil {
				t.Errorf("%s: derive = %v, %v; want ErrBadUserID", c.name, got, err)
			}
			continue
		}
		s, ok := got.(auth.Session)
		if err != nil || !ok || s.ID != c.want.ID {
			t.Errorf("%s: derive = %v, %v; want session %s", c.name, got, err, c.want.ID)
		}
	}
}

// TestVerifyWith: the session of a verified token, the same as deriving
// it afresh; a verifier made without DeriveSession refuses every token.
func TestVerifyWith(t *testing.T) {
	keys, err := auth.NewKeys(benchIdentitySecret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": benchIssuer, "sub": "user-1", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(benchHMACSecret)
	if err != nil {
		t.Fatal(err)
	}
	v, err := jwtsession.New(t.Context(), jwtsession.Config{HMACSecret: benchHMACSecret, Issuer: benchIssuer, Derive: DeriveSession(keys)})
	if err != nil {
		t.Fatal(err)
	}
	want := keys.Session(benchIssuer + "\x00user-1")
	for range 2 { // verified, then remembered
		if s, err := VerifyWith(v)(tok); err != nil || s.ID != want.ID {
			t.Fatalf("VerifyWith = %s, %v; want %s", s.ID, err, want.ID)
		}
	}
	if _, err := VerifyWith(v)(tok + "x"); !errors.Is(err, jwtsession.ErrInvalid) {
		t.Errorf("VerifyWith of a forged token = %v, want ErrInvalid", err)
	}
	plain, err := jwtsession.New(t.Context(), jwtsession.Config{HMACSecret: benchHMACSecret, Issuer: benchIssuer})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := VerifyWith(plain)(tok); !errors.Is(err, errNotDerived) || s.ID != "" {
		t.Errorf("VerifyWith of a verifier without DeriveSession = %s, %v; want errNotDerived", s.ID, err)
	}

	// Through the handler: a token is served with the derived session; a
	// verifier wired without DeriveSession is finproxy's fault (500), not
	// the caller's (401).
	target, _ := url.Parse("http://upstream.invalid")
	for _, c := range []struct {
		name   string
		verify func(string) (auth.Session, error)
		status int
	}{
		{"derived", VerifyWith(v), http.StatusOK},
		{"not derived", VerifyWith(plain), http.StatusInternalServerError},
	} {
		h, err := New(Config{AccessURL: target, Keys: keys, Tokens: &stubTokens{}, Lifecycle: &stubLifecycle{},
			Transport: cannedTransport{}, Log: zerolog.Nop(), VerifyJWT: c.verify})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodGet, "/api/v2/accounts", nil)
		r.Header.Set(DefaultSessionConfig.Header, tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.status {
			t.Errorf("%s: status %d (%s), want %d", c.name, w.Code, w.Header().Get(ReasonHeader), c.status)
		}
	}
}
