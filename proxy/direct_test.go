package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/finproxy/finproxy/auth"
)

// recordingObserver keeps the status of every request it is told about.
type recordingObserver struct {
	mu       sync.Mutex
	statuses []int
}

func (o *recordingObserver) Request(_, _ string, status int, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.statuses = append(o.statuses, status)
}
func (o *recordingObserver) Upstream(string, time.Duration) {}
func (o *recordingObserver) Retry()                         {}
func (o *recordingObserver) RateLimited(string)             {}

func (o *recordingObserver) last() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.statuses) == 0 {
		return 0
	}
	return o.statuses[len(o.statuses)-1]
}

// echoHeaders answers with the request's headers as JSON.
func echoHeaders(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(r.Header)
}

func directTestProxy(t *testing.T, up http.Handler, c Config) (*httptest.Server, *recordingObserver) {
	t.Helper()
	upstream := httptest.NewServer(up)
	t.Cleanup(upstream.Close)
	u, _ := url.Parse(upstream.URL)
	keys, err := auth.NewKeys([]byte("direct-test-identity-secret-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	obs := &recordingObserver{}
	c.AccessURL, c.Keys, c.Tokens, c.Lifecycle, c.Observer = u, keys, fixedTokens{}, noLifecycle{}, obs
	h, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, obs
}

// TestDirectPathAnswersAsEcho: the proxied path without Echo (serveDirect)
// and through Echo (taken by a browser's request when CORS is on) answer
// every kind of request alike: status, error reason, the headers the
// upstream receives, the answer's request id.
func TestDirectPathAnswersAsEcho(t *testing.T) {
	const origin = "https://app.example"
	srv, _ := directTestProxy(t, http.HandlerFunc(echoHeaders), Config{CORSOrigins: []string{origin}, MaxBodyBytes: 16})
	type answer struct {
		status        int
		reason        string
		requestID     string
		upstreamSaw   http.Header
		viaEchoMarker bool
	}
	send := func(method, path string, header http.Header, body string, viaEcho bool) answer {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body == "" {
			req.Body = http.NoBody
		}
		for k, v := range header {
			req.Header[k] = v
		}
		req.Header.Set("X-Request-Id", "direct-test-request-id")
		if viaEcho {
			req.Header.Set("Origin", origin)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		a := answer{status: res.StatusCode, reason: res.Header.Get(ReasonHeader), requestID: res.Header.Get("X-Request-Id"),
			viaEchoMarker: res.Header.Get("Access-Control-Allow-Origin") != ""}
		if res.StatusCode == http.StatusOK {
			json.Unmarshal(raw, &a.upstreamSaw)
		}
		return a
	}
	session := http.Header{"X-Session-Id": {"direct-session-0123456789"}}
	cases := []struct {
		name, method, path string
		header             http.Header
		body               string
	}{
		{"forwarded", http.MethodGet, "/api/v2/accounts?x=1", session, ""},
		{"forwarded with a body", http.MethodPost, "/api/v2/accounts", session, `{"a":1}`},
		{"no session", http.MethodGet, "/api/v2/accounts", nil, ""},
		{"malformed session", http.MethodGet, "/api/v2/accounts", http.Header{"X-Session-Id": {"short"}}, ""},
		{"denied route", http.MethodGet, "/api/v2/clientConfiguration", session, ""},
		{"traversal", http.MethodGet, "/api/v2/x/%2e%2e/clientConfiguration", session, ""},
		{"body too large", http.MethodPost, "/api/v2/accounts", session, strings.Repeat("x", 17)},
		{"trace", http.MethodTrace, "/api/v2/accounts", session, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			direct := send(c.method, c.path, c.header, c.body, false)
			echo := send(c.method, c.path, c.header, c.body, true)
			// (TRACE is refused before the CORS middleware runs: no marker.)
			if direct.viaEchoMarker || !echo.viaEchoMarker && c.method != http.MethodTrace {
				t.Fatalf("the two requests did not take the two paths (CORS header: direct %v, echo %v)", direct.viaEchoMarker, echo.viaEchoMarker)
			}
			// The Origin header itself reaches the upstream on the Echo path.
			if echo.upstreamSaw != nil {
				delete(echo.upstreamSaw, "Origin")
			}
			if direct.status != echo.status || direct.reason != echo.reason || direct.requestID != echo.requestID ||
				!headersEqual(direct.upstreamSaw, echo.upstreamSaw) {
				t.Errorf("direct %+v\n  echo %+v", direct, echo)
			}
		})
	}
}

func headersEqual(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestDirectPathWithCORSVariesOnOrigin: with CORS on, a request without an
// Origin takes the direct path and is marked Vary: Origin, as Echo's CORS
// middleware marks it (a cache must not hand it to a browser); an OPTIONS
// request without one is still answered by the CORS middleware.
func TestDirectPathWithCORSVariesOnOrigin(t *testing.T) {
	srv, _ := directTestProxy(t, http.HandlerFunc(echoHeaders), Config{CORSOrigins: []string{"https://app.example"}})
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v2/accounts", nil)
	req.Header.Set("X-Session-Id", "direct-session-0123456789")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Vary") != "Origin" {
		t.Errorf("status %d, Vary %q; want 200 and Origin", res.StatusCode, res.Header.Values("Vary"))
	}
	req, _ = http.NewRequest(http.MethodOptions, srv.URL+"/api/v2/accounts", nil)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Errorf("OPTIONS without Origin: status %d, want 204 from the CORS middleware", res.StatusCode)
	}
}

// TestInterimAnswerKeepsTheFinalStatus: an upstream's 103 Early Hints goes
// to the caller and the final status after it is the one answered,
// observed and logged, with finproxy's request id (and, with CORS on, its
// Vary: Origin) on the final answer, on the direct path and through Echo
// (a browser's request with CORS on) alike.
func TestInterimAnswerKeepsTheFinalStatus(t *testing.T) {
	const origin = "https://app.example"
	srv, obs := directTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"errors":[]}`)
	}), Config{CORSOrigins: []string{origin}})
	for _, viaEcho := range []bool{false, true} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v2/accounts/9", nil)
		req.Header.Set("X-Session-Id", "direct-session-0123456789")
		req.Header.Set("X-Request-Id", "interim-test-request-id")
		if viaEcho {
			req.Header.Set("Origin", origin)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound || string(body) != `{"errors":[]}` {
			t.Errorf("via Echo %v: status %d, body %q; want the upstream's 404", viaEcho, res.StatusCode, body)
		}
		if got := res.Header.Values("X-Request-Id"); !slices.Equal(got, []string{"interim-test-request-id"}) {
			t.Errorf("via Echo %v: X-Request-Id %q on the final answer", viaEcho, got)
		}
		if !slices.Contains(res.Header.Values("Vary"), "Origin") {
			t.Errorf("via Echo %v: Vary %q on the final answer, want Origin", viaEcho, res.Header.Values("Vary"))
		}
		if got := obs.last(); got != http.StatusNotFound {
			t.Errorf("via Echo %v: observed status %d, want 404", viaEcho, got)
		}
	}
}
