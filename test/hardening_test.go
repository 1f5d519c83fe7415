package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/finproxy/finproxy/test/emulator"
)

// rawRequest writes req verbatim to the proxy and returns the first
// response.
func rawRequest(t *testing.T, addr, req string) *http.Response {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestRequestSmugglingIsNotForwarded(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	s := session(t, 1)
	p.do(request{path: "/api/v2/accounts", session: s})
	f.Reset()

	// Content-Length and Transfer-Encoding together, with a second
	// request hidden in the body: finproxy re-frames what it forwards, so
	// finAPI sees one request at most and never the hidden one.
	smuggled := "GET /api/v2/clientConfiguration HTTP/1.1\r\nHost: x\r\n\r\n"
	body := fmt.Sprintf("0\r\n\r\n%s", smuggled)
	req := "POST /api/v2/bankConnections/import HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: " + s +
		"\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(body)) +
		"\r\nTransfer-Encoding: chunked\r\n\r\n" + body
	rawRequest(t, p.addr, req)
	for _, r := range f.Requests() {
		if strings.Contains(strings.ToLower(r.Path), "clientconfiguration") || strings.Contains(string(r.Body), "clientConfiguration") {
			t.Errorf("the smuggled request reached finAPI: %s %s body %q", r.Method, r.Path, r.Body)
		}
	}
	if n := len(f.Requests()); n > 1 {
		t.Errorf("finAPI saw %d requests for one", n)
	}
}

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
