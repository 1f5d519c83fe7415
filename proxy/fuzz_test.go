package proxy

import (
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"testing"
)

var sessionPattern = regexp.MustCompile(`^[A-Za-z0-9._~+/=-]{16,512}$`)

// FuzzValidSession: the header-mode session check accepts exactly the
// contract's 16–512 characters of [A-Za-z0-9._~+/=-].
func FuzzValidSession(f *testing.F) {
	for _, s := range []string{"", "short", "s-session-0123456789", strings.Repeat("a", 512), strings.Repeat("a", 513),
		"session with spaces 012345", "sessión-0123456789abc", "abc\x00def0123456789"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validSession(s), sessionPattern.MatchString(s); got != want {
			t.Errorf("validSession(%q) = %v, want %v", s, got, want)
		}
	})
}

// normalisations are what a server behind finproxy might do to a path
// before matching it (Spring, servlet containers, finAPI's own routing).
var normalisations = map[string]func(string) string{
	"lower case":      strings.ToLower,
	"trailing slash":  func(p string) string { return strings.TrimSuffix(p, "/") },
	"suffix patterns": func(p string) string { return stripSuffixes(strings.ToLower(p)) },
	"clean":           path.Clean,
	"decoded again": func(p string) string {
		d, err := url.PathUnescape(p)
		return map[bool]string{true: d, false: p}[err == nil]
	},
	"merged slashes":    func(p string) string { return strings.ReplaceAll(p, "//", "/") },
	"trimmed segments":  trimSegments,
	"no path parameter": func(p string) string { return strings.Split(p, ";")[0] },
}

// FuzzPathDenial: no path that the path check lets through and denial lets
// pass reaches a denied endpoint under any normalisation an upstream might
// apply: whatever finproxy forwards means the same to every server.
func FuzzPathDenial(f *testing.F) {
	for _, s := range []string{"/api/v2/accounts", "/api/v2/clientConfiguration", "/api/v2/users/x/verify",
		"/api/v2/users", "/api/V2/Users/", "/api/v2/oauth/token", "/oauth/token", "/api/v2/users.json",
		"/api/v2/clientConfiguration.", "/api/v2/tppCredentials", "/api/v2/mandatorAdmin/getUserList",
		"/api/v2/bankConnections/import", "/api/v1/users/x", "/api/v2/clientConfiguration%20"} {
		f.Add(http.MethodGet, s)
		f.Add(http.MethodPost, s)
	}
	f.Fuzz(func(t *testing.T, method, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || checkPath(u) != nil {
			return
		}
		for _, m := range []string{method, http.MethodGet, http.MethodPost} {
			if denied(m, u.Path) {
				continue
			}
			for name, norm := range normalisations {
				if n := norm(u.Path); denied(m, n) {
					t.Errorf("%s %q passes, but %s makes it %q, which is denied", m, target, name, n)
				}
			}
		}
	})
}
