package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/finproxy/finproxy/auth"
	"github.com/finproxy/finproxy/jwtsession"
	"github.com/finproxy/finproxy/logbuf"
	"github.com/finproxy/finproxy/redact"
)

// The session benchmarks run the session middleware through echo's router in
// front of a handler that does nothing, so that only the middleware differs
// between them; BenchmarkSessionNone is their baseline (echo, the recorder
// and the request alone). Compare ns/op and allocs/op against it, never
// across runs: the machine is shared.

var (
	benchIdentitySecret = []byte("bench-identity-secret-0123456789abcdef0123")
	benchHMACSecret     = []byte("bench-jwt-hmac-secret-0123456789abcdef0123")
)

const (
	benchIssuer  = "bench"
	benchSession = "bench-session-0123456789"
)

func benchKeys(b testing.TB) *auth.Keys {
	b.Helper()
	k, err := auth.NewKeys(benchIdentitySecret)
	if err != nil {
		b.Fatal(err)
	}
	return k
}

// benchVerify returns a real HMAC jwtsession.Verifier wired the way main.go
// wires it into SessionConfig.Verify. cacheSize 0 means the default.
func benchVerify(b *testing.B, cacheSize int) func(string) (auth.Session, error) {
	b.Helper()
	v, err := jwtsession.New(b.Context(), jwtsession.Config{HMACSecret: benchHMACSecret, Issuer: benchIssuer,
		CacheSize: cacheSize, Derive: DeriveSession(benchKeys(b))})
	if err != nil {
		b.Fatal(err)
	}
	return VerifyWith(v)
}

// benchJWT returns an HS256 session token for sub, valid for an hour.
func benchJWT(b *testing.B, sub string) string {
	b.Helper()
	t, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": benchIssuer,
		"sub": sub,
		"iat": time.Now().Unix(),
		"exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(benchHMACSecret)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// sessionHandler returns echo serving GET /x with mw (if not nil) in front of
// a handler that answers 204.
func sessionHandler(b *testing.B, mw echo.MiddlewareFunc) http.Handler {
	b.Helper()
	e := echo.New()
	var mws []echo.MiddlewareFunc
	if mw != nil {
		mws = append(mws, mw)
	}
	e.GET("/x", func(ec echo.Context) error { return ec.NoContent(http.StatusNoContent) }, mws...)
	return e
}

func sessionMiddleware(b *testing.B, verify func(string) (auth.Session, error)) echo.MiddlewareFunc {
	b.Helper()
	mw, err := SessionConfig{Keys: benchKeys(b), Verify: verify}.ToMiddleware()
	if err != nil {
		b.Fatal(err)
	}
	return mw
}

// serveBench serves the requests that next returns until the benchmark is
// done, failing on any status but 204.
func serveBench(b *testing.B, h http.Handler, next func() *http.Request) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, next())
		if w.Code != http.StatusNoContent {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// constRequest returns a request carrying session and a request state, as
// requestLog would have given it, so that the middleware's cost is its own.
func constRequest(session string) func() *http.Request {
	r := withState(httptest.NewRequest(http.MethodGet, "/x", nil), &state{})
	if session != "" {
		r.Header.Set(DefaultSessionConfig.Header, session)
	}
	return func() *http.Request { return r }
}

func BenchmarkSessionNone(b *testing.B) {
	serveBench(b, sessionHandler(b, nil), constRequest(benchSession))
}

func BenchmarkSessionHeader(b *testing.B) {
	serveBench(b, sessionHandler(b, sessionMiddleware(b, nil)), constRequest(benchSession))
}

// BenchmarkSessionJWT is jwt mode's hot path: the same token every time, so
// the verifier answers from its cache.
func BenchmarkSessionJWT(b *testing.B) {
	serveBench(b, sessionHandler(b, sessionMiddleware(b, benchVerify(b, 0))), constRequest(benchJWT(b, "user-1")))
}

// BenchmarkSessionJWTUncached checks a signature on every request: the
// verifier remembers one token only, and the requests cycle through more.
func BenchmarkSessionJWTUncached(b *testing.B) {
	reqs := make([]*http.Request, 64)
	for i := range reqs {
		reqs[i] = constRequest(benchJWT(b, fmt.Sprintf("user-%d", i)))()
	}
	i := 0
	serveBench(b, sessionHandler(b, sessionMiddleware(b, benchVerify(b, 1))), func() *http.Request {
		i++
		return reqs[i%len(reqs)]
	})
}

// stubTokens hands every session the same token and never renews.
type stubTokens struct{}

var _ Tokens = (*stubTokens)(nil)

var stubToken = auth.Token{AccessToken: "bench-access-token", UserID: "bench-user"}

func (*stubTokens) Token(context.Context, auth.Session) (auth.Token, error) { return stubToken, nil }

func (*stubTokens) Renew(context.Context, auth.Session, auth.Token) (auth.Token, error) {
	return stubToken, nil
}

func (*stubTokens) Forget(context.Context, auth.Session) error { return nil }

func (*stubTokens) Invalidate(context.Context, auth.Session, auth.Token) error { return nil }

// stubLifecycle does nothing; the benchmark never calls the session endpoints.
type stubLifecycle struct{}

var _ Lifecycle = (*stubLifecycle)(nil)

func (*stubLifecycle) Logout(context.Context, auth.Session) error { return nil }
func (*stubLifecycle) Delete(context.Context, auth.Session) error { return nil }

// BenchmarkProxyEndToEnd sends a GET through a bare httputil.ReverseProxy
// (the baseline) and through finproxy's handler in header mode, both in
// front of the same loopback upstream with the same transport settings. The
// difference is finproxy's own per-request cost; "finproxy-header-log" adds
// the request log line (zerolog to io.Discard), which production writes.
func BenchmarkProxyEndToEnd(b *testing.B) {
	body := []byte(`{"accounts":[]}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	b.Cleanup(up.Close)
	target, err := url.Parse(up.URL)
	if err != nil {
		b.Fatal(err)
	}

	finproxy := func(log zerolog.Logger, lines *logbuf.Writer) http.Handler {
		transport := NewTransport(30 * time.Second)
		b.Cleanup(transport.CloseIdleConnections)
		h, err := New(Config{
			AccessURL:  target,
			Keys:       benchKeys(b),
			Tokens:     &stubTokens{},
			Lifecycle:  &stubLifecycle{},
			Transport:  transport,
			Log:        log,
			RequestLog: lines,
		})
		if err != nil {
			b.Fatal(err)
		}
		return h
	}
	bare := func() http.Handler {
		transport := NewTransport(30 * time.Second)
		b.Cleanup(transport.CloseIdleConnections)
		return &httputil.ReverseProxy{
			// A fixed Bearer, as finproxy injects one: the upstream
			// parses the same Authorization header in both.
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.SetXForwarded()
				pr.Out.Header.Set("Authorization", "Bearer "+stubToken.AccessToken)
			},
			Transport:  transport,
			BufferPool: CopyBuffers, // the same pool finproxy uses: a fair baseline
		}
	}

	for _, c := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", bare()},
		{"finproxy-header", finproxy(zerolog.Nop(), nil)},
		{"finproxy-header-log", finproxy(zerolog.New(io.Discard), nil)},
		// As production writes it: off the request path (logbuf), redacted,
		// the line of an answer without an error written directly.
		{"finproxy-header-prodlog", finproxy(prodLog(b))},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				// A fresh request each time, as from a connection.
				r := httptest.NewRequest(http.MethodGet, "/api/v2/accounts", nil)
				r.Header.Set(DefaultSessionConfig.Header, benchSession)
				w := httptest.NewRecorder()
				c.h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}

// prodLog is the log output main.go builds, to io.Discard, and the logger
// main.go writes to it with (Config.Log, Config.RequestLog).
func prodLog(b *testing.B) (zerolog.Logger, *logbuf.Writer) {
	w := logbuf.New(redact.NewWriter(io.Discard, "bench-client-secret", string(benchIdentitySecret)), 0)
	b.Cleanup(func() { w.Close() })
	return zerolog.New(w).With().Timestamp().Logger(), w
}
