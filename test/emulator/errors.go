package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// finAPI error codes (schema ErrorCode) used by the emulator.
const (
	codeBadRequest       = "BAD_REQUEST"
	codeEntityExists     = "ENTITY_EXISTS"
	codeLocked           = "LOCKED"
	codeUnauthorized     = "UNAUTHORIZED_ACCESS"
	codeUnexpected       = "UNEXPECTED_ERROR"
	codeUnknownEntity    = "UNKNOWN_ENTITY"
	codeMethodNotAllowed = "METHOD_NOT_ALLOWED"
	codeUserNotVerified  = "USER_NOT_VERIFIED"
	codeAlreadyVerified  = "USER_ALREADY_VERIFIED"
)

// errorDateLayout is ErrorMessage.date's format, "YYYY-MM-DD HH:MM:SS.SSS"
// in the spec (example 2018-01-01 00:00:00.000), written in UTC.
const errorDateLayout = "2006-01-02 15:04:05.000"

// errorMessage is finAPI's ErrorMessage schema.
type errorMessage struct {
	Errors      []errorDetails `json:"errors"`
	Date        string         `json:"date"`
	RequestID   string         `json:"requestId"`
	Endpoint    string         `json:"endpoint"`
	AuthContext *string        `json:"authContext"`
	Bank        *string        `json:"bank"`
}

// errorDetails is finAPI's ErrorDetails schema; multiStepAuthentication is
// required and nullable there.
type errorDetails struct {
	Message                 string `json:"message"`
	Code                    string `json:"code"`
	Type                    string `json:"type"`
	MultiStepAuthentication any    `json:"multiStepAuthentication"`
}

// badCredentials is finAPI's BadCredentialsError schema, the body of 401s.
// (The spec's http401ResponseExample spells the second field errorDescription;
// the schema, which the emulator follows, requires error_description.)
type badCredentials struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// writeError answers status with an ErrorMessage holding one TECHNICAL error.
// authContext is nil for unauthenticated calls.
func (e *Emulator) writeError(w http.ResponseWriter, r *http.Request, status int, code, message string, authContext *string) {
	writeJSON(w, status, errorMessage{
		Errors:      []errorDetails{{Message: message, Code: code, Type: "TECHNICAL"}},
		Date:        e.now().UTC().Format(errorDateLayout),
		RequestID:   w.Header().Get("X-Request-Id"),
		Endpoint:    method(r) + " " + r.URL.Path,
		AuthContext: authContext,
	})
}

// writeBadCredentials answers 401 with a BadCredentialsError.
func writeBadCredentials(w http.ResponseWriter, errorCode, description string) {
	if errorCode == "invalid_token" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="finAPI", error="invalid_token", error_description="`+description+`"`)
	}
	writeJSON(w, http.StatusUnauthorized, badCredentials{Error: errorCode, ErrorDescription: description})
}

// writeInvalidToken answers 401 for a missing, unknown, expired or revoked
// access token.
func writeInvalidToken(w http.ResponseWriter) {
	writeBadCredentials(w, "invalid_token", "Not authenticated or invalid access_token")
}

// writeFault answers an injected failure: a BadCredentialsError for 401 (as
// finAPI does), an ErrorMessage otherwise.
func (e *Emulator) writeFault(w http.ResponseWriter, r *http.Request, status int) {
	switch {
	case status == http.StatusUnauthorized:
		writeInvalidToken(w)
	case status >= 500:
		e.writeError(w, r, status, codeUnexpected, "An unexpected error occurred", nil)
	case status == http.StatusForbidden:
		e.writeError(w, r, status, codeUnauthorized, "Access is denied", nil)
	case status == http.StatusNotFound:
		e.writeError(w, r, status, codeUnknownEntity, "Resource not found", nil)
	case status == http.StatusLocked:
		e.writeError(w, r, status, codeLocked, "The requested resource is locked", nil)
	default:
		e.writeError(w, r, status, codeBadRequest, "Bad request", nil)
	}
}
