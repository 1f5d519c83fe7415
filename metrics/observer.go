package metrics

import (
	"net/http"
	"strconv"
	"time"
)

// Request counts a request the proxy answered and records how long it took.
// route is the configured prefix ("/" for Access), never a raw path;
// method is kept when it is a standard HTTP method, else it counts as
// "OTHER". It implements proxy.Observer.
func (m *Metrics) Request(route, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, normalizeMethod(method), statusCode(status)).Inc()
	m.requestDuration.WithLabelValues(route).Observe(d.Seconds())
}

// Upstream records how long a forwarded call took upstream. It implements
// proxy.Observer.
func (m *Metrics) Upstream(route string, d time.Duration) {
	m.upstreamDuration.WithLabelValues(route).Observe(d.Seconds())
}

// Retry counts a replay after an upstream 401. It implements
// proxy.Observer.
func (m *Metrics) Retry() {
	m.retries.Inc()
}

// normalizeMethod bounds the method label: anything but the standard
// methods (RFC 9110, PATCH from RFC 5789) is "OTHER". Methods are
// case-sensitive, so "get" is "OTHER" too.
func normalizeMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodConnect,
		http.MethodOptions, http.MethodTrace:
		return method
	}
	return "OTHER"
}

// statusCode bounds the code label to the three-digit HTTP statuses.
func statusCode(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status)
}
