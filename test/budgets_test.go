package test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finproxy/finproxy/test/emulator"
)

// renewals counts the token grants that renewed a session (refresh
// grants, and password grants beyond each session's first).
func renewals(f *finapi, sessions int) int {
	return f.Count(emulator.CounterRefreshToken) + max(0, f.Count(emulator.CounterPassword)-sessions)
}

// TestAlways401UpstreamCostsNoRenewalStorm: a route whose upstream refuses
// every token (a Data Intelligence service the client is not enabled for)
// gets the 401 back; a token obtained after a 401 moments ago is not
// renewed again, so one session costs at most one renewal per cool-down,
// not one per request.
func TestAlways401UpstreamCostsNoRenewalStorm(t *testing.T) {
	var hits atomic.Int64
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(401)
		w.Write([]byte(`{"error":"invalid_token","error_description":"Not authenticated or invalid access_token"}`))
	}))
	defer refusing.Close()
	f := newFinAPI(t, emulator.Config{})
	env := proxyEnv(f)
	env["FINPROXY_ROUTES"] = "/di=" + refusing.URL
	p := startProxy(t, f, env)
	p.waitReady()
	s := session(t, 1)
	for i := range 20 {
		resp, body := p.do(request{path: "/di/api/v1/reports", session: s})
		if resp.StatusCode != 401 || resp.Header.Get("X-Finproxy-Error") != "" {
			t.Fatalf("request %d: %d %s (reason %q), want the upstream's 401", i, resp.StatusCode, body, resp.Header.Get("X-Finproxy-Error"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := renewals(f, 1); n != 1 {
		t.Errorf("%d renewals for 20 refused requests within the cool-down, want 1 (the first 401 renews)", n)
	}
	time.Sleep(5200 * time.Millisecond) // past the cool-down
	for range 20 {
		p.do(request{path: "/di/api/v1/reports", session: s})
	}
	n := renewals(f, 1)
	t.Logf("40 requests to an always-401 upstream over ~7 s: %d renewal(s), %d upstream calls", n, hits.Load())
	if n != 2 {
		t.Errorf("%d renewals after the cool-down, want exactly 2 (one per cool-down)", n)
	}
}

// TestDenialOnTheFinalUpstreamPath: a route whose URL has a base path
// must not reach a denied endpoint by joining it with the rest.
func TestDenialOnTheFinalUpstreamPath(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	env := proxyEnv(f)
	env["FINPROXY_ROUTES"] = "/legacy=" + f.echo.URL + "/api,/v=" + f.echo.URL + "/api/v2"
	p := startProxy(t, f, env)
	for _, path := range []string{
		"/legacy/v2/clientConfiguration",
		"/legacy/V2/ClientConfiguration",
		"/legacy/v2/mandatorAdmin/getUserList",
		"/legacy/v2/oauth/token",
		"/v/users/fp-someone/verify",
		"/v/tppCredentials",
	} {
		resp, body := p.do(request{path: path, session: session(t, 1)})
		wantError(t, resp, body, 403, "route_denied")
	}
	if n := f.echoHits.Load(); n != 0 {
		t.Errorf("%d denied requests reached the upstream", n)
	}
	if resp, body := p.do(request{path: "/legacy/v2/accounts", session: session(t, 1)}); resp.StatusCode != 200 {
		t.Errorf("allowed path through the base-path route: %d %s", resp.StatusCode, body)
	}
}

// TestOneUsersFailureStopsNobody: a 5xx on one user's deletion and a 429
// on one user's logout go back to that caller; every new session keeps
// getting tokens.
func TestOneUsersFailureStopsNobody(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	p.waitReady()
	a, b := session(t, 1), session(t, 2)
	p.do(request{path: "/api/v2/accounts", session: a})
	p.do(request{path: "/api/v2/accounts", session: b})

	f.FailNext("/api/v2/users", 500, 3) // every attempt of the deletion
	resp, body := p.do(request{method: "DELETE", path: "/proxy/v1/session", session: a})
	wantError(t, resp, body, 503, "token_unavailable")
	f.AnswerNext("/api/v2/oauth/revoke", emulator.Answer{
		Status: 429, Header: http.Header{"Retry-After": {"120"}, "Content-Type": {"application/json"}},
		Body: `{"errors":[{"message":"Too many requests","code":"UNEXPECTED_ERROR","type":"TECHNICAL"}]}`,
	}, 1)
	resp, body = p.do(request{method: "POST", path: "/proxy/v1/session/logout", session: b})
	wantError(t, resp, body, 503, "token_unavailable")
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra != 120 {
		t.Errorf("logout's Retry-After = %q, want finAPI's 120", resp.Header.Get("Retry-After"))
	}
	for i := range 10 {
		if resp, body := p.do(request{path: "/api/v2/accounts", session: session(t, 100+i)}); resp.StatusCode != 200 {
			t.Errorf("new session %d after one user's failures: %d %s", i, resp.StatusCode, body)
		}
	}
	// The user whose deletion failed still exists and still works.
	if resp, body := p.do(request{path: "/api/v2/accounts", session: a}); resp.StatusCode != 200 {
		t.Errorf("session a after its failed deletion: %d %s", resp.StatusCode, body)
	}
}

// TestFinAPIConcurrencyBound: 1000 concurrent new sessions against a
// finAPI that takes 50 ms per call, with FINPROXY_FINAPI_CONCURRENCY=16:
// never more than 16 calls at once reach finAPI's token and user
// endpoints, and every session is answered 200.
func TestFinAPIConcurrencyBound(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	env := proxyEnv(f)
	env["FINPROXY_FINAPI_CONCURRENCY"] = "16"
	env["FINPROXY_NEW_SESSION_RATE"] = "0" // this test is about concurrency
	env["FINPROXY_LOG_LEVEL"] = "info"
	p := startProxy(t, f, env)
	p.waitReady()
	f.Reset()
	f.SetLatency("/api/v2/oauth/token", 50*time.Millisecond)
	f.SetLatency("/api/v2/users", 50*time.Millisecond)

	const n = 1000
	tr := &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	var ok, other atomic.Int64
	done := make(chan struct{})
	start := time.Now()
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			s := session(t, 1000+i)
			p.mu.Lock()
			p.sessions = append(p.sessions, s)
			p.mu.Unlock()
			req, _ := http.NewRequest("GET", "http://"+p.addr+"/api/v2/accounts", nil)
			req.Header.Set("X-Session-Id", s)
			resp, err := client.Do(req)
			if err != nil {
				other.Add(1)
				return
			}
			resp.Body.Close()
			if resp.StatusCode == 200 {
				ok.Add(1)
			} else {
				other.Add(1)
			}
		}()
	}
	for range n {
		<-done
	}
	peak := f.PeakConcurrency()
	t.Logf("%d concurrent new sessions, 50 ms per finAPI call, concurrency 16: %d answered 200, %d not, peak %d concurrent finAPI calls, %v in all",
		n, ok.Load(), other.Load(), peak, time.Since(start).Round(time.Millisecond))
	if peak > 16 {
		t.Errorf("peak concurrent finAPI calls %d, want at most 16", peak)
	}
	if ok.Load() != n {
		t.Errorf("%d of %d answered 200", ok.Load(), n)
	}
}

// TestNewSessionBudget: new finAPI identities are a budget per replica
// (and optionally per client IP): beyond it first-sight requests get 429
// rate_limited with Retry-After, one warning a minute is logged, and
// sessions that exist already are never affected.
func TestNewSessionBudget(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	env := proxyEnv(f)
	env["FINPROXY_NEW_SESSION_RATE"] = "2"
	env["FINPROXY_NEW_SESSION_BURST"] = "10"
	p := startProxy(t, f, env)
	p.waitReady()
	existing := session(t, 0)
	if resp, body := p.do(request{path: "/api/v2/accounts", session: existing}); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	admitted, limited := 0, 0
	for i := range 40 {
		resp, body := p.do(request{path: "/api/v2/accounts", session: session(t, 100+i)})
		switch resp.StatusCode {
		case 200:
			admitted++
		case 429:
			limited++
			wantError(t, resp, body, 429, "rate_limited")
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
		default:
			t.Errorf("new session %d: %d %s", i, resp.StatusCode, body)
		}
		if resp, body := p.do(request{path: "/api/v2/accounts", session: existing}); resp.StatusCode != 200 {
			t.Errorf("existing session while new ones are limited: %d %s", resp.StatusCode, body)
		}
	}
	t.Logf("40 new sessions against a budget of 2/s with a burst of 10: %d admitted, %d refused", admitted, limited)
	if admitted < 9 || admitted > 14 || limited < 26 {
		t.Errorf("%d admitted, %d refused; want about the burst of 10 admitted", admitted, limited)
	}
	if n := f.Count(emulator.CounterUsersCreate); n != admitted+1 {
		t.Errorf("%d finAPI users created, want %d", n, admitted+1)
	}
	if n := countLines(p.out.String(), "new sessions refused"); n != 1 {
		t.Errorf("the limit was logged %d times, want once a minute", n)
	}
	resp, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b := new(strings.Builder)
	io.Copy(b, resp.Body)
	resp.Body.Close()
	if want := `finproxy_rate_limited_total{kind="new_session"} ` + strconv.Itoa(limited); !strings.Contains(b.String(), want) {
		t.Errorf("metrics lack %q", want)
	}
}

// TestNewSessionBudgetSparesExistingUsers: after a restart (the memory
// store is empty) the sessions that have finAPI users are not new
// identities: over the budget they still log in; only sessions without a
// user are refused, and none is created for them.
func TestNewSessionBudgetSparesExistingUsers(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	for i := range 5 {
		if resp, body := p.do(request{path: "/api/v2/accounts", session: session(t, i)}); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	p.stop()
	env := proxyEnv(f)
	env["FINPROXY_NEW_SESSION_RATE"] = "0.01"
	env["FINPROXY_NEW_SESSION_BURST"] = "1"
	p2 := startProxy(t, f, env)
	p2.waitReady()
	for i := range 5 {
		if resp, body := p2.do(request{path: "/api/v2/accounts", session: session(t, i)}); resp.StatusCode != 200 {
			t.Errorf("existing user %d after a restart, over the budget: %d %s", i, resp.StatusCode, body)
		}
	}
	users := f.Count(emulator.CounterUsersCreate)
	for i := range 3 {
		resp, body := p2.do(request{path: "/api/v2/accounts", session: session(t, 100+i)})
		wantError(t, resp, body, 429, "rate_limited")
	}
	if n := f.Count(emulator.CounterUsersCreate); n != users {
		t.Errorf("%d users created for refused sessions", n-users)
	}
}

// TestNewSessionBudgetPerIP: with FINPROXY_NEW_SESSION_RATE_IP one client
// address cannot use the replica's whole budget.
func TestNewSessionBudgetPerIP(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	env := proxyEnv(f)
	env["FINPROXY_NEW_SESSION_RATE_IP"] = "0.1"
	env["FINPROXY_NEW_SESSION_BURST_IP"] = "3"
	p := startProxy(t, f, env)
	p.waitReady()
	codes := []int{}
	for i := range 5 {
		resp, _ := p.do(request{path: "/api/v2/accounts", session: session(t, i)})
		codes = append(codes, resp.StatusCode)
	}
	if fmt.Sprint(codes) != "[200 200 200 429 429]" {
		t.Errorf("five new sessions from one address: %v, want three admitted", codes)
	}
}
