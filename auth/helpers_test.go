package auth_test

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

const (
	testClientID     = "finproxy-client"
	testClientSecret = "client-secret-must-never-leak-7d1f"
	testPassword     = "user-password-must-never-leak-3c9a"
)

// sleeps records the waits of a Client instead of waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) Sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return nil
}

func (s *sleeps) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.d)
}

func newClient(t *testing.T, base string, clock *fakeClock, sl *sleeps) *finapi.Client {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return &finapi.Client{
		BaseURL:      u,
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		Now:          clock.Now,
		Sleep:        sl.Sleep,
	}
}

// writeJSON answers v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// finAPIError is finAPI's ErrorMessage with one error.
func finAPIError(code, msg string) map[string]any {
	return map[string]any{
		"errors":    []map[string]any{{"message": msg, "code": code, "type": "BUSINESS"}},
		"date":      "2026-11-23T10:00:00.000Z",
		"requestId": "r",
		"endpoint":  "POST /api/v2/users",
	}
}

// checkNoSecrets fails if err's text holds a credential.
func checkNoSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, secret := range []string{testClientSecret, testPassword} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q contains a secret", err)
		}
	}
}
