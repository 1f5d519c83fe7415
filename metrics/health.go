package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Health is what the health gauges read; every field is optional (a nil
// one reads 0).
type Health struct {
	// FinAPIInFlight and FinAPIWaiting are the calls to finAPI's token,
	// user and Process Controller endpoints running, and queued for a
	// slot (FINPROXY_FINAPI_CONCURRENCY).
	FinAPIInFlight, FinAPIWaiting func() int
	// StoreDown reports the token store's breaker open (Redis failing).
	StoreDown func() bool
	// CredentialsRefused reports that finAPI refuses the client
	// credentials since their last success.
	CredentialsRefused func() bool
	// LogLinesDropped counts log lines dropped because the log output
	// did not keep up (logbuf).
	LogLinesDropped func() int64
}

// SetHealth sets what the health gauges read.
func (m *Metrics) SetHealth(h Health) { m.health.Store(&h) }

// healthGauges returns the gauges that read m.health.
func (m *Metrics) healthGauges() []prometheus.Collector {
	count := func(f func() int) float64 {
		if f == nil {
			return 0
		}
		return float64(f())
	}
	flag := func(f func() bool) float64 {
		if f != nil && f() {
			return 1
		}
		return 0
	}
	gauges := []struct {
		name, help string
		read       func(h *Health) float64
	}{
		{"finapi_calls_in_flight", "Calls of this replica to finAPI's token, user and Process Controller endpoints running now (at most FINPROXY_FINAPI_CONCURRENCY).",
			func(h *Health) float64 { return count(h.FinAPIInFlight) }},
		{"finapi_calls_waiting", "Calls to finAPI queued for a slot of FINPROXY_FINAPI_CONCURRENCY.",
			func(h *Health) float64 { return count(h.FinAPIWaiting) }},
		{"store_down", "1 while the token store (Redis) is failing and this replica serves from its own memory.",
			func(h *Health) float64 { return flag(h.StoreDown) }},
		{"client_credentials_refused", "1 while finAPI refuses the client credentials (since their last success).",
			func(h *Health) float64 { return flag(h.CredentialsRefused) }},
	}
	out := make([]prometheus.Collector, 0, len(gauges))
	for _, g := range gauges {
		out = append(out, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: g.name, Help: g.help}, func() float64 {
			if h := m.health.Load(); h != nil {
				return g.read(h)
			}
			return 0
		}))
	}
	out = append(out, prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: "log_lines_dropped_total",
		Help: "Log lines dropped because the log output (stdout) did not keep up; requests never wait for it."}, func() float64 {
		if h := m.health.Load(); h != nil && h.LogLinesDropped != nil {
			return float64(h.LogLinesDropped())
		}
		return 0
	}))
	return out
}
