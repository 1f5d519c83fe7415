// Package emulator is an in-memory emulation of finAPI Access (OAuth, users and a
// few data endpoints) and of the finAPI Process Controller, for tests and demos.
//
// It counts what it was asked, records every request and can inject faults
// (failures, latency, revoked tokens, outages). Handler and ProcessController
// share one state, so an access token handed out by the Process Controller
// works against the Access data endpoints.
//
// # Sources
//
// Every behaviour finproxy relies on follows what finAPI publishes: the
// Access v1 OpenAPI description and the Access v2 endpoint texts (cited
// "spec"), finAPI's getting-started page "Authorization as a Process or
// User" (cited "getting started"), and finAPI's Data Intelligence page
// "Obtain Authorization via Process Controller" (cited "PCL"). Where finAPI
// publishes nothing the emulator makes a choice, marked "not published: our
// reading"; finproxy is built to tolerate other answers there (any 2xx,
// ErrorMessage or OAuth error bodies, missing optional fields).
//
// Access, token endpoint POST /api/v2/oauth/token (and /oauth/token):
//   - form-encoded body; Content-Type application/x-www-form-urlencoded
//     required (spec, getToken: "The Content-Type of the request must be
//     set to 'application/x-www-form-urlencoded'").
//   - 200 AccessToken {access_token, token_type "bearer", refresh_token,
//     expires_in, scope "all"} (spec, AccessToken). refresh_token is set for
//     the password grant only ("Only set in case of grant_type='password'");
//     a refresh_token grant answers without one and the refresh token stays
//     valid (spec; that it stays valid is not stated: our reading, and what
//     finproxy needs no matter: it keeps the one it holds).
//   - the same token again for the same credentials while it is valid, its
//     expires_in counting down (spec, getToken: "As long as a token exists
//     and has not expired, the service will always return the same token
//     for the same credentials"; the countdown is our reading).
//   - client_id and client_secret in the form (spec, GetTokenParams); HTTP
//     Basic client authentication is accepted too (not published: our
//     reading, after RFC 6749 section 2.3.1; finproxy sends the form).
//   - 401 BadCredentialsError {error, error_description} for bad client
//     credentials, error "invalid_client" (spec: 401 "Bad client
//     credentials"; the error value is not published: our reading, after
//     RFC 6749 section 5.2). finproxy also reads errorDescription, the
//     spelling of the spec's own 401 example.
//   - 400 ErrorMessage for bad user credentials, an invalid refresh token or
//     an unsupported grant type (spec: 400 "Bad user credentials, or invalid
//     refresh_token, or unsupported grant_type"). The code is not published:
//     our reading BAD_REQUEST with the message "Bad user credentials".
//   - 403 ErrorMessage USER_NOT_VERIFIED for an unverified user with
//     Config.ManualUserVerification (spec: "If explicit user verification is
//     required ... the service will respond with HTTP code 403"; the code,
//     one of ErrorCode's values, is our reading).
//   - 423 ErrorMessage LOCKED to the password grant after MaxLoginAttempts
//     failed logins, and the user's tokens revoked (spec: 423 "User is
//     locked", ClientConfiguration maxUserLoginAttempts, AccessToken
//     expires_in "when a user gets locked"); the count is reset when a token
//     is retrieved (spec, maxUserLoginAttempts), not by a 403 for an
//     unverified user. A locked user's refresh token is revoked with the
//     rest, so its refresh grant is an invalid refresh token (400).
//   - 503 ErrorMessage UNEXPECTED_ERROR while SetDown (not published: our
//     reading of a maintenance window).
//
// Access, other endpoints:
//   - POST /api/v2/oauth/revoke with the client token: 200 with an empty body,
//     for unknown tokens too; token_type_hint access_token revokes that token
//     only, refresh_token or none the whole grant (spec, revokeToken). The
//     parameters are read from the form or, as v1 documents, the query; the
//     Content-Type is not checked (our reading: lenient). A missing or
//     invalid client token answers 401 invalid_token (not published for
//     revoke, whose documented statuses are 200, 400, 403, 500: our reading,
//     as every other endpoint answers it).
//   - POST /api/v2/users with the client token: 201 User with the password in
//     plain text; 422 ENTITY_EXISTS for a taken id, compared
//     case-insensitively; id at most 36 of [a-zA-Z0-9-_.+@], password 6-128
//     characters (spec, createUser and UserCreateParams; v1 createUser's 422:
//     "ENTITY_EXISTS if the given userId already exists").
//   - POST /api/v2/users/verify/{userId} with the client token: 200 empty,
//     404 for an unknown user, 422 USER_ALREADY_VERIFIED (spec: v2 lists the
//     statuses 200, 400, 401, 403, 404, 422; v1's /api/v1/users/verify/{userId}
//     words them "User verified (empty response body)", "User not found",
//     "User already verified"; the codes are ErrorCode values, our reading).
//   - POST /api/v2/users/requestPasswordChange {userId} with the client
//     token: 200 PasswordChangingResource {userId, userEmail,
//     passwordChangeToken}, the token (and the email) encrypted with
//     Config.DataDecryptionKey; 404 UNKNOWN_ENTITY for an unknown user; ids
//     case-insensitive (spec, requestPasswordChange). The encryption is
//     finAPI's help page "How to decrypt data with your data decryption key
//     (DDK)": AES-128-CBC, PKCS#5 padding, key PBKDF2-HMAC-SHA1 (password the
//     DDK, salt the DDK hex-decoded, 1000 iterations, 128 bits), base64. The
//     page as found does not state the IV: our reading is the DDK's bytes
//     (hex-decoded), what published finAPI client helpers decrypt with.
//     The token is a UUID (pattern [0-9a-f-]*); a new request replaces the
//     user's earlier token (our reading).
//   - POST /api/v2/users/executePasswordChange {userId, password,
//     passwordChangeToken} with the client token: 200 empty; 404 for an
//     unknown user; 400 BAD_REQUEST for a token that does not match the
//     pattern or the one handed out, or a password outside 6-128
//     characters (spec). Every token of that user is revoked, for every
//     client (Config.OtherClients included), and the change token is used
//     up (spec: "all tokens ... are revoked").
//   - GET, PATCH, DELETE /api/v2/users with the user's token; DELETE answers
//     423 LOCKED while a bank connection is busy (spec, deleteAuthorizedUser).
//   - 401 BadCredentialsError invalid_token for a missing, expired or revoked
//     token (spec, http401ResponseExample), 403 UNAUTHORIZED_ACCESS for the
//     wrong role (spec, http403ResponseExample).
//   - ErrorMessage {errors:[{message, code, type, multiStepAuthentication}],
//     date "YYYY-MM-DD HH:MM:SS.SSS", requestId, endpoint, authContext, bank}
//     (spec, ErrorMessage and ErrorDetails). Two values are our reading:
//     authContext is null for unauthenticated calls (the spec requires the
//     field and does not say what it holds then), and endpoint is "METHOD
//     /path" (the spec's examples show a URL).
//   - X-Request-Id echoed, or "selfgen-<uuid>" when none was sent; one over
//     255 characters is a 400 (spec, X-Request-Id parameter: "Passing a
//     longer string will result in an error"; the status is our reading).
//
// Process Controller:
//   - POST /api/v1/processes {clientId, clientSecret, clientReferences:
//     [{clientReference}], processId}, no Bearer token (getting started;
//     PCL), answered {"processes":[{"clientReference","processToken"}]}, one
//     entry per reference sent (getting started, its example). The status of
//     a success is not published: our reading 201.
//   - GET /api/v1/processes/{processToken}?invalidate=true answers
//     {"accessToken"}, a user token for Access and the Data Intelligence
//     services (getting started; PCL).
//   - at most 10 exchanges per process token, only within a period
//     configured in days per mandator, none after invalidate=true (PCL). The
//     period is Config.ProcessExchangePeriod: its default, 7 days, is our
//     reading. invalidate=false keeps the token for further exchanges (PCL:
//     invalidate=true is recommended "unless a customer must resume the
//     process later"); an exchange without the parameter counts as false,
//     a refused exchange counts toward nothing, and a later exchange hands
//     out the access token of the one before while it is valid: our
//     reading (finproxy always sends the parameter and takes whichever
//     token comes).
//   - refusals: not published (PCL gives no status or body). Our reading:
//     401 UNAUTHORIZED_ACCESS for bad client credentials, 400 BAD_REQUEST
//     for a malformed body, no processId or no client reference, 404
//     UNKNOWN_ENTITY for an unknown, used-up, expired or invalidated process
//     token; all as ErrorMessage.
//   - a finAPI user behind every process, created on its first exchange
//     (PCL: "provides and manages an identity transparently"); it is not
//     deleted after some days as finAPI's are.
//
// Upstreams for tests and benchmarks, not finAPI services: EchoHandler
// answers with a description of the request it received; FixedHandler,
// the load benchmark's, answers every request with one account list in
// the shape of GET /api/v2/accounts (Access v2 endpoint list) and the
// request id as Access returns it (spec, "Request IDs").
package emulator

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config configures an Emulator. Zero values get the defaults noted.
type Config struct {
	// ClientID and ClientSecret are the client credentials the emulator
	// accepts. Required.
	ClientID, ClientSecret string

	// UserTokenTTL is the expires_in of user tokens. Optional. Default 1h.
	UserTokenTTL time.Duration

	// ClientTokenTTL is the expires_in of client tokens. Optional. Default 1h.
	ClientTokenTTL time.Duration

	// MaxLoginAttempts is the number of failed password grants after which a
	// user is locked (423 LOCKED), like finAPI's maxUserLoginAttempts.
	// Optional. Default 3.
	MaxLoginAttempts int

	// ProcessTokenTTL is the lifetime of the access tokens handed out for
	// Process Controller processes. Optional. Default 1h.
	ProcessTokenTTL time.Duration

	// ProcessExchangePeriod is how long after its creation a process token
	// can be exchanged (finAPI configures it in days per mandator).
	// Optional. Default 7 days.
	ProcessExchangePeriod time.Duration

	// ManualUserVerification is the client configuration
	// isUserAutoVerificationEnabled=false: users created are unverified,
	// and their password grants answer 403 until the client verifies them
	// with POST /api/v2/users/verify/{userId}. Optional. Default false
	// (users are verified on creation).
	ManualUserVerification bool

	// RefreshRevokesOld makes a refresh_token grant invalidate the access
	// tokens issued earlier on the same grant, as Spring's DefaultTokenServices
	// does. Optional. Default false: earlier tokens stay valid until they
	// expire or are revoked.
	RefreshRevokesOld bool

	// OtherClients are further client credentials (id to secret) whose
	// password grants the emulator answers, as if other applications of the
	// same finAPI mandator logged the same users in: a client-side password
	// change revokes their tokens too. Optional.
	OtherClients map[string]string

	// DataDecryptionKey is the client's data decryption key (hexadecimal)
	// that encrypts the passwordChangeToken. Optional. Default
	// DefaultDataDecryptionKey.
	DataDecryptionKey string

	// Now is the emulator's clock. Optional. If nil, time.Now is used.
	Now func() time.Time
}

// Request is one request as the emulator received it.
type Request struct {
	// Method is the HTTP method.
	Method string
	// Path is the decoded URL path (r.URL.Path).
	Path string
	// RawQuery is the encoded query string, without '?'.
	RawQuery string
	// RequestURI is the unmodified request-target as it arrived.
	RequestURI string
	// Header is a clone of the request headers.
	Header http.Header
	// Body is the complete request body.
	Body []byte
}

// Emulator emulates finAPI Access and the finAPI Process Controller.
// It is safe for concurrent use. Create one with New.
type Emulator struct {
	cfg Config

	mu       sync.Mutex
	counters map[string]int
	requests []Request
	inflight int // requests to identity endpoints being handled
	peak     int // the most of them at once

	// Faults.
	failures   []*failure
	latency    map[string]time.Duration
	rejectUser int
	down       bool

	// State.
	users       map[string]*user        // by lower-cased id
	tokens      map[string]*accessToken // live access tokens by value
	refresh     map[string]*grant       // live refresh tokens by value
	clientGrant *grant                  // the client_credentials grant, if any
	processes   map[string]*process     // by process token
	nProcesses  int
	changes     map[string]string // password change tokens (decrypted) by lower-cased user id
}

// New returns an Emulator for cfg, with defaults filled in.
func New(cfg Config) *Emulator {
	if cfg.UserTokenTTL == 0 {
		cfg.UserTokenTTL = time.Hour
	}
	if cfg.ClientTokenTTL == 0 {
		cfg.ClientTokenTTL = time.Hour
	}
	if cfg.ProcessTokenTTL == 0 {
		cfg.ProcessTokenTTL = time.Hour
	}
	if cfg.ProcessExchangePeriod == 0 {
		cfg.ProcessExchangePeriod = 7 * 24 * time.Hour
	}
	if cfg.MaxLoginAttempts == 0 {
		cfg.MaxLoginAttempts = 3
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DataDecryptionKey == "" {
		cfg.DataDecryptionKey = DefaultDataDecryptionKey
	}
	return &Emulator{
		cfg:       cfg,
		counters:  map[string]int{},
		latency:   map[string]time.Duration{},
		users:     map[string]*user{},
		tokens:    map[string]*accessToken{},
		refresh:   map[string]*grant{},
		processes: map[string]*process{},
		changes:   map[string]string{},
	}
}

// Handler returns the finAPI Access handler: /api/v2/oauth/token (and
// /oauth/token), /api/v2/oauth/revoke (and /oauth/revoke), /api/v2/users and
// the data endpoints /api/v2/accounts, /api/v2/bankConnections,
// /api/v2/bankConnections/import and /api/v2/banks.
func (e *Emulator) Handler() http.Handler {
	return e.middleware(http.HandlerFunc(e.serveAccess), true)
}

// ProcessController returns the finAPI Process Controller handler:
// POST /api/v1/processes and GET /api/v1/processes/{processToken}.
func (e *Emulator) ProcessController() http.Handler {
	return e.middleware(http.HandlerFunc(e.serveProcessController), false)
}

// Count returns the value of the named counter (see the Counter constants).
// Unknown names count 0.
func (e *Emulator) Count(name string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.counters[name]
}

// Requests returns every request seen by Handler and ProcessController since
// New or the last Reset, in order of arrival.
func (e *Emulator) Requests() []Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Request, len(e.requests))
	for i, r := range e.requests {
		r.Header = r.Header.Clone()
		r.Body = slices.Clone(r.Body)
		out[i] = r
	}
	return out
}

// Reset clears counters, recorded requests and every fault (FailNext,
// AnswerNext, SetLatency, RejectNextUserToken, SetDown). Users, tokens, processes and busy
// flags stay.
func (e *Emulator) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.counters = map[string]int{}
	e.requests = nil
	e.peak = e.inflight
	e.failures = nil
	e.latency = map[string]time.Duration{}
	e.rejectUser = 0
	e.down = false
}

func (e *Emulator) now() time.Time { return e.cfg.Now() }

// incLocked increments a counter; e.mu must be held.
func (e *Emulator) incLocked(name string) { e.counters[name]++ }

func (e *Emulator) inc(name string) {
	e.mu.Lock()
	e.incLocked(name)
	e.mu.Unlock()
}

// middleware gives every response an X-Request-Id, records the request,
// applies latency and injected failures, and (for Access) counts 401s
// answered outside the token endpoint.
func (e *Emulator) middleware(next http.Handler, access bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if len(id) > 255 { // "Passing a longer string will result in an error."
			e.writeError(w, r, http.StatusBadRequest, codeBadRequest, "The request ID must not be longer than 255 characters", nil)
			return
		}
		if id == "" {
			id = "selfgen-" + newUUID()
		}
		w.Header().Set("X-Request-Id", id)

		body, err := io.ReadAll(r.Body)
		if err != nil {
			e.writeError(w, r, http.StatusBadRequest, codeBadRequest, "Could not read the request body", nil)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))

		e.mu.Lock()
		e.requests = append(e.requests, Request{
			Method:     r.Method,
			Path:       r.URL.Path,
			RawQuery:   r.URL.RawQuery,
			RequestURI: r.RequestURI,
			Header:     r.Header.Clone(),
			Body:       body,
		})
		delay := e.latencyLocked(r.URL.Path)
		identity := isIdentityPath(r.URL.Path)
		if identity {
			e.inflight++
			e.peak = max(e.peak, e.inflight)
		}
		e.mu.Unlock()
		if identity {
			defer func() {
				e.mu.Lock()
				e.inflight--
				e.mu.Unlock()
			}()
		}

		if delay > 0 && !sleep(r.Context(), delay) {
			return // the caller gave up; nobody reads an answer
		}
		if f, ok := e.takeFailure(r.URL.Path); ok {
			f.write(e, w, r)
			return
		}

		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if access && sw.status == http.StatusUnauthorized && !isTokenPath(r.URL.Path) {
			e.inc(CounterUnauthorized)
		}
	})
}

// sleep waits for d or until ctx is done, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// statusWriter remembers the status code written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// method returns the effective method, honouring finAPI's
// X-HTTP-Method-Override for POST requests.
func method(r *http.Request) string {
	if r.Method == http.MethodPost {
		switch o := strings.ToUpper(r.Header.Get("X-HTTP-Method-Override")); o {
		case http.MethodPatch, http.MethodDelete:
			return o
		}
	}
	return r.Method
}

// serveAccess routes finAPI Access requests.
func (e *Emulator) serveAccess(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimSuffix(r.URL.Path, "/")
	m := method(r)
	var h map[string]http.HandlerFunc
	switch p {
	case "/api/v2/oauth/token", "/oauth/token":
		h = map[string]http.HandlerFunc{http.MethodPost: e.serveToken}
	case "/api/v2/oauth/revoke", "/oauth/revoke":
		h = map[string]http.HandlerFunc{http.MethodPost: e.serveRevoke}
	case "/api/v2/users":
		h = map[string]http.HandlerFunc{
			http.MethodPost:   e.serveCreateUser,
			http.MethodGet:    e.serveGetUser,
			http.MethodDelete: e.serveDeleteUser,
			http.MethodPatch:  e.serveEditUser,
		}
	case "/api/v2/accounts":
		h = map[string]http.HandlerFunc{http.MethodGet: e.serveAccounts}
	case "/api/v2/bankConnections":
		h = map[string]http.HandlerFunc{http.MethodGet: e.serveBankConnections}
	case "/api/v2/bankConnections/import":
		h = map[string]http.HandlerFunc{http.MethodPost: e.serveImport}
	case "/api/v2/banks":
		h = map[string]http.HandlerFunc{http.MethodGet: e.serveBanks}
	default:
		if rest, ok := strings.CutPrefix(p, "/api/v2/accounts/"); ok && rest != "" && !strings.Contains(rest, "/") {
			h = map[string]http.HandlerFunc{http.MethodGet: e.serveAccount}
		}
		if p == "/api/v2/users/requestPasswordChange" {
			h = map[string]http.HandlerFunc{http.MethodPost: e.serveRequestPasswordChange}
		}
		if p == "/api/v2/users/executePasswordChange" {
			h = map[string]http.HandlerFunc{http.MethodPost: e.serveExecutePasswordChange}
		}
		if rest, ok := strings.CutPrefix(p, "/api/v2/users/verify/"); ok && rest != "" && !strings.Contains(rest, "/") {
			h = map[string]http.HandlerFunc{http.MethodPost: e.serveVerifyUser}
		}
	}
	if h == nil {
		e.writeError(w, r, http.StatusNotFound, codeUnknownEntity, "Resource not found", nil)
		return
	}
	fn, ok := h[m]
	if !ok {
		e.writeError(w, r, http.StatusMethodNotAllowed, codeMethodNotAllowed, "Request method '"+m+"' not supported", nil)
		return
	}
	fn(w, r)
}

// PeakConcurrency returns the most requests to the token, revoke, user and
// Process Controller endpoints that were handled at once (latency
// included) since New or the last Reset.
func (e *Emulator) PeakConcurrency() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.peak
}

// isIdentityPath reports the endpoints PeakConcurrency counts.
func isIdentityPath(p string) bool {
	for _, prefix := range []string{"/api/v2/oauth/", "/oauth/", "/api/v2/users", "/api/v1/processes"} {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// isTokenPath reports whether p is the OAuth token endpoint.
func isTokenPath(p string) bool {
	p = strings.TrimSuffix(p, "/")
	return p == "/api/v2/oauth/token" || p == "/oauth/token"
}
