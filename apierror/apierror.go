// Package apierror writes finproxy's own errors, on the proxy listener and
// the admin API alike, in finAPI's ErrorMessage shape, so that a caller
// handles finproxy's answers and finAPI's the same way; X-Finproxy-Error
// says which are finproxy's and why.
package apierror

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// ReasonHeader carries the reason of an error finproxy answered itself.
const ReasonHeader = "X-Finproxy-Error"

// A Problem is one row of an error table: what finproxy answers for one
// kind of error.
type Problem struct {
	Status  int
	Code    string // finAPI ErrorCode
	Reason  string // X-Finproxy-Error
	Message string
}

// ErrorMessage is finAPI's ErrorMessage.
type ErrorMessage struct {
	Errors      []ErrorDetails `json:"errors"`
	Date        string         `json:"date"`
	RequestID   string         `json:"requestId"`
	Endpoint    string         `json:"endpoint"`
	AuthContext *string        `json:"authContext"`
	Bank        *string        `json:"bank"`
}

// ErrorDetails is one entry of ErrorMessage.errors.
type ErrorDetails struct {
	Message                 string `json:"message"`
	Code                    string `json:"code"`
	Type                    string `json:"type"`
	MultiStepAuthentication any    `json:"multiStepAuthentication"`
}

// Write answers p to r: finAPI's ErrorMessage with the request id already
// set on w (X-Request-Id), the reason in ReasonHeader, no caching, and
// Retry-After when retryAfter is positive or the status asks for one (503,
// 429; at least a second).
func Write(w http.ResponseWriter, r *http.Request, p Problem, retryAfter time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set(ReasonHeader, p.Reason)
	h.Set("Cache-Control", "no-store")
	if retryAfter > 0 || p.Status == http.StatusServiceUnavailable || p.Status == http.StatusTooManyRequests {
		h.Set("Retry-After", RetryAfterSeconds(retryAfter))
	}
	body, _ := json.Marshal(ErrorMessage{
		Errors:    []ErrorDetails{{Message: p.Message, Code: p.Code, Type: "TECHNICAL"}},
		Date:      time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		RequestID: h.Get("X-Request-Id"),
		Endpoint:  r.Method + " " + r.URL.Path,
	})
	w.WriteHeader(p.Status)
	w.Write(body)
}

// RetryAfterSeconds renders d for Retry-After: whole seconds rounded up, at
// least 1.
func RetryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(max(int64((d+time.Second-1)/time.Second), 1), 10)
}
