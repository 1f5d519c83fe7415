package apierror

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestRetryAfterSeconds(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "1"},
		{-time.Second, "1"},
		{time.Nanosecond, "1"},
		{time.Second, "1"},
		{time.Second + time.Millisecond, "2"},
		{2500 * time.Millisecond, "3"},
		{5 * time.Minute, "300"},
		{6 * time.Hour, "21600"},
	}
	for _, tt := range tests {
		if got := RetryAfterSeconds(tt.d); got != tt.want {
			t.Errorf("RetryAfterSeconds(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// TestWrite: the ErrorMessage shape, the reason header, no caching, the
// request id already on the answer, and Retry-After where it belongs.
func TestWrite(t *testing.T) {
	tests := []struct {
		p          Problem
		retryAfter time.Duration
		wantRetry  string
	}{
		{Problem{401, "UNAUTHORIZED_ACCESS", "missing_session", "No session"}, 0, ""},
		{Problem{503, "UNEXPECTED_ERROR", "token_unavailable", "later"}, 0, "1"},
		{Problem{429, "BAD_REQUEST", "rate_limited", "slower"}, 2500 * time.Millisecond, "3"},
		{Problem{502, "UNEXPECTED_ERROR", "upstream_invalid", "nonsense"}, 7 * time.Second, "7"},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		w.Header().Set("X-Request-Id", "req-1")
		Write(w, httptest.NewRequest(http.MethodPost, "/proxy/v1/session?x=1", nil), tt.p, tt.retryAfter)
		var m ErrorMessage
		dec := json.NewDecoder(w.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("%s: body: %v", tt.p.Reason, err)
		}
		h := w.Header()
		switch {
		case w.Code != tt.p.Status:
			t.Errorf("%s: status %d, want %d", tt.p.Reason, w.Code, tt.p.Status)
		case h.Get(ReasonHeader) != tt.p.Reason || h.Get("Cache-Control") != "no-store" || h.Get("Retry-After") != tt.wantRetry:
			t.Errorf("%s: headers %v", tt.p.Reason, h)
		case len(m.Errors) != 1 || m.Errors[0] != (ErrorDetails{Message: tt.p.Message, Code: tt.p.Code, Type: "TECHNICAL"}):
			t.Errorf("%s: errors %+v", tt.p.Reason, m.Errors)
		case m.RequestID != "req-1" || m.Endpoint != "POST /proxy/v1/session":
			t.Errorf("%s: requestId %q, endpoint %q", tt.p.Reason, m.RequestID, m.Endpoint)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", m.Date); err != nil {
			t.Errorf("%s: date %q: %v", tt.p.Reason, m.Date, errors.Unwrap(err))
		}
	}
}
