package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Request counts a request the proxy answered and records how long it took.
// route is the configured prefix ("/" for Access), never a raw path;
// method is kept when it is a standard HTTP method, else it counts as
// "OTHER". It implements proxy.Observer.
func (m *Metrics) Request(route, method string, status int, d time.Duration) {
	k := requestKey{route, normalizeMethod(method), status}
	h, ok := m.byRequest.Load(k)
	if !ok {
		h, _ = m.byRequest.LoadOrStore(k, &requestHandles{
			count:    m.requests.WithLabelValues(k.route, k.method, statusCode(status)),
			duration: m.requestDuration.WithLabelValues(route),
		})
	}
	rh := h.(*requestHandles)
	rh.count.Inc()
	rh.duration.Observe(d.Seconds())
}

// requestKey names the series of one kind of request. The label values
// are bounded (configured routes, standard methods, three-digit codes), so
// the cache of their handles is too.
type requestKey struct {
	route, method string
	status        int
}

// requestHandles are a kind of request's series, looked up once: a
// WithLabelValues hashes its labels and takes the vector's lock on every
// call, twice per request.
type requestHandles struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// Upstream records how long a forwarded call took upstream. It implements
// proxy.Observer.
func (m *Metrics) Upstream(route string, d time.Duration) {
	h, ok := m.byUpstream.Load(route)
	if !ok {
		h, _ = m.byUpstream.LoadOrStore(route, m.upstreamDuration.WithLabelValues(route))
	}
	h.(prometheus.Observer).Observe(d.Seconds())
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
