package proxy

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/finproxy/finproxy/auth"
	"github.com/finproxy/finproxy/jwtsession"
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
	// Verify, if not nil, turns on jwt mode: the header's value (or, when
	// the header is absent, the bearer token of Authorization) is a JWT,
	// and Verify returns the session of the app user it names or an
	// error; VerifyWith makes it from a jwtsession.Verifier. Optional.
	// Default: header mode, an opaque session id.
	Verify func(raw string) (auth.Session, error)
}

// DeriveSession is the jwtsession.Config.Derive of finproxy's jwt mode:
// the session of a verified token's app user, computed once per token and
// remembered with it, so that a request in jwt mode costs no HMAC. With a
// finAPI user id (one that auth.ValidUserID accepts) the session is that
// user's (auth.Keys.UserSession), whatever the identity; a user id it
// refuses refuses the token (jwtsession.ErrBadUserID). Without one it is
// the session of the identity, issuer plus subject (auth.Keys.Session).
func DeriveSession(k *auth.Keys) func(jwtsession.Identity) (any, error) {
	return func(id jwtsession.Identity) (any, error) {
		switch {
		case id.UserID == "":
			return k.Session(id.Key), nil
		case auth.ValidUserID(id.UserID):
			return k.UserSession(id.UserID), nil
		}
		return nil, jwtsession.ErrBadUserID
	}
}

// VerifyWith returns the SessionConfig.Verify of v, which must have been
// made with Config.Derive set to DeriveSession (without it, every request
// is answered 500).
func VerifyWith(v *jwtsession.Verifier) func(raw string) (auth.Session, error) {
	return func(raw string) (auth.Session, error) {
		id, err := v.Verify(raw)
		if err != nil {
			return auth.Session{}, err
		}
		s, ok := id.Derived.(auth.Session)
		if !ok {
			return auth.Session{}, errNotDerived
		}
		return s, nil
	}
}

// errNotDerived is a verifier made without DeriveSession: every request
// is answered 500 internal rather than served without a session.
var errNotDerived = errors.New("proxy: the JWT verifier derives no session (jwtsession.Config.Derive must be DeriveSession)")

// DefaultSessionConfig is the default session middleware configuration.
var DefaultSessionConfig = SessionConfig{
	Skipper: middleware.DefaultSkipper,
	Header:  "X-Session-Id",
}

// ToMiddleware returns the session middleware: a missing session is answered
// 401 missing_session, a malformed one 400 invalid_session; nothing goes
// upstream then.
func (c SessionConfig) ToMiddleware() (echo.MiddlewareFunc, error) {
	c, err := c.normalized()
	if err != nil {
		return nil, err
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(ec echo.Context) error {
			if c.Skipper(ec) {
				return next(ec)
			}
			r := ec.Request()
			if err := c.identify(r, stateOf(r)); err != nil {
				return err
			}
			return next(ec)
		}
	}, nil
}

// normalized returns c with its defaults, or why it cannot work.
func (c SessionConfig) normalized() (SessionConfig, error) {
	if c.Skipper == nil {
		c.Skipper = DefaultSessionConfig.Skipper
	}
	if c.Header == "" {
		c.Header = DefaultSessionConfig.Header
	}
	if c.Keys == nil {
		return c, errors.New("proxy: session middleware needs Keys")
	}
	return c, nil
}

// identify puts the session r carries into st, or returns why it has none.
func (c SessionConfig) identify(r *http.Request, st *state) error {
	vals := r.Header.Values(c.Header)
	if c.Verify != nil {
		return c.jwt(r, st, vals)
	}
	switch {
	case len(vals) == 0 || vals[0] == "":
		return errMissingSession
	case len(vals) > 1 || !validSession(vals[0]):
		return errInvalidSession
	}
	st.session = c.Keys.Session(vals[0])
	st.hasSession = true
	return nil
}

// jwt handles a request in jwt mode: the JWT comes from the session header
// or, without one, from Authorization: Bearer. A refused token is 401.
func (c SessionConfig) jwt(r *http.Request, st *state, vals []string) error {
	var raw string
	switch {
	case len(vals) > 1:
		return errSessionRefused
	case len(vals) == 1 && vals[0] != "":
		raw = vals[0]
	default:
		a := r.Header.Get("Authorization")
		if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
			raw = strings.TrimSpace(a[7:])
		}
	}
	if raw == "" {
		return errMissingSession
	}
	s, err := c.Verify(raw)
	switch {
	case errors.Is(err, errNotDerived):
		return err // finproxy's wiring, not the caller's token: 500
	case err != nil:
		return errors.Join(errSessionRefused, err)
	}
	st.session, st.hasSession = s, true
	return nil
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
