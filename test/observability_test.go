package test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/finproxy/finproxy/test/emulator"
)

// scrape reads /metrics into "name{labels}" → value.
func scrape(t *testing.T, p *proxyProc) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetricsFollowAScriptedSequence(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	p.waitReady()
	s := session(t, 1)

	for range 6 { // 1 creation and login, then 5 hits
		if resp, body := p.do(request{path: "/api/v2/accounts", session: s}); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	f.RejectNextUserToken(1) // one replay
	if resp, _ := p.do(request{path: "/api/v2/accounts", session: s}); resp.StatusCode != 200 {
		t.Fatalf("replayed request: %d", resp.StatusCode)
	}
	p.do(request{path: "/api/v2/clientConfiguration", session: s}) // refused by finproxy
	p.do(request{path: "/api/v2/accounts"})                        // no session

	m := scrape(t, p)
	want := map[string]float64{
		`finproxy_users_created_total`:                                   1,
		`finproxy_token_cache_lookups_total{result="miss"}`:              1,
		`finproxy_token_cache_lookups_total{result="hit"}`:               6,
		`finproxy_upstream_retries_total`:                                1,
		`finproxy_token_requests_total{kind="client",outcome="ok"}`:      1,
		`finproxy_token_requests_total{kind="password",outcome="ok"}`:    1,
		`finproxy_token_requests_total{kind="refresh",outcome="ok"}`:     1,
		`finproxy_token_requests_total{kind="password",outcome="error"}`: 0,
		`finproxy_token_requests_total{kind="process",outcome="ok"}`:     0,
		`finproxy_requests_total{code="200",method="GET",route="/"}`:     7,
		`finproxy_requests_total{code="403",method="GET",route="/"}`:     1,
		`finproxy_requests_total{code="401",method="GET",route="/"}`:     1,
		`finproxy_request_duration_seconds_count{route="/"}`:             9,
		`finproxy_upstream_duration_seconds_count{route="/"}`:            7,
	}
	for k, v := range want {
		got, ok := m[k]
		if !ok {
			t.Errorf("metric %s missing", k)
			continue
		}
		if got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	for k := range m {
		if strings.Contains(k, "/api/") || strings.Contains(k, s) || strings.Contains(k, mustKeys(t).Session(s).UserID()) ||
			strings.Contains(k, mustKeys(t).Session(s).Short()) {
			t.Errorf("label holds a path, session or user: %s", k)
		}
	}

	// Logout and deletion close the identity's lifecycle.
	if resp, body := p.do(request{method: "POST", path: "/proxy/v1/session/logout", session: s}); resp.StatusCode != 204 {
		t.Fatalf("logout: %d %s", resp.StatusCode, body)
	}
	if resp, body := p.do(request{method: "DELETE", path: "/proxy/v1/session", session: s}); resp.StatusCode != 204 {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}

	// Log lines reach stdout asynchronously (logbuf): the deletion's request
	// line, written after its audit events, says they are all there.
	eventually(t, 5*time.Second, "the deletion's request line", func() bool {
		return strings.Contains(p.out.String(), `"method":"DELETE","path":"/proxy/v1/session","status":204`)
	})
	// The audit events of the sequence, once each (the deletion logs in
	// once more after the logout, so token_obtained appears twice).
	user := mustKeys(t).Session(s).UserID()
	for event, n := range map[string]int{"user_created": 1, "token_obtained": 2, "token_renewed": 1, "token_revoked": 1, "user_deleted": 1} {
		if got := auditEvents(t, p.out.String(), event, mustKeys(t).Session(s).Short(), user); got != n {
			t.Errorf("audit event %s appeared %d times, want %d", event, got, n)
		}
	}
}

// auditEvents counts the audit lines of event in out, checking that each
// names the session hash, the finAPI user (when user is not empty) and a
// request id.
func auditEvents(t *testing.T, out, event, session, user string) int {
	t.Helper()
	n := 0
	for _, l := range strings.Split(out, "\n") {
		var ev struct {
			Logger     string `json:"logger"`
			Event      string `json:"event"`
			Session    string `json:"session"`
			FinapiUser string `json:"finapi_user"`
			RequestID  string `json:"request_id"`
		}
		if json.Unmarshal([]byte(l), &ev) != nil || ev.Logger != "audit" || ev.Event != event {
			continue
		}
		n++
		if ev.Session != session || ev.FinapiUser != user || ev.RequestID == "" {
			t.Errorf("audit %s lacks session/user/request id: %s", event, l)
		}
	}
	return n
}

func TestReadiness(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	f.FailNext("/api/v2/oauth/token", 503, 1000)
	p := startProxy(t, f, proxyEnv(f))

	status := func() (int, string) {
		resp, err := http.Get("http://" + p.admin + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	eventually(t, 5*time.Second, "finproxy asked for a client token", func() bool { return len(f.requestsTo("/api/v2/oauth/token")) >= 3 })
	if code, body := status(); code != 503 || !strings.Contains(body, "reason") {
		t.Errorf("/readyz while finAPI refuses the client token: %d %s", code, body)
	}
	if resp, err := http.Get("http://" + p.admin + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz must be 200 while the process runs")
	}
	f.Reset() // finAPI answers again
	eventually(t, 10*time.Second, "ready once a client token was obtained", func() bool { c, _ := status(); return c == 200 })

	// A later outage does not make the replica unready, and probes never
	// call finAPI.
	f.SetDown(true)
	before := len(f.Requests())
	for range 100 {
		if code, body := status(); code != 200 {
			t.Fatalf("/readyz during a later outage: %d %s", code, body)
		}
	}
	if n := len(f.Requests()) - before; n != 0 {
		t.Errorf("100 probes caused %d calls to finAPI", n)
	}
}
