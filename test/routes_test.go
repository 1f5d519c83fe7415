package test

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/finproxy/finproxy/test/emulator"
)

type echoed struct {
	Method, Path, EscapedPath, RawQuery, RequestURI, Body string
	Headers                                               http.Header
}

func routesProxy(t *testing.T) (*finapi, *proxyProc) {
	f := newFinAPI(t, emulator.Config{})
	env := proxyEnv(f)
	env["FINPROXY_ROUTES"] = "/di=" + f.echo.URL + ", /di/v2=" + f.echo.URL + "/base/,/webform=" + f.echo.URL + "/wf"
	return f, startProxy(t, f, env)
}

func TestRoutesStripPrefixAndKeepQuery(t *testing.T) {
	f, p := routesProxy(t)
	s := session(t, 1)
	cases := []struct{ path, wantURI string }{
		{"/di/api/v1/checks?b=2&a=1%20x&a=3", "/api/v1/checks?b=2&a=1%20x&a=3"},
		{"/di", "/"},
		{"/di/", "/"},
		{"/di/files/a%20b%3Fc%2Bd", "/files/a%20b%3Fc%2Bd"},
		{"/di/v2/reports/1?x=%2F", "/base/reports/1?x=%2F"},
		{"/webform/api/webForms/abc", "/wf/api/webForms/abc"},
		{"/di/x?", "/x?"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			resp, body := p.do(request{path: c.path, session: s})
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			var e echoed
			json.Unmarshal(body, &e)
			if e.RequestURI != c.wantURI {
				t.Errorf("upstream got %q, want %q", e.RequestURI, c.wantURI)
			}
			if a := http.Header(e.Headers).Get("Authorization"); !strings.HasPrefix(a, "Bearer ") {
				t.Errorf("no user token upstream")
			}
			if http.Header(e.Headers).Get("X-Session-Id") != "" {
				t.Errorf("session header reached the route's upstream")
			}
		})
	}
	// /dix is not under /di: it goes to Access.
	before := f.echoHits.Load()
	resp, _ := p.do(request{path: "/dix/api", session: s})
	if f.echoHits.Load() != before || resp.StatusCode != 404 {
		t.Errorf("/dix reached the /di upstream or Access did not answer 404 (status %d)", resp.StatusCode)
	}
}

func TestTraversalNeverLeavesItsRoute(t *testing.T) {
	f, p := routesProxy(t)
	p.waitReady()
	f.Reset()
	s := session(t, 1)
	for _, path := range []string{
		"/di/../api/v2/clientConfiguration",
		"/di/%2e%2e/api/v2/clientConfiguration",
		"/di/%2E%2E/api/v2/accounts",
		"/di/.%2e/api/v2/accounts",
		"/di/%252e%252e/api/v2/clientConfiguration",
		"/di/..%2fapi/v2/clientConfiguration",
		"/di/x%5c..%5capi",
		"/di/./x",
		"/api/v2/accounts/../clientConfiguration",
		"/api/v2/clientConfiguration;a=b",
		"/di/x;jsessionid=1",
	} {
		t.Run(path, func(t *testing.T) {
			resp, body := p.do(request{path: path, session: s})
			wantError(t, resp, body, 400, "invalid_path")
		})
	}
	// Denied endpoints stay denied under a route prefix.
	resp, body := p.do(request{method: "POST", path: "/di/api/v2/oauth/token", session: s})
	wantError(t, resp, body, 403, "route_denied")
	if n := f.echoHits.Load(); n != 0 {
		t.Errorf("%d requests reached the /di upstream", n)
	}
	if reqs := f.Requests(); len(reqs) != 0 {
		t.Errorf("%d requests reached finAPI Access, first %s", len(reqs), reqs[0].Path)
	}
}

func TestBadRoutesAreConfigurationErrors(t *testing.T) {
	for _, routes := range []string{"/x=ftp://example.org", "/x=http://", "x=http://a", "/x=http://user:pw@a", "/proxy=http://a", "/a/../b=http://a", "/x"} {
		t.Run(routes, func(t *testing.T) {
			cmd := exec.Command(binary)
			cmd.Env = []string{"FINPROXY_CLIENT_ID=a", "FINPROXY_CLIENT_SECRET=b", "FINPROXY_IDENTITY_SECRET=" + identitySecret, "FINPROXY_ROUTES=" + routes}
			out, _ := cmd.CombinedOutput()
			if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "FINPROXY_ROUTES:") {
				t.Errorf("exit %d, output %s", cmd.ProcessState.ExitCode(), out)
			}
			if strings.Contains(string(out), ":pw@") {
				t.Errorf("route credentials printed")
			}
		})
	}
}
