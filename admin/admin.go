// Package admin serves finproxy's admin listener: liveness, readiness and
// metrics. Probes never call finAPI themselves.
package admin

import (
	"context"
	"encoding/json"
	"net/http"
)

// A Check reports why the replica is not ready, or nil when it is. It must
// be cheap and must not call finAPI.
type Check func(ctx context.Context) error

// Config configures the admin handler.
type Config struct {
	// Ready lists the readiness checks, all of which must pass.
	// Optional. Default: always ready.
	Ready []Check
	// Metrics serves /metrics. Optional. Default: no /metrics.
	Metrics http.Handler
	// Pprof adds net/http/pprof under /debug/pprof/. Optional.
	Pprof bool
}

// Handler returns the admin handler: GET /healthz (200 while the process
// runs), GET /readyz (200, or 503 with a JSON reason) and, when configured,
// /metrics and /debug/pprof/.
func Handler(c Config) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		for _, check := range c.Ready {
			if err := check(r.Context()); err != nil {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	if c.Metrics != nil {
		mux.Handle("GET /metrics", c.Metrics)
	}
	if c.Pprof {
		addPprof(mux)
	}
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
