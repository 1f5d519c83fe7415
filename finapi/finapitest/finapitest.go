// Package finapitest has helpers for tests that drive a finapi.Client
// against an httptest server: a clock that moves only when told, recorded
// retry waits, and answers in finAPI's shapes.
package finapitest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/finproxy/finproxy/finapi"
)

// Clock is an injected clock that only moves when told to. It is safe for
// concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Sleeps records the waits of a Client instead of waiting (its Sleep).
// The zero value is ready to use.
type Sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

// Sleep records d and returns at once.
func (s *Sleeps) Sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return nil
}

// Count returns the number of waits recorded.
func (s *Sleeps) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.d)
}

// Waits returns the waits recorded.
func (s *Sleeps) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// NewClient returns a Client of base with the given credentials, clock
// and sleeps.
func NewClient(t testing.TB, base, clientID, clientSecret string, clock *Clock, sl *Sleeps) *finapi.Client {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return &finapi.Client{BaseURL: u, ClientID: clientID, ClientSecret: clientSecret, Now: clock.Now, Sleep: sl.Sleep}
}

// WriteJSON answers v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// ErrorMessage is finAPI's ErrorMessage with one error.
func ErrorMessage(code, msg string) map[string]any {
	return map[string]any{
		"errors":    []map[string]any{{"message": msg, "code": code, "type": "BUSINESS"}},
		"date":      "2026-11-23T10:00:00.000Z",
		"requestId": "r",
		"endpoint":  "POST /api/v2/users",
	}
}

// CheckNoSecrets fails t if err's text holds one of secrets.
func CheckNoSecrets(t testing.TB, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, secret := range secrets {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q contains a secret", err)
		}
	}
}
