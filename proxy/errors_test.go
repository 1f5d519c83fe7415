package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/finproxy/finproxy/finapi"
)

// finAPICodes is finAPI's ErrorCode enum (finapi-access-v1-openapi.yaml).
var finAPICodes = []string{
	"ADDITIONAL_AUTHENTICATION_REQUIRED", "BAD_REQUEST", "BANK_SERVER_REJECTION",
	"COLLECTIVE_MONEY_TRANSFER_NOT_SUPPORTED", "ENTITY_EXISTS", "FORBIDDEN",
	"IBAN_ONLY_DIRECT_DEBIT_NOT_SUPPORTED", "IBAN_ONLY_MONEY_TRANSFER_NOT_SUPPORTED",
	"ILLEGAL_ENTITY_STATE", "ILLEGAL_FIELD_VALUE", "ILLEGAL_PAGE_SIZE", "INVALID_CONSENT",
	"INVALID_FILTER_OPTIONS", "INVALID_TOKEN", "INVALID_TWO_STEP_PROCEDURE", "LOCKED",
	"LOGIN_FIELDS_MISMATCH", "METHOD_NOT_ALLOWED", "MISSING_CREDENTIALS", "MISSING_FIELD",
	"MISSING_TWO_STEP_PROCEDURE", "NO_ACCOUNTS_FOR_TYPE_LIST", "NO_CERTIFICATE",
	"NO_EXISTING_CHALLENGE", "NO_TPP_CLIENT_CREDENTIALS", "NO_PSU_METADATA", "TOO_MANY_IDS",
	"UNAUTHORIZED_ACCESS", "UNEXPECTED_ERROR", "UNKNOWN_ENTITY", "UNSUPPORTED_BANK",
	"UNSUPPORTED_FEATURE", "UNSUPPORTED_MEDIA_TYPE", "UNSUPPORTED_ORDER",
	"USER_ALREADY_VERIFIED", "USER_NOT_VERIFIED", "WEB_FORM_ABORTED", "WEB_FORM_REQUIRED",
}

// answer is a decoded error response.
type answer struct {
	status  int
	header  http.Header
	message map[string]json.RawMessage
	detail  map[string]any // errors[0]
}

// errorAnswer runs writeError for err on GET target and decodes the
// answer, checking the ErrorMessage shape that every answer shares.
func errorAnswer(t *testing.T, method, target string, err error) (answer, problem) {
	t.Helper()
	rec := httptest.NewRecorder()
	rec.Header().Set(RequestIDHeader, "req-123")
	r := httptest.NewRequest(method, target, nil)
	before := time.Now().UTC().Truncate(time.Millisecond)
	p := writeError(rec, r, err)
	after := time.Now().UTC()

	a := answer{status: rec.Code, header: rec.Header()}
	if ct := a.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q, want application/json; charset=utf-8", ct)
	}
	if cc := a.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &a.message); err != nil {
		t.Fatalf("body %q is not JSON: %v", rec.Body, err)
	}
	keys := make([]string, 0, len(a.message))
	for k := range a.message {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"authContext", "bank", "date", "endpoint", "errors", "requestId"}; !slices.Equal(keys, want) {
		t.Errorf("ErrorMessage fields = %v, want %v", keys, want)
	}
	for _, k := range []string{"authContext", "bank"} {
		if v := string(a.message[k]); v != "null" {
			t.Errorf("%s = %s, want null", k, v)
		}
	}
	var str = func(k string) string {
		var s string
		if err := json.Unmarshal(a.message[k], &s); err != nil {
			t.Errorf("%s = %s, want a string", k, a.message[k])
		}
		return s
	}
	if got := str("requestId"); got != "req-123" {
		t.Errorf("requestId = %q, want req-123", got)
	}
	if got, want := str("endpoint"), method+" "+r.URL.Path; got != want {
		t.Errorf("endpoint = %q, want %q", got, want)
	}
	date := str("date")
	d, perr := time.Parse("2006-01-02T15:04:05.000Z", date)
	if perr != nil {
		t.Errorf("date %q is not finAPI's format: %v", date, perr)
	} else if d.Before(before) || d.After(after) {
		t.Errorf("date %v is not the time of the answer (%v–%v)", d, before, after)
	}
	var details []map[string]any
	if err := json.Unmarshal(a.message["errors"], &details); err != nil || len(details) != 1 {
		t.Fatalf("errors = %s, want one ErrorDetails", a.message["errors"])
	}
	a.detail = details[0]
	if msg, _ := a.detail["message"].(string); msg == "" {
		t.Errorf("errors[0].message = %v, want a message", a.detail["message"])
	}
	if typ := a.detail["type"]; typ != "TECHNICAL" {
		t.Errorf("errors[0].type = %v, want TECHNICAL", typ)
	}
	if mfa, ok := a.detail["multiStepAuthentication"]; !ok || mfa != nil {
		t.Errorf("errors[0].multiStepAuthentication = %v (present %v), want null", mfa, ok)
	}
	code, _ := a.detail["code"].(string)
	if !slices.Contains(finAPICodes, code) {
		t.Errorf("errors[0].code = %q is not one of finAPI's codes", code)
	}
	if a.status != p.Status || a.header.Get(ReasonHeader) != p.Reason || code != p.Code {
		t.Errorf("answer %d %s %s differs from the returned problem %+v", a.status, a.header.Get(ReasonHeader), code, p)
	}
	return a, p
}

// timeoutError is a net.Error that timed out.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestWriteError(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		reason     string
		retryAfter string // "" for none
	}{
		{"missing session", errMissingSession, 401, "UNAUTHORIZED_ACCESS", "missing_session", ""},
		{"invalid session", errInvalidSession, 400, "BAD_REQUEST", "invalid_session", ""},
		{"invalid path", errInvalidPath, 400, "BAD_REQUEST", "invalid_path", ""},
		{"denied route", errRouteDenied, 403, "FORBIDDEN", "route_denied", ""},
		{"no route", errNoRoute, 404, "UNKNOWN_ENTITY", "no_route", ""},
		{"method not allowed", errMethodNotAllowed, 405, "METHOD_NOT_ALLOWED", "method_not_allowed", ""},
		{"unreadable body", errors.Join(errInvalidBody, io.ErrUnexpectedEOF), 400, "BAD_REQUEST", "invalid_body", ""},
		{"body too large", errBodyTooLarge, 413, "BAD_REQUEST", "body_too_large", ""},
		{"upstream timeout", errors.Join(errUpstreamTimeout, context.DeadlineExceeded), 504, "UNEXPECTED_ERROR", "upstream_timeout", ""},
		{"upstream down", errors.Join(errUpstreamDown, errors.New("connection refused")), 502, "UNEXPECTED_ERROR", "upstream_unavailable", ""},
		{"process expired", finapi.ErrProcessExpired, 401, "UNAUTHORIZED_ACCESS", "process_expired", ""},
		{
			"identity conflict with back-off",
			&finapi.Error{Op: "password grant", Kind: finapi.ErrIdentityConflict, Status: 400, RetryAfter: 5 * time.Minute},
			502, "UNEXPECTED_ERROR", "identity_conflict", "300",
		},
		{"client credentials refused", &finapi.Error{Op: "client_credentials grant", Kind: finapi.ErrClientRejected, Status: 401, Code: "invalid_client"}, 502, "UNEXPECTED_ERROR", "token_refused", ""},
		{"user busy", &finapi.Error{Op: "delete user", Kind: finapi.ErrBusy, Status: 423}, 423, "LOCKED", "user_busy", ""},
		{"tokens unavailable with back-off", &finapi.Error{Op: "password grant", Kind: finapi.ErrUnavailable, Status: 503, RetryAfter: 2500 * time.Millisecond}, 503, "UNEXPECTED_ERROR", "token_unavailable", "3"},
		{"tokens unavailable without back-off", &finapi.Error{Op: "wait for token", Kind: finapi.ErrUnavailable, Err: context.Canceled}, 503, "UNEXPECTED_ERROR", "token_unavailable", "1"},
		{"bare unavailable", finapi.ErrUnavailable, 503, "UNEXPECTED_ERROR", "token_unavailable", "1"},
		{"token service unreachable", &finapi.Error{Op: "password grant", Kind: finapi.ErrUnreachable, Err: errors.New("dial tcp: refused"), RetryAfter: time.Second}, 502, "UNEXPECTED_ERROR", "upstream_unavailable", "1"},
		{"token refused", &finapi.Error{Op: "create user", Kind: finapi.ErrRejected, Status: 422}, 502, "UNEXPECTED_ERROR", "token_refused", ""},
		{"echo 404", echo.NewHTTPError(http.StatusNotFound), 404, "UNKNOWN_ENTITY", "no_route", ""},
		{"echo 405", echo.ErrMethodNotAllowed, 405, "METHOD_NOT_ALLOWED", "method_not_allowed", ""},
		{"echo 413", echo.NewHTTPError(http.StatusRequestEntityTooLarge), 413, "BAD_REQUEST", "body_too_large", ""},
		{"deadline exceeded", fmt.Errorf("upstream: %w", context.DeadlineExceeded), 504, "UNEXPECTED_ERROR", "upstream_timeout", ""},
		{"net timeout", fmt.Errorf("read: %w", timeoutError{}), 504, "UNEXPECTED_ERROR", "upstream_timeout", ""},
		{"os deadline", os.ErrDeadlineExceeded, 504, "UNEXPECTED_ERROR", "upstream_timeout", ""},
		{"anything else", errors.New("boom"), 500, "UNEXPECTED_ERROR", "internal", ""},
		{"echo 500", echo.NewHTTPError(http.StatusInternalServerError), 500, "UNEXPECTED_ERROR", "internal", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := errorAnswer(t, http.MethodGet, "/api/v2/accounts?secret=query", tt.err)
			if a.status != tt.status {
				t.Errorf("status = %d, want %d", a.status, tt.status)
			}
			if got := a.detail["code"]; got != tt.code {
				t.Errorf("code = %v, want %s", got, tt.code)
			}
			if got := a.header.Get(ReasonHeader); got != tt.reason {
				t.Errorf("%s = %q, want %q", ReasonHeader, got, tt.reason)
			}
			if got := a.header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			if ep := string(a.message["endpoint"]); strings.Contains(ep, "secret") {
				t.Errorf("endpoint %s carries the query", ep)
			}
		})
	}
}

// TestErrorTableRows answers every row of the error table: each row is
// reachable (no earlier row shadows it), gives its own status, code and
// reason in the ErrorMessage shape, and a 503 always carries Retry-After.
func TestErrorTableRows(t *testing.T) {
	reasons := map[string]bool{}
	for _, row := range table {
		t.Run(row.Reason, func(t *testing.T) {
			if got := classify(row.err); got != row.problem {
				t.Errorf("classify(%v) = %+v, want its own row %+v", row.err, got, row.problem)
			}
			a, _ := errorAnswer(t, http.MethodPost, "/di/x", fmt.Errorf("wrapped: %w", row.err))
			if a.status != row.Status || a.header.Get(ReasonHeader) != row.Reason || a.detail["code"] != row.Code {
				t.Errorf("answer %d %q %v, want %d %q %s", a.status, a.header.Get(ReasonHeader), a.detail["code"], row.Status, row.Reason, row.Code)
			}
			if a.status < 400 || a.status > 599 {
				t.Errorf("status %d is not an error", a.status)
			}
			if a.status == http.StatusServiceUnavailable && a.header.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
			if row.Reason == "" || strings.ContainsAny(row.Reason, " \t") {
				t.Errorf("reason %q is not a machine-readable token", row.Reason)
			}
		})
		reasons[row.Reason] = true
	}
	// The reasons CONTRACT.md names.
	for _, r := range []string{"missing_session", "invalid_session", "route_denied", "no_route", "body_too_large", "upstream_unavailable", "token_unavailable", "process_expired"} {
		if !reasons[r] {
			t.Errorf("no table row answers with reason %q", r)
		}
	}
}
