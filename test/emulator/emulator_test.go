package emulator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testClientID     = "test-client"
	testClientSecret = "test-secret"
)

// clock is a settable time source for Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is an emulator behind real httptest servers.
type env struct {
	t      *testing.T
	emu    *Emulator
	clock  *clock
	access *httptest.Server
	pc     *httptest.Server
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	c := &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	cfg.ClientID, cfg.ClientSecret, cfg.Now = testClientID, testClientSecret, c.Now
	emu := New(cfg)
	v := &env{t: t, emu: emu, clock: c, access: httptest.NewServer(emu.Handler()), pc: httptest.NewServer(emu.ProcessController())}
	t.Cleanup(v.access.Close)
	t.Cleanup(v.pc.Close)
	return v
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

// errorCode returns errors[0].code of an ErrorMessage body.
func (r response) errorCode(t *testing.T) string {
	t.Helper()
	var m errorMessage
	if err := json.Unmarshal(r.body, &m); err != nil || len(m.Errors) != 1 {
		t.Fatalf("body %q is not an ErrorMessage with one error: %v", r.body, err)
	}
	return m.Errors[0].Code
}

func (v *env) do(method, url, token, contentType string, body string, hdr http.Header) response {
	v.t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		v.t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		v.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (v *env) tokenRequest(form url.Values) response {
	v.t.Helper()
	return v.do(http.MethodPost, v.access.URL+"/api/v2/oauth/token", "", "application/x-www-form-urlencoded", form.Encode(), nil)
}

func clientForm() url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {testClientID}, "client_secret": {testClientSecret}}
}

func passwordForm(user, password string) url.Values {
	return url.Values{"grant_type": {"password"}, "client_id": {testClientID}, "client_secret": {testClientSecret},
		"username": {user}, "password": {password}}
}

func refreshForm(refresh string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "client_id": {testClientID}, "client_secret": {testClientSecret},
		"refresh_token": {refresh}}
}

// tokens does a token request that must succeed and returns access and
// refresh token.
func (v *env) tokens(form url.Values) (access, refresh string) {
	v.t.Helper()
	r := v.tokenRequest(form)
	if r.status != http.StatusOK {
		v.t.Fatalf("token request: status %d, body %s", r.status, r.body)
	}
	m := r.json(v.t)
	access, _ = m["access_token"].(string)
	refresh, _ = m["refresh_token"].(string)
	return access, refresh
}

func (v *env) clientToken() string {
	v.t.Helper()
	a, _ := v.tokens(clientForm())
	return a
}

// userToken creates the user and logs it in.
func (v *env) userToken(id, password string) (access, refresh string) {
	v.t.Helper()
	v.emu.CreateUser(id, password)
	return v.tokens(passwordForm(id, password))
}

func (v *env) get(path, token string) response {
	v.t.Helper()
	return v.do(http.MethodGet, v.access.URL+path, token, "", "", nil)
}

func (v *env) revoke(clientToken string, form url.Values) response {
	v.t.Helper()
	return v.do(http.MethodPost, v.access.URL+"/api/v2/oauth/revoke", clientToken, "application/x-www-form-urlencoded", form.Encode(), nil)
}

func TestTokenEndpoint(t *testing.T) {
	tests := []struct {
		name        string
		path        string
		contentType string
		form        url.Values
		basic       bool
		wantStatus  int
		wantCode    string // ErrorMessage code, or BadCredentialsError error for 401
	}{
		{name: "client credentials", form: clientForm(), wantStatus: 200},
		{name: "v1 path", path: "/oauth/token", form: clientForm(), wantStatus: 200},
		{name: "content type with charset", contentType: "application/x-www-form-urlencoded; charset=UTF-8", form: clientForm(), wantStatus: 200},
		{name: "client credentials in basic auth", basic: true, form: url.Values{"grant_type": {"client_credentials"}}, wantStatus: 200},
		{name: "json content type", contentType: "application/json", form: clientForm(), wantStatus: 400, wantCode: codeBadRequest},
		{name: "wrong secret", form: url.Values{"grant_type": {"client_credentials"}, "client_id": {testClientID}, "client_secret": {"nope"}}, wantStatus: 401, wantCode: "invalid_client"},
		{name: "no credentials", form: url.Values{"grant_type": {"client_credentials"}}, wantStatus: 401, wantCode: "invalid_client"},
		{name: "unknown grant type", form: url.Values{"grant_type": {"implicit"}, "client_id": {testClientID}, "client_secret": {testClientSecret}}, wantStatus: 400, wantCode: codeBadRequest},
		{name: "missing grant type", form: url.Values{"client_id": {testClientID}, "client_secret": {testClientSecret}}, wantStatus: 400, wantCode: codeBadRequest},
		{name: "unknown refresh token", form: refreshForm("nope"), wantStatus: 400, wantCode: codeBadRequest},
		{name: "unknown user", form: passwordForm("nobody", "secret12"), wantStatus: 400, wantCode: codeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, Config{})
			path, ct := cmpOr(tt.path, "/api/v2/oauth/token"), cmpOr(tt.contentType, "application/x-www-form-urlencoded")
			req, _ := http.NewRequest(http.MethodPost, v.access.URL+path, strings.NewReader(tt.form.Encode()))
			req.Header.Set("Content-Type", ct)
			if tt.basic {
				req.SetBasicAuth(testClientID, testClientSecret)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			r := response{status: res.StatusCode, header: res.Header, body: body}
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.wantStatus, r.body)
			}
			switch {
			case r.status == 200:
				var tok map[string]any
				json.Unmarshal(r.body, &tok)
				if tok["token_type"] != "bearer" || tok["scope"] != "all" || tok["expires_in"] != float64(3600) {
					t.Errorf("token = %s", r.body)
				}
				if a, _ := tok["access_token"].(string); len(a) != 128 || strings.ContainsAny(a, "+/=") {
					t.Errorf("access_token %q: want 128 URL-safe characters", a)
				}
				if _, ok := tok["refresh_token"]; ok {
					t.Errorf("client token has a refresh_token: %s", r.body)
				}
			case r.status == 401:
				want := `{"error":"` + tt.wantCode + `","error_description":"Bad client credentials"}`
				if string(r.body) != want {
					t.Errorf("body = %s, want %s", r.body, want)
				}
				if v.emu.Count(CounterInvalidClient) != 1 {
					t.Errorf("%s = %d, want 1", CounterInvalidClient, v.emu.Count(CounterInvalidClient))
				}
			default:
				if got := r.errorCode(t); got != tt.wantCode {
					t.Errorf("code = %s, want %s", got, tt.wantCode)
				}
			}
		})
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func TestSameTokenWhileValid(t *testing.T) {
	v := newEnv(t, Config{UserTokenTTL: 30 * time.Minute})

	c1 := v.tokenRequest(clientForm()).json(t)
	v.clock.Add(10 * time.Minute)
	c2 := v.tokenRequest(clientForm()).json(t)
	if c1["access_token"] != c2["access_token"] {
		t.Errorf("client token changed while valid")
	}
	if c2["expires_in"] != float64(3000) {
		t.Errorf("expires_in after 10 minutes = %v, want 3000", c2["expires_in"])
	}
	v.clock.Add(50 * time.Minute)
	if c3 := v.tokenRequest(clientForm()).json(t); c3["access_token"] == c1["access_token"] || c3["expires_in"] != float64(3600) {
		t.Errorf("expired client token not replaced: %v", c3)
	}

	a1, r1 := v.userToken("alice", "secret12")
	a2, r2 := v.tokens(passwordForm("ALICE", "secret12")) // ids are case-insensitive
	if a1 != a2 || r1 != r2 || r1 == "" {
		t.Errorf("password grant changed tokens while valid")
	}
	// AccessToken.refresh_token is "only set in case of grant_type='password'":
	// a refresh answer has none, and the refresh token stays valid.
	a3, r3 := v.tokens(refreshForm(r1))
	if a3 == a1 || r3 != "" {
		t.Errorf("refresh: got the same access token, or a refresh_token (%q)", r3)
	}
	if got := v.get("/api/v2/users", a1); got.status != 200 {
		t.Errorf("old access token after refresh: status %d, want 200", got.status)
	}
	if a4, _ := v.tokens(passwordForm("alice", "secret12")); a4 != a3 {
		t.Errorf("password grant after refresh did not return the refreshed token")
	}
	v.clock.Add(31 * time.Minute)
	if got := v.get("/api/v2/users", a3); got.status != 401 {
		t.Errorf("expired user token: status %d, want 401", got.status)
	}
	a5, r5 := v.tokens(passwordForm("alice", "secret12"))
	if a5 == a3 || r5 != r1 {
		t.Errorf("after expiry: want a new access token on the same refresh token")
	}
	for name, want := range map[string]int{CounterClientCredentials: 3, CounterPassword: 4, CounterRefreshToken: 1, CounterUnauthorized: 1} {
		if got := v.emu.Count(name); got != want {
			t.Errorf("Count(%q) = %d, want %d", name, got, want)
		}
	}
}

func TestRefreshRevokesOld(t *testing.T) {
	v := newEnv(t, Config{RefreshRevokesOld: true})
	a1, r1 := v.userToken("alice", "secret12")
	a2, _ := v.tokens(refreshForm(r1))
	if got := v.get("/api/v2/users", a1).status; got != 401 {
		t.Errorf("old token: status %d, want 401", got)
	}
	if got := v.get("/api/v2/users", a2).status; got != 200 {
		t.Errorf("new token: status %d, want 200", got)
	}
}

func TestLoginLocking(t *testing.T) {
	tests := []struct {
		name     string
		max      int
		attempts []string // passwords tried, in order
		want     []int    // statuses
	}{
		{name: "locked after default 3", attempts: []string{"bad", "bad", "bad", "secret12"}, want: []int{400, 400, 400, 423}},
		{name: "locked after 1", max: 1, attempts: []string{"bad", "secret12", "bad"}, want: []int{400, 423, 423}},
		{name: "success resets the counter", attempts: []string{"bad", "bad", "secret12", "bad", "bad", "secret12"}, want: []int{400, 400, 200, 400, 400, 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, Config{MaxLoginAttempts: tt.max})
			v.emu.CreateUser("alice", "secret12")
			for i, pw := range tt.attempts {
				r := v.tokenRequest(passwordForm("alice", pw))
				if r.status != tt.want[i] {
					t.Fatalf("attempt %d: status %d, want %d; body %s", i+1, r.status, tt.want[i], r.body)
				}
				want := map[int]string{400: codeBadRequest, 423: codeLocked}[r.status]
				if want != "" && r.errorCode(t) != want {
					t.Errorf("attempt %d: code %s, want %s", i+1, r.errorCode(t), want)
				}
			}
		})
	}

	t.Run("locking invalidates tokens", func(t *testing.T) {
		v := newEnv(t, Config{MaxLoginAttempts: 1})
		a, r := v.userToken("alice", "secret12")
		v.tokenRequest(passwordForm("alice", "bad"))
		if got := v.get("/api/v2/accounts", a).status; got != 401 {
			t.Errorf("token of locked user: status %d, want 401", got)
		}
		if got := v.tokenRequest(refreshForm(r)).status; got != 400 {
			t.Errorf("refresh token of locked user: status %d, want 400", got)
		}
	})
}

func TestCreateUser(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		userToken  bool
		noToken    bool
		wantStatus int
		wantCode   string
	}{
		{name: "valid", body: `{"id":"bob","password":"secret12","email":"bob@example.com"}`, wantStatus: 201},
		{name: "all allowed id characters", body: `{"id":"aZ0-_.+@","password":"secret12"}`, wantStatus: 201},
		{name: "36 character id", body: `{"id":"` + strings.Repeat("a", 36) + `","password":"secret12"}`, wantStatus: 201},
		{name: "6 character password", body: `{"id":"bob","password":"123456"}`, wantStatus: 201},
		{name: "128 character password", body: `{"id":"bob","password":"` + strings.Repeat("p", 128) + `"}`, wantStatus: 201},
		{name: "generated id and password", body: `{}`, wantStatus: 201},
		{name: "exists", body: `{"id":"alice","password":"other123"}`, wantStatus: 422, wantCode: codeEntityExists},
		{name: "exists in other case", body: `{"id":"ALICE","password":"other123"}`, wantStatus: 422, wantCode: codeEntityExists},
		{name: "37 character id", body: `{"id":"` + strings.Repeat("a", 37) + `","password":"secret12"}`, wantStatus: 400, wantCode: codeBadRequest},
		{name: "id with space", body: `{"id":"a b","password":"secret12"}`, wantStatus: 400, wantCode: codeBadRequest},
		{name: "id with umlaut", body: `{"id":"jürgen","password":"secret12"}`, wantStatus: 400, wantCode: codeBadRequest},
		{name: "5 character password", body: `{"id":"bob","password":"12345"}`, wantStatus: 400, wantCode: codeBadRequest},
		{name: "129 character password", body: `{"id":"bob","password":"` + strings.Repeat("p", 129) + `"}`, wantStatus: 400, wantCode: codeBadRequest},
		{name: "malformed JSON", body: `{"id":`, wantStatus: 400, wantCode: codeBadRequest},
		{name: "user token", body: `{"id":"bob","password":"secret12"}`, userToken: true, wantStatus: 403, wantCode: codeUnauthorized},
		{name: "no token", body: `{"id":"bob","password":"secret12"}`, noToken: true, wantStatus: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, Config{})
			v.emu.CreateUser("alice", "secret12")
			token := v.clientToken()
			if tt.userToken {
				token, _ = v.tokens(passwordForm("alice", "secret12"))
			}
			if tt.noToken {
				token = ""
			}
			r := v.do(http.MethodPost, v.access.URL+"/api/v2/users", token, "application/json", tt.body, nil)
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.wantStatus, r.body)
			}
			wantCreated, wantExists := 0, 0
			switch r.status {
			case 201:
				wantCreated = 1
				var sent, got map[string]any
				json.Unmarshal([]byte(tt.body), &sent)
				got = r.json(t)
				for _, k := range []string{"id", "password", "email", "phone", "isAutoUpdateEnabled"} {
					if _, ok := got[k]; !ok {
						t.Errorf("User lacks %q: %s", k, r.body)
					}
				}
				if sent["password"] != nil && got["password"] != sent["password"] {
					t.Errorf("password = %v, want it in plain text", got["password"])
				}
				if !v.emu.UserExists(got["id"].(string)) {
					t.Errorf("created user %v does not exist", got["id"])
				}
			case 401:
				if r.json(t)["error"] != "invalid_token" {
					t.Errorf("401 body = %s", r.body)
				}
			default:
				if code := r.errorCode(t); code != tt.wantCode {
					t.Errorf("code = %s, want %s", code, tt.wantCode)
				}
				if r.status == 422 {
					wantExists = 1
				}
			}
			if got := v.emu.Count(CounterUsersCreate); got != wantCreated {
				t.Errorf("Count(users.create) = %d, want %d", got, wantCreated)
			}
			if got := v.emu.Count(CounterUsersCreateExists); got != wantExists {
				t.Errorf("Count(users.create.exists) = %d, want %d", got, wantExists)
			}
		})
	}
}

func TestRoles(t *testing.T) {
	v := newEnv(t, Config{})
	client := v.clientToken()
	user, _ := v.userToken("alice", "secret12")
	tests := []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/api/v2/users", client, 403},
		{"DELETE", "/api/v2/users", client, 403},
		{"GET", "/api/v2/accounts", client, 403},
		{"GET", "/api/v2/bankConnections", client, 403},
		{"POST", "/api/v2/oauth/revoke", user, 403},
		{"GET", "/api/v2/banks", client, 200},
		{"GET", "/api/v2/banks", user, 200},
		{"GET", "/api/v2/users", user, 200},
		{"GET", "/api/v2/accounts", user, 200},
		{"GET", "/api/v2/bankConnections", user, 200},
		{"GET", "/api/v2/accounts", "", 401},
		{"GET", "/api/v2/accounts", "garbage", 401},
		{"GET", "/api/v2/nothing", user, 404},
		{"PUT", "/api/v2/accounts", user, 405},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := v.do(tt.method, v.access.URL+tt.path, tt.token, "application/x-www-form-urlencoded", "token=x", nil)
			if r.status != tt.want {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.want, r.body)
			}
			if tt.want == 403 && r.errorCode(t) != codeUnauthorized {
				t.Errorf("code = %s, want %s", r.errorCode(t), codeUnauthorized)
			}
		})
	}
}

func TestAccountsShape(t *testing.T) {
	v := newEnv(t, Config{})
	a, _ := v.userToken("alice", "secret12")
	r1, r2 := v.get("/api/v2/accounts", a), v.get("/api/v2/accounts", a)
	if !bytes.Equal(r1.body, r2.body) {
		t.Errorf("accounts are not deterministic")
	}
	var list struct {
		Accounts []map[string]any `json:"accounts"`
		Paging   paging           `json:"paging"`
	}
	if err := json.Unmarshal(r1.body, &list); err != nil || len(list.Accounts) != 2 || list.Paging.TotalCount != 2 {
		t.Fatalf("accounts = %s (%v)", r1.body, err)
	}
	id := int64(list.Accounts[0]["id"].(float64))
	if got := v.get("/api/v2/accounts/"+jsonInt(id), a); got.status != 200 {
		t.Errorf("GET account %d: status %d", id, got.status)
	}
	if got := v.get("/api/v2/accounts/1", a); got.status != 404 || got.errorCode(t) != codeUnknownEntity {
		t.Errorf("GET unknown account: status %d body %s", got.status, got.body)
	}
	if got := v.emu.Count(CounterData); got != 4 {
		t.Errorf("Count(data) = %d, want 4", got)
	}
}

func jsonInt(i int64) string { b, _ := json.Marshal(i); return string(b) }

func TestImportReportsBodyHash(t *testing.T) {
	v := newEnv(t, Config{})
	a, _ := v.userToken("alice", "secret12")
	body := `{"bankId":280001, "name":"Giro",  "interface":"FINTS_SERVER"}`
	r := v.do(http.MethodPost, v.access.URL+"/api/v2/bankConnections/import", a, "application/json", body, nil)
	if r.status != 201 {
		t.Fatalf("status %d, body %s", r.status, r.body)
	}
	sum := sha256.Sum256([]byte(body))
	if got := r.json(t)["receivedBodySha256"]; got != hex.EncodeToString(sum[:]) {
		t.Errorf("receivedBodySha256 = %v", got)
	}
	var conns struct {
		Connections []bankConnection `json:"connections"`
	}
	json.Unmarshal(v.get("/api/v2/bankConnections", a).body, &conns)
	if len(conns.Connections) != 2 || conns.Connections[1].ReceivedBodySha256 != "" {
		t.Errorf("connections after import = %+v", conns.Connections)
	}
	if r := v.do(http.MethodPost, v.access.URL+"/api/v2/bankConnections/import", a, "application/json", "{", nil); r.status != 400 {
		t.Errorf("malformed import: status %d", r.status)
	}
}

func TestRevoke(t *testing.T) {
	tests := []struct {
		name          string
		hint          string
		revokeRefresh bool // revoke the refresh token instead of the access token
		wantAccess    int  // status of a call with the access token afterwards
		wantRefresh   int  // status of a refresh grant afterwards
	}{
		{name: "access token with hint", hint: "access_token", wantAccess: 401, wantRefresh: 200},
		{name: "access token without hint", wantAccess: 401, wantRefresh: 400},
		{name: "refresh token with hint", hint: "refresh_token", revokeRefresh: true, wantAccess: 401, wantRefresh: 400},
		{name: "refresh token without hint", revokeRefresh: true, wantAccess: 401, wantRefresh: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, Config{})
			a, r := v.userToken("alice", "secret12")
			form := url.Values{"token": {a}}
			if tt.revokeRefresh {
				form.Set("token", r)
			}
			if tt.hint != "" {
				form.Set("token_type_hint", tt.hint)
			}
			if res := v.revoke(v.clientToken(), form); res.status != 200 || len(res.body) != 0 {
				t.Fatalf("revoke: status %d body %q", res.status, res.body)
			}
			if got := v.get("/api/v2/accounts", a).status; got != tt.wantAccess {
				t.Errorf("access token: status %d, want %d", got, tt.wantAccess)
			}
			if got := v.tokenRequest(refreshForm(r)).status; got != tt.wantRefresh {
				t.Errorf("refresh grant: status %d, want %d", got, tt.wantRefresh)
			}
		})
	}

	t.Run("unknown token and bad callers", func(t *testing.T) {
		v := newEnv(t, Config{})
		if got := v.revoke(v.clientToken(), url.Values{"token": {"unknown"}}).status; got != 200 {
			t.Errorf("unknown token: status %d, want 200", got)
		}
		if got := v.revoke("", url.Values{"token": {"unknown"}}).status; got != 401 {
			t.Errorf("no client token: status %d, want 401", got)
		}
		if got := v.revoke(v.clientToken(), url.Values{"token": {"x"}, "token_type_hint": {"id_token"}}).status; got != 400 {
			t.Errorf("bad hint: status %d, want 400", got)
		}
		if got := v.emu.Count(CounterRevoke); got != 1 {
			t.Errorf("Count(revoke) = %d, want 1", got)
		}
	})

	t.Run("revoking the client token", func(t *testing.T) {
		v := newEnv(t, Config{})
		c := v.clientToken()
		v.revoke(c, url.Values{"token": {c}})
		if got := v.get("/api/v2/banks", c).status; got != 401 {
			t.Errorf("revoked client token: status %d, want 401", got)
		}
		if c2 := v.clientToken(); c2 == c {
			t.Errorf("revoked client token handed out again")
		}
	})
}

func TestDeleteUser(t *testing.T) {
	v := newEnv(t, Config{})
	a, r := v.userToken("alice", "secret12")

	v.emu.SetUserBusy("ALICE", true)
	res := v.do(http.MethodDelete, v.access.URL+"/api/v2/users", a, "", "", nil)
	if res.status != 423 || res.errorCode(t) != codeLocked {
		t.Fatalf("busy user: status %d body %s", res.status, res.body)
	}
	v.emu.SetUserBusy("alice", false)

	res = v.do(http.MethodDelete, v.access.URL+"/api/v2/users", a, "", "", nil)
	if res.status != 200 || len(res.body) != 0 {
		t.Fatalf("delete: status %d body %q", res.status, res.body)
	}
	if v.emu.UserExists("alice") || len(v.emu.Users()) != 0 {
		t.Errorf("user still exists")
	}
	if got := v.get("/api/v2/users", a).status; got != 401 {
		t.Errorf("token of deleted user: status %d, want 401", got)
	}
	if got := v.tokenRequest(refreshForm(r)).status; got != 400 {
		t.Errorf("refresh token of deleted user: status %d, want 400", got)
	}
	if got := v.emu.Count(CounterUsersDelete); got != 1 {
		t.Errorf("Count(users.delete) = %d, want 1", got)
	}
}

func TestGetAndEditUser(t *testing.T) {
	v := newEnv(t, Config{})
	a, _ := v.userToken("Alice", "secret12")
	got := v.get("/api/v2/users", a).json(t)
	if got["id"] != "Alice" || got["password"] != "XXXXX" {
		t.Errorf("GET /users = %v", got)
	}
	// POST with X-HTTP-Method-Override: PATCH is a PATCH for finAPI.
	res := v.do(http.MethodPost, v.access.URL+"/api/v2/users", a, "application/json", `{"email":"a@example.com"}`,
		http.Header{"X-Http-Method-Override": {"PATCH"}})
	if res.status != 200 || res.json(t)["email"] != "a@example.com" || res.json(t)["password"] != "XXXXX" {
		t.Errorf("PATCH /users: status %d body %s", res.status, res.body)
	}
}

func TestErrorMessageShape(t *testing.T) {
	v := newEnv(t, Config{})
	res := v.do(http.MethodGet, v.access.URL+"/api/v2/nothing", "", "", "", http.Header{"X-Request-Id": {"req-1"}})
	var m map[string]json.RawMessage
	if err := json.Unmarshal(res.body, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"errors", "date", "requestId", "endpoint", "authContext", "bank"} {
		if _, ok := m[k]; !ok {
			t.Errorf("ErrorMessage lacks %q: %s", k, res.body)
		}
	}
	var em errorMessage
	json.Unmarshal(res.body, &em)
	if em.RequestID != "req-1" || em.Endpoint != "GET /api/v2/nothing" || em.Date != "2026-01-02 03:04:05.000" ||
		em.Errors[0].Type != "TECHNICAL" || em.Errors[0].Code != codeUnknownEntity {
		t.Errorf("ErrorMessage = %s", res.body)
	}
	if got := res.header.Get("X-Request-Id"); got != "req-1" {
		t.Errorf("X-Request-Id = %q, want req-1", got)
	}
	if got := v.get("/api/v2/banks", "").header.Get("X-Request-Id"); !strings.HasPrefix(got, "selfgen-") {
		t.Errorf("generated X-Request-Id = %q", got)
	}
}

func TestRequestsAndReset(t *testing.T) {
	v := newEnv(t, Config{})
	v.do(http.MethodPost, v.access.URL+"/api/v2/users?a=%20b", "tok", "application/json", `{"id":"x"}`, http.Header{"X-Test": {"1"}})
	v.do(http.MethodPost, v.pc.URL+"/api/v1/processes", "", "application/json", `{}`, nil)
	reqs := v.emu.Requests()
	if len(reqs) != 2 {
		t.Fatalf("len(Requests) = %d, want 2", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/api/v2/users" || r.RawQuery != "a=%20b" || r.Header.Get("X-Test") != "1" ||
		r.Header.Get("Authorization") != "Bearer tok" || string(r.Body) != `{"id":"x"}` {
		t.Errorf("recorded %+v", r)
	}
	if reqs[1].Path != "/api/v1/processes" {
		t.Errorf("process controller request not recorded: %+v", reqs[1])
	}
	v.emu.FailNext("/", 500, 5)
	v.emu.SetDown(true)
	v.emu.Reset()
	if len(v.emu.Requests()) != 0 || v.emu.Count(CounterUnauthorized) != 0 {
		t.Errorf("Reset kept requests or counters")
	}
	if got := v.tokenRequest(clientForm()).status; got != 200 {
		t.Errorf("after Reset: token status %d, want 200", got)
	}
}

func TestFailNext(t *testing.T) {
	tests := []struct {
		status   int
		wantCode string
	}{
		{503, codeUnexpected},
		{500, codeUnexpected},
		{423, codeLocked},
		{400, codeBadRequest},
		{401, ""},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			v := newEnv(t, Config{})
			a, _ := v.userToken("alice", "secret12")
			v.emu.FailNext("/api/v2/acc", tt.status, 2)
			for i := range 2 {
				r := v.get("/api/v2/accounts", a)
				if r.status != tt.status {
					t.Fatalf("call %d: status %d, want %d", i+1, r.status, tt.status)
				}
				if tt.status == 401 {
					if r.json(t)["error"] != "invalid_token" {
						t.Errorf("401 body %s", r.body)
					}
				} else if code := r.errorCode(t); code != tt.wantCode {
					t.Errorf("code = %s, want %s", code, tt.wantCode)
				}
			}
			if r := v.get("/api/v2/accounts", a); r.status != 200 {
				t.Errorf("third call: status %d, want 200", r.status)
			}
			if got := v.emu.Count(CounterData); got != 1 {
				t.Errorf("Count(data) = %d, want 1 (failed calls do nothing)", got)
			}
			if got := len(v.emu.Requests()); got != 4 { // password grant and three data calls
				t.Errorf("len(Requests) = %d, want 4 (failed calls are recorded)", got)
			}
		})
	}

	t.Run("token endpoint", func(t *testing.T) {
		v := newEnv(t, Config{})
		v.emu.FailNext("/api/v2/oauth/token", 502, 1)
		if got := v.tokenRequest(clientForm()).status; got != 502 {
			t.Errorf("status %d, want 502", got)
		}
		if got := v.emu.Count(CounterClientCredentials); got != 0 {
			t.Errorf("Count(client_credentials) = %d, want 0", got)
		}
	})
}

func TestLatency(t *testing.T) {
	v := newEnv(t, Config{})
	v.emu.SetLatency("/api/v2/banks", time.Minute)
	v.emu.SetLatency("/api/v2/oauth", 20*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, v.access.URL+"/api/v2/banks", nil)
	start := time.Now()
	_, err := http.DefaultClient.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("cancelled request took %v", d)
	}

	start = time.Now()
	c := v.clientToken()
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("token request took %v, want at least 20ms", d)
	}
	v.emu.SetLatency("/api/v2/banks", 0)
	if got := v.get("/api/v2/banks", c).status; got != 200 {
		t.Errorf("after removing latency: status %d", got)
	}
}

func TestRejectNextUserToken(t *testing.T) {
	v := newEnv(t, Config{})
	a, r := v.userToken("alice", "secret12")
	client := v.clientToken()
	v.emu.RejectNextUserToken(1)

	if got := v.get("/api/v2/banks", client).status; got != 200 {
		t.Errorf("client token on banks: status %d, want 200 (not a user token)", got)
	}
	res := v.get("/api/v2/accounts", a)
	if res.status != 401 || res.json(t)["error"] != "invalid_token" {
		t.Fatalf("first call: status %d body %s", res.status, res.body)
	}
	if got := v.get("/api/v2/accounts", a).status; got != 401 {
		t.Errorf("rejected token again: status %d, want 401 (it was invalidated)", got)
	}
	a2, _ := v.tokens(passwordForm("alice", "secret12"))
	if a2 == a {
		t.Fatalf("password grant returned the invalidated token")
	}
	if got := v.get("/api/v2/accounts", a2).status; got != 200 {
		t.Errorf("new token: status %d, want 200", got)
	}
	if a3, _ := v.tokens(refreshForm(r)); v.get("/api/v2/users", a3).status != 200 {
		t.Errorf("refresh token stopped working after a rejected access token")
	}
	if got := v.emu.Count(CounterUnauthorized); got != 2 {
		t.Errorf("Count(unauthorized) = %d, want 2", got)
	}
}

func TestSetDownAndRevokeAll(t *testing.T) {
	v := newEnv(t, Config{})
	a, r := v.userToken("alice", "secret12")
	v.emu.SetDown(true)
	if res := v.tokenRequest(clientForm()); res.status != 503 || res.errorCode(t) != codeUnexpected {
		t.Errorf("down: token status %d body %s", res.status, res.body)
	}
	if got := v.get("/api/v2/accounts", a).status; got != 200 {
		t.Errorf("down: data status %d, want 200", got)
	}
	v.emu.SetDown(false)
	c := v.clientToken()

	v.emu.RevokeAll()
	for _, tok := range []string{a, c} {
		if got := v.get("/api/v2/banks", tok).status; got != 401 {
			t.Errorf("after RevokeAll: status %d, want 401", got)
		}
	}
	if got := v.tokenRequest(refreshForm(r)).status; got != 400 {
		t.Errorf("after RevokeAll: refresh status %d, want 400", got)
	}
	if !v.emu.UserExists("alice") {
		t.Errorf("RevokeAll deleted the user")
	}
}

func (v *env) createProcess(body string) response {
	v.t.Helper()
	return v.do(http.MethodPost, v.pc.URL+"/api/v1/processes", "", "application/json", body, nil)
}

func (v *env) newProcess() string {
	v.t.Helper()
	res := v.createProcess(`{"clientId":"` + testClientID + `","clientSecret":"` + testClientSecret + `","clientReferences":[{"clientReference":"ref-1"}],"processId":"USER_ONLY"}`)
	if res.status != 201 {
		v.t.Fatalf("create process: status %d body %s", res.status, res.body)
	}
	return processTokenOf(v.t, res, "ref-1")
}

// processTokenOf reads the entry of ref in a creation answer, which must
// have finAPI's shape {"processes":[{"clientReference","processToken"}]}.
func processTokenOf(t *testing.T, res response, ref string) string {
	t.Helper()
	var out struct {
		Processes []struct {
			ClientReference string `json:"clientReference"`
			ProcessToken    string `json:"processToken"`
		} `json:"processes"`
	}
	if err := json.Unmarshal(res.body, &out); err != nil {
		t.Fatalf("creation answer %s: %v", res.body, err)
	}
	for _, p := range out.Processes {
		if p.ClientReference == ref {
			return p.ProcessToken
		}
	}
	t.Fatalf("creation answer %s has no entry for %q", res.body, ref)
	return ""
}

func (v *env) exchange(processToken, invalidate string) response {
	v.t.Helper()
	u := v.pc.URL + "/api/v1/processes/" + processToken
	if invalidate != "" {
		u += "?invalidate=" + invalidate
	}
	return v.do(http.MethodGet, u, "", "", "", nil)
}

func TestProcessCreate(t *testing.T) {
	tests := []struct {
		name string
		body string
		want int
	}{
		{"valid", `{"clientId":"test-client","clientSecret":"test-secret","clientReferences":[{"clientReference":"r"}],"processId":"USER_ONLY"}`, 201},
		{"no references", `{"clientId":"test-client","clientSecret":"test-secret","processId":"USER_ONLY"}`, 400},
		{"wrong secret", `{"clientId":"test-client","clientSecret":"nope","processId":"USER_ONLY"}`, 401},
		{"missing processId", `{"clientId":"test-client","clientSecret":"test-secret"}`, 400},
		{"malformed", `{"clientId":`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, Config{})
			res := v.createProcess(tt.body)
			if res.status != tt.want {
				t.Fatalf("status %d, want %d; body %s", res.status, tt.want, res.body)
			}
			if tt.want == 201 {
				if _, top := res.json(t)["processToken"]; top {
					t.Errorf("answer %s has a top-level processToken; finAPI answers a list", res.body)
				}
				if tok := processTokenOf(t, res, "r"); len(tok) != 36 {
					t.Errorf("processToken %q is not a UUID", tok)
				}
				if v.emu.Processes() != 1 || v.emu.Count(CounterProcessCreate) != 1 {
					t.Errorf("Processes() = %d", v.emu.Processes())
				}
			} else {
				res.errorCode(t)
			}
		})
	}
}

func TestProcessExchange(t *testing.T) {
	t.Run("at most 10 exchanges", func(t *testing.T) {
		v := newEnv(t, Config{})
		p := v.newProcess()
		var first string
		for i := range maxExchanges {
			res := v.exchange(p, "false")
			if res.status != 200 {
				t.Fatalf("exchange %d: status %d body %s", i+1, res.status, res.body)
			}
			m := res.json(t)
			if len(m) != 1 {
				t.Errorf("exchange answer %s, want {\"accessToken\"} only", res.body)
			}
			if i == 0 {
				first = m["accessToken"].(string)
			} else if m["accessToken"] != first {
				t.Errorf("exchange %d: access token changed while valid", i+1)
			}
		}
		if res := v.exchange(p, ""); res.status != 404 || res.errorCode(t) != codeUnknownEntity {
			t.Errorf("11th exchange: status %d body %s", res.status, res.body)
		}
		if got := v.emu.Count(CounterProcessExchange); got != maxExchanges {
			t.Errorf("Count(process.exchange) = %d", got)
		}
	})

	t.Run("one process per client reference", func(t *testing.T) {
		v := newEnv(t, Config{})
		res := v.createProcess(`{"clientId":"` + testClientID + `","clientSecret":"` + testClientSecret + `","clientReferences":[{"clientReference":"a"},{"clientReference":"b"}],"processId":"USER_ONLY"}`)
		a, b := processTokenOf(t, res, "a"), processTokenOf(t, res, "b")
		if a == b || v.emu.Processes() != 2 {
			t.Errorf("tokens %q %q, %d processes; want two processes", a, b, v.emu.Processes())
		}
	})

	t.Run("none after the exchange period", func(t *testing.T) {
		v := newEnv(t, Config{ProcessExchangePeriod: 24 * time.Hour})
		p := v.newProcess()
		v.clock.Add(24 * time.Hour)
		if res := v.exchange(p, "true"); res.status != 404 {
			t.Errorf("exchange after the period: status %d, want 404", res.status)
		}
	})

	t.Run("none after invalidate", func(t *testing.T) {
		v := newEnv(t, Config{})
		p := v.newProcess()
		if res := v.exchange(p, "true"); res.status != 200 {
			t.Fatalf("status %d", res.status)
		}
		if res := v.exchange(p, "false"); res.status != 404 {
			t.Errorf("after invalidate: status %d, want 404", res.status)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		v := newEnv(t, Config{})
		if res := v.exchange(newUUID(), ""); res.status != 404 {
			t.Errorf("unknown token: status %d, want 404", res.status)
		}
		if res := v.exchange(v.newProcess(), "maybe"); res.status != 400 {
			t.Errorf("invalidate=maybe: status %d, want 400", res.status)
		}
	})

	t.Run("access token works against Access and expires", func(t *testing.T) {
		v := newEnv(t, Config{ProcessTokenTTL: 10 * time.Minute})
		a := v.exchange(v.newProcess(), "true").json(t)["accessToken"].(string)
		if res := v.get("/api/v2/accounts", a); res.status != 200 {
			t.Errorf("accounts: status %d body %s", res.status, res.body)
		}
		u := v.get("/api/v2/users", a).json(t)
		if id, _ := u["id"].(string); !v.emu.UserExists(id) || len(id) > 36 {
			t.Errorf("process user %q", id)
		}
		v.clock.Add(10 * time.Minute)
		if res := v.get("/api/v2/accounts", a); res.status != 401 {
			t.Errorf("after ProcessTokenTTL: status %d, want 401", res.status)
		}
	})

	t.Run("revoked token is replaced on the next exchange", func(t *testing.T) {
		v := newEnv(t, Config{})
		p := v.newProcess()
		a := v.exchange(p, "false").json(t)["accessToken"].(string)
		v.emu.RevokeAll()
		b := v.exchange(p, "false").json(t)["accessToken"].(string)
		if a == b || v.get("/api/v2/accounts", b).status != 200 {
			t.Errorf("revoked process token not replaced by a working one")
		}
	})
}

func TestEchoHandler(t *testing.T) {
	srv := httptest.NewServer(EchoHandler())
	defer srv.Close()
	tests := []struct {
		name, target string
		wantPath     string
		wantRawPath  string
		wantQuery    string
	}{
		{"plain", "/api/v2/accounts?ids=1,2", "/api/v2/accounts", "", "ids=1,2"},
		{"encoded slash", "/di/a%2Fb/c?x=%2F", "/di/a/b/c", "/di/a%2Fb/c", "x=%2F"},
		{"encoded space and plus", "/p%20q+r?q=a+b%20c&q=%26", "/p q+r", "", "q=a+b%20c&q=%26"},
		{"empty query value order", "/x?b=2&a=1&b=", "/x", "", "b=2&a=1&b="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPut, srv.URL+tt.target, strings.NewReader("raw body\x00"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Custom", "v1")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var got echoResponse
			if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if got.Method != "PUT" || got.Path != tt.wantPath || got.RawPath != tt.wantRawPath ||
				got.RawQuery != tt.wantQuery || got.RequestURI != tt.target || got.Body != "raw body\x00" ||
				got.Headers["X-Custom"][0] != "v1" {
				t.Errorf("echo = %+v", got)
			}
		})
	}
}

func TestConcurrentPasswordGrantsShareOneToken(t *testing.T) {
	v := newEnv(t, Config{})
	v.emu.CreateUser("alice", "secret12")
	var wg sync.WaitGroup
	tokens := make([]string, 20)
	for i := range tokens {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, v.access.URL+"/api/v2/oauth/token", strings.NewReader(passwordForm("alice", "secret12").Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			defer res.Body.Close()
			var tok tokenResponse
			json.NewDecoder(res.Body).Decode(&tok)
			tokens[i] = tok.AccessToken
		})
	}
	wg.Wait()
	for i, tok := range tokens {
		if tok == "" || tok != tokens[0] {
			t.Errorf("token %d differs", i)
		}
	}
	if got := v.emu.Count(CounterPassword); got != len(tokens) {
		t.Errorf("Count(token.password) = %d, want %d", got, len(tokens))
	}
}

// TestManualUserVerification: with isUserAutoVerificationEnabled=false a
// new user's password grant answers 403 until the client verifies it.
func TestManualUserVerification(t *testing.T) {
	v := newEnv(t, Config{ManualUserVerification: true})
	ct := v.clientToken()
	if res := v.do(http.MethodPost, v.access.URL+"/api/v2/users", ct, "application/json", `{"id":"bob","password":"secret12"}`, nil); res.status != 201 {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	res := v.tokenRequest(passwordForm("bob", "secret12"))
	if res.status != 403 || res.errorCode(t) != codeUserNotVerified {
		t.Fatalf("password grant of an unverified user: %d %s, want 403 USER_NOT_VERIFIED", res.status, res.body)
	}
	// A wrong password is still a 400, and the user must exist.
	if res := v.tokenRequest(passwordForm("bob", "wrong-pw")); res.status != 400 {
		t.Errorf("wrong password of an unverified user: %d, want 400", res.status)
	}
	if res := v.do(http.MethodPost, v.access.URL+"/api/v2/users/verify/nobody", ct, "", "", nil); res.status != 404 {
		t.Errorf("verify an unknown user: %d, want 404", res.status)
	}
	if res := v.do(http.MethodPost, v.access.URL+"/api/v2/users/verify/BOB", ct, "", "", nil); res.status != 200 || len(res.body) != 0 {
		t.Fatalf("verify (ids case-insensitive): %d %s, want 200 with an empty body", res.status, res.body)
	}
	if res := v.do(http.MethodPost, v.access.URL+"/api/v2/users/verify/bob", ct, "", "", nil); res.status != 422 || res.errorCode(t) != codeAlreadyVerified {
		t.Errorf("verify twice: %d %s, want 422 USER_ALREADY_VERIFIED", res.status, res.body)
	}
	if a, r := v.tokens(passwordForm("bob", "secret12")); a == "" || r == "" {
		t.Errorf("password grant after verification: %q %q", a, r)
	}
	if got := v.emu.Count(CounterUsersVerify); got != 1 {
		t.Errorf("Count(users.verify) = %d, want 1", got)
	}
	// Verifying needs the client token.
	ua, _ := v.tokens(passwordForm("bob", "secret12"))
	if res := v.do(http.MethodPost, v.access.URL+"/api/v2/users/verify/bob", ua, "", "", nil); res.status != 403 {
		t.Errorf("verify with a user token: %d, want 403", res.status)
	}
}

// TestRequestIDLimit: finAPI refuses request ids over 255 characters.
func TestRequestIDLimit(t *testing.T) {
	v := newEnv(t, Config{})
	long := strings.Repeat("r", 256)
	res := v.do(http.MethodPost, v.access.URL+"/api/v2/oauth/token", "", "application/x-www-form-urlencoded", clientForm().Encode(), http.Header{"X-Request-Id": {long}})
	if res.status != 400 {
		t.Errorf("256-character request id: %d, want 400", res.status)
	}
	res = v.do(http.MethodPost, v.access.URL+"/api/v2/oauth/token", "", "application/x-www-form-urlencoded", clientForm().Encode(), http.Header{"X-Request-Id": {long[:255]}})
	if res.status != 200 || res.header.Get("X-Request-Id") != long[:255] {
		t.Errorf("255-character request id: %d, echoed %q", res.status, res.header.Get("X-Request-Id"))
	}
}

// TestFixedHandler: the benchmark upstream answers every request with the
// same account list whatever headers it is sent, and returns the request
// id as finAPI does (the caller's, or one of the same length).
func TestFixedHandler(t *testing.T) {
	srv := httptest.NewServer(FixedHandler())
	defer srv.Close()
	get := func(header http.Header) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/v2/accounts", strings.NewReader("ignored"))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, body
	}
	plain, body := get(nil)
	var list struct {
		Accounts []struct {
			ID   int    `json:"id"`
			IBAN string `json:"iban"`
		} `json:"accounts"`
	}
	if err := json.Unmarshal(body, &list); err != nil || len(list.Accounts) != 1 || list.Accounts[0].IBAN == "" {
		t.Fatalf("body %s: %+v, %v", body, list, err)
	}
	if plain.StatusCode != http.StatusOK || plain.Header.Get("Content-Type") != "application/json" ||
		plain.ContentLength != int64(len(body)) {
		t.Errorf("status %d, Content-Type %q, length %d of %d", plain.StatusCode, plain.Header.Get("Content-Type"), plain.ContentLength, len(body))
	}
	const id = "0123456789abcdef0123456789abcdef"
	if got := plain.Header.Get("X-Request-Id"); len(got) != len(id) {
		t.Errorf("generated request id %q: %d characters, want %d (as long as finproxy's)", got, len(got), len(id))
	}
	withHeaders, body2 := get(http.Header{"X-Request-Id": {id}, "Psu-Ip-Address": {"127.0.0.1"}, "Authorization": {"Bearer x"}})
	if got := withHeaders.Header.Get("X-Request-Id"); got != id {
		t.Errorf("request id %q, want the caller's %q", got, id)
	}
	if !bytes.Equal(body, body2) {
		t.Errorf("the body changed with the request's headers:\n%s\n%s", body, body2)
	}
}
