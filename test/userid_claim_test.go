package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/finproxy/finproxy/test/emulator"
)

// TestJWTUserIDClaim drives FINPROXY_JWT_USER_ID_CLAIM end to end: the
// claim names the finAPI user, every spelling of it from any subject is one
// user with one token, an existing user whose password is the derived one
// is adopted, and tokens without a valid id are refused before finAPI.
func TestJWTUserIDClaim(t *testing.T) {
	hmacKey := []byte(strings.Repeat("u", 32))
	f := newFinAPI(t, emulator.Config{})
	env := proxyEnv(f)
	env["FINPROXY_SESSION_AUTH"] = "jwt"
	env["FINPROXY_JWT_HMAC_SECRET"] = string(hmacKey)
	env["FINPROXY_JWT_ISSUER"] = "https://idp.example.com"
	env["FINPROXY_JWT_USER_ID_CLAIM"] = "finapi_user"
	p := startProxy(t, f, env)
	p.waitReady()

	token := func(sub string, userID any) string {
		c := jwt.MapClaims{"iss": "https://idp.example.com", "sub": sub, "jti": fmt.Sprint(time.Now().UnixNano()),
			"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}
		if userID != nil {
			c["finapi_user"] = userID
		}
		return sign(t, jwt.SigningMethodHS256, "", hmacKey, c)
	}
	call := func(tok string) (*http.Response, []byte, error) {
		p.mu.Lock()
		p.sessions = append(p.sessions, tok)
		p.mu.Unlock()
		return p.try(request{path: "/api/v2/accounts", header: http.Header{"Authorization": {"Bearer " + tok}}})
	}
	mustCall := func(tok string) {
		t.Helper()
		resp, body, err := call(tok)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("call: %v %v %s", err, resp, body)
		}
	}

	// Concurrent first requests of ten subjects naming one id in several
	// spellings: one user, created with the id as spelled first, and one
	// password grant.
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := []string{"Alice.Smith@Example", "alice.smith@example", "ALICE.SMITH@EXAMPLE"}[i%3]
			if resp, body, err := call(token(fmt.Sprintf("subject-%d", i), id)); err != nil || resp.StatusCode != 200 {
				t.Errorf("subject %d: %v %v %s", i, err, resp, body)
			}
		}()
	}
	wg.Wait()
	if c, g := f.Count(emulator.CounterUsersCreate), f.Count(emulator.CounterPassword); c != 1 || g != 1 {
		t.Errorf("10 subjects naming one user id: %d creations, %d password grants; want 1 and 1", c, g)
	}
	if !f.UserExists("alice.smith@example") {
		t.Fatalf("no finAPI user alice.smith@example; users %v", f.Users())
	}
	creates := f.requestsTo("/api/v2/users")
	var created struct{ ID string }
	if len(creates) != 1 || json.Unmarshal(creates[0].Body, &created) != nil || !strings.EqualFold(created.ID, "alice.smith@example") {
		t.Errorf("user creation requests %d, id %q", len(creates), created.ID)
	}
	// Token rotation: a later token of another subject uses the cached token.
	mustCall(token("subject-after-rotation", "Alice.Smith@example"))
	if g := f.Count(emulator.CounterPassword); g != 1 {
		t.Errorf("password grants after a rotated token = %d, want 1", g)
	}

	// An existing user whose password is the derived one is adopted: the
	// creation answers ENTITY_EXISTS and the login succeeds.
	f.CreateUser("Carol-42", mustKeys(t).UserSession("carol-42").Password())
	mustCall(token("carol", "carol-42"))
	if n := f.Count(emulator.CounterUsersCreateExists); n != 1 {
		t.Errorf("ENTITY_EXISTS answers = %d, want 1 (the existing user adopted)", n)
	}
	// One with a password of its own is the identity conflict of today.
	f.CreateUser("dave", "a-password-of-the-teams-own-backend")
	resp, body, err := call(token("dave", "dave"))
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, resp, body, 502, "identity_conflict")

	// Refused before finAPI: no claim, an invalid or too long id.
	before := len(f.Requests())
	for name, tc := range map[string]struct {
		userID any
		reason string
	}{
		"missing":     {nil, "missing_user_id"},
		"empty":       {"", "invalid_user_id"},
		"space":       {"alice smith", "invalid_user_id"},
		"slash":       {"alice/../x", "invalid_user_id"},
		"umlaut":      {"jörg", "invalid_user_id"},
		"37 chars":    {strings.Repeat("a", 37), "invalid_user_id"},
		"not a value": {map[string]string{"id": "alice"}, "invalid_user_id"},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body, err := call(token("someone", tc.userID))
			if err != nil {
				t.Fatal(err)
			}
			wantError(t, resp, body, 401, tc.reason)
		})
	}
	mustCall(token("edge", strings.Repeat("e", 36))) // 36 is allowed
	if n := len(f.Requests()) - before; n != 3 {     // creation and grant of the 36-character id, and its call
		t.Errorf("refused tokens and one new user cost %d calls to finAPI, want 3", n)
	}
}

// TestNewVariablesOutOfModeExit2: the user id claim outside jwt user mode
// and resumable processes outside process mode stop the binary with exit 2
// and the variable named.
func TestNewVariablesOutOfModeExit2(t *testing.T) {
	base := []string{"FINPROXY_CLIENT_ID=a", "FINPROXY_CLIENT_SECRET=b", "FINPROXY_IDENTITY_SECRET=" + identitySecret}
	for name, tc := range map[string]struct {
		env  []string
		want string
	}{
		"user id claim with header sessions": {[]string{"FINPROXY_JWT_USER_ID_CLAIM=finapi_user"}, "FINPROXY_JWT_USER_ID_CLAIM:"},
		"user id claim in process mode": {[]string{"FINPROXY_JWT_USER_ID_CLAIM=finapi_user", "FINPROXY_MODE=process",
			"FINPROXY_SESSION_AUTH=jwt", "FINPROXY_JWT_HMAC_SECRET=" + strings.Repeat("h", 32)}, "FINPROXY_JWT_USER_ID_CLAIM:"},
		"resumable in user mode": {[]string{"FINPROXY_PROCESS_RESUMABLE=true"}, "FINPROXY_PROCESS_RESUMABLE:"},
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(binary, "--check")
			cmd.Env = append(append([]string{}, base...), tc.env...)
			out, _ := cmd.CombinedOutput()
			if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
				t.Errorf("exit %d, output %s; want 2 naming %s", cmd.ProcessState.ExitCode(), out, tc.want)
			}
		})
	}
}
