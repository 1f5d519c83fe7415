package test

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/finproxy/finproxy/auth"
	"github.com/finproxy/finproxy/test/emulator"
)

func TestFirstRequestCreatesUserAndForwards(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	s := session(t, 1)

	resp, body := p.do(request{path: "/api/v2/accounts?view=all&page=1", session: s, header: http.Header{
		"Cookie":        {"app=1"},
		"Authorization": {"Bearer caller-token-must-not-pass"},
		"X-Request-Id":  {"req-first-1"},
	}})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var accounts struct{ Accounts []json.RawMessage }
	if err := json.Unmarshal(body, &accounts); err != nil || len(accounts.Accounts) == 0 {
		t.Fatalf("no accounts from finAPI: %v %s", err, body)
	}
	if got := resp.Header.Get("X-Request-Id"); got != "req-first-1" {
		t.Errorf("X-Request-Id = %q, want the caller's", got)
	}
	if n := f.Count(emulator.CounterUsersCreate); n != 1 {
		t.Errorf("users created = %d, want 1", n)
	}
	if n := f.Count(emulator.CounterPassword); n != 1 {
		t.Errorf("password grants = %d, want 1", n)
	}
	fwd := f.requestsTo("/api/v2/accounts")
	if len(fwd) != 1 {
		t.Fatalf("requests to /api/v2/accounts = %d, want 1", len(fwd))
	}
	h := fwd[0].Header
	if a := h.Get("Authorization"); !strings.HasPrefix(a, "Bearer ") || strings.Contains(a, "caller-token") {
		t.Errorf("Authorization upstream = %q, want finproxy's user token", a)
	}
	for _, name := range []string{"Cookie", "X-Session-Id"} {
		if v := h.Get(name); v != "" {
			t.Errorf("%s reached finAPI: %q", name, v)
		}
	}
	if h.Get("X-Request-Id") != "req-first-1" {
		t.Errorf("X-Request-Id upstream = %q", h.Get("X-Request-Id"))
	}
	if h.Get("X-Forwarded-For") != "127.0.0.1" || h.Get("X-Forwarded-Proto") != "http" {
		t.Errorf("X-Forwarded-For/Proto = %q/%q", h.Get("X-Forwarded-For"), h.Get("X-Forwarded-Proto"))
	}
	if fwd[0].RawQuery != "view=all&page=1" {
		t.Errorf("query upstream = %q", fwd[0].RawQuery)
	}

	// The second request uses the cached token: no token call at all.
	f.Reset()
	resp, body = p.do(request{path: "/api/v2/bankConnections", session: s})
	if resp.StatusCode != 200 {
		t.Fatalf("second request: %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("no X-Request-Id generated")
	}
	for _, c := range []string{emulator.CounterPassword, emulator.CounterUsersCreate, emulator.CounterClientCredentials} {
		if n := f.Count(c); n != 0 {
			t.Errorf("%s = %d on a cached session, want 0", c, n)
		}
	}
}

func TestConcurrentFirstRequestsCreateOneUser(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	p.waitReady()
	f.SetLatency("/api/v2/users", 50*time.Millisecond) // widen the race window
	s := session(t, 1)

	const n = 50
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body, err := p.try(request{path: "/api/v2/accounts", session: s})
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			statuses[i] = resp.StatusCode
			if resp.StatusCode != 200 {
				t.Errorf("request %d: %d %s", i, resp.StatusCode, body)
			}
		}()
	}
	wg.Wait()
	created, grants := f.Count(emulator.CounterUsersCreate), f.Count(emulator.CounterPassword)
	t.Logf("%d concurrent first requests: %d user creations, %d password grants, %d data calls", n, created, grants, f.Count(emulator.CounterData))
	if created != 1 || grants != 1 {
		t.Errorf("user creations = %d, password grants = %d; want 1 and 1", created, grants)
	}
}

func TestRestartReachesSameUser(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	s := session(t, 1)
	env := proxyEnv(f)

	p1 := startProxy(t, f, env)
	resp, body := p1.do(request{method: "POST", path: "/proxy/v1/session", session: s})
	if resp.StatusCode != 200 {
		t.Fatalf("warm-up: %d %s", resp.StatusCode, body)
	}
	var first struct{ UserID string }
	json.Unmarshal(body, &first)
	if code := p1.stop(); code != 0 {
		t.Fatalf("exit status after SIGTERM = %d, want 0", code)
	}

	p2 := startProxy(t, f, env)
	resp, body = p2.do(request{path: "/api/v2/accounts", session: s})
	if resp.StatusCode != 200 {
		t.Fatalf("after restart: %d %s", resp.StatusCode, body)
	}
	if users := f.Users(); len(users) != 1 || users[0] != first.UserID {
		t.Errorf("finAPI users = %v, want only %q", users, first.UserID)
	}
	if n := f.Count(emulator.CounterUsersCreateExists); n != 1 {
		t.Errorf("ENTITY_EXISTS answers = %d, want 1 (the restarted proxy found the user)", n)
	}
	want := mustKeys(t).Session(s).UserID()
	if first.UserID != want {
		t.Errorf("user id %q, want the derived %q", first.UserID, want)
	}
}

func mustKeys(t *testing.T) *auth.Keys {
	k, err := auth.NewKeys([]byte(identitySecret))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSessionHeaderChecked(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	cases := []struct {
		name, session string
		header        http.Header
		status        int
		reason        string
	}{
		{"missing", "", nil, 401, "missing_session"},
		{"empty", "", http.Header{"X-Session-Id": {""}}, 401, "missing_session"},
		{"too short", "", http.Header{"X-Session-Id": {"short-0123456"}}, 400, "invalid_session"},
		{"too long", "", http.Header{"X-Session-Id": {strings.Repeat("a", 513)}}, 400, "invalid_session"},
		{"bad characters", "", http.Header{"X-Session-Id": {"session id with spaces!"}}, 400, "invalid_session"},
		{"two values", "", http.Header{"X-Session-Id": {"0123456789abcdef", "0123456789abcdeg"}}, 400, "invalid_session"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := p.do(request{path: "/api/v2/accounts", header: c.header})
			e := wantError(t, resp, body, c.status, c.reason)
			if e.Endpoint != "GET /api/v2/accounts" {
				t.Errorf("endpoint = %q", e.Endpoint)
			}
		})
	}
	// The longest and shortest valid sessions pass.
	for _, s := range []string{strings.Repeat("A", 512), "abcdefghij-._~+/=", "0123456789abcdef"} {
		if resp, body := p.do(request{path: "/api/v2/accounts", session: s}); resp.StatusCode != 200 {
			t.Errorf("session of %d chars: %d %s", len(s), resp.StatusCode, body)
		}
	}
	if n := len(f.requestsTo("/api/v2/accounts")); n != 3 {
		t.Errorf("requests upstream = %d, want only the 3 valid ones", n)
	}
}

func TestClientTokenRoutesDenied(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	p.waitReady() // the client token at start is the one call to finAPI
	f.Reset()
	s := session(t, 1)
	cases := []struct{ method, path string }{
		{"POST", "/api/v2/oauth/token"},
		{"POST", "/api/v2/oauth/revoke"},
		{"POST", "/oauth/token"},
		{"POST", "/api/v2/users"},
		{"GET", "/api/v2/users/someone"},
		{"POST", "/api/v2/users/verify/someone"},
		{"GET", "/api/v2/users/verificationStatus"},
		{"POST", "/api/v2/users/requestPasswordChange"},
		{"POST", "/api/v2/users/executePasswordChange"},
		{"DELETE", "/api/v2/users/someone"},
		{"GET", "/api/v2/clientConfiguration"},
		{"PATCH", "/api/v2/clientConfiguration"},
		{"POST", "/api/v2/mandatorAdmin/deleteUsers"},
		{"GET", "/api/v2/tppCertificates"},
		{"GET", "/api/v2/tppCredentials/1"},
		{"POST", "/api/v1/users"},
		{"GET", "/api/v1/clientConfiguration"},
		{"GET", "/API/V2/ClientConfiguration"},
		{"POST", "/api/v2/users/"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			resp, body := p.do(request{method: c.method, path: c.path, session: s})
			wantError(t, resp, body, 403, "route_denied")
		})
	}
	if reqs := f.Requests(); len(reqs) != 0 {
		t.Errorf("%d requests reached finAPI, first %s %s", len(reqs), reqs[0].Method, reqs[0].Path)
	}
}

func TestUserSelfDeletionForgetsToken(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	s := session(t, 1)
	if resp, body := p.do(request{path: "/api/v2/accounts", session: s}); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	resp, body := p.do(request{method: "DELETE", path: "/api/v2/users", session: s})
	if resp.StatusCode != 200 {
		t.Fatalf("DELETE /api/v2/users: %d %s", resp.StatusCode, body)
	}
	if n := f.Count(emulator.CounterUsersDelete); n != 1 {
		t.Fatalf("users deleted = %d", n)
	}
	// The next request must not use the dead token: a new user is made.
	resp, body = p.do(request{path: "/api/v2/accounts", session: s})
	if resp.StatusCode != 200 {
		t.Fatalf("after deletion: %d %s", resp.StatusCode, body)
	}
	if n := f.Count(emulator.CounterUsersCreate); n != 2 {
		t.Errorf("users created = %d, want 2 (the session starts over)", n)
	}
	if n := f.Count(emulator.CounterUnauthorized); n != 0 {
		t.Errorf("%d calls reached finAPI with a dead token", n)
	}
}

func TestInvalidConfigurationExits2(t *testing.T) {
	cmd := exec.Command(binary)
	cmd.Env = []string{
		"FINPROXY_IDENTITY_SECRET=too-short",
		"FINPROXY_MODE=sideways",
		"FINPROXY_ACCESS_URL=ftp://example.org",
		"FINPROXY_UPSTREAM_TIMEOUT=soon",
		"FINPROXY_LISTEN_ADDR=127.0.0.1:1",
	}
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 {
		t.Fatalf("exit: %v, want status 2; output:\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, v := range []string{"FINPROXY_CLIENT_ID", "FINPROXY_CLIENT_SECRET", "FINPROXY_IDENTITY_SECRET", "FINPROXY_MODE", "FINPROXY_ACCESS_URL", "FINPROXY_UPSTREAM_TIMEOUT"} {
		found := 0
		for _, l := range lines {
			if strings.Contains(l, v+":") {
				found++
			}
		}
		if found != 1 {
			t.Errorf("%d lines name %s, want 1; output:\n%s", found, v, out)
		}
	}
	if strings.Contains(string(out), "too-short") {
		t.Errorf("the identity secret's value was printed")
	}
}

func TestSecretFromFile(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	dir := t.TempDir()
	env := proxyEnv(f)
	delete(env, "FINPROXY_CLIENT_SECRET")
	file := dir + "/client-secret"
	if err := writeFile(file, clientSecret+"\n  \n"); err != nil {
		t.Fatal(err)
	}
	env["FINPROXY_CLIENT_SECRET_FILE"] = file
	p := startProxy(t, f, env)
	p.waitReady()
	if resp, body := p.do(request{path: "/api/v2/accounts", session: session(t, 1)}); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	s := session(t, 1)
	if resp, body := p.do(request{path: "/api/v2/accounts", session: s}); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	f.SetLatency("/api/v2/accounts", 1500*time.Millisecond)
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, _, err := p.try(request{path: "/api/v2/accounts", session: s})
		if err != nil {
			done <- result{err: err}
			return
		}
		done <- result{status: resp.StatusCode}
	}()
	eventually(t, 5*time.Second, "request in flight at finAPI", func() bool { return len(f.requestsTo("/api/v2/accounts")) == 2 })
	code := p.stop()
	r := <-done
	if r.err != nil || r.status != 200 {
		t.Errorf("in-flight request: status %d, err %v; want 200", r.status, r.err)
	}
	if code != 0 {
		t.Errorf("exit status = %d, want 0", code)
	}
	if _, err := net_dial(p.addr); err == nil {
		t.Errorf("proxy still accepts connections after shutdown")
	}
}
