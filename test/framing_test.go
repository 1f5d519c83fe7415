package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finproxy/finproxy/test/emulator"
)

// rawAnswer is one response read off a raw connection.
type rawAnswer struct {
	status int
	header http.Header
	body   []byte
}

// exchange writes raw to a new connection and reads up to n final
// responses, returning them and how many 1xx (interim) responses came
// before them. It stops early when the server closes the connection.
func exchange(t *testing.T, addr, raw string, n int) (answers []rawAnswer, interim int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for len(answers) < n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return answers, interim // closed: what came is the answer
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 100 && resp.StatusCode < 200 {
			interim++
			continue
		}
		answers = append(answers, rawAnswer{resp.StatusCode, resp.Header, body})
	}
	return answers, interim
}

// canary is a loopback server no request may ever reach: request targets
// and Host headers in the table name it.
func canary(t *testing.T) (host string, hits *atomic.Int64) {
	hits = new(atomic.Int64)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(net.Conn, http.ConnState) {}
	srv.Listener = countingListener{srv.Listener, hits}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), hits
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// TestRequestFraming sends hostile and odd requests over raw TCP (an HTTP
// client would normalise them) and checks what the caller got and what
// reached finAPI. Where net/http refuses the framing itself (an ambiguous
// length, an unknown transfer coding, a bad header line) the answer is
// its plain 4xx/5xx and finproxy's handler never runs; where finproxy
// answers, the answer is in finAPI's error shape.
func TestRequestFraming(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	p.waitReady()
	evil, evilHits := canary(t)
	s1, s2 := session(t, 1), session(t, 2)
	for _, s := range []string{s1, s2} {
		if resp, body := p.do(request{path: "/api/v2/accounts", session: s}); resp.StatusCode != 200 {
			t.Fatalf("warm-up: %d %s", resp.StatusCode, body)
		}
	}

	// Slow headers: started first, checked last, so the table does not
	// wait out the header timeout.
	slow := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			slow <- err
			return
		}
		defer c.Close()
		io.WriteString(c, "GET /api/v2/accounts HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: "+s1+"\r\n")
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err = c.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			slow <- fmt.Errorf("a caller sending its headers slowly held the connection for 20s")
			return
		}
		slow <- nil
	}()

	withBody := func(head, body string) string {
		return head + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
	}
	hidden := "GET /api/v2/clientConfiguration HTTP/1.1\r\nHost: x\r\n\r\n"
	tests := []struct {
		name string
		raw  string
		// want lists the statuses allowed; reason, if set, is the
		// finAPI-shaped error finproxy must answer with.
		want   []int
		reason string
		// upstream is how many requests may reach finAPI.
		upstream int
	}{
		{"Content-Length and Transfer-Encoding, a request hidden in the body",
			"POST /api/v2/bankConnections/import HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: {S1}\r\nContent-Type: application/json\r\n" +
				fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n%s", len(hidden)+5, hidden),
			[]int{200, 400}, "", 1},
		{"two different Content-Lengths",
			"POST /api/v2/bankConnections/import HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: {S1}\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}",
			[]int{400}, "", 0},
		{"signed Content-Length",
			"POST /api/v2/bankConnections/import HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: {S1}\r\nContent-Length: +2\r\n\r\n{}",
			[]int{400}, "", 0},
		{"obfuscated Transfer-Encoding (xchunked)",
			"POST /api/v2/bankConnections/import HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: {S1}\r\nTransfer-Encoding: xchunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
			[]int{400, 501}, "", 0},
		{"obfuscated Transfer-Encoding (chunked, identity)",
			"POST /api/v2/bankConnections/import HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: {S1}\r\nTransfer-Encoding: chunked, identity\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
			[]int{400, 501}, "", 0},
		{"Transfer-Encoding twice",
			"POST /api/v2/bankConnections/import HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: {S1}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
			[]int{400, 501}, "", 0},
		{"white space before the colon",
			"POST /api/v2/bankConnections/import HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: {S1}\r\nTransfer-Encoding : chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
			[]int{400}, "", 0},
		{"absolute-form target at another host goes to finAPI, not there",
			"GET http://{EVIL}/api/v2/accounts HTTP/1.1\r\nHost: {EVIL}\r\nX-Session-Id: {S1}\r\n\r\n",
			[]int{200}, "", 1},
		{"absolute-form target at a denied endpoint",
			"GET http://{EVIL}/api/v2/clientConfiguration HTTP/1.1\r\nHost: {EVIL}\r\nX-Session-Id: {S1}\r\n\r\n",
			[]int{403}, "route_denied", 0},
		{"authority-form CONNECT",
			"CONNECT {EVIL} HTTP/1.1\r\nHost: {EVIL}\r\nX-Session-Id: {S1}\r\n\r\n",
			[]int{405}, "method_not_allowed", 0},
		{"a made-up method",
			"BREW /api/v2/accounts HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: {S1}\r\n\r\n",
			[]int{405}, "method_not_allowed", 0},
		{"CONNECT with a path",
			"CONNECT /api/v2/accounts HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: {S1}\r\n\r\n",
			[]int{405}, "method_not_allowed", 0},
		{"no Host in HTTP/1.1",
			"GET /api/v2/accounts HTTP/1.1\r\nX-Session-Id: {S1}\r\n\r\n",
			[]int{400}, "", 0},
		{"two Host headers",
			"GET /api/v2/accounts HTTP/1.1\r\nHost: finproxy\r\nHost: {EVIL}\r\nX-Session-Id: {S1}\r\n\r\n",
			[]int{400}, "", 0},
		{"Host of another server",
			"GET /api/v2/accounts HTTP/1.1\r\nHost: {EVIL}\r\nX-Session-Id: {S1}\r\n\r\n",
			[]int{200}, "", 1},
		{"Host with user info",
			"GET /api/v2/accounts HTTP/1.1\r\nHost: finapi.io@{EVIL}\r\nX-Session-Id: {S1}\r\n\r\n",
			[]int{200, 400}, "", 1},
		{"CR inside a header value",
			"GET /api/v2/accounts HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: {S1}\r\nX-Note: a\rInjected: b\r\n\r\n",
			[]int{400}, "", 0},
		{"NUL inside a header value",
			"GET /api/v2/accounts HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: {S1}\r\nX-Note: a\x00b\r\n\r\n",
			[]int{400}, "", 0},
		{"NUL inside the session",
			"GET /api/v2/accounts HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: {S1}\x00\r\n\r\n",
			[]int{400}, "", 0},
		{"CR/LF encoded in the path",
			"GET /api/v2/accounts%0d%0aX-Injected:%20b HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: {S1}\r\n\r\n",
			[]int{400, 404}, "", 1},
		{"over-long session",
			"GET /api/v2/accounts HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: " + strings.Repeat("a", 4096) + "\r\n\r\n",
			[]int{400}, "invalid_session", 0},
		{"over-long header block",
			"GET /api/v2/accounts HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: {S1}\r\nX-Pad: " + strings.Repeat("a", 80<<10) + "\r\n\r\n",
			[]int{431}, "", 0},
		{"chunked body with an over-long chunk-size line",
			"POST /api/v2/bankConnections/import HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: {S1}\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("0", 8<<10) + "2\r\n{}\r\n0\r\n\r\n",
			[]int{200, 400, 413}, "", 1},
		{"a body on a request finproxy refuses is not read into finAPI",
			withBody("POST /api/v2/clientConfiguration HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: {S1}\r\n", `{"a":1}`),
			[]int{403}, "route_denied", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.Reset()
			raw := strings.NewReplacer("{S1}", s1, "{S2}", s2, "{EVIL}", evil).Replace(tt.raw)
			answers, _ := exchange(t, p.addr, raw, 1)
			if len(answers) != 1 {
				t.Fatalf("no answer (connection closed)")
			}
			a := answers[0]
			if !slices.Contains(tt.want, a.status) {
				t.Errorf("status %d %s, want one of %v", a.status, a.body, tt.want)
			}
			if tt.reason != "" {
				var e errorBody
				if err := json.Unmarshal(a.body, &e); err != nil || len(e.Errors) == 0 || a.header.Get("X-Finproxy-Error") != tt.reason {
					t.Errorf("want finAPI's error shape with reason %s, got %s (X-Finproxy-Error %q)", tt.reason, a.body, a.header.Get("X-Finproxy-Error"))
				}
			}
			reqs := f.Requests()
			if len(reqs) > tt.upstream {
				t.Errorf("%d requests reached finAPI, at most %d may", len(reqs), tt.upstream)
			}
			for _, r := range reqs {
				if strings.Contains(strings.ToLower(r.RequestURI+string(r.Body)), "clientconfiguration") {
					t.Errorf("a denied or hidden request reached finAPI: %s %s %q", r.Method, r.RequestURI, r.Body)
				}
				if h := r.Header.Get("X-Forwarded-Host"); h != "" {
					t.Errorf("X-Forwarded-Host %q reached finAPI (the caller's Host)", h)
				}
			}
		})
	}
	// Every refusal is a request like any other: logged (and counted).
	for _, m := range []string{`"method":"BREW"`, `"method":"CONNECT","path":""`} {
		eventually(t, 2*time.Second, "the request line of "+m, func() bool { return countLines(p.out.String(), m) >= 1 })
	}
	if n := evilHits.Load(); n != 0 {
		t.Errorf("%d connections reached the host named in request targets and Host headers", n)
	}
	if err := <-slow; err != nil {
		t.Error(err)
	}
}

// TestFrontProxyHeadersAndPSU: headers a front proxy or framework could be
// tricked by never reach finAPI from the caller, and the PSU headers
// finproxy sets survive a Connection header naming them (hop-by-hop
// removal happens before finproxy sets them).
func TestFrontProxyHeadersAndPSU(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	s := session(t, 1)
	resp, body := p.do(request{path: "/api/v2/accounts", session: s, header: http.Header{
		"X-Original-Url":     {"/api/v2/clientConfiguration"},
		"X-Rewrite-Url":      {"/api/v2/clientConfiguration"},
		"X-Forwarded-Prefix": {"/admin"},
		"X-Forwarded-Host":   {"evil.example"},
		"X-Forwarded-Proto":  {"https"},
		"X-Forwarded-Port":   {"443"},
		"Forwarded":          {"for=6.6.6.6;host=evil.example"},
		"Connection":         {"keep-alive, PSU-IP-Address, PSU-User-Agent, X-Request-Id"},
		"User-Agent":         {"bank-app/1.0"},
	}})
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	reqs := f.requestsTo("/api/v2/accounts")
	h := reqs[len(reqs)-1].Header
	for _, name := range []string{"X-Original-Url", "X-Rewrite-Url", "X-Forwarded-Prefix", "X-Forwarded-Host", "X-Forwarded-Port", "Forwarded"} {
		if v := h.Values(name); len(v) != 0 {
			t.Errorf("%s reached finAPI: %q", name, v)
		}
	}
	if v := h.Get("X-Forwarded-Proto"); v != "http" {
		t.Errorf("X-Forwarded-Proto = %q, want finproxy's own (http)", v)
	}
	if v := h.Get("PSU-IP-Address"); v != "127.0.0.1" {
		t.Errorf("PSU-IP-Address = %q, want 127.0.0.1 although Connection named it", v)
	}
	if v := h.Get("PSU-User-Agent"); v != "bank-app/1.0" {
		t.Errorf("PSU-User-Agent = %q, want the caller's User-Agent although Connection named it", v)
	}
	if v := h.Get("X-Request-Id"); v == "" {
		t.Errorf("X-Request-Id dropped by a Connection header naming it")
	}
}

// TestExpectContinue: a caller sending Expect: 100-continue gets exactly one
// 100 Continue, then finAPI's final status; the request log and
// finproxy_requests_total record that final status, never 100.
func TestExpectContinue(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	s := session(t, 1)
	p.do(request{path: "/api/v2/accounts", session: s})
	body := `{"bankId":280001,"interface":"XS2A"}`
	head := "POST /api/v2/bankConnections/import HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: " + s +
		"\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n"
	c, err := net.DialTimeout("tcp", p.addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, head)
	br := bufio.NewReader(c)
	first, err := http.ReadResponse(br, nil)
	if err != nil || first.StatusCode != 100 {
		t.Fatalf("first answer %v %v, want 100 Continue before the body is sent", first, err)
	}
	io.WriteString(c, body)
	var statuses []int
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the answer: %v (statuses so far %v)", err, statuses)
		}
		io.Copy(io.Discard, resp.Body)
		statuses = append(statuses, resp.StatusCode)
		if resp.StatusCode >= 200 {
			break
		}
	}
	final := statuses[len(statuses)-1]
	if len(statuses) != 1 || final < 200 || final > 299 {
		t.Fatalf("after the body: %v, want one final 2xx and no second 100", statuses)
	}
	imports := f.requestsTo("/api/v2/bankConnections/import")
	if len(imports) != 1 || string(imports[0].Body) != body {
		t.Fatalf("finAPI got %d imports", len(imports))
	}
	m := scrape(t, p)
	if n := m[fmt.Sprintf(`finproxy_requests_total{code="%d",method="POST",route="/"}`, final)]; n != 1 {
		t.Errorf("finproxy_requests_total code %d = %v, want 1", final, n)
	}
	for k := range m {
		if strings.HasPrefix(k, "finproxy_requests_total") && strings.Contains(k, `code="100"`) {
			t.Errorf("a request counted as 100: %s", k)
		}
	}
	eventually(t, 2*time.Second, "the request line", func() bool {
		return countLines(p.out.String(), `"path":"/api/v2/bankConnections/import"`, fmt.Sprintf(`"status":%d`, final)) == 1
	})
	if n := countLines(p.out.String(), `"status":100`); n != 0 {
		t.Errorf("%d log lines record status 100", n)
	}
}

// TestPipelinedSessionsNeverCross: requests of different sessions
// pipelined on one connection each reach finAPI with their own user's
// token and get their own user back.
func TestPipelinedSessionsNeverCross(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	sessions := []string{session(t, 1), session(t, 2), session(t, 3)}
	userOf := map[string]string{}
	for _, s := range sessions {
		resp, body := p.do(request{path: "/api/v2/users", session: s})
		var u struct{ ID string }
		if resp.StatusCode != 200 || json.Unmarshal(body, &u) != nil || u.ID == "" {
			t.Fatalf("user of %s: %d %s", s, resp.StatusCode, body)
		}
		userOf[s] = u.ID
	}
	order := []string{sessions[0], sessions[1], sessions[0], sessions[2], sessions[1], sessions[2], sessions[0]}
	var raw strings.Builder
	for _, s := range order {
		raw.WriteString("GET /api/v2/users HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: " + s + "\r\n\r\n")
	}
	answers, _ := exchange(t, p.addr, raw.String(), len(order))
	if len(answers) != len(order) {
		t.Fatalf("%d answers to %d pipelined requests", len(answers), len(order))
	}
	for i, a := range answers {
		var u struct{ ID string }
		json.Unmarshal(a.body, &u)
		if a.status != 200 || u.ID != userOf[order[i]] {
			t.Errorf("pipelined request %d (session %d): %d user %q, want user %q", i, slices.Index(sessions, order[i])+1, a.status, u.ID, userOf[order[i]])
		}
	}
}

// TestOverlongJWT: in jwt mode a bearer token far beyond any real JWT is
// refused in finAPI's shape without reaching finAPI.
func TestOverlongJWT(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	env := proxyEnv(f)
	env["FINPROXY_SESSION_AUTH"] = "jwt"
	env["FINPROXY_JWT_HMAC_SECRET"] = strings.Repeat("k", 32)
	p := startProxy(t, f, env)
	p.waitReady() // the client token at start is a call to finAPI, not the test's
	f.Reset()
	tok := "eyJhbGciOiJIUzI1NiJ9." + strings.Repeat("A", 32<<10) + ".sig"
	resp, body := p.do(request{path: "/api/v2/accounts", header: http.Header{"Authorization": {"Bearer " + tok}}})
	wantError(t, resp, body, 401, "invalid_session")
	for _, r := range f.Requests() {
		t.Errorf("reached finAPI: %s %s", r.Method, r.Path)
	}
}
