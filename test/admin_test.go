package test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/finproxy/finproxy/test/emulator"
)

// Secrets of the admin API tests; none may show in finproxy's output.
const (
	adminToken    = "e2e-admin-token-DO-NOT-LOG-0123456789abcdef"
	foreignPass   = "foreign-password-DO-NOT-LOG-42"
	backendClient = "backend-app"
	backendSecret = "backend-app-secret-DO-NOT-LOG-9b1e"
)

// adminEnv is proxyEnv with the admin API and adoption on.
func adminEnv(f *finapi) map[string]string {
	env := proxyEnv(f)
	env["FINPROXY_ADMIN_TOKEN"] = adminToken
	env["FINPROXY_DATA_DECRYPTION_KEY"] = emulator.DefaultDataDecryptionKey
	return env
}

// adminCall is one call to the admin API with token ("" for none).
func (p *proxyProc) adminCall(method, path, token string, body []byte) (*http.Response, []byte) {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+p.admin+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// sessionInfo is the admin API's session description.
type sessionInfo struct {
	Session    string `json:"session"`
	FinAPIUser string `json:"finapiUser"`
	Adopted    bool   `json:"adopted"`
	Token      *struct {
		IssuedAt    string  `json:"issuedAt"`
		ExpiresAt   *string `json:"expiresAt"`
		Refreshable bool    `json:"refreshable"`
		Renewal     string  `json:"renewal"`
	} `json:"token"`
	Holds struct {
		IdentityConflict *struct{ Until string } `json:"identityConflict"`
		Backoff          *struct{ Until string } `json:"backoff"`
	} `json:"holds"`
}

// adminInfo calls the admin API with the admin token and decodes the
// session description it answers.
func (p *proxyProc) adminInfo(method, path string, body []byte) sessionInfo {
	p.t.Helper()
	resp, b := p.adminCall(method, path, adminToken, body)
	return decodeInfo(p.t, resp, b)
}

func decodeInfo(t *testing.T, resp *http.Response, body []byte) sessionInfo {
	t.Helper()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, want 200: %s", resp.StatusCode, body)
	}
	var info sessionInfo
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatalf("not a session description: %v: %s", err, body)
	}
	return info
}

// otherClientToken logs userID in as the backend's own client would.
func otherClientToken(t *testing.T, f *finapi, userID, password string) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "client_id": {backendClient}, "client_secret": {backendSecret}, "username": {userID}, "password": {password}}
	resp, err := http.PostForm(f.access.URL+"/api/v2/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 200 || tok.AccessToken == "" {
		t.Fatalf("other client's password grant: %d %v", resp.StatusCode, err)
	}
	return tok.AccessToken
}

// tokenWorks reports whether finAPI accepts token.
func tokenWorks(t *testing.T, f *finapi, token string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.access.URL+"/api/v2/users", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// changeTokens returns the decrypted password change tokens finproxy sent.
func changeTokens(f *finapi) []string {
	var out []string
	for _, r := range f.requestsTo("/api/v2/users/executePasswordChange") {
		var b map[string]string
		if json.Unmarshal(r.Body, &b) == nil && b["passwordChangeToken"] != "" {
			out = append(out, b["passwordChangeToken"])
		}
	}
	return out
}

// assertAdminSecrets checks the output for the admin API's own secrets.
func assertAdminSecrets(t *testing.T, p *proxyProc, f *finapi, extra ...string) {
	t.Helper()
	out := p.out.String()
	for _, s := range append(append([]string{adminToken, emulator.DefaultDataDecryptionKey, foreignPass, backendSecret}, changeTokens(f)...), extra...) {
		if strings.Contains(out, s) {
			t.Errorf("finproxy output contains a secret (%d chars, starting %.3q…)", len(s), s)
		}
	}
}

func TestAdoptExistingUser(t *testing.T) {
	f := newFinAPI(t, emulator.Config{OtherClients: map[string]string{backendClient: backendSecret}})
	s := session(t, 1)
	keys := mustKeys(t)
	short, userID := keys.Session(s).Short(), keys.Session(s).UserID()
	f.CreateUser(userID, foreignPass) // the backend's user, with the backend's password
	backendToken := otherClientToken(t, f, userID, foreignPass)
	p := startProxy(t, f, adminEnv(f))

	resp, body := p.do(request{path: "/api/v2/accounts", session: s})
	wantError(t, resp, body, 502, "identity_conflict")
	if n := f.Count(emulator.CounterPasswordChangeRequest); n != 0 {
		t.Errorf("adoption without an operator (FINPROXY_ADOPT_ON_CONFLICT is off): %d password change requests", n)
	}
	info := p.adminInfo("GET", "/admin/v1/sessions/"+short, nil)
	if info.Holds.IdentityConflict == nil || info.FinAPIUser != userID || info.Session != short {
		t.Errorf("lookup = %+v, want the conflict hold of %s", info, userID)
	}

	info = p.adminInfo("POST", "/admin/v1/sessions/"+short+"/adopt", []byte(`{"userId":"`+strings.ToUpper(userID)+`"}`))
	if !info.Adopted || info.Holds.IdentityConflict != nil || info.FinAPIUser != userID {
		t.Errorf("after adopt: %+v, want adopted %s without a hold", info, userID)
	}
	if r, e := f.Count(emulator.CounterPasswordChangeRequest), f.Count(emulator.CounterPasswordChangeExecute); r != 1 || e != 1 {
		t.Errorf("requestPasswordChange %d, executePasswordChange %d; want 1 each", r, e)
	}
	if tokenWorks(t, f, backendToken) {
		t.Errorf("the other client's token of the adopted user still works; finAPI revokes every client's")
	}

	resp, body = p.do(request{path: "/api/v2/users", session: s})
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"id":"`+userID+`"`) {
		t.Fatalf("after adoption: %d %s, want 200 as %s", resp.StatusCode, body, userID)
	}
	eventually(t, 5*time.Second, "the admin_adopt audit line", func() bool {
		return countLines(p.out.String(), `"event":"admin_adopt"`, short, `"outcome":"ok"`) == 1
	})
	if n := auditEvents(t, p.out.String(), "user_adopted", short, userID); n != 1 {
		t.Errorf("user_adopted audit events = %d, want 1", n)
	}
	assertAdminSecrets(t, p, f)
}

func TestAdoptBindsSessionToForeignUser(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	const foreign = "alice@backend.example"
	f.CreateUser(foreign, foreignPass)
	s := session(t, 1)
	short := mustKeys(t).Session(s).Short()
	p := startProxy(t, f, adminEnv(f))
	if resp, body := p.do(request{path: "/api/v2/users", session: s}); resp.StatusCode != 200 {
		t.Fatalf("first request: %d %s", resp.StatusCode, body)
	}
	info := p.adminInfo("POST", "/admin/v1/sessions/"+short+"/adopt", []byte(`{"userId":"`+foreign+`"}`))
	if !info.Adopted || info.FinAPIUser != foreign || info.Token != nil {
		t.Errorf("after adopt: %+v, want bound to %s with its old token dropped", info, foreign)
	}
	resp, body := p.do(request{path: "/api/v2/users", session: s})
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"id":"`+foreign+`"`) {
		t.Fatalf("after adoption: %d %s, want 200 as %s", resp.StatusCode, body, foreign)
	}
	// An unknown user is 404 unknown_user, and nothing changes.
	resp, body = p.adminCall("POST", "/admin/v1/sessions/"+short+"/adopt", adminToken, []byte(`{"userId":"nobody-here"}`))
	wantError(t, resp, body, 404, "unknown_user")
	assertAdminSecrets(t, p, f)
}

func TestAdoptOnConflict(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	s := session(t, 1)
	userID := mustKeys(t).Session(s).UserID()
	f.CreateUser(userID, foreignPass)
	env := adminEnv(f)
	env["FINPROXY_ADOPT_ON_CONFLICT"] = "true"
	p := startProxy(t, f, env)
	eventually(t, 5*time.Second, "the start-up warning about FINPROXY_ADOPT_ON_CONFLICT", func() bool {
		return countLines(p.out.String(), `"level":"warn"`, "FINPROXY_ADOPT_ON_CONFLICT=true") == 1
	})
	resp, body := p.do(request{path: "/api/v2/users", session: s})
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"id":"`+userID+`"`) {
		t.Fatalf("first request with auto-adoption: %d %s, want 200", resp.StatusCode, body)
	}
	for range 3 {
		p.do(request{path: "/api/v2/users", session: s})
	}
	if e := f.Count(emulator.CounterPasswordChangeExecute); e != 1 {
		t.Errorf("executePasswordChange %d, want 1", e)
	}
	assertAdminSecrets(t, p, f)
}

func TestAdoptOnConflictFailsOncePerHold(t *testing.T) {
	f := newFinAPI(t, emulator.Config{DataDecryptionKey: "00112233445566778899aabbccddeeff"}) // not the key finproxy has
	s := session(t, 1)
	f.CreateUser(mustKeys(t).Session(s).UserID(), foreignPass)
	env := adminEnv(f)
	env["FINPROXY_ADOPT_ON_CONFLICT"] = "true"
	p := startProxy(t, f, env)
	for range 5 {
		resp, body := p.do(request{path: "/api/v2/accounts", session: s})
		wantError(t, resp, body, 502, "identity_conflict")
	}
	if r, e := f.Count(emulator.CounterPasswordChangeRequest), f.Count(emulator.CounterPasswordChangeExecute); r != 1 || e != 0 {
		t.Errorf("requestPasswordChange %d, executePasswordChange %d; want one attempt per hold and no execution", r, e)
	}
	if n := f.Count(emulator.CounterPasswordFailed); n != 1 {
		t.Errorf("failed password grants %d, want 1", n)
	}
	assertAdminSecrets(t, p, f)
}

func TestAdminAPIOff(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	for _, path := range []string{"/admin/v1/", "/admin/v1/sessions/0123456789ab", "/admin/v1/sessions/0123456789ab/adopt"} {
		resp, body := p.adminCall("GET", path, adminToken, nil)
		wantError(t, resp, body, 404, "no_route")
	}
	resp, body := p.adminCall("POST", "/admin/v1/sessions/0123456789ab/adopt", adminToken, []byte(`{"userId":"x"}`))
	wantError(t, resp, body, 404, "no_route")
}

func TestAdminAPIRefusesWithoutToken(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, adminEnv(f))
	for name, token := range map[string]string{"missing": "", "wrong": adminToken + "x", "prefix": adminToken[:32]} {
		resp, body := p.adminCall("GET", "/admin/v1/sessions/0123456789ab", token, nil)
		t.Run(name, func(t *testing.T) { wantError(t, resp, body, 401, "admin_unauthorized") })
	}
	req, _ := http.NewRequest("GET", "http://"+p.admin+"/admin/v1/sessions/0123456789ab", nil)
	req.SetBasicAuth("admin", adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantError(t, resp, body, 401, "admin_unauthorized")
	eventually(t, 5*time.Second, "an audit event per refused call", func() bool {
		return countLines(p.out.String(), `"logger":"audit"`, `"event":"admin_refused"`, `"reason":"admin_unauthorized"`, `"session":"0123456789ab"`) == 4
	})
	assertAdminSecrets(t, p, f)
}

func TestAdminAPIErrors(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	s := session(t, 1)
	short := mustKeys(t).Session(s).Short()
	p := startProxy(t, f, adminEnv(f))
	p.do(request{path: "/api/v2/accounts", session: s})
	big := []byte(`{"userId":"` + strings.Repeat("a", 5000) + `"}`)
	for _, c := range []struct {
		name, method, path string
		body               []byte
		status             int
		reason             string
	}{
		{"unknown session", "GET", "/admin/v1/sessions/ffffffffffff", nil, 404, "no_session"},
		{"not a hash", "GET", "/admin/v1/sessions/not-a-hash", nil, 404, "no_session"},
		{"unknown path", "GET", "/admin/v1/nothing", nil, 404, "no_route"},
		{"unknown action", "POST", "/admin/v1/sessions/" + short + "/reboot", nil, 404, "no_route"},
		{"wrong method", "POST", "/admin/v1/sessions/" + short, nil, 405, "method_not_allowed"},
		{"wrong method on adopt", "GET", "/admin/v1/sessions/" + short + "/adopt", nil, 405, "method_not_allowed"},
		{"unknown field", "POST", "/admin/v1/sessions/" + short + "/adopt", []byte(`{"userId":"a","x":1}`), 400, "invalid_body"},
		{"trailing data", "POST", "/admin/v1/sessions/" + short + "/adopt", []byte(`{"userId":"abc"} {}`), 400, "invalid_body"},
		{"no user id", "POST", "/admin/v1/sessions/" + short + "/adopt", []byte(`{}`), 400, "invalid_body"},
		{"bad user id", "POST", "/admin/v1/sessions/" + short + "/adopt", []byte(`{"userId":"a b"}`), 400, "invalid_body"},
		{"too large", "POST", "/admin/v1/sessions/" + short + "/adopt", big, 413, "body_too_large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := p.adminCall(c.method, c.path, adminToken, c.body)
			wantError(t, resp, body, c.status, c.reason)
			if c.status == 405 && resp.Header.Get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
		})
	}
}

func TestAdminEndpoints(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	s := session(t, 1)
	keys := mustKeys(t)
	short, userID := keys.Session(s).Short(), keys.Session(s).UserID()
	p := startProxy(t, f, adminEnv(f))
	if resp, body := p.do(request{path: "/api/v2/accounts", session: s}); resp.StatusCode != 200 {
		t.Fatalf("first request: %d %s", resp.StatusCode, body)
	}

	t.Run("lookup", func(t *testing.T) {
		resp, body := p.adminCall("GET", "/admin/v1/sessions/"+short, adminToken, nil)
		info := decodeInfo(t, resp, body)
		if info.Token == nil || info.Token.ExpiresAt == nil || !info.Token.Refreshable || info.Token.Renewal != "valid" || info.FinAPIUser != userID {
			t.Errorf("lookup = %s", body)
		}
		for _, secret := range f.secrets() {
			if len(secret) >= 6 && strings.Contains(string(body), secret) {
				t.Errorf("lookup shows a token or password")
			}
		}
		// The full hash works too.
		p.adminInfo("GET", "/admin/v1/sessions/"+keys.Session(s).ID, nil)
	})
	t.Run("logout", func(t *testing.T) {
		revokes := f.Count(emulator.CounterRevoke)
		resp, body := p.adminCall("POST", "/admin/v1/sessions/"+short+"/logout", adminToken, nil)
		if resp.StatusCode != 204 {
			t.Fatalf("logout: %d %s", resp.StatusCode, body)
		}
		if f.Count(emulator.CounterRevoke) != revokes+1 {
			t.Errorf("logout revoked nothing at finAPI")
		}
		if info := p.adminInfo("GET", "/admin/v1/sessions/"+short, nil); info.Token != nil {
			t.Errorf("token still held after logout: %+v", info)
		}
	})
	t.Run("delete user", func(t *testing.T) {
		p.do(request{path: "/api/v2/accounts", session: s})
		resp, body := p.adminCall("DELETE", "/admin/v1/sessions/"+short+"/user", adminToken, nil)
		if resp.StatusCode != 204 {
			t.Fatalf("delete: %d %s", resp.StatusCode, body)
		}
		if f.UserExists(userID) {
			t.Errorf("finAPI user %s still exists", userID)
		}
		// No token left and no adopted user: nothing to delete with.
		resp, body = p.adminCall("DELETE", "/admin/v1/sessions/"+short+"/user", adminToken, nil)
		wantError(t, resp, body, 409, "not_derivable")
	})
	t.Run("clear conflict", func(t *testing.T) {
		c := session(t, 2)
		cshort := keys.Session(c).Short()
		f.CreateUser(keys.Session(c).UserID(), foreignPass)
		resp, body := p.do(request{path: "/api/v2/accounts", session: c})
		wantError(t, resp, body, 502, "identity_conflict")
		info := p.adminInfo("DELETE", "/admin/v1/sessions/"+cshort+"/conflict", nil)
		if info.Holds.IdentityConflict != nil {
			t.Errorf("hold still there: %+v", info)
		}
		f.CreateUser(keys.Session(c).UserID(), "") // an operator resolved it elsewhere: the user is gone
		p.do(request{path: "/api/v2/accounts", session: c})
		if n := f.Count(emulator.CounterPasswordFailed); n != 2 {
			t.Errorf("failed password grants %d, want 2: the cleared hold lets the session try again", n)
		}
	})
	for _, action := range []string{"admin_lookup", "admin_logout", "admin_delete_user", "admin_clear_conflict"} {
		eventually(t, 5*time.Second, "audit event "+action, func() bool {
			return countLines(p.out.String(), `"logger":"audit"`, `"event":"`+action+`"`) > 0
		})
	}
	assertAdminSecrets(t, p, f)
}

func TestAdminRedisRestartKeepsHoldsAndAdoptions(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	keys := mustKeys(t)
	held, adopted := session(t, 1), session(t, 2)
	f.CreateUser(keys.Session(held).UserID(), foreignPass)
	f.CreateUser(keys.Session(adopted).UserID(), foreignPass)
	env := redisEnv(t, f, adminEnv(f), testRedisURL())
	p := startProxy(t, f, env)
	for _, s := range []string{held, adopted} {
		resp, body := p.do(request{path: "/api/v2/accounts", session: s})
		wantError(t, resp, body, 502, "identity_conflict")
	}
	p.adminInfo("POST", "/admin/v1/sessions/"+keys.Session(adopted).Short()+"/adopt", []byte(`{"userId":"`+keys.Session(adopted).UserID()+`"}`))
	p.stop()

	p2 := startProxy(t, f, env)
	info := p2.adminInfo("GET", "/admin/v1/sessions/"+keys.Session(held).Short(), nil)
	if info.Holds.IdentityConflict == nil {
		t.Errorf("the identity-conflict hold did not survive the restart: %+v", info)
	}
	resp, body := p2.do(request{path: "/api/v2/accounts", session: held})
	wantError(t, resp, body, 502, "identity_conflict")
	if n := f.Count(emulator.CounterPasswordFailed); n != 2 {
		t.Errorf("failed password grants %d, want 2 (one per session, none after the restart)", n)
	}
	if resp, body := p2.do(request{path: "/api/v2/accounts", session: adopted}); resp.StatusCode != 200 {
		t.Errorf("adopted session after the restart: %d %s", resp.StatusCode, body)
	}
	assertAdminSecrets(t, p2, f)
}

func TestShortAdminTokenExits2(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	dir := t.TempDir()
	file := dir + "/admin-token"
	short := "short-admin-token-DO-NOT-LOG"
	if err := writeFile(file, short+"\n"); err != nil {
		t.Fatal(err)
	}
	for name, set := range map[string][2]string{
		"variable": {"FINPROXY_ADMIN_TOKEN", short},
		"file":     {"FINPROXY_ADMIN_TOKEN_FILE", file},
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(binary)
			for k, v := range proxyEnv(f) {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			cmd.Env = append(cmd.Env, "FINPROXY_LISTEN_ADDR=127.0.0.1:1", set[0]+"="+set[1])
			out, err := cmd.CombinedOutput()
			if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 {
				t.Fatalf("exit: %v, want status 2; output:\n%s", err, out)
			}
			if countLines(string(out), "FINPROXY_ADMIN_TOKEN:", "at least 32 bytes") != 1 {
				t.Errorf("no line names FINPROXY_ADMIN_TOKEN; output:\n%s", out)
			}
			if strings.Contains(string(out), short) {
				t.Errorf("the admin token's value was printed")
			}
		})
	}
}

// TestDeletingAdoptedUserUnbindsSession: a session that deletes its
// adopted user (forwarded DELETE /api/v2/users, or DELETE
// /proxy/v1/session) is its own again: its next request gets a new user of
// its own, not an identity conflict with the deleted one for ever.
func TestDeletingAdoptedUserUnbindsSession(t *testing.T) {
	for _, c := range []struct{ name, method, path string }{
		{"forwarded", "DELETE", "/api/v2/users"},
		{"session endpoint", "DELETE", "/proxy/v1/session"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFinAPI(t, emulator.Config{})
			const foreign = "alice@backend.example"
			f.CreateUser(foreign, foreignPass)
			s := session(t, 1)
			keys := mustKeys(t)
			short, own := keys.Session(s).Short(), keys.Session(s).UserID()
			p := startProxy(t, f, adminEnv(f))
			if resp, body := p.do(request{path: "/api/v2/users", session: s}); resp.StatusCode != 200 {
				t.Fatalf("first request: %d %s", resp.StatusCode, body)
			}
			p.adminInfo("POST", "/admin/v1/sessions/"+short+"/adopt", []byte(`{"userId":"`+foreign+`"}`))
			if resp, body := p.do(request{method: c.method, path: c.path, session: s}); resp.StatusCode/100 != 2 {
				t.Fatalf("%s %s: %d %s", c.method, c.path, resp.StatusCode, body)
			}
			resp, body := p.do(request{path: "/api/v2/users", session: s})
			if resp.StatusCode != 200 || !strings.Contains(string(body), `"id":"`+own+`"`) {
				t.Fatalf("after deleting the adopted user: %d %s, want 200 as the session's own %s", resp.StatusCode, body, own)
			}
			assertAdminSecrets(t, p, f)
		})
	}
}
