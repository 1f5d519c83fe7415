package proxy

import (
	"errors"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/finproxy/finproxy/auth"
)

// Session value limits in header mode.
const (
	minSessionLen = 16
	maxSessionLen = 512
)

// SessionConfig configures the session middleware, which turns the app
// session a request carries into an auth.Session in the request state.
type SessionConfig struct {
	// Skipper defines a function to skip the middleware.
	// Optional. Default value middleware.DefaultSkipper.
	Skipper middleware.Skipper
	// Header is the header that carries the session.
	// Optional. Default value "X-Session-Id".
	Header string
	// Keys hashes sessions and derives their identities. Required.
	Keys *auth.Keys
}

// DefaultSessionConfig is the default session middleware configuration.
var DefaultSessionConfig = SessionConfig{
	Skipper: middleware.DefaultSkipper,
	Header:  "X-Session-Id",
}

// ToMiddleware returns the session middleware: a missing session is answered
// 401 missing_session, a malformed one 400 invalid_session; nothing goes
// upstream then.
func (c SessionConfig) ToMiddleware() (echo.MiddlewareFunc, error) {
	if c.Skipper == nil {
		c.Skipper = DefaultSessionConfig.Skipper
	}
	if c.Header == "" {
		c.Header = DefaultSessionConfig.Header
	}
	if c.Keys == nil {
		return nil, errors.New("proxy: session middleware needs Keys")
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(ec echo.Context) error {
			if c.Skipper(ec) {
				return next(ec)
			}
			vals := ec.Request().Header.Values(c.Header)
			switch {
			case len(vals) == 0 || vals[0] == "":
				return errMissingSession
			case len(vals) > 1 || !validSession(vals[0]):
				return errInvalidSession
			}
			st := stateOf(ec.Request())
			st.session = c.Keys.Session(vals[0])
			st.hasSession = true
			return next(ec)
		}
	}, nil
}

// validSession accepts 16 to 512 characters of [A-Za-z0-9._~+/=-].
func validSession(v string) bool {
	if len(v) < minSessionLen || len(v) > maxSessionLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		b := v[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
			b == '.' || b == '_' || b == '~' || b == '+' || b == '/' || b == '=' || b == '-') {
			return false
		}
	}
	return true
}
