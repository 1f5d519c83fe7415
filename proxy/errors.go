package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/finproxy/finproxy/apierror"
	"github.com/finproxy/finproxy/finapi"
	"github.com/finproxy/finproxy/jwtsession"
)

// ReasonHeader carries finproxy's own machine-readable reason for an error
// it answered itself.
const ReasonHeader = apierror.ReasonHeader

// Errors that finproxy answers itself, before or instead of forwarding.
var (
	errMissingSession   = errors.New("missing session")
	errInvalidSession   = errors.New("invalid session")
	errSessionRefused   = errors.New("session token refused")
	errInvalidPath      = errors.New("invalid request path")
	errRouteDenied      = errors.New("route needs a client token and is not forwarded")
	errNoRoute          = errors.New("no route")
	errMethodNotAllowed = errors.New("method not allowed")
	errBodyTooLarge     = errors.New("request body too large")
	errInvalidBody      = errors.New("request body could not be read")
	errUpstreamTimeout  = errors.New("upstream did not answer in time")
	errUpstreamDown     = errors.New("upstream unreachable")
)

// problem is one row of the error table: apierror.Problem's fields, declared
// here so that the table's rows can stay positional (vet's composites check
// wants keys for another package's struct), converted when written.
type problem struct {
	Status  int
	Code    string // finAPI ErrorCode
	Reason  string // X-Finproxy-Error
	Message string
}

// table maps every error finproxy answers itself to its status, finAPI
// error code and reason. It is the only place where that is decided.
var table = []struct {
	err error
	problem
}{
	{errMissingSession, problem{401, "UNAUTHORIZED_ACCESS", "missing_session", "No session: send the session header"}},
	{errInvalidSession, problem{400, "BAD_REQUEST", "invalid_session", "Malformed session"}},
	{jwtsession.ErrNoUserID, problem{401, "UNAUTHORIZED_ACCESS", "missing_user_id", "Session token refused: it names no finAPI user id (the claim FINPROXY_JWT_USER_ID_CLAIM)"}},
	{jwtsession.ErrBadUserID, problem{401, "UNAUTHORIZED_ACCESS", "invalid_user_id", "Session token refused: its finAPI user id is not 1 to 36 characters of [a-zA-Z0-9-_.+@]"}},
	{errSessionRefused, problem{401, "UNAUTHORIZED_ACCESS", "invalid_session", "Session token refused: expired, not yet valid, wrongly signed or for another issuer or audience"}},
	{errInvalidPath, problem{400, "BAD_REQUEST", "invalid_path", "Request path with dot segments, encoded slashes, double encoding or path parameters is refused"}},
	{errRouteDenied, problem{403, "FORBIDDEN", "route_denied", "This endpoint needs the client token and is not available through finproxy"}},
	{errNoRoute, problem{404, "UNKNOWN_ENTITY", "no_route", "No such endpoint"}},
	{errMethodNotAllowed, problem{405, "METHOD_NOT_ALLOWED", "method_not_allowed", "Method not allowed"}},
	{errInvalidBody, problem{400, "BAD_REQUEST", "invalid_body", "The request body could not be read"}},
	{errBodyTooLarge, problem{413, "BAD_REQUEST", "body_too_large", "Request body too large"}},
	{errBodyTimeout, problem{408, "BAD_REQUEST", "body_timeout", "The request body stopped arriving"}},
	{errRateLimited, problem{429, "BAD_REQUEST", "rate_limited", "Too many requests; slow down"}},
	{errUpstreamTimeout, problem{504, "UNEXPECTED_ERROR", "upstream_timeout", "finAPI did not answer in time"}},
	{errUpstreamDown, problem{502, "UNEXPECTED_ERROR", "upstream_unavailable", "finAPI is unreachable"}},
	{finapi.ErrProcessExpired, problem{401, "UNAUTHORIZED_ACCESS", "process_expired", "The process has expired; the next request starts a new one"}},
	{finapi.ErrIdentityConflict, problem{502, "UNEXPECTED_ERROR", "identity_conflict", "finAPI refuses this session's user; an operator must resolve it"}},
	{finapi.ErrClientRejected, problem{502, "UNEXPECTED_ERROR", "token_refused", "finAPI refused finproxy's client credentials"}},
	{finapi.ErrBusy, problem{423, "LOCKED", "user_busy", "The finAPI user cannot be deleted while a bank connection is busy; try again later"}},
	{finapi.ErrUnavailable, problem{503, "UNEXPECTED_ERROR", "token_unavailable", "finAPI tokens cannot be had right now; try again later"}},
	{finapi.ErrUnreachable, problem{502, "UNEXPECTED_ERROR", "upstream_unavailable", "finAPI is unreachable"}},
	{finapi.ErrInvalidAnswer, problem{502, "UNEXPECTED_ERROR", "upstream_invalid", "finAPI answered something finproxy cannot use (no or an invalid token)"}},
	{finapi.ErrRejected, problem{502, "UNEXPECTED_ERROR", "token_refused", "finAPI refused to issue a token"}},
}

var internalProblem = problem{500, "UNEXPECTED_ERROR", "internal", "Internal error"}

// classify finds err's row in the table.
func classify(err error) problem {
	for _, row := range table {
		if errors.Is(err, row.err) {
			return row.problem
		}
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return classify(errNoRoute)
		case http.StatusMethodNotAllowed:
			return classify(errMethodNotAllowed)
		case http.StatusRequestEntityTooLarge:
			return classify(errBodyTooLarge)
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return classify(errUpstreamTimeout)
	}
	return internalProblem
}

// writeError answers err in finAPI's ErrorMessage shape with the reason in
// X-Finproxy-Error, and returns the problem it chose.
func writeError(w http.ResponseWriter, r *http.Request, err error) problem {
	p := classify(err)
	ra := finapi.RetryAfter(err)
	var rl *rateLimitedError
	if errors.As(err, &rl) {
		ra = rl.wait
	}
	apierror.Write(w, r, apierror.Problem(p), ra)
	return p
}
