package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/finproxy/finproxy/auth"
	"github.com/finproxy/finproxy/finapi"
	"github.com/finproxy/finproxy/metrics"
	"github.com/finproxy/finproxy/proxy"
)

// contractMetrics are the names CONTRACT.md promises on /metrics.
var contractMetrics = []string{
	"finproxy_requests_total",
	"finproxy_request_duration_seconds",
	"finproxy_upstream_duration_seconds",
	"finproxy_token_requests_total",
	"finproxy_users_created_total",
	"finproxy_token_cache_lookups_total",
	"finproxy_upstream_retries_total",
}

// scrape GETs /metrics from m's handler through a real server and parses
// the text format.
func scrape(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want the Prometheus text format", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	return fams
}

// value returns the value of the sample of family name whose labels are
// exactly labels (counter, gauge, or a histogram's count), and whether
// there is one.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	mf, ok := fams[name]
	if !ok {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if !sameLabels(m.GetLabel(), labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

func sameLabels(got []*dto.LabelPair, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, lp := range got {
		if v, ok := want[lp.GetName()]; !ok || v != lp.GetValue() {
			return false
		}
	}
	return true
}

func mustValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := value(fams, name, labels)
	if !ok {
		t.Fatalf("%s%v not in the scrape", name, labels)
	}
	return v
}

func TestFirstScrape(t *testing.T) {
	fams := scrape(t, metrics.New())

	for _, kind := range []string{"client", "password", "refresh", "process"} {
		for _, outcome := range []string{"ok", "error"} {
			labels := map[string]string{"kind": kind, "outcome": outcome}
			if v := mustValue(t, fams, "finproxy_token_requests_total", labels); v != 0 {
				t.Errorf("finproxy_token_requests_total%v = %v, want 0", labels, v)
			}
		}
	}
	for _, result := range []string{"hit", "miss"} {
		mustValue(t, fams, "finproxy_token_cache_lookups_total", map[string]string{"result": result})
	}
	for _, name := range []string{
		"finproxy_users_created_total",
		"finproxy_upstream_retries_total",
		"finproxy_singleflight_waiters",
		"finproxy_identity_conflicts_total",
		"finproxy_sessions_cached",
	} {
		if v := mustValue(t, fams, name, map[string]string{}); v != 0 {
			t.Errorf("%s = %v, want 0", name, v)
		}
	}
	for _, when := range []string{"ahead", "on_demand"} {
		mustValue(t, fams, "finproxy_token_renewals_total", map[string]string{"when": when})
	}
	for _, kind := range []string{"session", "ip"} {
		mustValue(t, fams, "finproxy_rate_limited_total", map[string]string{"kind": kind})
	}

	bi := fams["finproxy_build_info"]
	if bi == nil || len(bi.GetMetric()) != 1 || bi.GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Fatalf("finproxy_build_info: got %v, want one sample of 1", bi)
	}
	for _, lp := range bi.GetMetric()[0].GetLabel() {
		if lp.GetValue() == "" {
			t.Errorf("finproxy_build_info label %s is empty", lp.GetName())
		}
	}

	// The runtime and process collectors are registered.
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s missing from the scrape", name)
		}
	}
}

func TestEveryContractMetricAppears(t *testing.T) {
	m := metrics.New()
	m.Request(proxy.AccessRoute, http.MethodGet, http.StatusOK, 20*time.Millisecond)
	m.Upstream(proxy.AccessRoute, 15*time.Millisecond)
	m.Retry()
	m.ObserveFinAPI("create user", nil, time.Millisecond)

	fams := scrape(t, m)
	for _, name := range contractMetrics {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s missing from the scrape", name)
		}
	}
	wantTypes := map[string]dto.MetricType{
		"finproxy_requests_total":            dto.MetricType_COUNTER,
		"finproxy_request_duration_seconds":  dto.MetricType_HISTOGRAM,
		"finproxy_upstream_duration_seconds": dto.MetricType_HISTOGRAM,
		"finproxy_token_requests_total":      dto.MetricType_COUNTER,
		"finproxy_users_created_total":       dto.MetricType_COUNTER,
		"finproxy_token_cache_lookups_total": dto.MetricType_COUNTER,
		"finproxy_upstream_retries_total":    dto.MetricType_COUNTER,
	}
	for name, typ := range wantTypes {
		if mf := fams[name]; mf != nil && mf.GetType() != typ {
			t.Errorf("%s is a %v, want a %v", name, mf.GetType(), typ)
		}
	}
}

func TestRequest(t *testing.T) {
	m := metrics.New()
	m.Request("/", http.MethodGet, http.StatusOK, 10*time.Millisecond)
	m.Request("/", http.MethodGet, http.StatusOK, 20*time.Millisecond)
	m.Request("/di", http.MethodPost, http.StatusBadGateway, 3*time.Second)
	m.Request("-", http.MethodGet, http.StatusNotFound, time.Millisecond)
	m.Upstream("/di", 2*time.Second)
	m.Retry()
	m.Retry()

	fams := scrape(t, m)
	for _, c := range []struct {
		route, method, code string
		want                float64
	}{
		{"/", "GET", "200", 2},
		{"/di", "POST", "502", 1},
		{"-", "GET", "404", 1},
	} {
		labels := map[string]string{"route": c.route, "method": c.method, "code": c.code}
		if got := mustValue(t, fams, "finproxy_requests_total", labels); got != c.want {
			t.Errorf("finproxy_requests_total%v = %v, want %v", labels, got, c.want)
		}
	}
	if got := mustValue(t, fams, "finproxy_request_duration_seconds", map[string]string{"route": "/"}); got != 2 {
		t.Errorf("request_duration_seconds{route=/} count = %v, want 2", got)
	}
	if got := mustValue(t, fams, "finproxy_upstream_duration_seconds", map[string]string{"route": "/di"}); got != 1 {
		t.Errorf("upstream_duration_seconds{route=/di} count = %v, want 1", got)
	}
	if _, ok := value(fams, "finproxy_upstream_duration_seconds", map[string]string{"route": "/"}); ok {
		t.Errorf("upstream_duration_seconds{route=/} exists, but nothing went upstream on /")
	}
	if got := mustValue(t, fams, "finproxy_upstream_retries_total", map[string]string{}); got != 2 {
		t.Errorf("upstream_retries_total = %v, want 2", got)
	}

	// The slow /di request lands in the 5 s bucket, not below 2.5 s.
	for _, mt := range fams["finproxy_request_duration_seconds"].GetMetric() {
		if !sameLabels(mt.GetLabel(), map[string]string{"route": "/di"}) {
			continue
		}
		for _, b := range mt.GetHistogram().GetBucket() {
			want := uint64(0)
			if b.GetUpperBound() >= 5 {
				want = 1
			}
			if b.GetCumulativeCount() != want {
				t.Errorf("bucket le=%v holds %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
			}
		}
	}
}

// TestRouteLabel checks that the route label holds exactly the routes that
// were passed in, and nothing derived from elsewhere.
func TestRouteLabel(t *testing.T) {
	m := metrics.New()
	passed := map[string]bool{"/": true, "/di": true, "/webform": true, "-": true}
	for r := range passed {
		m.Request(r, http.MethodGet, http.StatusOK, time.Millisecond)
		m.Upstream(r, time.Millisecond)
	}
	fams := scrape(t, m)
	for _, name := range []string{"finproxy_requests_total", "finproxy_request_duration_seconds", "finproxy_upstream_duration_seconds"} {
		seen := map[string]bool{}
		for _, mt := range fams[name].GetMetric() {
			for _, lp := range mt.GetLabel() {
				if lp.GetName() != "route" {
					continue
				}
				if !passed[lp.GetValue()] {
					t.Errorf("%s has route %q, which was never passed", name, lp.GetValue())
				}
				seen[lp.GetValue()] = true
			}
		}
		if len(seen) != len(passed) {
			t.Errorf("%s routes = %v, want %v", name, seen, passed)
		}
	}
}

func TestMethodAndCodeNormalisation(t *testing.T) {
	tests := []struct {
		name   string
		method string
		status int
		want   map[string]string
	}{
		{"standard method kept", "PATCH", 204, map[string]string{"method": "PATCH", "code": "204"}},
		{"every standard method", "OPTIONS", 200, map[string]string{"method": "OPTIONS", "code": "200"}},
		{"unknown method", "PROPFIND", 405, map[string]string{"method": "OTHER", "code": "405"}},
		{"lower case is not standard", "get", 200, map[string]string{"method": "OTHER", "code": "200"}},
		{"junk method", "X-" + strings.Repeat("A", 200), 400, map[string]string{"method": "OTHER", "code": "400"}},
		{"empty method", "", 400, map[string]string{"method": "OTHER", "code": "400"}},
		{"status out of range", "GET", 0, map[string]string{"method": "GET", "code": "other"}},
		{"status too large", "GET", 1000, map[string]string{"method": "GET", "code": "other"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New()
			m.Request("/", tt.method, tt.status, time.Millisecond)
			fams := scrape(t, m)
			want := map[string]string{"route": "/"}
			for k, v := range tt.want {
				want[k] = v
			}
			if got := mustValue(t, fams, "finproxy_requests_total", want); got != 1 {
				t.Errorf("finproxy_requests_total%v = %v, want 1", want, got)
			}
			if n := len(fams["finproxy_requests_total"].GetMetric()); n != 1 {
				t.Errorf("%d series, want 1", n)
			}
		})
	}
}

func TestObserveFinAPI(t *testing.T) {
	boom := errors.New("auth: finAPI unreachable")
	type sample struct {
		name   string
		labels map[string]string
		want   float64
	}
	tokens := func(kind, outcome string, want float64) sample {
		return sample{"finproxy_token_requests_total", map[string]string{"kind": kind, "outcome": outcome}, want}
	}
	calls := func(op, outcome string, want float64) sample {
		return sample{"finproxy_finapi_calls_total", map[string]string{"op": op, "outcome": outcome}, want}
	}
	users := func(want float64) sample { return sample{"finproxy_users_created_total", map[string]string{}, want} }

	tests := []struct {
		name string
		op   string
		err  error
		want []sample
	}{
		{"client grant ok", "client_credentials grant", nil, []sample{tokens("client", "ok", 1), tokens("client", "error", 0), calls("client_credentials_grant", "ok", 1)}},
		{"client grant error", "client_credentials grant", boom, []sample{tokens("client", "error", 1), tokens("client", "ok", 0), calls("client_credentials_grant", "error", 1)}},
		{"password grant ok", "password grant", nil, []sample{tokens("password", "ok", 1), calls("password_grant", "ok", 1)}},
		{"password grant error", "password grant", boom, []sample{tokens("password", "error", 1)}},
		{"refresh grant ok", "refresh_token grant", nil, []sample{tokens("refresh", "ok", 1), calls("refresh_token_grant", "ok", 1)}},
		{"refresh grant error", "refresh_token grant", boom, []sample{tokens("refresh", "error", 1)}},
		{"process exchange ok", "exchange process", nil, []sample{tokens("process", "ok", 1), calls("exchange_process", "ok", 1)}},
		{"process exchange error", "exchange process", boom, []sample{tokens("process", "error", 1)}},
		{"process creation ok is not a token request", "create process", nil, []sample{tokens("process", "ok", 0), tokens("process", "error", 0), calls("create_process", "ok", 1)}},
		{"process creation error is", "create process", boom, []sample{tokens("process", "error", 1), calls("create_process", "error", 1)}},
		{"user created", "create user", nil, []sample{users(1), calls("create_user", "ok", 1), tokens("client", "ok", 0)}},
		{"user creation failed", "create user", boom, []sample{users(0), calls("create_user", "error", 1)}},
		{"user existed", "create user (exists)", nil, []sample{users(0), calls("create_user", "ok", 1)}},
		{"delete user", "delete user", nil, []sample{users(0), calls("delete_user", "ok", 1)}},
		{"revoke", "revoke", boom, []sample{calls("revoke", "error", 1)}},
		{"password change requested", "request password change", nil, []sample{calls("request_password_change", "ok", 1)}},
		{"password change executed", "execute password change", boom, []sample{calls("execute_password_change", "error", 1), tokens("password", "error", 0)}},
		{"unknown op", "something new", nil, []sample{calls("other", "ok", 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New()
			m.ObserveFinAPI(tt.op, tt.err, 120*time.Millisecond)
			fams := scrape(t, m)
			for _, s := range tt.want {
				if got := mustValue(t, fams, s.name, s.labels); got != s.want {
					t.Errorf("%s%v = %v, want %v", s.name, s.labels, got, s.want)
				}
			}
			if n := len(fams["finproxy_finapi_call_duration_seconds"].GetMetric()); n != 1 {
				t.Errorf("finapi_call_duration_seconds has %d series, want 1", n)
			}
		})
	}
}

// TestProcessCountsOnce: a process whose creation and exchange succeed is
// one process token request, and so is one whose creation fails.
func TestProcessCountsOnce(t *testing.T) {
	m := metrics.New()
	m.ObserveFinAPI("create process", nil, time.Millisecond)
	m.ObserveFinAPI("exchange process", nil, time.Millisecond)
	m.ObserveFinAPI("create process", errors.New("auth: 500"), time.Millisecond)
	fams := scrape(t, m)
	if got := mustValue(t, fams, "finproxy_token_requests_total", map[string]string{"kind": "process", "outcome": "ok"}); got != 1 {
		t.Errorf("process ok = %v, want 1", got)
	}
	if got := mustValue(t, fams, "finproxy_token_requests_total", map[string]string{"kind": "process", "outcome": "error"}); got != 1 {
		t.Errorf("process error = %v, want 1", got)
	}
}

func TestHooks(t *testing.T) {
	m := metrics.New()
	h := m.Hooks()
	if h.Lookup == nil || h.Obtained == nil || h.Waiting == nil || h.Conflict == nil {
		t.Fatalf("Hooks() = %+v, want every field set", h)
	}
	ctx := context.Background()
	s, tok := session(t), auth.Token{AccessToken: "access-secret", RefreshToken: "refresh-secret"}

	h.Lookup(true)
	h.Lookup(true)
	h.Lookup(false)
	h.Obtained(ctx, s, tok, false, false, nil)                    // first token: no renewal
	h.Obtained(ctx, s, tok, true, true, nil)                      // ahead
	h.Obtained(ctx, s, tok, false, true, nil)                     // on demand
	h.Obtained(ctx, s, tok, false, true, nil)                     // on demand
	h.Obtained(ctx, s, auth.Token{}, true, true, errors.New("x")) // failed: not a renewal
	h.Waiting(1)
	h.Waiting(1)
	h.Waiting(1)
	h.Waiting(-1)
	h.Conflict(ctx, s, finapi.ErrIdentityConflict)

	fams := scrape(t, m)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"finproxy_token_cache_lookups_total", map[string]string{"result": "hit"}, 2},
		{"finproxy_token_cache_lookups_total", map[string]string{"result": "miss"}, 1},
		{"finproxy_token_renewals_total", map[string]string{"when": "ahead"}, 1},
		{"finproxy_token_renewals_total", map[string]string{"when": "on_demand"}, 2},
		{"finproxy_singleflight_waiters", map[string]string{}, 2},
		{"finproxy_identity_conflicts_total", map[string]string{}, 1},
	} {
		if got := mustValue(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func TestSessionsAndRateLimited(t *testing.T) {
	m := metrics.New()
	n := 0
	m.SetSessions(func() int { return n })
	n = 7
	m.RateLimited("session")
	m.RateLimited("ip")
	m.RateLimited("ip")
	m.RateLimited("10.0.0.1") // never a raw value

	fams := scrape(t, m)
	if got := mustValue(t, fams, "finproxy_sessions_cached", map[string]string{}); got != 7 {
		t.Errorf("sessions_cached = %v, want 7", got)
	}
	for kind, want := range map[string]float64{"session": 1, "ip": 2, "other": 1} {
		if got := mustValue(t, fams, "finproxy_rate_limited_total", map[string]string{"kind": kind}); got != want {
			t.Errorf("rate_limited_total{kind=%s} = %v, want %v", kind, got, want)
		}
	}

	m.SetSessions(nil)
	if got := mustValue(t, scrape(t, m), "finproxy_sessions_cached", map[string]string{}); got != 0 {
		t.Errorf("sessions_cached after SetSessions(nil) = %v, want 0", got)
	}
}

// allowedLabels lists, per label name, the values a label may hold; nil
// means "whatever the caller passed" (route), checked elsewhere.
var allowedLabels = map[string]map[string]bool{
	"method":  set("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "OTHER"),
	"kind":    set("client", "password", "refresh", "process", "session", "ip", "new_session", "new_session_ip", "other"),
	"outcome": set("ok", "error"),
	"result":  set("hit", "miss"),
	"when":    set("ahead", "on_demand"),
	"op": set("client_credentials_grant", "password_grant", "refresh_token_grant", "create_user",
		"delete_user", "verify_user", "revoke", "create_process", "exchange_process",
		"request_password_change", "execute_password_change", "other"),
	"route":     nil,
	"code":      nil, // three digits or "other", checked below
	"version":   nil,
	"goversion": nil,
}

func set(vs ...string) map[string]bool {
	m := map[string]bool{}
	for _, v := range vs {
		m[v] = true
	}
	return m
}

// TestNoSecretInLabels drives every method with a real session, user and
// tokens and checks that no finproxy label holds anything of them, or
// anything outside the label's fixed set.
func TestNoSecretInLabels(t *testing.T) {
	m := metrics.New()
	s := session(t)
	tok := auth.Token{AccessToken: "eyJhbGciOi.access.token", RefreshToken: "refresh-token-value", UserID: s.UserID()}
	ctx := context.Background()
	h := m.Hooks()
	h.Lookup(true)
	h.Lookup(false)
	h.Obtained(ctx, s, tok, true, true, nil)
	h.Obtained(ctx, s, tok, false, true, nil)
	h.Waiting(1)
	h.Waiting(-1)
	h.Conflict(ctx, s, errors.New("auth: password grant for "+s.UserID()+" refused"))
	for _, op := range []string{"client_credentials grant", "password grant", "refresh_token grant", "create user",
		"delete user", "revoke", "create process", "exchange process", "GET /api/v2/users/" + s.UserID()} {
		m.ObserveFinAPI(op, errors.New("auth: "+op+" "+s.ID+" "+tok.AccessToken), time.Millisecond)
		m.ObserveFinAPI(op, nil, time.Millisecond)
	}
	m.Request("/", "GET", 200, time.Millisecond)
	m.Request("/", s.ID, 200, time.Millisecond) // a method field abused
	m.RateLimited(s.ID)
	m.SetSessions(func() int { return 1 })

	secrets := []string{s.ID, s.Short(), s.UserID(), s.Password(), s.Reference(), tok.AccessToken, tok.RefreshToken, sessionValue}
	sessionLike := regexp.MustCompile(`^[0-9a-f]{12,}$|^` + regexp.QuoteMeta(auth.UserIDPrefix) + `|^[A-Za-z0-9._~+/=-]{24,}$`)
	codeRE := regexp.MustCompile(`^([1-5][0-9][0-9]|other)$`)

	for name, mf := range scrape(t, m) {
		if !strings.HasPrefix(name, "finproxy_") {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				n, v := lp.GetName(), lp.GetValue()
				allowed, known := allowedLabels[n]
				switch {
				case !known:
					t.Errorf("%s: unexpected label %s=%q", name, n, v)
				case allowed != nil && !allowed[v]:
					t.Errorf("%s: %s=%q outside its fixed set", name, n, v)
				case n == "code" && !codeRE.MatchString(v):
					t.Errorf("%s: code=%q", name, v)
				}
				if allowed == nil && n != "version" && n != "goversion" && sessionLike.MatchString(v) {
					t.Errorf("%s: %s=%q looks like a session, user id or token", name, n, v)
				}
				for _, sec := range secrets {
					if sec != "" && strings.Contains(v, sec) {
						t.Errorf("%s: %s=%q holds a secret or identity", name, n, v)
					}
				}
			}
		}
	}
}

func TestHandlerTwice(t *testing.T) {
	m := metrics.New()
	m.Handler() // a second call must not register the handler's own metrics twice
	scrape(t, m)
	fams := scrape(t, m)
	if got := mustValue(t, fams, "promhttp_metric_handler_requests_total", map[string]string{"code": "200"}); got < 1 {
		t.Errorf("promhttp_metric_handler_requests_total{code=200} = %v, want >= 1", got)
	}
}

// TestConcurrent runs every method from many goroutines (for -race).
func TestConcurrent(t *testing.T) {
	m := metrics.New()
	m.SetSessions(func() int { return 3 })
	h := m.Hooks()
	s := session(t)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				m.Request("/", http.MethodGet, 200+i, time.Millisecond)
				m.Upstream("/", time.Millisecond)
				m.Retry()
				m.ObserveFinAPI("password grant", nil, time.Millisecond)
				m.RateLimited("ip")
				h.Lookup(i%2 == 0)
				h.Waiting(1)
				h.Obtained(context.Background(), s, auth.Token{}, true, true, nil)
				h.Waiting(-1)
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 5 {
			m.SetSessions(func() int { return 4 })
			rec := httptest.NewRecorder()
			m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			if rec.Code != http.StatusOK {
				t.Errorf("scrape: %d", rec.Code)
			}
		}
	}()
	wg.Wait()
	<-done

	fams := scrape(t, m)
	if got := mustValue(t, fams, "finproxy_upstream_retries_total", map[string]string{}); got != 1600 {
		t.Errorf("retries = %v, want 1600", got)
	}
	if got := mustValue(t, fams, "finproxy_token_requests_total", map[string]string{"kind": "password", "outcome": "ok"}); got != 1600 {
		t.Errorf("password ok = %v, want 1600", got)
	}
	if got := mustValue(t, fams, "finproxy_singleflight_waiters", map[string]string{}); got != 0 {
		t.Errorf("waiters = %v, want 0 once everyone is done", got)
	}
}

// sessionValue is a raw app session as a caller would send it.
const sessionValue = "app-session-0123456789abcdef"

func session(t *testing.T) auth.Session {
	t.Helper()
	keys, err := auth.NewKeys([]byte("an identity secret of at least thirty-two bytes"))
	if err != nil {
		t.Fatal(err)
	}
	return keys.Session(sessionValue)
}
