package auth_test

import (
	"testing"
	"time"

	"github.com/finproxy/finproxy/finapi"
	"github.com/finproxy/finproxy/finapi/finapitest"
)

const (
	testClientID     = "finproxy-client"
	testClientSecret = "client-secret-must-never-leak-7d1f"
	testPassword     = "user-password-must-never-leak-3c9a"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

type (
	fakeClock = finapitest.Clock
	sleeps    = finapitest.Sleeps
)

var (
	writeJSON   = finapitest.WriteJSON
	finAPIError = finapitest.ErrorMessage
)

func newClock() *fakeClock { return finapitest.NewClock(t0) }

func newClient(t *testing.T, base string, clock *fakeClock, sl *sleeps) *finapi.Client {
	t.Helper()
	return finapitest.NewClient(t, base, testClientID, testClientSecret, clock, sl)
}

func checkNoSecrets(t *testing.T, err error) {
	t.Helper()
	finapitest.CheckNoSecrets(t, err, testClientSecret, testPassword)
}
