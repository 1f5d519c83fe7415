package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finproxy/finproxy/test/emulator"
)

// link is a TCP relay on loopback between finproxy and the emulator that
// a test can cut (finAPI unreachable: connections refused, open ones
// dropped) and restore on the same address.
type link struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
}

func newLink(t *testing.T, target string) *link {
	l := &link{t: t, addr: freeAddr(t), target: target, conns: map[net.Conn]struct{}{}}
	l.restore()
	t.Cleanup(l.cut)
	return l
}

func (l *link) url() string { return "http://" + l.addr }

func (l *link) restore() {
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		l.t.Fatalf("link: %v", err)
	}
	l.mu.Lock()
	l.ln = ln
	l.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go l.relay(c)
		}
	}()
}

func (l *link) relay(c net.Conn) {
	u, err := net.DialTimeout("tcp", l.target, time.Second)
	if err != nil {
		c.Close()
		return
	}
	l.mu.Lock()
	l.conns[c], l.conns[u] = struct{}{}, struct{}{}
	l.mu.Unlock()
	go func() { io.Copy(u, c); u.Close() }()
	io.Copy(c, u)
	c.Close()
	l.mu.Lock()
	delete(l.conns, c)
	delete(l.conns, u)
	l.mu.Unlock()
}

func (l *link) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		l.ln.Close()
		l.ln = nil
	}
	for c := range l.conns {
		c.Close()
	}
}

// world is what a fault scenario acts on.
type world struct {
	t    *testing.T
	f    *finapi
	p    *proxyProc
	env  map[string]string
	rs   *privateRedis
	link *link
}

// scenario is one row of the fault matrix: a fault injected under steady
// traffic of cached and new sessions, then healed.
type scenario struct {
	name    string
	process bool // process mode
	redis   bool // a private Redis as the store
	link    bool // finAPI Access behind a link that can be cut
	env     map[string]string
	inject  func(w *world)
	heal    func(w *world)
	// allowed are the statuses a caller may see during the fault (0: the
	// connection refused, only while finproxy itself is down).
	allowed []int
	// cachedOK: sessions with a valid token keep getting 200.
	cachedOK bool
	// worst bounds every answer's latency during the fault.
	worst time.Duration
	// storm, where finAPI is the failing side: the calls reaching its
	// token endpoint or Process Controller stay bounded by the back-off
	// (at most 30 in the 3 s, about 10 a second), whatever the number of
	// new sessions. Where Redis or finproxy fails, every new session
	// logs in as usual.
	storm bool
}

// observed is what callers saw during one scenario's fault.
type observed struct {
	mu       sync.Mutex
	statuses map[int]int
	reasons  map[string]int
	worst    time.Duration
	fresh    []string // new sessions that were tried
	noRetry  int      // 429/503 answers without Retry-After
	badShape int      // finproxy errors not in finAPI's shape
	cachedKO int      // cached sessions answered other than 200
}

func (o *observed) String() string {
	var codes []int
	for c := range o.statuses {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		name := fmt.Sprint(c)
		if c == 0 {
			name = "refused"
		}
		parts = append(parts, fmt.Sprintf("%s×%d", name, o.statuses[c]))
	}
	var reasons []string
	for r, n := range o.reasons {
		reasons = append(reasons, fmt.Sprintf("%s×%d", r, n))
	}
	sort.Strings(reasons)
	s := strings.Join(parts, ", ")
	if len(reasons) > 0 {
		s += " (" + strings.Join(reasons, ", ") + ")"
	}
	return s
}

// reached counts what reached finAPI: calls to the token endpoint (all,
// failed ones included), users created, processes created and data calls.
func reached(f *finapi) (token, users, processes, data int) {
	for _, r := range f.Requests() {
		switch {
		case strings.HasSuffix(r.Path, "/oauth/token"):
			token++
		case r.Path == "/api/v2/users" && r.Method == http.MethodPost:
			users++
		case strings.HasPrefix(r.Path, "/api/v1/processes") && r.Method == http.MethodPost && !strings.Contains(r.Path, "/token"):
			processes++
		case strings.HasPrefix(r.Path, "/api/v2/accounts"):
			data++
		}
	}
	return
}

// matrixRows collects one markdown row per scenario for docs/reliability.md
// (written to $FINPROXY_RELIABILITY_OUT when set).
var matrixRows struct {
	sync.Mutex
	rows []string
}

// TestFaultMatrix injects each fault under steady traffic (4 callers, 3 s:
// cached sessions and a new session every fourth request), heals it and
// measures: what callers saw (every refusal in finAPI's shape, every 429
// and 503 with Retry-After, cached sessions served where their token is
// valid, the slowest answer), what reached finAPI, how long until a cached
// and a new session are answered again, and that nothing was lost: every
// session, the ones refused during the fault included, gets 200 afterwards
// and the warm ones keep their finAPI user (process mode: no session has
// more than one process).
func TestFaultMatrix(t *testing.T) {
	const upstreamTimeout = 2 * time.Second
	tokenFault := func(a emulator.Answer) func(*world) {
		return func(w *world) { w.f.AnswerNext("/api/v2/oauth/token", a, 1<<20) }
	}
	clear := func(w *world) { w.f.ClearFaults() }
	errShape := func(status int, code string) string {
		return fmt.Sprintf(`{"errors":[{"message":"fault","code":"%s","type":"TECHNICAL"}],"date":"2026-12-01T00:00:00.000Z","requestId":null,"endpoint":"POST /api/v2/oauth/token","authContext":null,"bank":null}`, code)
	}
	new5xx := []int{200, 502, 503, 504}
	scenarios := []scenario{
		{name: "token endpoint answers 500", inject: tokenFault(emulator.Answer{Status: 500, Body: errShape(500, "UNEXPECTED_ERROR")}), heal: clear,
			allowed: new5xx, cachedOK: true, worst: upstreamTimeout + time.Second, storm: true},
		{name: "token endpoint resets the connection", inject: tokenFault(emulator.Answer{Reset: true}), heal: clear,
			allowed: new5xx, cachedOK: true, worst: upstreamTimeout + time.Second, storm: true},
		{name: "token endpoint slower than FINPROXY_UPSTREAM_TIMEOUT (2 s)", inject: func(w *world) { w.f.SetLatency("/api/v2/oauth/token", 5*time.Second) }, heal: clear,
			allowed: new5xx, cachedOK: true, worst: upstreamTimeout + time.Second, storm: true},
		{name: "token endpoint answers 200 with garbage", inject: tokenFault(emulator.Answer{Status: 200, Body: "<html>gateway</html>"}), heal: clear,
			allowed: new5xx, cachedOK: true, worst: upstreamTimeout + time.Second, storm: true},
		{name: "token endpoint answers 200 without access_token", inject: tokenFault(emulator.Answer{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: `{"token_type":"bearer","expires_in":3600}`}), heal: clear,
			allowed: new5xx, cachedOK: true, worst: upstreamTimeout + time.Second, storm: true},
		{name: "finAPI answers 429, Retry-After: 2", inject: tokenFault(emulator.Answer{Status: 429, Header: http.Header{"Retry-After": {"2"}}, Body: errShape(429, "TOO_MANY_REQUESTS")}), heal: clear,
			allowed: []int{200, 429, 503}, cachedOK: true, worst: upstreamTimeout + time.Second, storm: true},
		{name: "finAPI answers 429, Retry-After as an HTTP date", inject: func(w *world) {
			tokenFault(emulator.Answer{Status: 429, Header: http.Header{"Retry-After": {time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat)}}, Body: errShape(429, "TOO_MANY_REQUESTS")})(w)
		}, heal: clear, allowed: []int{200, 429, 503}, cachedOK: true, worst: upstreamTimeout + time.Second, storm: true},
		{name: "Process Controller answers 500", process: true, inject: func(w *world) { w.f.FailNext("/api/v1/processes", 500, 1<<20) }, heal: clear,
			allowed: new5xx, cachedOK: true, worst: upstreamTimeout + time.Second, storm: true},
		{name: "Process Controller refuses the client (401)", process: true, inject: func(w *world) { w.f.FailNext("/api/v1/processes", 401, 1<<20) }, heal: clear,
			allowed: new5xx, cachedOK: true, worst: upstreamTimeout + time.Second, storm: true},
		{name: "finAPI unreachable (connections refused and cut)", link: true, inject: func(w *world) { w.link.cut() }, heal: func(w *world) { w.link.restore() },
			allowed: []int{502, 503, 504}, worst: upstreamTimeout + time.Second, storm: true},
		{name: "Redis killed, restarted empty", redis: true, inject: func(w *world) { w.rs.kill() }, heal: func(w *world) { w.rs.start() },
			allowed: []int{200}, cachedOK: true, worst: time.Second},
		{name: "Redis frozen (SIGSTOP), resumed", redis: true, inject: func(w *world) { w.rs.freeze() }, heal: func(w *world) { w.rs.thaw() },
			allowed: []int{200}, cachedOK: true, worst: time.Second},
		{name: "finproxy killed (SIGKILL), restarted", redis: true, inject: func(w *world) {
			w.p.cmd.Process.Kill()
			<-w.p.done
		}, heal: func(w *world) { w.p = startProxy(w.t, w.f, w.env); w.p.waitReady() },
			allowed: []int{0}, worst: time.Second},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { runScenario(t, sc, upstreamTimeout) })
	}
	matrixRows.Lock()
	defer matrixRows.Unlock()
	table := "| scenario | callers saw during the fault (3 s) | slowest answer | reached finAPI during the fault | recovery | nothing lost |\n|---|---|---|---|---|---|\n" + strings.Join(matrixRows.rows, "\n") + "\n"
	t.Logf("fault matrix:\n%s", table)
	if out := os.Getenv("FINPROXY_RELIABILITY_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
}

func runScenario(t *testing.T, sc scenario, upstreamTimeout time.Duration) {
	f := newFinAPI(t, emulator.Config{})
	w := &world{t: t, f: f, env: proxyEnv(f)}
	w.env["FINPROXY_UPSTREAM_TIMEOUT"] = upstreamTimeout.String()
	w.env["FINPROXY_LOG_LEVEL"] = "warn"
	if sc.process {
		w.env["FINPROXY_MODE"] = "process"
		w.env["FINPROXY_PROCESS_ID"] = "GIRO_IDENT"
	}
	if sc.link {
		w.link = newLink(t, strings.TrimPrefix(f.access.URL, "http://"))
		w.env["FINPROXY_ACCESS_URL"] = w.link.url()
	}
	if sc.redis {
		w.rs = startPrivateRedis(t)
		w.env = redisEnv(t, f, w.env, w.rs.url())
	}
	for k, v := range sc.env {
		w.env[k] = v
	}
	w.p = startProxy(t, f, w.env)
	w.p.waitReady()

	warm := []string{session(t, 1), session(t, 2), session(t, 3), session(t, 4)}
	before := identities(t, w, warm, sc.process)
	f.Reset()

	o := &observed{statuses: map[int]int{}, reasons: map[string]int{}}
	var next atomic.Int64
	sc.inject(w)
	stop := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(stop); i++ {
				s, cached := warm[(g+i)%len(warm)], true
				if i%4 == 3 {
					s, cached = session(t, 1000+int(next.Add(1))), false
				}
				o.record(w.p, s, cached)
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	token, users, processes, data := reached(f)
	healed := time.Now()
	sc.heal(w)

	// Recovery: a cached and a brand-new session both answered 200.
	var recovery time.Duration
	for i := 0; ; i++ {
		okCached := status(w.p, warm[0]) == 200
		okNew := status(w.p, session(t, 5000+i)) == 200
		if okCached && okNew {
			recovery = time.Since(healed)
			break
		}
		if time.Since(healed) > 20*time.Second {
			t.Fatalf("not recovered 20 s after the fault ended")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Nothing lost: every session answers again (a session refused
	// during the fault may wait out its back-off), and the warm ones keep
	// their identity.
	all := append(slices.Clone(warm), o.fresh...)
	eventually(t, 35*time.Second, "every session answered again", func() bool {
		for len(all) > 0 && status(w.p, all[0]) == 200 {
			all = all[1:]
		}
		return len(all) == 0
	})
	after := identities(t, w, warm, sc.process)
	lost := "yes: same users"
	if sc.process {
		lost = "yes: one process per session"
	}
	for i := range warm {
		if before[i] != after[i] {
			t.Errorf("session %d was %s before the fault and %s after", i+1, before[i], after[i])
			lost = "NO"
		}
	}
	if sc.process {
		if n, sessions := f.Processes(), len(o.fresh)+len(warm); n > sessions+1 {
			t.Errorf("%d processes for %d sessions", n, sessions)
		}
	}

	// What callers saw.
	for code := range o.statuses {
		if !slices.Contains(sc.allowed, code) {
			t.Errorf("callers saw %d during the fault, want only %v: %s", code, sc.allowed, o)
		}
	}
	if o.noRetry > 0 {
		t.Errorf("%d answers 429/503 without Retry-After", o.noRetry)
	}
	if o.badShape > 0 {
		t.Errorf("%d refusals not in finAPI's error shape", o.badShape)
	}
	if sc.cachedOK && o.cachedKO > 0 {
		t.Errorf("%d answers to cached sessions were not 200: %s", o.cachedKO, o)
	}
	if o.worst > sc.worst {
		t.Errorf("slowest answer %v, want at most %v", o.worst, sc.worst)
	}
	if sc.storm && token+processes > 30 {
		t.Errorf("%d token and process calls reached finAPI for %d new sessions in 3 s, want at most 30", token+processes, len(o.fresh))
	}
	row := fmt.Sprintf("| %s | %s | %v | token endpoint %d, user creations %d, process creations %d, data calls %d (%d new sessions tried) | %v | %s |",
		sc.name, o, o.worst.Round(time.Millisecond), token, users, processes, data, len(o.fresh), recovery.Round(10*time.Millisecond), lost)
	t.Log(row)
	matrixRows.Lock()
	matrixRows.rows = append(matrixRows.rows, row)
	matrixRows.Unlock()
}

// record sends one request of session s and notes what came back.
func (o *observed) record(p *proxyProc, s string, cached bool) {
	start := time.Now()
	resp, body, err := p.try(request{path: "/api/v2/accounts", session: s})
	d := time.Since(start)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.worst = max(o.worst, d)
	if !cached {
		o.fresh = append(o.fresh, s)
	}
	if err != nil {
		o.statuses[0]++
		if cached {
			o.cachedKO++
		}
		return
	}
	o.statuses[resp.StatusCode]++
	if cached && resp.StatusCode != 200 {
		o.cachedKO++
	}
	if resp.StatusCode < 400 {
		return
	}
	reason := resp.Header.Get("X-Finproxy-Error")
	o.reasons[reason]++
	var e errorBody
	if reason == "" || json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 {
		o.badShape++
	}
	if (resp.StatusCode == 429 || resp.StatusCode == 503) && resp.Header.Get("Retry-After") == "" {
		o.noRetry++
	}
}

// status is the status of one request of session s (0: no answer).
func status(p *proxyProc, s string) int {
	resp, _, err := p.try(request{path: "/api/v2/accounts", session: s})
	if err != nil {
		return 0
	}
	return resp.StatusCode
}

// identities returns each session's finAPI user (user mode) or process
// token's user (process mode: the access token's user as the emulator
// records it).
func identities(t *testing.T, w *world, sessions []string, process bool) []string {
	t.Helper()
	out := make([]string, len(sessions))
	for i, s := range sessions {
		if process {
			if code := status(w.p, s); code != 200 {
				t.Fatalf("session %d: %d", i+1, code)
			}
			reqs := w.f.requestsTo("/api/v2/accounts")
			out[i] = reqs[len(reqs)-1].Header.Get("Authorization")
			continue
		}
		resp, body := w.p.do(request{path: "/api/v2/users", session: s})
		var u struct{ ID string }
		if resp.StatusCode != 200 || json.Unmarshal(body, &u) != nil {
			t.Fatalf("user of session %d: %d %s", i+1, resp.StatusCode, body)
		}
		out[i] = u.ID
	}
	return out
}
