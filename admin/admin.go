// Package admin serves finproxy's admin listener: liveness, readiness,
// metrics and, when an admin token is configured, the admin API under
// /admin/v1/. Probes never call finAPI themselves.
package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
)

// A Check reports why the replica is not ready (or is degraded), or nil
// when all is well. It must be cheap and must not call finAPI.
type Check func(ctx context.Context) error

// Config configures the admin handler.
type Config struct {
	// Ready lists what must have held once since start before the
	// replica takes traffic (client credentials proven, the store
	// answered, JWT keys fetched). Each check is latched once it passed:
	// a later outage of a dependency that every replica shares (one
	// Redis, finAPI) must not take the whole fleet out of the Service at
	// once; it shows in Degraded instead. Optional. Default: always ready.
	Ready []Check
	// Degraded lists checks of ongoing trouble after readiness; a failing
	// one is named in /readyz's "degraded" list but keeps the status 200.
	// Optional.
	Degraded []Check
	// Draining, if not nil, reports that the process is shutting down:
	// /readyz then answers 503 at once, so load balancers stop sending.
	// Optional.
	Draining func() bool
	// Metrics serves /metrics. Optional. Default: no /metrics.
	Metrics http.Handler
	// Pprof adds net/http/pprof under /debug/pprof/. Optional.
	Pprof bool
	// API serves the admin API under /admin/v1/ (NewAPI). If nil, every
	// /admin/v1/ path answers 404. Optional.
	API http.Handler
}

// readiness is /readyz's answer.
type readiness struct {
	Status   string   `json:"status"`
	Reason   string   `json:"reason,omitempty"`
	Degraded []string `json:"degraded,omitempty"`
}

// Handler returns the admin handler: GET /healthz (200 while the process
// runs), GET /readyz (200 with a JSON status and what is degraded, or 503
// with a JSON reason) and, when configured, /metrics and /debug/pprof/.
func Handler(c Config) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	passed := make([]bool, len(c.Ready))
	var mu sync.Mutex
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if c.Draining != nil && c.Draining() {
			writeJSON(w, http.StatusServiceUnavailable, readiness{Status: "not ready", Reason: "shutting down: draining in-flight requests"})
			return
		}
		for i, check := range c.Ready {
			mu.Lock()
			ok := passed[i]
			mu.Unlock()
			if ok {
				continue
			}
			if err := check(r.Context()); err != nil {
				writeJSON(w, http.StatusServiceUnavailable, readiness{Status: "not ready", Reason: err.Error()})
				return
			}
			mu.Lock()
			passed[i] = true
			mu.Unlock()
		}
		ans := readiness{Status: "ready"}
		for _, check := range c.Degraded {
			if err := check(r.Context()); err != nil {
				ans.Degraded = append(ans.Degraded, err.Error())
			}
		}
		writeJSON(w, http.StatusOK, ans)
	})
	if c.Metrics != nil {
		mux.Handle("GET /metrics", c.Metrics)
	}
	if c.Pprof {
		addPprof(mux)
	}
	// The API answers its prefix without the trailing slash too, in its
	// own error shape, rather than ServeMux's redirect to it.
	api := http.Handler(http.HandlerFunc(offAPI))
	if c.API != nil {
		api = c.API
	}
	mux.Handle(APIPrefix, api)
	mux.Handle(strings.TrimSuffix(APIPrefix, "/"), api)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
