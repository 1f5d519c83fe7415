package test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/finproxy/finproxy/test/emulator"
)

// TestCORSExposeHeaders: a browser page reads X-Request-Id (and the reason
// of an error) only when finproxy lists them in Access-Control-Expose-Headers,
// on its own endpoints and its own errors as on proxied answers.
func TestCORSExposeHeaders(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	env := proxyEnv(f)
	const origin = "http://127.0.0.1:5173"
	env["FINPROXY_CORS_ORIGINS"] = origin
	p := startProxy(t, f, env)
	p.waitReady()
	s := session(t, 1)
	for _, r := range []struct {
		request
		status int
	}{
		{request{method: "POST", path: "/proxy/v1/session", session: s}, 200},
		{request{path: "/api/v2/bankConnections", session: s}, 200},
		{request{path: "/api/v2/accounts"}, 401},
		{request{path: "/api/v2/clientConfiguration", session: s}, 403},
		{request{method: "POST", path: "/proxy/v1/session/logout", session: s}, 204},
		{request{method: "DELETE", path: "/proxy/v1/session", session: s}, 204},
	} {
		r.header = http.Header{"Origin": {origin}}
		resp, _ := p.do(r.request)
		expose := resp.Header.Get("Access-Control-Expose-Headers")
		if resp.StatusCode != r.status || resp.Header.Get("Access-Control-Allow-Origin") != origin ||
			!strings.Contains(expose, "X-Request-Id") || !strings.Contains(expose, "X-Finproxy-Error") || resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s %s: %d (want %d), ACAO %q, expose %q, X-Request-Id %q", r.method, r.path, resp.StatusCode, r.status,
				resp.Header.Get("Access-Control-Allow-Origin"), expose, resp.Header.Get("X-Request-Id"))
		}
	}
}
