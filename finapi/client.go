// Package finapi is finproxy's HTTP client of finAPI: the OAuth token
// endpoint, the user operations done with the client token, and the
// Process Controller. It retries what may be retried, backs off per
// endpoint class after failures (so that a failing endpoint is not asked
// by every request, and one user's failure stops nobody else), bounds its
// concurrency (Limiter), sends every call with an X-Request-Id, and
// classifies every answer into one kind of Error that callers branch on.
package finapi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Retry policy toward finAPI's token service.
const (
	maxAttempts   = 3
	retryBase     = 100 * time.Millisecond
	retryCap      = 1 * time.Second
	backoffFirst  = 1 * time.Second
	backoffCap    = 10 * time.Second
	maxRetryAfter = 5 * time.Minute // a longer Retry-After is taken as this
	// minAttemptBudget: an attempt sent with less time left than this
	// (it queued for a slot) that times out says nothing about finAPI.
	minAttemptBudget = time.Second
	maxErrorBytes    = 64 << 10
)

// Ops that the client's classification branches on. OpPasswordGrant is
// also the op of a session's identity conflict (auth).
const (
	OpPasswordGrant = "password grant"
	opCreateProcess = "create process"
)

// Client calls finAPI's OAuth and user endpoints, and the Process
// Controller, on behalf of finproxy.
//
// Calls that fail with a network error or a 5xx are retried with capped
// exponential back-off and jitter while the context allows. When they still
// fail, or finAPI answers 429 or refuses the client credentials, the
// endpoint class of the call backs off (a short negative cache): for a
// growing, capped time (at least finAPI's Retry-After) every call of that
// class fails at once with the error that started the back-off, so a dead
// or refusing endpoint is not hammered by every request and one cause keeps
// one answer. The classes are the token grants, the user operations done
// with the client token (creation, verification) and the Process
// Controller; calls on behalf of one user (deleting it, revoking its
// tokens) back off nothing: their failure is that user's alone, and goes
// back to the caller with finAPI's Retry-After.
//
// Every call carries an X-Request-Id: the one of the request it is made for
// (WithRequestID), or a fresh one.
type Client struct {
	// BaseURL is finAPI Access's base URL. Required.
	BaseURL *url.URL
	// ClientID and ClientSecret are the client credentials. Required.
	ClientID, ClientSecret string
	// HTTPClient sends the requests. If nil, http.DefaultClient is used.
	HTTPClient *http.Client
	// Now is the clock. If nil, time.Now is used.
	Now func() time.Time
	// Sleep waits d or until ctx ends. If nil, a timer is used.
	Sleep func(ctx context.Context, d time.Duration) error
	// Observe, if not nil, is told of every call to finAPI: the op, its
	// outcome and its duration (for metrics).
	Observe func(op string, err error, d time.Duration)
	// Limit bounds the concurrent calls; share one between the clients
	// of a replica. If nil, calls are not bounded.
	Limit *Limiter
	// Log receives a refusal of the client credentials once, and their
	// acceptance again. Optional.
	Log zerolog.Logger

	breakers [numClasses]breaker
	refused  atomic.Pointer[Error] // the last refusal of the client credentials, until a success
}

// A class is a group of finAPI endpoints that fail together and back off
// together.
type class int

const (
	classToken   class = iota // POST /api/v2/oauth/token
	classUser                 // user creation and verification (client token)
	classProcess              // the Process Controller
	classOwn                  // on behalf of one user: no back-off
	numClasses   = classOwn
)

// classOf maps an op to its class.
func classOf(op string) class {
	switch op {
	case "client_credentials grant", OpPasswordGrant, "refresh_token grant":
		return classToken
	case "create user", "verify user":
		return classUser
	case opCreateProcess, "exchange process":
		return classProcess
	}
	return classOwn
}

// A breaker is one class's back-off after failures. The zero value is
// closed.
type breaker struct {
	mu        sync.Mutex
	downUntil time.Time
	downErr   Error // the failure that started the back-off
	backoff   time.Duration
}

// apiError is finAPI's ErrorMessage and OAuth error (BadCredentialsError)
// shape, as far as finproxy reads it.
type apiError struct {
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
	OAuthError       string `json:"error"`
	OAuthDescription string `json:"error_description"`
	// OAuthDescriptionCamel is the spelling of finAPI's own 401 example.
	OAuthDescriptionCamel string `json:"errorDescription"`
}

// A Grant is what the token endpoint handed out.
type Grant struct {
	AccessToken string
	// RefreshToken is set for the password grant only (finAPI's
	// AccessToken: "Only set in case of grant_type='password'").
	RefreshToken string
	// Issued is when the grant was asked for; Expiry is when the access
	// token expires, zero for never (expires_in 0).
	Issued, Expiry time.Time
}

// accessToken is finAPI's AccessToken.
type accessToken struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
}

// ClientToken obtains a client token with the client_credentials grant.
func (c *Client) ClientToken(ctx context.Context) (Grant, error) {
	return c.grant(ctx, "client_credentials grant", url.Values{"grant_type": {"client_credentials"}})
}

// PasswordToken obtains a user token with the password grant.
func (c *Client) PasswordToken(ctx context.Context, userID, password string) (Grant, error) {
	return c.grant(ctx, OpPasswordGrant, url.Values{
		"grant_type": {"password"}, "username": {userID}, "password": {password},
	})
}

// RefreshToken renews a user token with the refresh_token grant.
func (c *Client) RefreshToken(ctx context.Context, refresh string) (Grant, error) {
	return c.grant(ctx, "refresh_token grant", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {refresh},
	})
}

func (c *Client) grant(ctx context.Context, op string, form url.Values) (_ Grant, err error) {
	defer c.observe(op, c.now(), &err)
	form.Set("client_id", c.ClientID)
	form.Set("client_secret", c.ClientSecret)
	body := form.Encode()
	issued := c.now()
	resp, err := c.do(ctx, op, c.request(http.MethodPost, "/api/v2/oauth/token", formType, []byte(body), ""))
	if err != nil {
		return Grant{}, err
	}
	if resp.status/100 != 2 {
		return Grant{}, c.refusal(op, resp)
	}
	var at accessToken
	switch err := json.Unmarshal(resp.body, &at); {
	case err != nil:
		return Grant{}, c.invalid(resp, op, "token answer is not an AccessToken")
	case at.AccessToken == "":
		return Grant{}, c.invalid(resp, op, "token answer has no access_token")
	case at.ExpiresIn < 0:
		return Grant{}, c.invalid(resp, op, "token answer has a negative expires_in")
	case at.ExpiresIn > math.MaxInt32: // the schema's int32; more overflows a time.Duration
		return Grant{}, c.invalid(resp, op, "token answer has an expires_in beyond int32")
	}
	t := Grant{AccessToken: at.AccessToken, RefreshToken: at.RefreshToken, Issued: issued}
	if at.ExpiresIn > 0 { // expires_in 0: the token does not expire
		t.Expiry = issued.Add(time.Duration(at.ExpiresIn) * time.Second)
	}
	return t, nil
}

// CreateUser creates the finAPI user id with password, using a client
// token. It reports created=false when finAPI says the user exists
// (422 ENTITY_EXISTS), which is no error.
func (c *Client) CreateUser(ctx context.Context, clientToken, id, password string) (created bool, err error) {
	op, start := "create user", c.now()
	// Observed as "create user" when finAPI created the user, as
	// "create user (exists)" when it answered ENTITY_EXISTS.
	defer func() { c.observe(op, start, &err) }()
	body, _ := json.Marshal(map[string]any{"id": id, "password": password, "isAutoUpdateEnabled": false})
	resp, err := c.do(ctx, op, c.request(http.MethodPost, "/api/v2/users", jsonType, body, clientToken))
	switch {
	case err != nil:
		return false, err
	case resp.status/100 == 2:
		return true, nil
	case resp.status == http.StatusUnprocessableEntity && resp.code == "ENTITY_EXISTS":
		op = "create user (exists)"
		return false, nil
	}
	return false, c.refusal(op, resp)
}

// VerifyUser verifies the user id (POST /api/v2/users/verify/{userId})
// with a client token, for clients without auto-verification. finAPI's
// 422 (user already verified) counts as success.
func (c *Client) VerifyUser(ctx context.Context, clientToken, id string) (err error) {
	const op = "verify user"
	defer c.observe(op, c.now(), &err)
	resp, err := c.do(ctx, op, c.request(http.MethodPost, "/api/v2/users/verify/"+url.PathEscape(id), "", nil, clientToken))
	if err == nil && resp.status == http.StatusUnprocessableEntity {
		return nil
	}
	return c.success(op, resp, err)
}

// DeleteUser deletes the user that userToken authorises
// (DELETE /api/v2/users).
func (c *Client) DeleteUser(ctx context.Context, userToken string) (err error) {
	const op = "delete user"
	defer c.observe(op, c.now(), &err)
	resp, err := c.do(ctx, op, c.request(http.MethodDelete, "/api/v2/users", "", nil, userToken))
	return c.success(op, resp, err)
}

// Revoke revokes token (an access or refresh token, as hint says; an empty
// hint revokes the whole grant) with a client token.
func (c *Client) Revoke(ctx context.Context, clientToken, token, hint string) (err error) {
	const op = "revoke"
	defer c.observe(op, c.now(), &err)
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	resp, err := c.do(ctx, op, c.request(http.MethodPost, "/api/v2/oauth/revoke", formType, []byte(form.Encode()), clientToken))
	return c.success(op, resp, err)
}

// Content types of finAPI requests.
const (
	formType = "application/x-www-form-urlencoded"
	jsonType = "application/json"
)

// request returns a builder of one request to finAPI (a retry builds it
// anew): method and path, an optional body of contentType, and an optional
// bearer token.
func (c *Client) request(method, path, contentType string, body []byte, bearer string) func() (*http.Request, error) {
	return func() (*http.Request, error) {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequest(method, c.endpoint(path), rd)
		if err != nil {
			return nil, err
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		return req, nil
	}
}

// success turns a call's outcome into nil for a 2xx answer, else an error.
func (c *Client) success(op string, resp *response, err error) error {
	if err != nil {
		return err
	}
	if resp.status/100 == 2 {
		return nil
	}
	return c.refusal(op, resp)
}

// refusal classifies a non-success answer of finAPI. A refusal of the
// client credentials also backs the client off: every call would be
// refused the same way until an operator fixes them.
func (c *Client) refusal(op string, r *response) error {
	e := &Error{Op: op, Status: r.status, Code: r.code, Kind: ErrRejected, RequestID: r.requestID}
	switch {
	case r.code == "" && r.status != http.StatusUnauthorized && classOf(op) != classProcess:
		// Not finAPI's ErrorMessage nor an OAuth error: an HTML page of
		// a proxy, or a base URL that is not finAPI's. (The Process
		// Controller publishes no error bodies.)
		return c.invalid(r, op, fmt.Sprintf("HTTP %d without a finAPI error body", r.status))
	case refusesCredentials(op, r.status, r.code):
		e.Kind = ErrClientRejected
		e.RetryAfter = c.failed(classOf(op), e, 0)
		if c.refused.Swap(e) == nil {
			c.Log.Error().Err(e).Dur("retry_in", e.RetryAfter).
				Msg("finAPI refuses the client credentials (FINPROXY_CLIENT_ID / FINPROXY_CLIENT_SECRET); no new session can start; asked again only as the back-off allows; logged once until they work again")
		}
	case op == OpPasswordGrant && r.badCredentials():
		e.Kind = ErrBadCredentials
	case r.status == http.StatusLocked && op == "delete user":
		e.Kind = ErrBusy
	case r.status == http.StatusLocked:
		e.Kind = ErrIdentityConflict
	}
	return e
}

// refusesCredentials reports whether an answer to op refuses the client
// credentials: 401 invalid_client anywhere, any 401 of a grant, a 401 or
// 403 of the Process Controller's creation (which takes the credentials
// in its body).
func refusesCredentials(op string, status int, code string) bool {
	switch {
	case status == http.StatusUnauthorized && (code == "invalid_client" || strings.HasSuffix(op, "grant")):
		return true
	case op == opCreateProcess:
		return status == http.StatusUnauthorized || status == http.StatusForbidden
	}
	return false
}

// CredentialsRefused returns finAPI's last refusal of the client
// credentials while no call has succeeded with them since, else nil: for
// readiness, metrics and the log. Nothing else retries them more often
// than the back-off allows.
func (c *Client) CredentialsRefused() error {
	if e := c.refused.Load(); e != nil {
		return e
	}
	return nil
}

// badCredentials reports whether a password grant's answer is finAPI's
// "bad user credentials": a 400 whose OAuth error is invalid_grant (RFC
// 6749 section 5.2), or whose ErrorMessage or error description speaks of
// credentials (finAPI documents the 400 as "Bad user credentials, or
// invalid refresh_token, or unsupported grant_type" without publishing its
// code). Any other 400 is a plain refusal.
func (r *response) badCredentials() bool {
	if r.status != http.StatusBadRequest || r.code == "MISSING_CREDENTIALS" {
		return false
	}
	msg := strings.ToLower(r.message)
	return r.code == "invalid_grant" || strings.Contains(msg, "user credentials") || strings.Contains(msg, "bad credentials")
}

// invalid is the error for an answer finproxy cannot use (a 2xx that is
// not what finAPI documents, an error without finAPI's body). It backs
// op's class off like a 5xx: such answers come from whatever stands in
// front of finAPI (a gateway's page, a wrong base URL) and would be the
// same for every session, so each new session must not ask again. The
// answer itself closed the breaker (it was not a 5xx), so the back-off
// restarts at its first step: about one call per second and class.
func (c *Client) invalid(r *response, op, why string) *Error {
	e := &Error{Op: op, Kind: ErrInvalidAnswer, Status: r.status, RequestID: r.requestID, Err: errors.New(why)}
	e.RetryAfter = c.failed(classOf(op), e, 0)
	return e
}

type response struct {
	status     int
	code       string // finAPI error code or OAuth error
	message    string // its message or error_description
	body       []byte
	retryAfter time.Duration // Retry-After, if finAPI sent one
	requestID  string        // the X-Request-Id the call was sent with
}

// do sends the request built by newReq, retrying network errors and 5xx
// within ctx, and maintains the client-wide back-off.
func (c *Client) do(ctx context.Context, op string, newReq func() (*http.Request, error)) (*response, error) {
	return c.call(ctx, op, maxAttempts, newReq)
}

// doOnce is do without retries, for requests that must not be repeated.
func (c *Client) doOnce(ctx context.Context, op string, newReq func() (*http.Request, error)) (*response, error) {
	return c.call(ctx, op, 1, newReq)
}

func (c *Client) call(ctx context.Context, op string, attempts int, newReq func() (*http.Request, error)) (*response, error) {
	cl := classOf(op)
	if err := c.backedOff(cl, op); err != nil {
		return nil, err
	}
	id := RequestID(ctx)
	if id == "" {
		id = NewRequestID()
	}
	var last *Error
	for attempt := range attempts {
		if attempt > 0 {
			d := min(retryCap, retryBase<<(attempt-1))
			d = d/2 + rand.N(d/2+1) // equal jitter
			if dl, ok := ctx.Deadline(); ok && c.now().Add(d).After(dl) {
				break
			}
			if err := c.sleep(ctx, d); err != nil {
				break
			}
		}
		req, err := newReq()
		if err != nil {
			return nil, &Error{Op: op, Kind: ErrUnreachable, Err: err}
		}
		req = req.WithContext(ctx)
		req.Header.Set("X-Request-Id", id)
		release, err := c.Limit.acquire(ctx, cl, op)
		if err != nil {
			return nil, err // our own queue, no verdict on finAPI
		}
		if err := c.backedOff(cl, op); err != nil {
			release() // the class started backing off while we queued
			return nil, err
		}
		dl, hasDeadline := ctx.Deadline()
		starved := hasDeadline && time.Until(dl) < minAttemptBudget
		resp, err := c.send(req)
		release()
		switch {
		case err == nil && resp.status < 500 && resp.status != http.StatusTooManyRequests:
			if !refusesCredentials(op, resp.status, resp.code) {
				c.succeeded(cl) // a refusal backs off instead (see refusal)
			}
			resp.requestID = id
			return resp, nil
		case err == nil && resp.status == http.StatusTooManyRequests:
			// finAPI rate-limits us: retrying now makes it worse.
			last = &Error{Op: op, Kind: ErrUnavailable, Status: resp.status, Code: resp.code, RequestID: id}
			last.RetryAfter = c.failed(cl, last, resp.retryAfter)
			return nil, last
		case err == nil: // 5xx
			last = &Error{Op: op, Kind: ErrUnavailable, Status: resp.status, Code: resp.code, RequestID: id}
			if resp.retryAfter > 0 {
				last.RetryAfter = c.failed(cl, last, resp.retryAfter)
				return nil, last
			}
		case errors.Is(ctx.Err(), context.Canceled):
			// The caller gave up: no verdict on finAPI, no back-off.
			return nil, &Error{Op: op, Kind: ErrUnavailable, Err: err, RequestID: id}
		case starved && ctx.Err() != nil:
			// The queue left this attempt too little time: no verdict
			// on finAPI, whose class must not back off for our queue.
			return nil, &Error{Op: op, Kind: ErrUnavailable, RetryAfter: limitRetryAfter, Err: err, RequestID: id}
		case ctx.Err() != nil || isTimeout(err):
			// Our budget ran out, or the HTTP client's: finAPI is too
			// slow. Either way the same answer (503 with Retry-After).
			last = &Error{Op: op, Kind: ErrUnavailable, Err: err, RequestID: id}
		default:
			last = &Error{Op: op, Kind: ErrUnreachable, Err: err, RequestID: id}
		}
		if ctx.Err() != nil {
			break // no time for another attempt
		}
	}
	last.RetryAfter = c.failed(cl, last, 0)
	return nil, last
}

// isTimeout reports whether a transport error is a timeout (the HTTP
// client's, a dial's or a deadline's).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// send performs one request and reads the (bounded) answer. Transport
// errors lose their URL, which may hold a token (process exchange).
func (c *Client) send(req *http.Request) (*response, error) {
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s %s: %w", req.Method, req.URL.Host, ue.Err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	if err != nil {
		return nil, fmt.Errorf("reading answer from %s: %w", req.URL.Host, err)
	}
	r := &response{status: resp.StatusCode, body: body, retryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), c.now())}
	if resp.StatusCode >= 400 {
		var ae apiError
		if json.Unmarshal(body, &ae) == nil {
			r.code, r.message = ae.OAuthError, cmp.Or(ae.OAuthDescription, ae.OAuthDescriptionCamel)
			if len(ae.Errors) > 0 {
				r.code, r.message = ae.Errors[0].Code, ae.Errors[0].Message
			}
		}
	}
	return r, nil
}

// backedOff returns, while class cl backs off, the error that started the
// back-off (for op, with the time still to wait), else nil.
func (c *Client) backedOff(cl class, op string) error {
	if cl == classOwn {
		return nil
	}
	b := &c.breakers[cl]
	b.mu.Lock()
	defer b.mu.Unlock()
	wait := b.downUntil.Sub(c.now())
	if wait <= 0 {
		return nil
	}
	e := b.downErr
	// Status goes: code that branches on a fresh 401 must not act on a
	// replayed one.
	e.Op, e.Status, e.RetryAfter, e.RequestID, e.heldBack = op, 0, wait, "", true
	if e.Err == nil {
		e.Err = errors.New("backing off after recent failures")
	}
	return &e
}

// failed starts or extends class cl's back-off after cause, for at least
// atLeast (finAPI's Retry-After, capped at maxRetryAfter), and returns its
// length. Calls of classOwn back nothing off: the wait is finAPI's own.
func (c *Client) failed(cl class, cause *Error, atLeast time.Duration) time.Duration {
	if cl == classOwn {
		return min(atLeast, maxRetryAfter)
	}
	b := &c.breakers[cl]
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.backoff == 0:
		b.backoff = backoffFirst
	case b.backoff < backoffCap:
		b.backoff = min(backoffCap, 2*b.backoff)
	}
	wait := max(b.backoff, min(atLeast, maxRetryAfter))
	b.downUntil = c.now().Add(wait)
	b.downErr = *cause
	return wait
}

// succeeded ends class cl's back-off; a success of the credentials ends
// their refusal.
func (c *Client) succeeded(cl class) {
	if cl == classOwn {
		return
	}
	if cl == classToken || cl == classProcess {
		if c.refused.Swap(nil) != nil {
			c.Log.Info().Msg("finAPI accepts the client credentials again")
		}
	}
	b := &c.breakers[cl]
	b.mu.Lock()
	b.backoff, b.downUntil = 0, time.Time{}
	b.mu.Unlock()
}

// observe reports a public call's final outcome to Observe; deferred
// with the call's start time and a pointer to its named error result. A
// call refused at once during a back-off reached nobody and is not
// reported.
func (c *Client) observe(op string, start time.Time, err *error) {
	var e *Error
	if c.Observe == nil || errors.As(*err, &e) && e.heldBack {
		return
	}
	c.Observe(op, *err, c.now().Sub(start))
}

func (c *Client) endpoint(path string) string {
	return strings.TrimSuffix(c.BaseURL.String(), "/") + path
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
