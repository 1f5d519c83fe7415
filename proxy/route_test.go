package proxy

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestCheckPath(t *testing.T) {
	tests := []struct {
		name string
		path string // as it arrives in the request line
		ok   bool
	}{
		{"root", "/", true},
		{"plain", "/api/v2/accounts", true},
		{"trailing slash", "/api/v2/accounts/", true},
		{"ids and dots inside segments", "/api/v2/accounts/42/file.v1..json", true},
		{"encoded space", "/api/v2/labels/my%20label", true},
		{"encoded non-ASCII", "/api/v2/labels/%C3%A4", true},
		{"unreserved characters", "/a-b_c~d/e.f", true},
		{"dot segments", "/di/../api/v2/clientConfiguration", false},
		{"trailing dot-dot", "/api/v2/users/..", false},
		{"single dot segment", "/api/./v2/users", false},
		{"encoded dot-dot", "/a/%2e%2e/b", false},
		{"encoded dot-dot, mixed case", "/a/%2E%2e/b", false},
		{"half-encoded dot-dot", "/a/.%2e/b", false},
		{"encoded dot", "/a/%2e/b", false},
		{"double-encoded dot-dot", "/a/%252e%252e/b", false},
		{"double-encoded slash", "/a%252fb", false},
		{"encoded slash", "/di%2fapi/v2/users", false},
		{"encoded slash, upper case", "/di%2Fapi", false},
		{"encoded backslash", "/a%5cb", false},
		{"encoded backslash, upper case", "/a%5Cb", false},
		{"path parameter", "/api/v2/users;jsessionid=x", false},
		{"leading empty segment", "//api/v2/oauth/token", false},
		{"inner empty segment", "/api/v2//clientConfiguration", false},
		{"trailing empty segment", "/api/v2/users//", false},
		{"encoded NUL", "/a%00b", false},
		{"encoded control character", "/a%01b", false},
		{"encoded newline", "/a%0ab", false},
		{"encoded DEL", "/a%7fb", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.ParseRequestURI(tt.path)
			if err != nil {
				t.Fatalf("ParseRequestURI(%q): %v", tt.path, err)
			}
			err = checkPath(u)
			if (err == nil) != tt.ok {
				t.Fatalf("checkPath(%q) = %v, want ok=%v", tt.path, err, tt.ok)
			}
			if err != nil && err != errInvalidPath {
				t.Errorf("checkPath(%q) = %v, want errInvalidPath", tt.path, err)
			}
		})
	}
}

// TestCheckPathRawCharacters covers decoded paths that no request line
// parses to but that a URL can hold.
func TestCheckPathRawCharacters(t *testing.T) {
	tests := []struct {
		name string
		u    *url.URL
	}{
		{"raw control character", &url.URL{Path: "/a\x01b"}},
		{"raw tab", &url.URL{Path: "/a\tb"}},
		{"raw DEL", &url.URL{Path: "/a\x7fb"}},
		{"raw backslash", &url.URL{Path: `/a\..\b`}},
		{"relative path", &url.URL{Path: "api/v2/users"}},
		{"empty path", &url.URL{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkPath(tt.u); err != errInvalidPath {
				t.Errorf("checkPath(%q) = %v, want errInvalidPath", tt.u.Path, err)
			}
		})
	}
}

func TestDenied(t *testing.T) {
	const (
		get, post, patch, del = http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete
	)
	all := []string{get, post, patch, del, http.MethodPut, http.MethodHead, http.MethodOptions}
	tests := []struct {
		path    string
		methods []string // methods to check
		denied  bool
	}{
		// Creating users needs the client token; the user itself may read,
		// edit and delete itself.
		{"/api/v2/users", []string{post}, true},
		{"/api/v2/users/", []string{post}, true},
		{"/api/v2/users", []string{get, patch, del}, false},
		{"/api/v2/users/", []string{get, patch, del}, false},
		{"/api/v2/users/fp-abc", all, true},
		{"/api/v2/users/fp-abc/", all, true},
		{"/api/v2/users/verify/fp-abc", all, true},
		{"/api/v2/users/verificationStatus", all, true},
		{"/api/v2/users/requestPasswordChange", all, true},
		{"/api/v2/users/executePasswordChange", all, true},
		{"/api/v2/users/fp-abc/verify", all, true},
		{"/api/v2/oauth/token", all, true},
		{"/api/v2/oauth/revoke", all, true},
		{"/api/v2/oauth", all, true},
		{"/api/v2/oauth/", all, true},
		{"/oauth/token", all, true},
		{"/oauth/revoke", all, true},
		{"/oauth", all, true},
		{"/api/v2/clientConfiguration", []string{get, patch, post}, true},
		{"/api/v2/clientConfiguration/", all, true},
		{"/api/v2/mandatorAdmin/x", all, true},
		{"/api/v2/mandatorAdmin/deleteUsers", all, true},
		{"/api/v2/mandatorAdmin/getUserList", all, true},
		{"/api/v2/mandatorAdmin", all, true},
		{"/api/v2/tppCertificates", all, true},
		{"/api/v2/tppCertificates/1", all, true},
		{"/api/v2/tppCertificates/passcode", all, true},
		{"/api/v2/tppCredentials", all, true},
		{"/api/v2/tppCredentials/1", all, true},
		{"/api/v2/tppCredentials/tppAuthenticationGroups", all, true},
		// The same under /api/v1.
		{"/api/v1/users", []string{post}, true},
		{"/api/v1/users", []string{get, patch, del}, false},
		{"/api/v1/users/fp-abc", all, true},
		{"/api/v1/users/verify/fp-abc", all, true},
		{"/api/v1/oauth/token", all, true},
		{"/api/v1/clientConfiguration", all, true},
		{"/api/v1/mandatorAdmin/x", all, true},
		{"/api/v1/tppCertificates", all, true},
		{"/api/v1/tppCredentials/1", all, true},
		// Case does not matter to finAPI, so not to the denial either.
		{"/API/V2/OAUTH/TOKEN", all, true},
		{"/Api/v2/Users/fp-abc", all, true},
		{"/api/v2/USERS", []string{post}, true},
		{"/api/v2/clientconfiguration", all, true},
		{"/api/v2/CLIENTCONFIGURATION", all, true},
		{"/api/v2/MandatorAdmin/x", all, true},
		{"/api/v2/TPPCERTIFICATES/1", all, true},
		{"/api/v2/tppcredentials", all, true},
		{"/OAuth/Token", all, true},
		// User endpoints go through.
		{"/", all, false},
		{"/api/v2/accounts", all, false},
		{"/api/v2/accounts/1", all, false},
		{"/api/v2/bankConnections", all, false},
		{"/api/v2/bankConnections/import", all, false},
		{"/api/v2/banks", all, false},
		{"/api/v2/banks/1", all, false},
		{"/api/v2/transactions", all, false},
		{"/api/v2/webForms/bankConnectionImport", all, false},
		{"/api/v2/usersx", all, false},
		{"/api/v2/usersx/1", all, false},
		{"/api/v2/oauthx", all, false},
		{"/oauthx/token", all, false},
		{"/api/v2/clientConfigurationx", all, false},
		{"/api/v2/mandatorAdminx", all, false},
		{"/api/v3/users/fp-abc", all, false},
		{"/api/v20/oauth/token", all, false},
		{"/api/v2x/oauth/token", all, false},
		{"/other/api/v2/oauth/token", all, false},
	}
	for _, tt := range tests {
		for _, m := range tt.methods {
			t.Run(m+" "+tt.path, func(t *testing.T) {
				if got := denied(m, tt.path); got != tt.denied {
					t.Errorf("denied(%s, %s) = %v, want %v", m, tt.path, got, tt.denied)
				}
			})
		}
	}
}

func TestRouterMatch(t *testing.T) {
	mustURL := func(s string) *url.URL { u, _ := url.Parse(s); return u }
	routes := []Route{ // longest prefix first, as config.ParseRoutes sorts them
		{"/webform", mustURL("https://wf.example")},
		{"/di/v2", mustURL("https://di-v2.example")},
		{"/di", mustURL("https://di.example/base")},
	}
	access, _ := url.Parse("https://access.example/finapi/")
	r := newRouter(access, routes)

	tests := []struct {
		escaped    string
		wantPrefix string
		wantHost   string
		wantRest   string
	}{
		{"/di", "/di", "di.example", "/"},
		{"/di/", "/di", "di.example", "/"},
		{"/di/x", "/di", "di.example", "/x"},
		{"/di/api/v1/processes", "/di", "di.example", "/api/v1/processes"},
		{"/di/v2", "/di/v2", "di-v2.example", "/"},
		{"/di/v2/x", "/di/v2", "di-v2.example", "/x"},
		{"/di/v22", "/di", "di.example", "/v22"},
		{"/di/v1/x", "/di", "di.example", "/v1/x"},
		{"/di/a%20b", "/di", "di.example", "/a%20b"},
		{"/dix", AccessRoute, "access.example", "/dix"},
		{"/dix/y", AccessRoute, "access.example", "/dix/y"},
		{"/DI/x", AccessRoute, "access.example", "/DI/x"},
		{"/webform/abc", "/webform", "wf.example", "/abc"},
		{"/api/v2/accounts", AccessRoute, "access.example", "/api/v2/accounts"},
		{"/", AccessRoute, "access.example", "/"},
		{"/api/di/x", AccessRoute, "access.example", "/api/di/x"},
	}
	for _, tt := range tests {
		t.Run(tt.escaped, func(t *testing.T) {
			rt, rest := r.match(tt.escaped)
			if rt == nil {
				t.Fatalf("match(%q) = nil", tt.escaped)
			}
			if rt.prefix != tt.wantPrefix || rt.target.Host != tt.wantHost || rest != tt.wantRest {
				t.Errorf("match(%q) = %s → %s, rest %q; want %s → %s, rest %q",
					tt.escaped, rt.prefix, rt.target.Host, rest, tt.wantPrefix, tt.wantHost, tt.wantRest)
			}
		})
	}

	// Access's base path loses its trailing slash, so that joining the
	// remaining path gives no double slash; the configured URL stays.
	rt, _ := r.match("/x")
	if rt.target.Path != "/finapi" {
		t.Errorf("Access target path = %q, want /finapi", rt.target.Path)
	}
	if access.Path != "/finapi/" {
		t.Errorf("newRouter changed the caller's URL to %q", access.Path)
	}
}

func TestRouterAccessOnly(t *testing.T) {
	access, _ := url.Parse("https://access.example")
	r := newRouter(access, nil)
	if n := len(r.routes); n != 1 {
		t.Fatalf("%d routes, want 1 (Access)", n)
	}
	rt, rest := r.match("/di/x")
	if rt == nil || rt.prefix != AccessRoute || rest != "/di/x" {
		t.Errorf("match(/di/x) = %v, %q; want Access, /di/x", rt, rest)
	}
}

func TestEffectiveMethod(t *testing.T) {
	tests := []struct {
		method, override, want string
	}{
		{http.MethodPost, "", http.MethodPost},
		{http.MethodPost, "PATCH", http.MethodPatch},
		{http.MethodPost, "DELETE", http.MethodDelete},
		{http.MethodPost, "delete", http.MethodDelete},
		{http.MethodPost, "Patch", http.MethodPatch},
		{http.MethodPost, "GET", http.MethodPost},
		{http.MethodPost, "PUT", http.MethodPost},
		{http.MethodPost, "POST", http.MethodPost},
		{http.MethodPost, "nonsense", http.MethodPost},
		{http.MethodGet, "DELETE", http.MethodGet},
		{http.MethodPatch, "DELETE", http.MethodPatch},
		{http.MethodDelete, "PATCH", http.MethodDelete},
	}
	for _, tt := range tests {
		t.Run(tt.method+" override "+tt.override, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/api/v2/users", nil)
			if tt.override != "" {
				r.Header.Set("X-HTTP-Method-Override", tt.override)
			}
			if got := effectiveMethod(r); got != tt.want {
				t.Errorf("effectiveMethod = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestDeniedWithOverride checks the combination resolve uses: a POST that
// finAPI treats as DELETE /api/v2/users is the user deleting itself, a
// DELETE overridden to nothing stays a DELETE, and POST /api/v2/users with
// an override that finAPI ignores is still a user creation.
func TestDeniedWithOverride(t *testing.T) {
	tests := []struct {
		method, override, path string
		denied                 bool
	}{
		{http.MethodPost, "", "/api/v2/users", true},
		{http.MethodPost, "GET", "/api/v2/users", true},
		{http.MethodPost, "DELETE", "/api/v2/users", false},
		{http.MethodPost, "PATCH", "/api/v2/users", false},
		{http.MethodPost, "DELETE", "/api/v2/users/fp-abc", true},
		{http.MethodPost, "PATCH", "/api/v2/clientConfiguration", true},
	}
	for _, tt := range tests {
		name := strings.TrimSpace(tt.method + " " + tt.override + " " + tt.path)
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.override != "" {
				r.Header.Set("X-HTTP-Method-Override", tt.override)
			}
			if got := denied(effectiveMethod(r), r.URL.Path); got != tt.denied {
				t.Errorf("denied = %v, want %v", got, tt.denied)
			}
		})
	}
}

func TestTrimSlash(t *testing.T) {
	for in, want := range map[string]string{"/": "/", "": "", "/a/": "/a", "/a": "/a", "/a//": "/a/"} {
		if got := trimSlash(in); got != want {
			t.Errorf("trimSlash(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDeniedSuffixSpellings(t *testing.T) {
	for _, c := range []struct {
		method, path string
		want         bool
	}{
		{"POST", "/api/v2/users.json", true},
		{"POST", "/api/v2/users.", true},
		{"GET", "/api/v2/clientConfiguration.xml", true},
		{"POST", "/api/v2/oauth/token.json", true},
		{"GET", "/api/v2/users.json", false},
		{"GET", "/api/v2/users/.x", true},
		{"DELETE", "/api/v2/users/.hidden", true},
		{"GET", "/api/v2/.clientConfiguration", false},
		{"GET", "/api/v2/accounts/1.5", false},
		// White space around a segment (found by FuzzPathDenial): some
		// servers trim it before matching.
		{"GET", "/api/v2/clientConfiguration ", true},
		{"GET", "/api/v2/ clientConfiguration", true},
		{"POST", "/api/v2/users .json", true},
		{"GET", "/api/v2/accounts ", false},
	} {
		if got := denied(c.method, c.path); got != c.want {
			t.Errorf("denied(%s %s) = %v, want %v", c.method, c.path, got, c.want)
		}
	}
}
