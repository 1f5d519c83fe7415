package test

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finproxy/finproxy/test/emulator"
)

// The tests in this file hold finproxy to what finAPI documents, where an
// earlier emulator and finproxy agreed on a guess.

// processCreations counts the creation requests that reached the Process
// Controller, whatever they were answered.
func processCreations(f *finapi) int {
	n := 0
	for _, r := range f.requestsTo("/api/v1/processes") {
		if r.Method == http.MethodPost {
			n++
		}
	}
	return n
}

// TestProcessNonsenseIsNotRepeated: a Process Controller that answers
// nonsense (here the shape finproxy once guessed) is not asked again by
// every following request of the session: it waits out a back-off, so no
// orphaned process per request.
func TestProcessNonsenseIsNotRepeated(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, processEnv(f))
	f.AnswerNext("/api/v1/processes", emulator.Answer{
		Status: 201,
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   `{"processToken":"8f92ec58-b9b9-11ec-8422-0242ac120002"}`,
	}, 1000)
	s := session(t, 1)
	for range 20 {
		resp, body := p.do(request{path: "/api/v2/accounts", session: s})
		wantError(t, resp, body, 502, "upstream_invalid")
		if resp.Header.Get("Retry-After") == "" {
			t.Errorf("a held session's answer has no Retry-After")
		}
		time.Sleep(50 * time.Millisecond)
	}
	n := processCreations(f)
	t.Logf("20 requests of one session in 1 s against a nonsense-answering Process Controller: %d creations", n)
	if n > 2 {
		t.Errorf("%d process creations for 20 requests of one session, want at most 2", n)
	}
	if !strings.Contains(p.out.String(), "no process for the client reference sent") {
		t.Errorf("the log does not say what was wrong with the answer")
	}
}

// TestProcessCredentialRefusalBacksOffTheClient: refused client credentials
// hold back every session's creation, not only the one that saw it.
func TestProcessCredentialRefusalBacksOffTheClient(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	env := processEnv(f)
	env["FINPROXY_CLIENT_SECRET"] = "a-wrong-client-secret-4711"
	p := startProxy(t, f, env)
	for i := range 20 {
		resp, body := p.do(request{path: "/api/v2/accounts", session: session(t, i)})
		wantError(t, resp, body, 502, "token_refused")
	}
	// The readiness probe's client_credentials grants go to Access, not to
	// the Process Controller.
	if n := processCreations(f); n > 2 {
		t.Errorf("%d creation attempts by 20 new sessions with refused credentials, want at most 2", n)
	}
	if n := countLines(p.out.String(), `"level":"error"`, "finAPI refuses the client credentials"); n < 1 || n > 2 {
		t.Errorf("the refusal was logged %d times, want once per finAPI client (Access, Process Controller)", n)
	}
	resp, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := new(strings.Builder)
	io.Copy(b, resp.Body)
	if !strings.Contains(b.String(), "finproxy_client_credentials_refused 1") {
		t.Errorf("finproxy_client_credentials_refused is not 1")
	}
}

// TestRefreshKeepsRefreshToken: finAPI's refresh answers carry no
// refresh_token; finproxy keeps the one it holds, so 3 s tokens for 10 s
// take exactly one password grant and every renewal is a refresh grant.
func TestRefreshKeepsRefreshToken(t *testing.T) {
	f := newFinAPI(t, emulator.Config{UserTokenTTL: 3 * time.Second})
	p := startProxy(t, f, proxyEnv(f))
	p.waitReady()
	s := session(t, 1)
	stop := time.Now().Add(10 * time.Second)
	n := 0
	for time.Now().Before(stop) {
		resp, body := p.do(request{path: "/api/v2/accounts", session: s})
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", n, resp.StatusCode, body)
		}
		n++
		time.Sleep(50 * time.Millisecond)
	}
	grants, refreshes := f.Count(emulator.CounterPassword), f.Count(emulator.CounterRefreshToken)
	t.Logf("%d requests over 10 s with 3 s tokens: %d password grant(s), %d refresh grants", n, grants, refreshes)
	if grants != 1 {
		t.Errorf("password grants = %d, want exactly 1", grants)
	}
	if refreshes < 3 {
		t.Errorf("refresh grants = %d, want at least 3 (one per token life)", refreshes)
	}
	for _, r := range f.requestsTo("/api/v2/oauth/token") {
		if strings.Contains(string(r.Body), "grant_type=refresh_token") && !strings.Contains(string(r.Body), "refresh_token=") {
			t.Errorf("a refresh grant without a refresh token")
		}
	}
}

// TestUnverifiedUsersAreVerified: with a client whose
// isUserAutoVerificationEnabled is false, finAPI answers 403 to a new
// user's password grant until the client verifies it; finproxy verifies
// once and logs in, and a user already verified costs nothing more.
func TestUnverifiedUsersAreVerified(t *testing.T) {
	f := newFinAPI(t, emulator.Config{ManualUserVerification: true})
	p := startProxy(t, f, proxyEnv(f))
	for i := range 3 {
		resp, body := p.do(request{path: "/api/v2/accounts", session: session(t, i)})
		if resp.StatusCode != 200 {
			t.Fatalf("session %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if v, u := f.Count(emulator.CounterUsersVerify), f.Count(emulator.CounterPasswordUnverified); v != 3 || u != 3 {
		t.Errorf("verifications %d, refused unverified logins %d; want 3 and 3", v, u)
	}
	// Another replica (or a restart) logs the verified user in at once.
	p2 := startProxy(t, f, proxyEnv(f))
	resp, body := p2.do(request{path: "/api/v2/accounts", session: session(t, 0)})
	if resp.StatusCode != 200 {
		t.Fatalf("after restart: %d %s", resp.StatusCode, body)
	}
	if v := f.Count(emulator.CounterUsersVerify); v != 3 {
		t.Errorf("verifications = %d after a restart, want still 3", v)
	}
	for _, r := range f.requestsTo("/api/v2/users/verify/") {
		if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			t.Errorf("verify request %s without the client token", r.Method)
		}
	}
}

// TestFinAPICallsCarryTheRequestID: every call finproxy makes to finAPI for
// a request carries that request's X-Request-Id; a renewal in the
// background carries a fresh one, which the log names.
func TestFinAPICallsCarryTheRequestID(t *testing.T) {
	f := newFinAPI(t, emulator.Config{UserTokenTTL: 5 * time.Second})
	env := proxyEnv(f)
	env["FINPROXY_RENEW_BEFORE"] = "0.6" // renewal window from 2.0 s at the latest to 4.5 s
	p := startProxy(t, f, env)
	p.waitReady()
	f.Reset()
	s := session(t, 1)
	resp, body := p.do(request{path: "/api/v2/accounts", session: s, header: http.Header{"X-Request-Id": {"support-trace-4711"}}})
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	seen := f.Requests()
	if len(seen) < 3 { // user creation, password grant, the call itself
		t.Fatalf("finAPI saw %d requests", len(seen))
	}
	for _, r := range seen {
		if got := r.Header.Get("X-Request-Id"); got != "support-trace-4711" {
			t.Errorf("%s %s carried X-Request-Id %q, want the request's", r.Method, r.Path, got)
		}
	}

	// Renewal ahead of expiry.
	f.Reset()
	time.Sleep(2500 * time.Millisecond)
	p.do(request{path: "/api/v2/accounts", session: s, header: http.Header{"X-Request-Id": {"trigger-4712"}}})
	var renewID string
	eventually(t, 5*time.Second, "a background refresh grant", func() bool {
		for _, r := range f.requestsTo("/api/v2/oauth/token") {
			if strings.Contains(string(r.Body), "grant_type=refresh_token") {
				renewID = r.Header.Get("X-Request-Id")
				return true
			}
		}
		return false
	})
	if renewID == "" || renewID == "trigger-4712" || renewID == "support-trace-4711" {
		t.Errorf("background renewal carried X-Request-Id %q, want a fresh one", renewID)
	}
	eventually(t, 5*time.Second, "the log names the renewal's request id", func() bool {
		return countLines(p.out.String(), `"request_id":"`+renewID+`"`) > 0
	})
}

// TestRetryAfterAsDate: finAPI's 429 with Retry-After as an HTTP date holds
// back the token calls until that date, and callers are told how long.
func TestRetryAfterAsDate(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	p.waitReady()
	f.AnswerNext("/api/v2/oauth/token", emulator.Answer{
		Status: 429,
		Header: http.Header{"Retry-After": {time.Now().Add(20 * time.Second).UTC().Format(http.TimeFormat)}},
		Body:   `{"errors":[{"message":"Too many requests","code":"UNEXPECTED_ERROR","type":"TECHNICAL"}]}`,
	}, 1)
	resp, body := p.do(request{path: "/api/v2/accounts", session: session(t, 1)})
	wantError(t, resp, body, 503, "token_unavailable")
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 15 || ra > 21 {
		t.Errorf("Retry-After = %q, want about 20 s", resp.Header.Get("Retry-After"))
	}
	before := len(f.requestsTo("/api/v2/oauth/token"))
	resp, body = p.do(request{path: "/api/v2/accounts", session: session(t, 2)})
	wantError(t, resp, body, 503, "token_unavailable")
	if n := len(f.requestsTo("/api/v2/oauth/token")); n != before {
		t.Errorf("%d token calls within finAPI's Retry-After", n-before)
	}
}

// TestOnlyBadCredentialsAreAConflict: an unknown 400 on the password grant
// is a plain error without the 24 h identity-conflict hold. The session
// waits out a hold of minutes (if it was bad credentials in words finproxy
// does not know, every attempt would count toward finAPI's lock of the
// user); other sessions log in at once.
func TestOnlyBadCredentialsAreAConflict(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	p.waitReady()
	f.Reset()
	s := session(t, 1)
	f.AnswerNext("/api/v2/oauth/token", emulator.Answer{
		Status: 400,
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   `{"errors":[{"message":"Missing parameter 'username'","code":"BAD_REQUEST","type":"TECHNICAL"}]}`,
	}, 1)
	resp, body := p.do(request{path: "/api/v2/accounts", session: s})
	wantError(t, resp, body, 502, "token_refused")
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 60 || ra > 600 {
		t.Errorf("Retry-After %d s, want minutes (not the 24 h conflict hold, not seconds)", ra)
	}
	if strings.Contains(p.out.String(), "identity_conflict") {
		t.Errorf("an unknown 400 was logged as an identity conflict")
	}
	resp, body = p.do(request{path: "/api/v2/accounts", session: s})
	wantError(t, resp, body, 502, "token_refused")
	if n := f.Count(emulator.CounterPasswordFailed) + len(f.requestsTo("/api/v2/oauth/token")); n > 1 {
		t.Errorf("the held session reached the token endpoint again (%d calls)", n)
	}
	if resp, body := p.do(request{path: "/api/v2/accounts", session: session(t, 2)}); resp.StatusCode != 200 {
		t.Errorf("another session: %d %s", resp.StatusCode, body)
	}
}

// TestNonsenseTokenAnswers: token answers finproxy cannot use are 502
// upstream_invalid, with their own reason; a slow token endpoint is 503
// token_unavailable for every caller alike.
func TestNonsenseTokenAnswers(t *testing.T) {
	for _, tt := range []struct {
		name, body string
	}{
		{"not JSON", `<html>maintenance</html>`},
		{"no access_token", `{"token_type":"bearer","expires_in":3600}`},
		{"empty access_token", `{"access_token":"","token_type":"bearer","expires_in":3600}`},
		{"negative expires_in", `{"access_token":"abc","token_type":"bearer","expires_in":-1}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFinAPI(t, emulator.Config{})
			p := startProxy(t, f, proxyEnv(f))
			p.waitReady()
			f.AnswerNext("/api/v2/oauth/token", emulator.Answer{Status: 200, Body: tt.body}, 1)
			resp, body := p.do(request{path: "/api/v2/accounts", session: session(t, 1)})
			e := wantError(t, resp, body, 502, "upstream_invalid")
			if len(e.Errors) == 1 && !strings.Contains(e.Errors[0].Message, "finAPI answered") {
				t.Errorf("message %q does not say finAPI answered nonsense", e.Errors[0].Message)
			}
		})
	}

	t.Run("slow token endpoint: one status for all", func(t *testing.T) {
		f := newFinAPI(t, emulator.Config{})
		env := proxyEnv(f)
		env["FINPROXY_UPSTREAM_TIMEOUT"] = "500ms"
		p := startProxy(t, f, env)
		p.waitReady()
		f.SetLatency("/api/v2/oauth/token", 2*time.Second)
		var wg sync.WaitGroup
		var other atomic.Int64
		statuses := make([]string, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, _, err := p.try(request{path: "/api/v2/accounts", session: session(t, i%2)})
				if err != nil {
					other.Add(1)
					return
				}
				statuses[i] = strconv.Itoa(resp.StatusCode) + " " + resp.Header.Get("X-Finproxy-Error")
			}()
		}
		wg.Wait()
		for i, st := range statuses {
			if st != "503 token_unavailable" {
				t.Errorf("caller %d got %q, want 503 token_unavailable", i, st)
			}
		}
		if other.Load() != 0 {
			t.Errorf("%d callers got no answer", other.Load())
		}
	})
}

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestBackgroundCallsHaveIDs: calls finproxy makes on its own (the client
// credentials proof at start) carry an id of their own too.
func TestBackgroundCallsHaveIDs(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	p.waitReady()
	for _, r := range f.requestsTo("/api/v2/oauth/token") {
		if id := r.Header.Get("X-Request-Id"); !hexID.MatchString(id) {
			t.Errorf("background token call carried X-Request-Id %q", id)
		}
	}
}
