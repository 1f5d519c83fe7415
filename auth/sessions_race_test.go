package auth_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/finproxy/finproxy/auth"
	"github.com/finproxy/finproxy/finapi"
)

// TestSessionHoldIsRaceFree reads and writes one session's hold from many
// goroutines (run with -race).
func TestSessionHoldIsRaceFree(t *testing.T) {
	clock := newClock()
	src := newSource(clock)
	src.answer = func(int, auth.Session, auth.Token) (auth.Token, error) {
		return auth.Token{}, &finapi.Error{Op: "create process", Kind: finapi.ErrInvalidAnswer, Err: errors.New("nonsense")}
	}
	c := newSessions(src, clock, &counters{})
	s := testSession(t, "session-race")
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				_, err := c.Token(context.Background(), s)
				if finapi.RetryAfter(err) <= 0 {
					t.Errorf("no Retry-After: %v", err)
				}
				clock.Advance(100 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
}
