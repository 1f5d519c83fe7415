package auth_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finproxy/finproxy/auth"
	"github.com/finproxy/finproxy/cache"
	"github.com/finproxy/finproxy/finapi"
)

// fakeSource is a SessionSource that counts its calls, records what it was
// given, and can be held on a gate.
type fakeSource struct {
	clock *fakeClock
	// gate, if not nil, holds every call until it is closed.
	gate chan struct{}
	// called receives one value per call (buffered, never blocks).
	called chan struct{}
	// answer, if not nil, decides the n-th call's (1-based) result;
	// else the call returns token "tok-n", valid for an hour from now.
	answer func(n int, s auth.Session, prev auth.Token) (auth.Token, error)

	mu    sync.Mutex
	prevs []auth.Token
}

var _ auth.SessionSource = (*fakeSource)(nil)

func newSource(clock *fakeClock) *fakeSource {
	return &fakeSource{clock: clock, called: make(chan struct{}, 1000)}
}

func (f *fakeSource) SessionToken(ctx context.Context, s auth.Session, prev auth.Token) (auth.Token, error) {
	f.mu.Lock()
	f.prevs = append(f.prevs, prev)
	n := len(f.prevs)
	f.mu.Unlock()
	select {
	case f.called <- struct{}{}:
	default:
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return auth.Token{}, ctx.Err()
		}
	}
	if f.answer != nil {
		return f.answer(n, s, prev)
	}
	return userToken(fmt.Sprintf("tok-%d", n), f.clock.Now(), time.Hour), nil
}

func (f *fakeSource) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.prevs)
}

func (f *fakeSource) prev(i int) auth.Token {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.prevs[i]
}

func userToken(name string, issued time.Time, life time.Duration) auth.Token {
	return auth.Token{
		AccessToken:  name,
		RefreshToken: "refresh-" + name,
		Issued:       issued,
		Expiry:       issued.Add(life),
		UserID:       "fp-user",
	}
}

// counters observe the Sessions' hooks.
type counters struct {
	hits, misses, waiting atomic.Int64
	conflicts             atomic.Int64
	// waiters, if not nil, is sent the number of waiting callers after
	// each increase.
	waiters chan int64
}

func newSessions(src auth.SessionSource, clock *fakeClock, cnt *counters) *auth.Sessions {
	return &auth.Sessions{
		Source:  src,
		Store:   cache.NewMemory(0, auth.TokenCodec),
		Timeout: time.Minute,
		Now:     clock.Now,
		Hooks: auth.Hooks{
			Lookup: func(hit bool) {
				if hit {
					cnt.hits.Add(1)
				} else {
					cnt.misses.Add(1)
				}
			},
			Waiting: func(d int) {
				n := cnt.waiting.Add(int64(d))
				if d > 0 && cnt.waiters != nil {
					cnt.waiters <- n
				}
			},
			Conflict: func(context.Context, auth.Session, error) { cnt.conflicts.Add(1) },
		},
	}
}

// settle waits for any fetch of s in flight (a renewal ahead) to finish and
// returns the stored token. It does not fetch itself while the stored token
// is usable: Renew of a token that is not the current one returns the
// current one.
func settle(t *testing.T, c *auth.Sessions, s auth.Session) auth.Token {
	t.Helper()
	tok, err := c.Renew(context.Background(), s, auth.Token{AccessToken: "not-the-current-token"})
	if err != nil {
		t.Fatalf("settle: %v", err)
	}
	return tok
}

// waitCalled waits until the source has been called n more times.
func waitCalled(t *testing.T, src *fakeSource, n int) {
	t.Helper()
	for range n {
		select {
		case <-src.called:
		case <-time.After(10 * time.Second):
			t.Fatalf("source not called")
		}
	}
}

// waitWaiters waits until n callers wait for a fetch.
func waitWaiters(t *testing.T, cnt *counters, n int64) {
	t.Helper()
	for {
		select {
		case got := <-cnt.waiters:
			if got >= n {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d callers waiting, want %d", cnt.waiting.Load(), n)
		}
	}
}

// waitGroup waits for wg, failing the test rather than hanging when a
// caller blocks that should not.
func waitGroup(t *testing.T, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("callers still blocked")
	}
}

func testSession(t *testing.T, raw string) auth.Session {
	return mustKeys(t, secretA).Session(raw)
}

func TestSessionsHitAndMiss(t *testing.T) {
	clock := newClock()
	src := newSource(clock)
	cnt := &counters{}
	c := newSessions(src, clock, cnt)
	ctx := context.Background()
	s := testSession(t, "session-hit-and-miss-1")

	if _, ok := c.Cached(ctx, s); ok {
		t.Fatalf("Cached before any Token: ok")
	}
	first, err := c.Token(ctx, s)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if first.AccessToken != "tok-1" {
		t.Errorf("first Token = %q, want tok-1", first.AccessToken)
	}
	if p := src.prev(0); p != (auth.Token{}) {
		t.Errorf("first fetch got prev %+v, want zero", p)
	}
	for range 3 {
		again, err := c.Token(ctx, s)
		if err != nil || again.AccessToken != "tok-1" {
			t.Errorf("cached Token = %q, %v; want tok-1", again.AccessToken, err)
		}
	}
	if got, ok := c.Cached(ctx, s); !ok || got.AccessToken != "tok-1" {
		t.Errorf("Cached = %q, %v; want tok-1, true", got.AccessToken, ok)
	}
	if n := src.calls(); n != 1 {
		t.Errorf("source called %d times, want 1", n)
	}
	if h, m := cnt.hits.Load(), cnt.misses.Load(); h != 3 || m != 1 {
		t.Errorf("lookups: %d hits, %d misses; want 3, 1", h, m)
	}

	// Another session is another entry.
	other, err := c.Token(ctx, testSession(t, "session-hit-and-miss-2"))
	if err != nil || other.AccessToken != "tok-2" {
		t.Errorf("other session's Token = %q, %v; want tok-2", other.AccessToken, err)
	}
}

// TestSessionsTokenAge checks what Token does with a cached token at
// different points of its one-hour life.
func TestSessionsTokenAge(t *testing.T) {
	tests := []struct {
		name      string
		life      time.Duration // 0: never expires
		age       time.Duration
		wantFirst string // what Token returns at that age
		wantAfter string // the stored token once any renewal is done
		wantCalls int    // source calls after the first fetch
		noAhead   bool   // Sessions.NoRenewAhead
	}{
		{"fresh", time.Hour, 0, "tok-1", "tok-1", 0, false},
		{"half its life", time.Hour, 30 * time.Minute, "tok-1", "tok-1", 0, false},
		{"just before the renewal window", time.Hour, 41 * time.Minute, "tok-1", "tok-1", 0, false},
		{"in its last fifth: current token, renewed in the background", time.Hour, 50 * time.Minute, "tok-1", "tok-2", 1, false},
		{"within the safety margin: waits for a new token", time.Hour, 59*time.Minute + 31*time.Second, "tok-2", "tok-2", 1, false},
		{"expired: waits for a new token", time.Hour, 2 * time.Hour, "tok-2", "tok-2", 1, false},
		{"never expires", 0, 1000 * time.Hour, "tok-1", "tok-1", 0, false},
		{"in its last fifth without renewal ahead: used until it expires", time.Hour, 50 * time.Minute, "tok-1", "tok-1", 0, true},
		{"expired without renewal ahead: waits for a new token", time.Hour, 2 * time.Hour, "tok-2", "tok-2", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			src := newSource(clock)
			src.answer = func(n int, _ auth.Session, _ auth.Token) (auth.Token, error) {
				tok := userToken(fmt.Sprintf("tok-%d", n), clock.Now(), tt.life)
				if tt.life == 0 {
					tok.Expiry = time.Time{}
				}
				return tok, nil
			}
			c := newSessions(src, clock, &counters{})
			c.NoRenewAhead = tt.noAhead
			ctx := context.Background()
			s := testSession(t, "session-token-age-1")
			if _, err := c.Token(ctx, s); err != nil {
				t.Fatalf("first Token: %v", err)
			}

			clock.Set(t0.Add(tt.age))
			got, err := c.Token(ctx, s)
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if got.AccessToken != tt.wantFirst {
				t.Errorf("Token = %q, want %q", got.AccessToken, tt.wantFirst)
			}
			if after := settle(t, c, s); after.AccessToken != tt.wantAfter {
				t.Errorf("stored token after renewal = %q, want %q", after.AccessToken, tt.wantAfter)
			}
			if n := src.calls() - 1; n != tt.wantCalls {
				t.Errorf("source called %d more times, want %d", n, tt.wantCalls)
			}
			if tt.wantCalls > 0 {
				// The renewal, ahead or on demand, gets the old token
				// with its refresh token.
				if p := src.prev(1); p.AccessToken != "tok-1" || p.RefreshToken != "refresh-tok-1" {
					t.Errorf("renewal got prev %q/%q, want tok-1/refresh-tok-1", p.AccessToken, p.RefreshToken)
				}
			}
		})
	}
}

func TestSessionsConcurrentFirstToken(t *testing.T) {
	const callers = 50
	clock := newClock()
	src := newSource(clock)
	src.gate = make(chan struct{})
	cnt := &counters{waiters: make(chan int64, callers)}
	c := newSessions(src, clock, cnt)
	s := testSession(t, "session-concurrent-first")

	var returned atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			tok, err := c.Token(context.Background(), s)
			returned.Add(1)
			if err != nil || tok.AccessToken != "tok-1" {
				t.Errorf("Token = %q, %v; want tok-1", tok.AccessToken, err)
			}
		})
	}
	waitWaiters(t, cnt, callers)
	waitCalled(t, src, 1) // the flight calls the source on its own goroutine
	if n := returned.Load(); n != 0 {
		t.Errorf("%d callers returned before the fetch finished", n)
	}
	if n := src.calls(); n != 1 {
		t.Errorf("source called %d times while fetching, want 1", n)
	}
	close(src.gate)
	wg.Wait()
	if n := src.calls(); n != 1 {
		t.Errorf("source called %d times, want 1", n)
	}
	if m := cnt.misses.Load(); m != callers {
		t.Errorf("%d misses, want %d", m, callers)
	}
}

func TestSessionsExpiredTokenOneFetch(t *testing.T) {
	const callers = 30
	clock := newClock()
	src := newSource(clock)
	cnt := &counters{}
	c := newSessions(src, clock, cnt)
	s := testSession(t, "session-expired-one-fetch")
	if _, err := c.Token(context.Background(), s); err != nil {
		t.Fatalf("first Token: %v", err)
	}

	clock.Set(t0.Add(61 * time.Minute))
	src.gate = make(chan struct{})
	cnt.waiters = make(chan int64, callers)
	var returned atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			tok, err := c.Token(context.Background(), s)
			returned.Add(1)
			if err != nil || tok.AccessToken != "tok-2" {
				t.Errorf("Token = %q, %v; want tok-2", tok.AccessToken, err)
			}
		})
	}
	waitWaiters(t, cnt, callers)
	if n := returned.Load(); n != 0 {
		t.Errorf("%d callers returned an expired token instead of waiting", n)
	}
	close(src.gate)
	wg.Wait()
	if n := src.calls(); n != 2 {
		t.Errorf("source called %d times, want 2 (first token, one renewal)", n)
	}
	if p := src.prev(1); p.RefreshToken != "refresh-tok-1" {
		t.Errorf("renewal got refresh token %q, want refresh-tok-1", p.RefreshToken)
	}
}

// TestSessionsRenewAheadDoesNotWait holds the background renewal on a gate:
// every caller still gets the current token at once, and 100 callers start
// one renewal.
func TestSessionsRenewAheadDoesNotWait(t *testing.T) {
	const callers = 100
	clock := newClock()
	src := newSource(clock)
	c := newSessions(src, clock, &counters{})
	type obtained struct{ ahead, renewal bool }
	var obs []obtained
	var obsMu sync.Mutex
	c.Hooks.Obtained = func(_ context.Context, _ auth.Session, _ auth.Token, ahead, renewal bool, err error) {
		if err != nil {
			t.Errorf("Obtained: %v", err)
		}
		obsMu.Lock()
		obs = append(obs, obtained{ahead, renewal})
		obsMu.Unlock()
	}
	s := testSession(t, "session-renew-ahead")
	if _, err := c.Token(context.Background(), s); err != nil {
		t.Fatalf("first Token: %v", err)
	}

	src.gate = make(chan struct{})
	clock.Set(t0.Add(50 * time.Minute))
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			tok, err := c.Token(context.Background(), s)
			if err != nil || tok.AccessToken != "tok-1" {
				t.Errorf("Token during renewal = %q, %v; want the current tok-1", tok.AccessToken, err)
			}
		})
	}
	waitGroup(t, &wg) // returns although the renewal is held: nobody waited
	waitCalled(t, src, 2)
	if n := src.calls(); n != 2 {
		t.Errorf("source called %d times, want 2 (first token, one renewal)", n)
	}
	if p := src.prev(1); p.AccessToken != "tok-1" || p.RefreshToken != "refresh-tok-1" {
		t.Errorf("renewal got prev %q/%q, want tok-1/refresh-tok-1", p.AccessToken, p.RefreshToken)
	}

	close(src.gate)
	if got := settle(t, c, s); got.AccessToken != "tok-2" {
		t.Errorf("stored token after renewal = %q, want tok-2", got.AccessToken)
	}
	tok, err := c.Token(context.Background(), s)
	if err != nil || tok.AccessToken != "tok-2" {
		t.Errorf("Token after renewal = %q, %v; want tok-2", tok.AccessToken, err)
	}
	if n := src.calls(); n != 2 {
		t.Errorf("source called %d times in all, want 2", n)
	}
	obsMu.Lock()
	defer obsMu.Unlock()
	if want := []obtained{{false, false}, {true, true}}; fmt.Sprint(obs) != fmt.Sprint(want) {
		t.Errorf("Obtained (ahead, renewal) = %v, want %v", obs, want)
	}
}

func TestSessionsRenewStale(t *testing.T) {
	const callers = 40
	clock := newClock()
	src := newSource(clock)
	cnt := &counters{}
	c := newSessions(src, clock, cnt)
	ctx := context.Background()
	s := testSession(t, "session-renew-stale")
	stale, err := c.Token(ctx, s)
	if err != nil {
		t.Fatalf("first Token: %v", err)
	}

	src.gate = make(chan struct{})
	cnt.waiters = make(chan int64, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			tok, err := c.Renew(ctx, s, stale)
			if err != nil || tok.AccessToken != "tok-2" {
				t.Errorf("Renew = %q, %v; want tok-2", tok.AccessToken, err)
			}
		})
	}
	waitWaiters(t, cnt, callers)
	close(src.gate)
	wg.Wait()
	if n := src.calls(); n != 2 {
		t.Errorf("source called %d times, want 2 (first token, one renewal)", n)
	}
	if p := src.prev(1); p.RefreshToken != "refresh-tok-1" {
		t.Errorf("renewal got refresh token %q, want refresh-tok-1", p.RefreshToken)
	}

	// A late caller with the same stale token gets the replacement
	// without a fetch.
	tok, err := c.Renew(ctx, s, stale)
	if err != nil || tok.AccessToken != "tok-2" {
		t.Errorf("late Renew = %q, %v; want tok-2", tok.AccessToken, err)
	}
	if n := src.calls(); n != 2 {
		t.Errorf("late Renew fetched: source called %d times, want 2", n)
	}

	// Renewing the current token fetches again.
	tok, err = c.Renew(ctx, s, tok)
	if err != nil || tok.AccessToken != "tok-3" {
		t.Errorf("Renew of the current token = %q, %v; want tok-3", tok.AccessToken, err)
	}
	if p := src.prev(2); p.RefreshToken != "refresh-tok-2" {
		t.Errorf("second renewal got refresh token %q, want refresh-tok-2", p.RefreshToken)
	}
}

func TestSessionsRenewAfterForgetUsesStaleRefreshToken(t *testing.T) {
	clock := newClock()
	src := newSource(clock)
	c := newSessions(src, clock, &counters{})
	ctx := context.Background()
	s := testSession(t, "session-renew-after-forget")
	stale, err := c.Token(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Forget(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Renew(ctx, s, stale); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if p := src.prev(1); p.AccessToken != "" || p.RefreshToken != "refresh-tok-1" || p.UserID != "fp-user" {
		t.Errorf("renewal got prev %+v, want only the stale refresh token and user id", p)
	}
}

func TestSessionsForget(t *testing.T) {
	clock := newClock()
	src := newSource(clock)
	c := newSessions(src, clock, &counters{})
	ctx := context.Background()
	s := testSession(t, "session-forget-1")
	keep := testSession(t, "session-forget-2")
	for _, x := range []auth.Session{s, keep} {
		if _, err := c.Token(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Forget(ctx, s); err != nil {
		t.Fatalf("Forget: %v", err)
	}
	if _, ok := c.Cached(ctx, s); ok {
		t.Errorf("forgotten session still cached")
	}
	if _, ok := c.Cached(ctx, keep); !ok {
		t.Errorf("Forget removed another session's token")
	}
	tok, err := c.Token(ctx, s)
	if err != nil || tok.AccessToken != "tok-3" {
		t.Errorf("Token after Forget = %q, %v; want a new tok-3", tok.AccessToken, err)
	}
	if p := src.prev(2); p != (auth.Token{}) {
		t.Errorf("fetch after Forget got prev %+v, want zero", p)
	}
	if err := c.Forget(ctx, testSession(t, "session-never-seen-1")); err != nil {
		t.Errorf("Forget of an unknown session: %v", err)
	}
}

func TestSessionsIdentityConflictHold(t *testing.T) {
	clock := newClock()
	src := newSource(clock)
	conflicted := testSession(t, "session-conflicted-1")
	healthy := testSession(t, "session-healthy-1")
	var conflicting atomic.Bool
	conflicting.Store(true)
	src.answer = func(n int, s auth.Session, _ auth.Token) (auth.Token, error) {
		if s.ID == conflicted.ID && conflicting.Load() {
			return auth.Token{}, &finapi.Error{Op: "password grant", Kind: finapi.ErrIdentityConflict, Status: 400, Code: "invalid_grant"}
		}
		return userToken(fmt.Sprintf("tok-%d", n), clock.Now(), time.Hour), nil
	}
	cnt := &counters{}
	c := newSessions(src, clock, cnt)
	// A second replica sharing the store honours the same hold.
	other := newSessions(src, clock, &counters{})
	other.Store = c.Store
	ctx := context.Background()
	hold := auth.DefaultConflictHold

	checkConflict := func(step string, err error, wantRetry time.Duration) {
		t.Helper()
		if !errors.Is(err, finapi.ErrIdentityConflict) {
			t.Errorf("%s: err = %v, want ErrIdentityConflict", step, err)
		}
		if got := finapi.RetryAfter(err); got != wantRetry {
			t.Errorf("%s: RetryAfter = %v, want %v", step, got, wantRetry)
		}
	}

	_, err := c.Token(ctx, conflicted)
	checkConflict("first Token", err, hold)
	if n := src.calls(); n != 1 {
		t.Fatalf("source called %d times, want 1", n)
	}

	// Within the hold nobody reaches the source, however many ask, on
	// either replica.
	clock.Set(t0.Add(time.Minute))
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			r := c
			if i%2 == 1 {
				r = other
			}
			_, err := r.Token(ctx, conflicted)
			if !errors.Is(err, finapi.ErrIdentityConflict) || finapi.RetryAfter(err) != hold-time.Minute {
				t.Errorf("Token within the hold: %v (RetryAfter %v), want ErrIdentityConflict, %v", err, finapi.RetryAfter(err), hold-time.Minute)
			}
		})
	}
	wg.Wait()
	_, err = c.Renew(ctx, conflicted, auth.Token{AccessToken: "refused", RefreshToken: "r"})
	checkConflict("Renew within the hold", err, hold-time.Minute)
	clock.Set(t0.Add(hold - time.Second))
	_, err = other.Token(ctx, conflicted)
	checkConflict("Token a second before the hold ends", err, time.Second)
	if n := src.calls(); n != 1 {
		t.Errorf("source called %d times within the hold, want 1", n)
	}

	// Other sessions are not affected.
	if tok, err := c.Token(ctx, healthy); err != nil || tok.AccessToken != "tok-2" {
		t.Errorf("healthy session's Token = %q, %v; want tok-2", tok.AccessToken, err)
	}

	// After the hold, exactly one attempt, then a new hold.
	clock.Set(t0.Add(hold))
	_, err = c.Token(ctx, conflicted)
	checkConflict("Token after the hold", err, hold)
	_, err = other.Token(ctx, conflicted)
	checkConflict("Token right after the second conflict", err, hold)
	if n := src.calls(); n != 3 {
		t.Errorf("source called %d times, want 3", n)
	}
	if n := cnt.conflicts.Load(); n != 2 {
		t.Errorf("Conflict hook called %d times, want once per attempt (2)", n)
	}

	// Logging out does not lift the hold: a client that logs out and
	// retries on every error must not turn it into failed logins.
	if err := other.Forget(ctx, conflicted); err != nil {
		t.Fatal(err)
	}
	_, err = c.Token(ctx, conflicted)
	checkConflict("Token after Forget", err, hold)
	if n := src.calls(); n != 3 {
		t.Errorf("source called %d times after Forget, want still 3", n)
	}

	// Once resolved, the next attempt after the hold succeeds.
	conflicting.Store(false)
	clock.Set(t0.Add(2 * hold))
	if tok, err := c.Token(ctx, conflicted); err != nil || tok.AccessToken != "tok-4" {
		t.Errorf("Token after resolution = %q, %v; want tok-4", tok.AccessToken, err)
	}
}

// TestSessionsBackOffAfterFailure: a failed fetch is not repeated by the
// session's following requests: they get the same error at once, with the
// hold as Retry-After, until the hold (1 s, doubling) is over.
func TestSessionsBackOffAfterFailure(t *testing.T) {
	clock := newClock()
	src := newSource(clock)
	fail := errors.New("finAPI answered nonsense")
	var failing atomic.Bool
	failing.Store(true)
	src.answer = func(n int, _ auth.Session, _ auth.Token) (auth.Token, error) {
		if failing.Load() {
			return auth.Token{}, &finapi.Error{Op: "create process", Kind: finapi.ErrInvalidAnswer, Status: 201, Err: fail}
		}
		return userToken(fmt.Sprintf("tok-%d", n), clock.Now(), time.Hour), nil
	}
	c := newSessions(src, clock, &counters{})
	ctx := context.Background()
	s := testSession(t, "session-source-error")
	if _, err := c.Token(ctx, s); !errors.Is(err, finapi.ErrInvalidAnswer) || finapi.RetryAfter(err) != time.Second {
		t.Fatalf("Token = %v (RetryAfter %v), want the source's error with a 1s hold", err, finapi.RetryAfter(err))
	}
	for range 20 {
		_, err := c.Token(ctx, s)
		if !errors.Is(err, finapi.ErrInvalidAnswer) || !errors.Is(err, fail) || finapi.RetryAfter(err) <= 0 {
			t.Fatalf("Token within the hold = %v (RetryAfter %v), want the same error", err, finapi.RetryAfter(err))
		}
	}
	if n := src.calls(); n != 1 {
		t.Errorf("source called %d times by 21 requests within the hold, want 1", n)
	}
	// Another session is not held.
	if _, err := c.Token(ctx, testSession(t, "another-session")); src.calls() != 2 || !errors.Is(err, finapi.ErrInvalidAnswer) {
		t.Errorf("another session: %v after %d calls; want its own attempt", err, src.calls())
	}

	clock.Advance(time.Second)
	if _, err := c.Token(ctx, s); finapi.RetryAfter(err) != 2*time.Second || src.calls() != 3 {
		t.Errorf("second failure: %v (RetryAfter %v) after %d calls; want a 2s hold", err, finapi.RetryAfter(err), src.calls())
	}
	failing.Store(false)
	clock.Advance(2 * time.Second)
	if tok, err := c.Token(ctx, s); err != nil || tok.AccessToken != "tok-4" {
		t.Errorf("Token after the hold = %q, %v; want tok-4", tok.AccessToken, err)
	}
}

func TestSessionsWaiterGivesUp(t *testing.T) {
	clock := newClock()
	src := newSource(clock)
	src.gate = make(chan struct{})
	c := newSessions(src, clock, &counters{})
	s := testSession(t, "session-waiter-gives-up")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Token(ctx, s)
		done <- err
	}()
	waitCalled(t, src, 1)
	cancel()
	if err := <-done; !errors.Is(err, finapi.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("Token with a cancelled context = %v, want ErrUnavailable wrapping context.Canceled", err)
	}

	// The fetch goes on for the others and lands in the store.
	close(src.gate)
	tok, err := c.Token(context.Background(), s)
	if err != nil || tok.AccessToken != "tok-1" {
		t.Errorf("Token after the waiter gave up = %q, %v; want tok-1", tok.AccessToken, err)
	}
	if n := src.calls(); n != 1 {
		t.Errorf("source called %d times, want 1", n)
	}
}
