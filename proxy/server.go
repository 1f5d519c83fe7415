// Package proxy is finproxy's request path: session middleware, routing and
// route denial, token injection, forwarding with httputil.ReverseProxy, the
// session endpoints, and the one table that maps errors to answers in
// finAPI's ErrorMessage shape.
package proxy

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/rs/zerolog"

	"github.com/finproxy/finproxy/auth"
	"github.com/finproxy/finproxy/logbuf"
)

// Lifecycle carries out the session endpoints (auth.Lifecycle).
type Lifecycle interface {
	Logout(ctx context.Context, s auth.Session) error
	Delete(ctx context.Context, s auth.Session) error
}

// Config configures the proxy's handler.
type Config struct {
	// AccessURL is finAPI Access, the default upstream. Required.
	AccessURL *url.URL
	// Routes are extra upstreams by path prefix. Optional.
	Routes []Route
	// Processes is process mode: sessions are Process Controller
	// processes, a 401 means the process expired, and the warm-up answer
	// names no user. Optional. Default false: user mode.
	Processes bool
	// ResumeProcesses, in process mode, treats a 401 as in user mode:
	// the session's process token is exchanged again (Tokens.Renew) and
	// the call replayed, instead of answering 401 process_expired.
	// Optional. Default false.
	ResumeProcesses bool
	// SessionHeader carries the app session. Optional. Default
	// "X-Session-Id".
	SessionHeader string
	// Keys hashes sessions. Required.
	Keys *auth.Keys
	// VerifyJWT turns on jwt sessions (see SessionConfig.Verify).
	// Optional. Default: header sessions.
	VerifyJWT func(raw string) (auth.Session, error)
	// Tokens supplies the sessions' tokens. Required.
	Tokens Tokens
	// Lifecycle carries out logout and deletion. Required.
	Lifecycle Lifecycle
	// Transport sends requests upstream. Optional. Default
	// NewTransport(30s).
	Transport http.RoundTripper
	// ReplayMaxBytes is the largest body buffered for a replay after a
	// 401. Zero means no body is buffered (body-less requests are still
	// replayed).
	ReplayMaxBytes int64
	// MaxBodyBytes bounds request bodies (413 body_too_large). Zero
	// means no limit.
	MaxBodyBytes int64
	// BodyTimeout is how long a request body may stop arriving before it
	// is cut off (408 body_timeout when no answer began). It needs the
	// server's ConnContext set to ConnContext. Zero means no bound.
	BodyTimeout time.Duration
	// CORSOrigins are the exact browser origins allowed to call the
	// proxy. Optional. Default: no CORS headers at all.
	CORSOrigins []string
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	// Optional. Default: none; the peer address is the client IP.
	TrustedProxies []netip.Prefix
	// SessionRate and SessionBurst limit requests per session (token
	// bucket per second). Zero SessionRate means no limit.
	SessionRate  float64
	SessionBurst int
	// IPRate and IPBurst limit requests per client IP. Zero IPRate means
	// no limit.
	IPRate  float64
	IPBurst int
	// NewSessionRate and NewSessionBurst bound the new finAPI identities
	// (users or processes) this replica creates, per second; beyond them
	// first-sight requests get 429 rate_limited (Handler.AdmitNewSession
	// is the hook for auth.Sessions). Zero NewSessionRate means no bound.
	NewSessionRate  float64
	NewSessionBurst int
	// NewSessionIPRate and NewSessionIPBurst bound them per client IP
	// too. Zero NewSessionIPRate means no per-IP bound.
	NewSessionIPRate  float64
	NewSessionIPBurst int
	// Log receives one line per request. Optional. Default: nothing.
	Log zerolog.Logger
	// RequestLog, if not nil, is Log's writer, and Log is
	// zerolog.New(RequestLog).With().Timestamp().Logger() at some level,
	// with zerolog's default field names and time format: finproxy then
	// writes the line of a request answered without an error to it
	// itself, byte for byte as Log would, without zerolog's event
	// (directLog). Other lines, and every line when the time format or a
	// field name is not the default, go through Log. Optional.
	RequestLog *logbuf.Writer
	// Audit records a user's self-deletion through the proxy. Optional.
	Audit auth.Audit
	// Observer is told about every request. Optional.
	Observer Observer
}

// Observer is told what happened to each request (for metrics).
type Observer interface {
	// Request is called once per request after it was answered.
	Request(route, method string, status int, d time.Duration)
	// Upstream is called for every request that went upstream.
	Upstream(route string, d time.Duration)
	// Retry is called for every replay after an upstream 401.
	Retry()
	// RateLimited is called for every request refused by a rate limit;
	// kind is "session" or "ip".
	RateLimited(kind string)
}

// limiterKeys bounds the rate limiters' memory: at most this many sessions
// and as many client IPs are tracked at once.
const limiterKeys = 100_000

// Handler is the proxy's handler.
type Handler struct {
	http.Handler
	bodies *bodies
	admit  *newIdentities
	server *server // for the package's own tests
	routes []string
}

// Routes returns "METHOD path" of every route registered under
// /proxy/v1/, for the test that each is documented (docs/openapi.yaml).
func (h *Handler) Routes() []string { return h.routes }

// AdmitNewSession is auth.Sessions' Admit hook: it bounds the new finAPI
// identities this replica creates (Config.NewSessionRate), per client IP
// too when configured, and answers 429 rate_limited beyond them.
func (h *Handler) AdmitNewSession(ctx context.Context) error { return h.admit.admit(ctx) }

// Drain prepares the handler for shutdown: request bodies that stall for
// a second from now on are cut off, so that none holds the shutdown.
func (h *Handler) Drain() { h.bodies.drain() }

// New returns the proxy's handler.
func New(c Config) (*Handler, error) {
	if c.AccessURL == nil || c.Keys == nil || c.Tokens == nil || c.Lifecycle == nil {
		return nil, errors.New("proxy: AccessURL, Keys, Tokens and Lifecycle are required")
	}
	if c.Transport == nil {
		c.Transport = NewTransport(30 * time.Second)
	}
	if c.SessionHeader == "" {
		c.SessionHeader = DefaultSessionConfig.Header
	}
	sessions, err := SessionConfig{Header: c.SessionHeader, Keys: c.Keys, Verify: c.VerifyJWT}.normalized()
	if err != nil {
		return nil, err
	}
	sessionMW, err := sessions.ToMiddleware()
	if err != nil {
		return nil, err
	}
	s := &server{
		cfg:     c,
		session: sessions,
		cors:    len(c.CORSOrigins) > 0,
		router:  newRouter(c.AccessURL, c.Routes),
		fwd: newForwarder(c.Transport, c.Tokens, c.SessionHeader, c.Processes && !c.ResumeProcesses, c.Audit,
			log.New(c.Log.With().Str("source", "reverseproxy").Logger(), "", 0)),
		clientIP:      clientIP{trusted: c.TrustedProxies},
		bodies:        newBodies(c.BodyTimeout),
		ipLimit:       newLimiters(c.IPRate, c.IPBurst, limiterKeys),
		sessionLimits: newLimiters(c.SessionRate, c.SessionBurst, limiterKeys),
		lines:         newDirectLog(c.RequestLog),
	}
	if c.Observer != nil {
		s.fwd.onRetry = c.Observer.Retry
	}

	// Every chain is built once here: Echo wraps the middlewares of
	// e.Use and of groups anew on every request (a closure each). So the
	// main instance has none; every route's chain starts with the
	// request log (and CORS when configured). A request whose target is
	// not a path (CONNECT host:port, OPTIONS *) matches no route and goes
	// to a second instance that takes the log and CORS per request,
	// which only such requests pay.
	outer := []echo.MiddlewareFunc{s.requestLog}
	if len(c.CORSOrigins) > 0 {
		outer = append(outer, middleware.CORSWithConfig(middleware.CORSConfig{
			AllowOrigins:  c.CORSOrigins,
			AllowMethods:  []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
			AllowHeaders:  []string{c.SessionHeader, "Authorization", "Content-Type", "Accept", RequestIDHeader, "X-HTTP-Method-Override", psuIPHeader, psuUserAgentHeader, "PSU-Device-OS", "traceparent", "tracestate"},
			ExposeHeaders: []string{RequestIDHeader, ReasonHeader, "Retry-After", "Location"},
			MaxAge:        600,
			// Sessions travel in a header, never in cookies (finproxy
			// strips Cookie), so credentials are never allowed.
			AllowCredentials: false,
		}))
	}
	chain := func(h echo.HandlerFunc, mws ...echo.MiddlewareFunc) echo.HandlerFunc {
		mws = append(slices.Clone(outer), mws...)
		for i := len(mws) - 1; i >= 0; i-- {
			h = mws[i](h)
		}
		return h
	}
	newEcho := func() *echo.Echo {
		e := echo.New()
		e.HideBanner, e.HidePort = true, true
		e.HTTPErrorHandler = s.handleError
		return e
	}

	e := newEcho()
	own := []echo.MiddlewareFunc{s.edge, sessionMW, s.sessionLimit}
	for path, allowed := range map[string]string{"/proxy/v1/session": "POST, DELETE", "/proxy/v1/session/logout": "POST"} {
		e.Any(path, chain(methodNotAllowed(allowed), own...)) // replaced below for the allowed ones
	}
	e.POST("/proxy/v1/session", chain(s.warmUp, own...))
	e.DELETE("/proxy/v1/session", chain(s.deleteSession, own...))
	e.POST("/proxy/v1/session/logout", chain(s.logout, own...))
	e.Any("/proxy", chain(s.noRoute))
	e.Any("/proxy/*", chain(s.noRoute))
	forward := chain(s.forward, s.resolve, s.edge, sessionMW, s.sessionLimit)
	e.Any("/*", forward)
	e.Any("/", forward)

	odd := newEcho()
	odd.Use(outer...)
	odd.Any("/*", func(echo.Context) error { return errMethodNotAllowed }) // reached only by methods Any does not know
	dispatch := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "" || p[0] != '/' || !knownMethod(r.Method) {
			odd.ServeHTTP(w, r)
			return
		}
		if s.direct(w, r) {
			s.serveDirect(w, r)
			return
		}
		e.ServeHTTP(w, r)
	})
	admit := &newIdentities{
		all:      newLimiters(c.NewSessionRate, c.NewSessionBurst, 1),
		perIP:    newLimiters(c.NewSessionIPRate, c.NewSessionIPBurst, limiterKeys),
		observer: c.Observer,
		log:      c.Log,
	}
	s.admit = admit
	var routes []string
	for _, r := range e.Routes() {
		if strings.HasPrefix(r.Path, "/proxy/v1/") {
			routes = append(routes, r.Method+" "+r.Path)
		}
	}
	return &Handler{Handler: dispatch, bodies: s.bodies, admit: admit, server: s, routes: routes}, nil
}

type server struct {
	cfg           Config
	session       SessionConfig // with its defaults
	cors          bool          // CORS is on (Config.CORSOrigins)
	router        *router
	fwd           *forwarder
	clientIP      clientIP
	ipLimit       *limiters
	sessionLimits *limiters
	bodies        *bodies
	admit         *newIdentities
	lines         *directLog // nil: every request line through Log
}

// resolve checks the path, picks the upstream and refuses denied routes,
// before the session is even looked at.
func (s *server) resolve(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		r := ec.Request()
		if err := s.route(r, stateOf(r)); err != nil {
			return err
		}
		return next(ec)
	}
}

// route checks r's path, picks its upstream into st and refuses denied
// routes (resolve's work, for both paths).
func (s *server) route(r *http.Request, st *state) error {
	if err := checkPath(r.URL); err != nil {
		return err
	}
	// No finAPI service speaks WebSocket or h2c, and an upgraded
	// connection would be a tunnel past route denial: the offer is
	// ignored (RFC 9110 lets a server), so clients that offer h2c on every
	// request (curl --http2, Java's HttpClient) still work.
	delete(r.Header, "Upgrade")
	rt, restEscaped := s.router.match(r.URL.EscapedPath())
	if rt == nil {
		return errNoRoute
	}
	rest, err := url.PathUnescape(restEscaped)
	if err != nil {
		return errRouteDenied
	}
	st.route, st.upstream = rt, restEscaped
	st.outPath, st.outRawPath = joinPath(rt.target, restEscaped)
	// Denied is judged on the path as it arrived, without the route's
	// prefix, and as the upstream finally receives it: a route's own base
	// path (/legacy=https://host/api) joined with the rest must not reach
	// /api/v2/clientConfiguration. For Access (no prefix, usually no base
	// path) the three are one, judged once.
	method := effectiveMethod(r)
	if denied(method, r.URL.Path) ||
		rest != r.URL.Path && denied(method, rest) ||
		st.outPath != rest && st.outPath != r.URL.Path && denied(method, st.outPath) {
		return errRouteDenied
	}
	return nil
}

// forward obtains the session's token, buffers a small body for a replay,
// and hands the request to the reverse proxy.
//
// On Echo's routes too the reverse proxy writes through the state's
// response, which passes an upstream's interim (1xx) answers on without
// ending the header (echo.Response takes any status as the final one),
// and what it wrote is then told to echo.Response for the log line.
func (s *server) forward(ec echo.Context) error {
	r := ec.Request()
	st := stateOf(r)
	res := ec.Response()
	st.w.reset(res.Writer)
	err := s.forwardTo(&st.w, r, st)
	if st.w.committed {
		res.Status, res.Size, res.Committed = st.w.status, st.w.size, true
	}
	return err
}

// forwardTo is forward's work on w, for both paths.
func (s *server) forwardTo(w http.ResponseWriter, r *http.Request, st *state) error {
	t, err := s.cfg.Tokens.Token(r.Context(), st.session)
	if err != nil {
		return err
	}
	st.token = t
	if err := s.bufferBody(r, st); err != nil {
		return err
	}
	start := time.Now()
	s.fwd.rp.ServeHTTP(w, r)
	if s.cfg.Observer != nil {
		s.cfg.Observer.Upstream(st.route.prefix, time.Since(start))
	}
	return nil
}

// bufferBody reads a body of up to ReplayMaxBytes into memory so that it
// can be replayed byte for byte after a 401; a chunked body is read as far
// as that too. A larger body streams through (what was read first, then the
// rest) and is not replayed.
func (s *server) bufferBody(r *http.Request, st *state) error {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody || r.ContentLength > s.cfg.ReplayMaxBytes {
		return nil
	}
	limit := s.cfg.ReplayMaxBytes
	if r.ContentLength > 0 {
		limit = r.ContentLength
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		switch {
		case isBodyTooLarge(err):
			return errBodyTooLarge
		case isBodyTimeout(err):
			return errBodyTimeout
		}
		return errors.Join(errInvalidBody, err)
	}
	if int64(len(body)) > limit {
		// Too large to replay: send what was read, then the rest.
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
		return nil
	}
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength, r.TransferEncoding = int64(len(body)), nil // sent with its length
	st.body = body
	return nil
}

// warmUp makes sure the session's finAPI identity and token exist.
func (s *server) warmUp(ec echo.Context) error {
	st := stateOf(ec.Request())
	t, err := s.cfg.Tokens.Token(ec.Request().Context(), st.session)
	if err != nil {
		return err
	}
	out := struct {
		Mode      string  `json:"mode"`
		UserID    string  `json:"userId,omitempty"`
		ExpiresAt *string `json:"expiresAt"`
	}{Mode: "user"}
	if s.cfg.Processes {
		out.Mode = "process"
	} else {
		out.UserID = cmp.Or(t.UserID, st.session.UserID()) // an adopted user, else the derived one
	}
	if !t.Expiry.IsZero() {
		e := t.Expiry.UTC().Format(time.RFC3339)
		out.ExpiresAt = &e
	}
	ec.Response().Header().Set("Cache-Control", "no-store")
	return ec.JSON(http.StatusOK, out)
}

func (s *server) logout(ec echo.Context) error {
	if err := s.cfg.Lifecycle.Logout(ec.Request().Context(), stateOf(ec.Request()).session); err != nil {
		return err
	}
	return ec.NoContent(http.StatusNoContent)
}

func (s *server) deleteSession(ec echo.Context) error {
	if err := s.cfg.Lifecycle.Delete(ec.Request().Context(), stateOf(ec.Request()).session); err != nil {
		return err
	}
	return ec.NoContent(http.StatusNoContent)
}

func (s *server) noRoute(echo.Context) error { return errNoRoute }

func methodNotAllowed(allow string) echo.HandlerFunc {
	return func(ec echo.Context) error {
		ec.Response().Header().Set("Allow", allow)
		return errMethodNotAllowed
	}
}

// handleError answers every error a handler or middleware returned, through
// the error table.
func (s *server) handleError(err error, ec echo.Context) {
	s.answer(ec.Response(), ec.Response().Committed, ec.Request(), err)
}

// answer answers err through the error table, unless an answer began.
func (s *server) answer(w http.ResponseWriter, committed bool, r *http.Request, err error) {
	if committed {
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The caller went away while waiting (for a token): nobody
		// reads an answer, and it is no failure of finAPI's.
		w.WriteHeader(499)
		return
	}
	if rl := (*rateLimitedError)(nil); errors.As(err, &rl) && rl.kind != "" {
		s.admit.refused(rl)
	}
	writeError(w, r, err)
}

// knownMethod reports whether Echo's Any routes method; others (WebDAV's
// MKCOL, anything made up) would meet Echo's own 405 outside the request
// log.
func knownMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace, "PROPFIND", "REPORT":
		return true
	}
	return false
}
