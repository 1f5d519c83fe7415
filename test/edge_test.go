package test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/finproxy/finproxy/test/emulator"
)

func TestCORS(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	env := proxyEnv(f)
	env["FINPROXY_CORS_ORIGINS"] = "https://app.example.com, http://localhost:5173"
	p := startProxy(t, f, env)
	p.waitReady()
	f.Reset()

	preflight := func(origin string) *http.Response {
		resp, _ := p.do(request{method: "OPTIONS", path: "/api/v2/accounts", header: http.Header{
			"Origin":                         {origin},
			"Access-Control-Request-Method":  {"GET"},
			"Access-Control-Request-Headers": {"x-session-id, content-type"},
		}})
		return resp
	}
	resp := preflight("https://app.example.com")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("allowed preflight: %d, ACAO %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	allowHeaders := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
	for _, h := range []string{"x-session-id", "authorization", "content-type"} {
		if !strings.Contains(allowHeaders, h) {
			t.Errorf("Access-Control-Allow-Headers %q lacks %s", allowHeaders, h)
		}
	}
	if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("credentials must never be allowed")
	}
	resp = preflight("https://evil.example.org")
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("refused origin got ACAO %q", resp.Header.Get("Access-Control-Allow-Origin"))
	}
	if n := len(f.Requests()); n != 0 {
		t.Errorf("preflights reached finAPI %d times", n)
	}
	resp, _ = p.do(request{path: "/api/v2/accounts", session: session(t, 1), header: http.Header{"Origin": {"http://localhost:5173"}}})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:5173" ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "X-Request-Id") {
		t.Errorf("actual request: %d, ACAO %q, expose %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Get("Access-Control-Expose-Headers"))
	}
}

func TestBodyLimit(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	env := proxyEnv(f)
	env["FINPROXY_MAX_BODY_BYTES"] = "1024"
	p := startProxy(t, f, env)
	s := session(t, 1)
	p.do(request{path: "/api/v2/accounts", session: s})

	resp, body := p.do(request{method: "POST", path: "/api/v2/bankConnections/import", session: s, body: bytes.Repeat([]byte("a"), 2048)})
	wantError(t, resp, body, 413, "body_too_large")

	// A chunked body (no Content-Length) over the limit.
	req, _ := http.NewRequest("POST", "http://"+p.addr+"/api/v2/bankConnections/import", io.MultiReader(strings.NewReader(strings.Repeat("b", 4096))))
	req.Header.Set("X-Session-Id", s)
	req.ContentLength = -1
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	wantError(t, r2, b2, 413, "body_too_large")

	if resp, body := p.do(request{method: "POST", path: "/api/v2/bankConnections/import", session: s, body: []byte(`{"bankId":1}`),
		header: http.Header{"Content-Type": {"application/json"}}}); resp.StatusCode/100 != 2 {
		t.Errorf("small body: %d %s", resp.StatusCode, body)
	}
}

func TestRateLimits(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	env := proxyEnv(f)
	env["FINPROXY_RATE_SESSION"] = "0.5"
	env["FINPROXY_RATE_SESSION_BURST"] = "3"
	p := startProxy(t, f, env)
	s := session(t, 1)
	for i := range 3 {
		if resp, body := p.do(request{path: "/api/v2/accounts", session: s}); resp.StatusCode != 200 {
			t.Fatalf("request %d within the burst: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := p.do(request{path: "/api/v2/accounts", session: s})
	wantError(t, resp, body, 429, "rate_limited")
	if ra := resp.Header.Get("Retry-After"); ra != "2" && ra != "1" {
		t.Errorf("Retry-After = %q, want about 2 s at 0.5/s", ra)
	}
	// Another session has its own bucket.
	if resp, _ := p.do(request{path: "/api/v2/accounts", session: session(t, 2)}); resp.StatusCode != 200 {
		t.Errorf("other session limited too: %d", resp.StatusCode)
	}

	env = proxyEnv(f)
	env["FINPROXY_RATE_IP"] = "0.5"
	env["FINPROXY_RATE_IP_BURST"] = "2"
	p2 := startProxy(t, f, env)
	p2.do(request{path: "/api/v2/accounts", session: session(t, 3)})
	p2.do(request{path: "/api/v2/accounts"}) // refused requests count too
	resp, body = p2.do(request{path: "/api/v2/accounts", session: session(t, 4)})
	wantError(t, resp, body, 429, "rate_limited")
}

func TestUpstreamTimeout(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	env := proxyEnv(f)
	env["FINPROXY_UPSTREAM_TIMEOUT"] = "1s"
	p := startProxy(t, f, env)
	s := session(t, 1)
	p.do(request{path: "/api/v2/accounts", session: s})
	f.SetLatency("/api/v2/accounts", 3*time.Second)
	start := time.Now()
	resp, body := p.do(request{path: "/api/v2/accounts", session: s})
	wantError(t, resp, body, 504, "upstream_timeout")
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("504 after %s, want about the 1 s timeout", d)
	}
}

func TestPSUHeadersAndClientIP(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	spoof := http.Header{
		"X-Forwarded-For": {"203.0.113.7"},
		"PSU-IP-Address":  {"198.51.100.1"},
		"User-Agent":      {"BankingApp/1.0 (iOS)"},
	}
	last := func() http.Header {
		reqs := f.requestsTo("/api/v2/accounts")
		return reqs[len(reqs)-1].Header
	}

	untrusted := startProxy(t, f, proxyEnv(f))
	untrusted.do(request{path: "/api/v2/accounts", session: session(t, 1), header: spoof})
	h := last()
	// Exactly one value each: the caller's must not travel as a second.
	for _, name := range []string{"PSU-IP-Address", "PSU-User-Agent", "X-Forwarded-For", "X-Request-Id", "Authorization"} {
		if v := h.Values(name); len(v) != 1 {
			t.Errorf("%s reached finAPI as %q, want one value", name, v)
		}
	}
	if h.Get("PSU-IP-Address") != "127.0.0.1" || h.Get("X-Forwarded-For") != "127.0.0.1" {
		t.Errorf("untrusted caller chose its IP: PSU-IP-Address %q, X-Forwarded-For %q", h.Get("PSU-IP-Address"), h.Get("X-Forwarded-For"))
	}
	if h.Get("PSU-User-Agent") != "BankingApp/1.0 (iOS)" {
		t.Errorf("PSU-User-Agent = %q", h.Get("PSU-User-Agent"))
	}

	env := proxyEnv(f)
	env["FINPROXY_TRUSTED_PROXIES"] = "127.0.0.0/8, ::1"
	trusted := startProxy(t, f, env)
	trusted.do(request{path: "/api/v2/accounts", session: session(t, 2), header: http.Header{"X-Forwarded-For": {"192.0.2.9, 203.0.113.7"}}})
	h = last()
	if h.Get("PSU-IP-Address") != "203.0.113.7" || h.Get("X-Forwarded-For") != "203.0.113.7" {
		t.Errorf("behind a trusted proxy: PSU-IP-Address %q, X-Forwarded-For %q; want the client 203.0.113.7", h.Get("PSU-IP-Address"), h.Get("X-Forwarded-For"))
	}
	trusted.do(request{path: "/api/v2/accounts", session: session(t, 2), header: spoof})
	if h = last(); h.Get("PSU-IP-Address") != "198.51.100.1" {
		t.Errorf("a trusted caller's PSU-IP-Address was replaced: %q", h.Get("PSU-IP-Address"))
	}
}
