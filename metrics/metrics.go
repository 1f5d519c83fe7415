// Package metrics is finproxy's Prometheus instrumentation: the contract
// metrics of the admin listener's /metrics (CONTRACT.md) and a few more,
// kept in a registry of their own together with the Go runtime and process
// collectors.
//
// Every label value comes from a small fixed set or from configuration (the
// route prefix), never from a request: no raw path, session, user id or
// token ever becomes a label.
package metrics

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/finproxy/finproxy/proxy"
)

// namespace prefixes every finproxy metric.
const namespace = "finproxy"

// version is reported by finproxy_build_info and --version. The Makefile
// and the Dockerfile set it at link time (scripts/build.sh: -ldflags
// "-X github.com/finproxy/finproxy/metrics.version=v1.2.3"); when empty,
// the build info is used (see versionOf).
var version = ""

// durationBuckets suit a proxy in front of finAPI: from a cached-token
// refusal in a few milliseconds to an upstream that runs into the 30 s
// timeout.
var durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Metrics holds finproxy's collectors and their registry. It implements
// proxy.Observer; Hooks, ObserveFinAPI, SetSessions and RateLimited feed it
// from the auth package and the rate limiter. Make one with New; all
// methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	// Contract (CONTRACT.md, Admin listener).
	requests         *prometheus.CounterVec   // route, method, code
	requestDuration  *prometheus.HistogramVec // route
	upstreamDuration *prometheus.HistogramVec // route
	byRequest        sync.Map                 // requestKey → *requestHandles
	byUpstream       sync.Map                 // route → prometheus.Observer
	tokenRequests    *prometheus.CounterVec   // kind, outcome
	usersCreated     prometheus.Counter
	cacheLookups     *prometheus.CounterVec // result
	retries          prometheus.Counter

	// Additional.
	finapiDuration *prometheus.HistogramVec // op
	finapiCalls    *prometheus.CounterVec   // op, outcome
	renewals       *prometheus.CounterVec   // when
	waiters        prometheus.Gauge
	conflicts      prometheus.Counter
	rateLimited    *prometheus.CounterVec // kind
	sessions       atomic.Pointer[func() int]
	health         atomic.Pointer[Health]

	handlerOnce sync.Once
	handler     http.Handler
}

var _ proxy.Observer = (*Metrics)(nil)

// New returns Metrics with every collector registered in a new registry of
// its own (not prometheus.DefaultRegisterer), together with the Go runtime
// and process collectors. Label combinations from fixed sets start at 0, so
// that they appear in the first scrape.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}

	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "requests_total",
		Help: "Requests answered by the proxy listener, finproxy's own refusals included, by route prefix, method and status code.",
	}, []string{"route", "method", "code"})
	m.requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "request_duration_seconds",
		Help:    "Time from receiving a request to answering it, by route prefix.",
		Buckets: durationBuckets,
	}, []string{"route"})
	m.upstreamDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "upstream_duration_seconds",
		Help:    "Time spent forwarding a request upstream (replay included), by route prefix.",
		Buckets: durationBuckets,
	}, []string{"route"})
	m.tokenRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "token_requests_total",
		Help: "Token requests to finAPI by kind (client, password, refresh, process) and outcome (ok, error).",
	}, []string{"kind", "outcome"})
	m.usersCreated = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "users_created_total",
		Help: "finAPI users created (an existing user, 422 ENTITY_EXISTS, is not counted).",
	})
	m.cacheLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "token_cache_lookups_total",
		Help: "Session token lookups by result: hit (a usable token was cached) or miss.",
	}, []string{"result"})
	m.retries = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "upstream_retries_total",
		Help: "Forwarded calls replayed after finAPI answered 401.",
	})

	m.finapiDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "finapi_call_duration_seconds",
		Help:    "Duration of finproxy's own calls to finAPI (token endpoint, users, processes), retries included, by operation.",
		Buckets: durationBuckets,
	}, []string{"op"})
	m.finapiCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "finapi_calls_total",
		Help: "finproxy's own calls to finAPI by operation and outcome (ok, error).",
	}, []string{"op", "outcome"})
	m.renewals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "token_renewals_total",
		Help: "Session tokens renewed successfully, ahead of expiry (ahead) or when a request needed one (on_demand).",
	}, []string{"when"})
	m.waiters = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "singleflight_waiters",
		Help: "Requests currently waiting for a token fetch of their session.",
	})
	m.conflicts = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "identity_conflicts_total",
		Help: "Sessions whose derived finAPI identity finAPI refused (identity secret changed, or user created elsewhere).",
	})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "rate_limited_total",
		Help: "Requests refused with 429 by finproxy's rate limiter, by kind (session, ip; new_session, new_session_ip: the bound on new finAPI identities).",
	}, []string{"kind"})
	sessions := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "sessions_cached",
		Help: "Sessions whose tokens the token cache holds.",
	}, func() float64 {
		if f := m.sessions.Load(); f != nil {
			return float64((*f)())
		}
		return 0
	})
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "Always 1; the labels name the running build.",
		ConstLabels: prometheus.Labels{"version": buildVersion(), "goversion": runtime.Version()},
	})
	buildInfo.Set(1)

	m.reg.MustRegister(
		m.requests, m.requestDuration, m.upstreamDuration, m.tokenRequests,
		m.usersCreated, m.cacheLookups, m.retries,
		m.finapiDuration, m.finapiCalls, m.renewals, m.waiters, m.conflicts,
		m.rateLimited, sessions, buildInfo,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.reg.MustRegister(m.healthGauges()...)

	for _, kind := range tokenKinds {
		for _, outcome := range outcomes {
			m.tokenRequests.WithLabelValues(kind, outcome)
		}
	}
	m.cacheLookups.WithLabelValues("hit")
	m.cacheLookups.WithLabelValues("miss")
	m.renewals.WithLabelValues("ahead")
	m.renewals.WithLabelValues("on_demand")
	for _, kind := range rateLimitKinds {
		m.rateLimited.WithLabelValues(kind)
	}
	return m
}

// Handler returns the /metrics handler for m's registry, in the Prometheus
// text format. It also counts its own scrapes
// (promhttp_metric_handler_requests_total).
func (m *Metrics) Handler() http.Handler {
	m.handlerOnce.Do(func() {
		m.handler = promhttp.InstrumentMetricHandler(m.reg,
			promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	})
	return m.handler
}

func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return versionOf(version, bi)
}

// versionOf is the version stamped at link time, else the main module's
// version from the build info, else its VCS revision (with "-dirty" for a
// modified tree), else "dev": never a bare "(devel)".
func versionOf(stamped string, bi *debug.BuildInfo) string {
	if stamped != "" {
		return stamped
	}
	if bi == nil {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	switch {
	case rev == "":
		return "dev"
	case dirty:
		return rev + "-dirty"
	}
	return rev
}

// Version returns finproxy's version as finproxy_build_info reports it.
func Version() string { return buildVersion() }
