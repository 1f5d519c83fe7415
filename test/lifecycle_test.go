package test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finproxy/finproxy/test/emulator"
)

// TestShortLivedTokensNeverFail drives traffic for 10 s while finAPI's
// tokens live 2 s: every request must succeed, and tokens are renewed.
func TestShortLivedTokensNeverFail(t *testing.T) {
	f := newFinAPI(t, emulator.Config{UserTokenTTL: 2 * time.Second, ClientTokenTTL: 2 * time.Second})
	p := startProxy(t, f, proxyEnv(f))
	p.waitReady()

	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(10 * time.Second)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := session(t, w)
			for time.Now().Before(stop) {
				resp, body, err := p.try(request{path: "/api/v2/accounts", session: s})
				switch {
				case err != nil:
					failed.Add(1)
					t.Errorf("worker %d: %v", w, err)
				case resp.StatusCode != 200:
					failed.Add(1)
					t.Errorf("worker %d: %d %s", w, resp.StatusCode, body)
				default:
					ok.Add(1)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	refreshes, grants, unauthorized := f.Count(emulator.CounterRefreshToken), f.Count(emulator.CounterPassword), f.Count(emulator.CounterUnauthorized)
	t.Logf("10 s of traffic with 2 s tokens: %d ok, %d failed; %d refresh grants, %d password grants, %d upstream 401s", ok.Load(), failed.Load(), refreshes, grants, unauthorized)
	if failed.Load() != 0 || ok.Load() < 100 {
		t.Errorf("ok %d, failed %d", ok.Load(), failed.Load())
	}
	if refreshes < 4*3 {
		t.Errorf("refresh grants = %d; tokens were not renewed ahead", refreshes)
	}
	if grants != 4 {
		t.Errorf("password grants = %d, want 4 (one per session; renewals use refresh tokens)", grants)
	}
	if unauthorized != 0 {
		t.Errorf("%d requests reached finAPI with an expired token", unauthorized)
	}
}

func TestOneOff401IsReplayedWithSameBody(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	s := session(t, 1)
	if resp, body := p.do(request{path: "/api/v2/accounts", session: s}); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	payload := []byte(`{"bankId":280001,"interface":"FINTS_SERVER","loginCredentials":[{"label":"Onlinebanking-ID","value":"demo"}]}`)
	sum := sha256.Sum256(payload)

	f.RejectNextUserToken(1)
	resp, body := p.do(request{method: "POST", path: "/api/v2/bankConnections/import", session: s, body: payload,
		header: http.Header{"Content-Type": {"application/json"}}})
	if resp.StatusCode/100 != 2 {
		t.Fatalf("status %d, want success after the replay: %s", resp.StatusCode, body)
	}
	var got struct{ ReceivedBodySha256 string }
	json.Unmarshal(body, &got)
	if got.ReceivedBodySha256 != hex.EncodeToString(sum[:]) {
		t.Errorf("replayed body differs: sha256 %s, want %s", got.ReceivedBodySha256, hex.EncodeToString(sum[:]))
	}
	imports := f.requestsTo("/api/v2/bankConnections/import")
	if len(imports) != 2 {
		t.Fatalf("import calls = %d, want 2 (original and one replay)", len(imports))
	}
	if !bytes.Equal(imports[0].Body, imports[1].Body) || imports[0].Header.Get("Authorization") == imports[1].Header.Get("Authorization") {
		t.Errorf("the replay must carry the same body and a new token")
	}
}

func TestReplayHappensOnlyOnce(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	s := session(t, 1)
	p.do(request{path: "/api/v2/accounts", session: s})
	f.RejectNextUserToken(2)
	resp, _ := p.do(request{path: "/api/v2/accounts", session: s})
	if resp.StatusCode != 401 {
		t.Errorf("status %d, want finAPI's 401 after one replay", resp.StatusCode)
	}
	if n := len(f.requestsTo("/api/v2/accounts")); n != 3 {
		t.Errorf("calls = %d, want 3 (first request, then the original and one replay)", n)
	}
	// Within the renewal cool-down the refused replacement is not renewed
	// again (an upstream refusing every token must not cost a renewal per
	// request): the 401 goes back. After it, the session recovers.
	if resp, _ := p.do(request{path: "/api/v2/accounts", session: s}); resp.StatusCode != 401 {
		t.Errorf("next request within the cool-down: %d, want the 401", resp.StatusCode)
	}
	time.Sleep(5100 * time.Millisecond)
	if resp, body := p.do(request{path: "/api/v2/accounts", session: s}); resp.StatusCode != 200 {
		t.Errorf("next request after the cool-down: %d %s", resp.StatusCode, body)
	}
}

func TestLargeBodyIsNotReplayed(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	s := session(t, 1)
	p.do(request{path: "/api/v2/accounts", session: s})
	big := bytes.Repeat([]byte("x"), 2<<20)
	f.RejectNextUserToken(1)
	resp, _ := p.do(request{method: "POST", path: "/api/v2/bankConnections/import", session: s, body: big,
		header: http.Header{"Content-Type": {"application/json"}}})
	if resp.StatusCode != 401 {
		t.Errorf("status %d, want the 401 back for a 2 MiB body", resp.StatusCode)
	}
	if n := len(f.requestsTo("/api/v2/bankConnections/import")); n != 1 {
		t.Errorf("import calls = %d, want 1 (no replay)", n)
	}
	// The refused token is renewed for the session's next request.
	eventually(t, 5*time.Second, "session recovers", func() bool {
		resp, _, err := p.try(request{path: "/api/v2/accounts", session: s})
		return err == nil && resp.StatusCode == 200
	})
}

func TestTokenEndpointOutage(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	p.waitReady()
	cached := session(t, 0)
	p.do(request{path: "/api/v2/accounts", session: cached})

	f.SetDown(true)
	outageEnd := time.Now().Add(3 * time.Second)
	n503, nOther := 0, 0
	for i := 0; time.Now().Before(outageEnd); i++ {
		resp, body := p.do(request{path: "/api/v2/accounts", session: session(t, 100+i)})
		if resp.StatusCode == 503 {
			n503++
			wantError(t, resp, body, 503, "token_unavailable")
		} else {
			nOther++
			t.Errorf("during the outage: %d %s", resp.StatusCode, body)
		}
		// A session whose token is cached is not affected.
		if resp, body := p.do(request{path: "/api/v2/accounts", session: cached}); resp.StatusCode != 200 {
			t.Errorf("cached session during the outage: %d %s", resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	tokenCalls := len(f.requestsTo("/api/v2/oauth/token"))
	t.Logf("3 s outage: %d answers 503, %d other; %d calls reached the token endpoint", n503, nOther, tokenCalls)
	if tokenCalls > 15 {
		t.Errorf("%d token endpoint calls during a 3 s outage; the negative cache should hold them back", tokenCalls)
	}
	f.SetDown(false)
	start := time.Now()
	eventually(t, 15*time.Second, "new sessions succeed after the outage", func() bool {
		resp, _, err := p.try(request{path: "/api/v2/accounts", session: session(t, 999)})
		return err == nil && resp.StatusCode == 200
	})
	t.Logf("recovered %s after the token endpoint came back", time.Since(start).Round(time.Millisecond))
}

func TestIdentityConflictIsNotRetried(t *testing.T) {
	f := newFinAPI(t, emulator.Config{MaxLoginAttempts: 3})
	s := session(t, 1)
	userID := mustKeys(t).Session(s).UserID()
	f.CreateUser(userID, "a-password-finproxy-cannot-know")
	p := startProxy(t, f, proxyEnv(f))

	for i := range 10 {
		resp, body := p.do(request{path: "/api/v2/accounts", session: s})
		wantError(t, resp, body, 502, "identity_conflict")
		if i == 0 && resp.Header.Get("Retry-After") == "" {
			t.Errorf("identity conflict without Retry-After")
		}
	}
	if n := f.Count(emulator.CounterPasswordFailed); n != 1 {
		t.Errorf("failed password grants = %d, want 1 in the back-off window", n)
	}
	if n := f.Count(emulator.CounterPasswordLocked); n != 0 {
		t.Errorf("the user got locked")
	}
	if n := countLines(p.out.String(), userID, "derived identity"); n != 1 {
		t.Errorf("conflict logged %d times, want once with the finAPI user id", n)
	}
	if n := auditEvents(t, p.out.String(), "identity_conflict", mustKeys(t).Session(s).Short(), userID); n != 1 {
		t.Errorf("identity_conflict audit events = %d, want 1", n)
	}
}

func TestBadClientCredentials(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	env := proxyEnv(f)
	env["FINPROXY_CLIENT_SECRET"] = "wrong-secret-value-xyz"
	p := startProxy(t, f, env)
	resp, body := p.do(request{path: "/api/v2/accounts", session: session(t, 1)})
	wantError(t, resp, body, 502, "token_refused")
	eventually(t, 5*time.Second, "an error line about refused client credentials", func() bool {
		return countLines(p.out.String(), `"level":"error"`, "client credentials") > 0
	})
	// Readiness never turns green with refused credentials.
	r, err := http.Get("http://" + p.admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 503 {
		t.Errorf("/readyz = %d with refused client credentials, want 503", r.StatusCode)
	}
}

func TestSessionEndpoints(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	s := session(t, 1)
	wantUser := mustKeys(t).Session(s).UserID()

	// Warm-up.
	resp, body := p.do(request{method: "POST", path: "/proxy/v1/session", session: s})
	if resp.StatusCode != 200 {
		t.Fatalf("warm-up: %d %s", resp.StatusCode, body)
	}
	var warm struct{ Mode, UserID, ExpiresAt string }
	if err := json.Unmarshal(body, &warm); err != nil {
		t.Fatal(err)
	}
	exp, err := time.Parse(time.RFC3339, warm.ExpiresAt)
	if warm.Mode != "user" || warm.UserID != wantUser || err != nil || time.Until(exp) < 50*time.Minute {
		t.Errorf("warm-up answer %s", body)
	}
	if !f.UserExists(wantUser) {
		t.Errorf("warm-up did not create the finAPI user")
	}

	// Logout revokes and forgets; the user stays.
	resp, body = p.do(request{method: "POST", path: "/proxy/v1/session/logout", session: s})
	if resp.StatusCode != 204 {
		t.Fatalf("logout: %d %s", resp.StatusCode, body)
	}
	if n := f.Count(emulator.CounterRevoke); n != 1 {
		t.Errorf("revocations = %d, want 1", n)
	}
	grants := f.Count(emulator.CounterPassword)
	if resp, body := p.do(request{path: "/api/v2/accounts", session: s}); resp.StatusCode != 200 {
		t.Fatalf("after logout: %d %s", resp.StatusCode, body)
	}
	if f.Count(emulator.CounterPassword) != grants+1 || f.Count(emulator.CounterUnauthorized) != 0 {
		t.Errorf("after logout the session must log in afresh, not send the revoked token")
	}
	if !f.UserExists(wantUser) {
		t.Errorf("logout deleted the user")
	}

	// Delete while a bank connection is busy: 423 in the error shape.
	f.SetUserBusy(wantUser, true)
	resp, body = p.do(request{method: "DELETE", path: "/proxy/v1/session", session: s})
	e := wantError(t, resp, body, 423, "user_busy")
	if len(e.Errors) == 1 && e.Errors[0].Code != "LOCKED" {
		t.Errorf("code %q, want LOCKED", e.Errors[0].Code)
	}
	if !f.UserExists(wantUser) {
		t.Fatalf("busy user was deleted")
	}

	// Delete.
	f.SetUserBusy(wantUser, false)
	resp, body = p.do(request{method: "DELETE", path: "/proxy/v1/session", session: s})
	if resp.StatusCode != 204 {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	if f.UserExists(wantUser) {
		t.Errorf("finAPI user still exists after DELETE /proxy/v1/session")
	}

	// Own endpoints need a session and refuse other methods in the error shape.
	resp, body = p.do(request{method: "POST", path: "/proxy/v1/session"})
	wantError(t, resp, body, 401, "missing_session")
	resp, body = p.do(request{method: "GET", path: "/proxy/v1/session", session: s})
	wantError(t, resp, body, 405, "method_not_allowed")
	resp, body = p.do(request{path: "/proxy/v1/other", session: s})
	wantError(t, resp, body, 404, "no_route")
}
