package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/finproxy/finproxy/auth"
	"github.com/finproxy/finproxy/cache"
	"github.com/finproxy/finproxy/test/emulator"
)

// processFixture is a Sessions of process mode in front of the emulated
// Process Controller over real HTTP, all on one fake clock.
type processFixture struct {
	emu      *emulator.Emulator
	clock    *fakeClock
	sessions *auth.Sessions
}

func newProcessFixture(t *testing.T, resumable bool, emuCfg emulator.Config) *processFixture {
	t.Helper()
	f := &processFixture{clock: newClock()}
	emuCfg.ClientID, emuCfg.ClientSecret, emuCfg.Now = testClientID, testClientSecret, f.clock.Now
	if emuCfg.ProcessTokenTTL == 0 {
		emuCfg.ProcessTokenTTL = 10 * time.Minute
	}
	f.emu = emulator.New(emuCfg)
	srv := httptest.NewServer(f.emu.ProcessController())
	t.Cleanup(srv.Close)
	f.sessions = &auth.Sessions{
		Source: &auth.ProcessLogin{Client: newClient(t, srv.URL, f.clock, &sleeps{}), ProcessID: "USER_ONLY",
			TTL: 10 * time.Minute, Resumable: resumable},
		Store:        cache.NewMemory(0, auth.TokenCodec),
		Timeout:      time.Minute,
		Now:          f.clock.Now,
		NoRenewAhead: true,
	}
	return f
}

// exchanges returns the queries of the exchanges the emulator saw.
func (f *processFixture) exchanges() []string {
	var out []string
	for _, r := range f.emu.Requests() {
		if r.Method == http.MethodGet {
			out = append(out, r.RawQuery)
		}
	}
	return out
}

// TestResumableProcessExchangesOneProcessTenTimes: each expiry of the
// access token is one exchange of the same process, with invalidate=false;
// the 11th need starts a new process, finAPI allowing 10 exchanges.
func TestResumableProcessExchangesOneProcessTenTimes(t *testing.T) {
	f := newProcessFixture(t, true, emulator.Config{})
	s := testSession(t, "session-resumable-0001")
	ctx := context.Background()
	var first auth.Token
	for i := 1; i <= auth.MaxProcessExchanges; i++ {
		tok, err := f.sessions.Token(ctx, s)
		if err != nil {
			t.Fatalf("need %d: %v", i, err)
		}
		if i == 1 {
			first = tok
		}
		if tok.Exchanges != i || tok.ProcessToken != first.ProcessToken || tok.ProcessToken == "" {
			t.Errorf("need %d: exchange %d (another process: %v), want exchange %d of the first process", i, tok.Exchanges, tok.ProcessToken != first.ProcessToken, i)
		}
		// Served from the store until it expires: no exchange.
		if again, _ := f.sessions.Token(ctx, s); again.AccessToken != tok.AccessToken {
			t.Errorf("need %d: a valid token was not reused", i)
		}
		f.clock.Advance(11 * time.Minute)
	}
	if got := f.emu.Processes(); got != 1 {
		t.Errorf("processes after %d expiries = %d, want 1", auth.MaxProcessExchanges, got)
	}
	if got := f.emu.Count(emulator.CounterProcessExchange); got != auth.MaxProcessExchanges {
		t.Errorf("exchanges = %d, want %d", got, auth.MaxProcessExchanges)
	}
	tok, err := f.sessions.Token(ctx, s)
	if err != nil {
		t.Fatalf("11th need: %v", err)
	}
	if f.emu.Processes() != 2 || tok.ProcessToken == first.ProcessToken || tok.Exchanges != 1 {
		t.Errorf("11th need: %d processes, exchange %d of a new process %v; want 2, 1, true",
			f.emu.Processes(), tok.Exchanges, tok.ProcessToken != first.ProcessToken)
	}
	for i, q := range f.exchanges() {
		if q != "invalidate=false" {
			t.Errorf("exchange %d sent %q, want invalidate=false", i+1, q)
		}
	}
}

// TestResumableProcessRenewAfter401 is the refused token: Renew exchanges
// the same process again.
func TestResumableProcessRenewAfter401(t *testing.T) {
	f := newProcessFixture(t, true, emulator.Config{})
	s := testSession(t, "session-resumable-0002")
	ctx := context.Background()
	tok, err := f.sessions.Token(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	f.emu.RevokeAll() // finAPI no longer takes the access token
	renewed, err := f.sessions.Renew(ctx, s, tok)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.AccessToken == tok.AccessToken || renewed.ProcessToken != tok.ProcessToken || renewed.Exchanges != 2 || !renewed.After401 {
		t.Errorf("renewed = exchange %d, same process %v, new token %v, After401 %v; want 2, true, true, true",
			renewed.Exchanges, renewed.ProcessToken == tok.ProcessToken, renewed.AccessToken != tok.AccessToken, renewed.After401)
	}
	if f.emu.Processes() != 1 {
		t.Errorf("processes = %d, want 1", f.emu.Processes())
	}
}

// TestResumableProcessRefusedExchangeStartsNewProcess: an exchange that
// finAPI refuses (here: the exchange period is over) starts a new process
// within the same fetch; an outage does not.
func TestResumableProcessRefusedExchangeStartsNewProcess(t *testing.T) {
	f := newProcessFixture(t, true, emulator.Config{ProcessExchangePeriod: 30 * time.Minute})
	s := testSession(t, "session-resumable-0003")
	ctx := context.Background()
	first, err := f.sessions.Token(ctx, s)
	if err != nil {
		t.Fatal(err)
	}

	// An outage of the exchange: the error goes back, no new process.
	f.clock.Advance(11 * time.Minute)
	f.emu.FailNext("/api/v1/processes/", http.StatusServiceUnavailable, 1)
	if _, err := f.sessions.Token(ctx, s); err == nil {
		t.Fatal("a failing exchange gave a token")
	}
	if f.emu.Processes() != 1 {
		t.Errorf("an outage of the exchange created a process")
	}

	// Past the exchange period (and the session's back-off): refused, so
	// a new process.
	f.clock.Advance(30 * time.Minute)
	tok, err := f.sessions.Token(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if f.emu.Processes() != 2 || tok.ProcessToken == first.ProcessToken || tok.Exchanges != 1 {
		t.Errorf("after a refused exchange: %d processes, exchange %d; want 2 and 1", f.emu.Processes(), tok.Exchanges)
	}
}

// TestProcessNotResumableByDefault: invalidate=true, and an expiry starts a
// new process.
func TestProcessNotResumableByDefault(t *testing.T) {
	f := newProcessFixture(t, false, emulator.Config{})
	s := testSession(t, "session-resumable-0004")
	ctx := context.Background()
	for range 2 {
		tok, err := f.sessions.Token(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if tok.ProcessToken != "" || tok.Exchanges != 0 {
			t.Errorf("the process token was kept without Resumable")
		}
		f.clock.Advance(11 * time.Minute)
	}
	if f.emu.Processes() != 2 {
		t.Errorf("processes = %d, want 2", f.emu.Processes())
	}
	for i, q := range f.exchanges() {
		if q != "invalidate=true" {
			t.Errorf("exchange %d sent %q, want invalidate=true", i+1, q)
		}
	}
}
