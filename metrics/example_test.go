package metrics_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/finproxy/finproxy/metrics"
)

// Example wires Metrics as main.go does: as the proxy's Observer, the
// session cache's Hooks, the finAPI client's Observe and the admin
// listener's /metrics.
func Example() {
	m := metrics.New()
	// proxy.Config{Observer: m}, auth.Sessions{Hooks: m.Hooks()},
	// finapi.Client{Observe: m.ObserveFinAPI}, m.SetSessions(store.Len),
	// admin.Config{Metrics: m.Handler()}.
	m.Request("/", http.MethodGet, http.StatusOK, 42*time.Millisecond)
	m.ObserveFinAPI("client_credentials grant", nil, 80*time.Millisecond)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "finproxy_requests_total") ||
			strings.HasPrefix(line, `finproxy_token_requests_total{kind="client"`) {
			fmt.Println(line)
		}
	}
	// Output:
	// finproxy_requests_total{code="200",method="GET",route="/"} 1
	// finproxy_token_requests_total{kind="client",outcome="error"} 0
	// finproxy_token_requests_total{kind="client",outcome="ok"} 1
}
