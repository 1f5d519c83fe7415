package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/finproxy/finproxy/apierror"
)

// TestReadiness: ready once every Ready check passed, then latched; later
// trouble shows as degraded with status 200; draining is 503 at once.
func TestReadiness(t *testing.T) {
	var storeUp, proven, draining, storeDown atomic.Bool
	h := Handler(Config{
		Ready: []Check{
			func(context.Context) error {
				if !proven.Load() {
					return errors.New("client credentials not yet proven")
				}
				return nil
			},
			func(context.Context) error {
				if !storeUp.Load() {
					return errors.New("token store unreachable")
				}
				return nil
			},
		},
		Degraded: []Check{func(context.Context) error {
			if storeDown.Load() {
				return errors.New("token store unreachable")
			}
			return nil
		}},
		Draining: draining.Load,
	})
	get := func() (int, readiness) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var r readiness
		if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
			t.Fatalf("readyz body %q: %v", rec.Body, err)
		}
		return rec.Code, r
	}
	if code, r := get(); code != 503 || r.Reason != "client credentials not yet proven" {
		t.Errorf("before proof: %d %+v", code, r)
	}
	proven.Store(true)
	if code, r := get(); code != 503 || r.Reason != "token store unreachable" {
		t.Errorf("before the store answered: %d %+v", code, r)
	}
	storeUp.Store(true)
	if code, r := get(); code != 200 || r.Status != "ready" || len(r.Degraded) != 0 {
		t.Errorf("ready: %d %+v", code, r)
	}
	// A later outage: still ready, degraded.
	storeUp.Store(false)
	storeDown.Store(true)
	if code, r := get(); code != 200 || len(r.Degraded) != 1 || r.Degraded[0] != "token store unreachable" {
		t.Errorf("store outage after readiness: %d %+v, want 200 and degraded", code, r)
	}
	draining.Store(true)
	if code, r := get(); code != 503 || r.Reason == "" {
		t.Errorf("draining: %d %+v, want 503", code, r)
	}
}

// TestAPIPrefixWithoutSlash: /admin/v1 is answered in the API's own error
// shape (404 while the API is off), not with ServeMux's redirect.
func TestAPIPrefixWithoutSlash(t *testing.T) {
	h := Handler(Config{})
	for _, path := range []string{"/admin/v1", "/admin/v1/", "/admin/v1/sessions/abc"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		var body apierror.ErrorMessage
		if w.Code != http.StatusNotFound || json.Unmarshal(w.Body.Bytes(), &body) != nil || len(body.Errors) == 0 {
			t.Errorf("GET %s with the API off: %d %q, want 404 in finAPI's error shape", path, w.Code, w.Body.String())
		}
	}
}
