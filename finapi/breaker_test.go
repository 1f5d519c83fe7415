package finapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finproxy/finproxy/finapi"
)

// TestOneUsersFailureBacksOffNothing: a 5xx or 429 on deleting a user or
// revoking its tokens goes back to that caller (with finAPI's Retry-After)
// and holds back no token grant for the other sessions.
func TestOneUsersFailureBacksOffNothing(t *testing.T) {
	var grants atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v2/users":
			writeJSON(w, 500, finAPIError("UNEXPECTED_ERROR", "boom"))
		case "/api/v2/oauth/revoke":
			w.Header().Set("Retry-After", "120")
			writeJSON(w, 429, finAPIError("UNEXPECTED_ERROR", "slow down"))
		case "/api/v2/oauth/token":
			grants.Add(1)
			writeJSON(w, 200, map[string]any{"access_token": "a", "expires_in": 3600})
		}
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, newClock(), &sleeps{})
	ctx := context.Background()
	if err := c.DeleteUser(ctx, "user-token"); !errors.Is(err, finapi.ErrUnavailable) {
		t.Fatalf("DeleteUser = %v, want ErrUnavailable", err)
	}
	err := c.Revoke(ctx, "client-token", "t", "")
	if !errors.Is(err, finapi.ErrUnavailable) || finapi.RetryAfter(err) != 2*time.Minute {
		t.Errorf("Revoke = %v (RetryAfter %v), want ErrUnavailable with finAPI's 2m", err, finapi.RetryAfter(err))
	}
	for range 3 {
		if _, err := c.PasswordToken(ctx, "fp-u", testPassword); err != nil {
			t.Fatalf("password grant after one user's failures: %v", err)
		}
	}
	if grants.Load() != 3 {
		t.Errorf("%d grants reached finAPI, want 3", grants.Load())
	}
	// A user's own call is never held back either.
	if err := c.DeleteUser(ctx, "user-token"); errors.Is(err, finapi.ErrUnavailable) && strings.Contains(err.Error(), "backing off") {
		t.Errorf("a second delete was held back: %v", err)
	}
}

// TestRefusedCredentialsBackOffGrows: refused client credentials are
// remembered, and asked again after 1 s, 2 s, 4 s…, not on every call.
func TestRefusedCredentialsBackOffGrows(t *testing.T) {
	var calls atomic.Int64
	var accept atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if accept.Load() {
			writeJSON(w, 200, map[string]any{"access_token": "a", "expires_in": 3600})
			return
		}
		writeJSON(w, 401, map[string]any{"error": "invalid_client", "error_description": "Bad client credentials"})
	}))
	defer srv.Close()
	clock := newClock()
	c := newClient(t, srv.URL, clock, &sleeps{})
	ctx := context.Background()
	var waits []time.Duration
	for range 4 {
		_, err := c.ClientToken(ctx)
		if !errors.Is(err, finapi.ErrClientRejected) {
			t.Fatalf("err = %v, want ErrClientRejected", err)
		}
		waits = append(waits, finapi.RetryAfter(err))
		for range 10 { // within the back-off: no call
			if _, err := c.ClientToken(ctx); !errors.Is(err, finapi.ErrClientRejected) {
				t.Fatalf("within the back-off: %v, want the same refusal", err)
			}
		}
		clock.Set(clock.Now().Add(finapi.RetryAfter(err)))
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}; !equalDurations(waits, want) {
		t.Errorf("back-offs %v, want %v", waits, want)
	}
	if calls.Load() != 4 {
		t.Errorf("%d calls reached finAPI for 44 attempts, want 4", calls.Load())
	}
	if err := c.CredentialsRefused(); !errors.Is(err, finapi.ErrClientRejected) {
		t.Errorf("CredentialsRefused = %v", err)
	}
	accept.Store(true)
	if _, err := c.ClientToken(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.CredentialsRefused(); err != nil {
		t.Errorf("CredentialsRefused after a success = %v, want nil", err)
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestNonFinAPIRefusalIsNonsense: a 4xx that is not finAPI's (an HTML page
// of a proxy, a wrong base URL) is "finAPI answered nonsense".
func TestNonFinAPIRefusalIsNonsense(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(404)
		w.Write([]byte("<html>Not Found</html>"))
	}))
	defer srv.Close()
	_, err := newClient(t, srv.URL, newClock(), &sleeps{}).PasswordToken(context.Background(), "fp-u", testPassword)
	if !errors.Is(err, finapi.ErrInvalidAnswer) {
		t.Errorf("err = %v, want ErrInvalidAnswer", err)
	}
}
