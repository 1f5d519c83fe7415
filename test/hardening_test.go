package test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/finproxy/finproxy/test/emulator"
)

// TestUpgradesIgnoredAndOddMethodsRefused: an upgrade offer is ignored (no
// tunnel past denial, but clients that offer h2c on every request work),
// CONNECT and TRACE are refused.
func TestUpgradesIgnoredAndOddMethodsRefused(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	p.waitReady()
	s := session(t, 1)
	for _, up := range []string{"websocket", "h2c"} {
		resp, body := p.do(request{path: "/api/v2/accounts", session: s, header: http.Header{
			"Upgrade": {up}, "Connection": {"Upgrade, HTTP2-Settings"}, "Http2-Settings": {"AAMAAABkAAQAAP__"}}})
		if resp.StatusCode != 200 {
			t.Errorf("Upgrade: %s: %d %s", up, resp.StatusCode, body)
		}
		reqs := f.requestsTo("/api/v2/accounts")
		h := reqs[len(reqs)-1].Header
		if h.Get("Upgrade") != "" || h.Get("Http2-Settings") != "" || strings.Contains(strings.ToLower(h.Get("Connection")), "upgrade") {
			t.Errorf("the upgrade offer reached finAPI: %v", h)
		}
	}
	f.Reset()
	resp, body := p.do(request{method: "TRACE", path: "/api/v2/accounts", session: s})
	wantError(t, resp, body, 405, "method_not_allowed")
	if n := len(f.Requests()); n != 0 {
		t.Errorf("%d refused requests reached finAPI", n)
	}
}

func TestHeaderHygiene(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	s := session(t, 1)
	resp, body := p.do(request{path: "/api/v2/accounts", session: s, header: http.Header{
		"X-Finproxy-Error":    {"forged"},
		"Proxy-Authorization": {"Basic Zm9vOmJhcg=="},
		"Cookie":              {"a=b"},
		"X-Forwarded-For":     {"6.6.6.6"},
		"X-Forwarded-Host":    {"evil.example"},
		"Connection":          {"keep-alive, X-Custom"},
		"X-Custom":            {"hop"},
		"X-Real-Ip":           {"6.6.6.6"},
		"Accept-Language":     {"de-DE"},
	}})
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	reqs := f.requestsTo("/api/v2/accounts")
	h := reqs[len(reqs)-1].Header
	for _, name := range []string{"X-Finproxy-Error", "Proxy-Authorization", "Cookie", "X-Session-Id", "X-Custom", "X-Real-Ip"} {
		if v := h.Get(name); v != "" {
			t.Errorf("%s reached finAPI: %q", name, v)
		}
	}
	if h.Get("X-Forwarded-For") != "127.0.0.1" || h.Get("X-Forwarded-Host") == "evil.example" {
		t.Errorf("forwarding headers taken from the caller: %q %q", h.Get("X-Forwarded-For"), h.Get("X-Forwarded-Host"))
	}
	if h.Get("Accept-Language") != "de-DE" {
		t.Errorf("an ordinary end-to-end header was dropped")
	}
	if len(h.Values("Authorization")) != 1 {
		t.Errorf("Authorization values upstream: %q", h.Values("Authorization"))
	}
}
