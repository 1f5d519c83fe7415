package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/finproxy/finproxy/auth"
	"github.com/finproxy/finproxy/logbuf"
)

// cannedTransport answers every request at once with a small JSON body,
// without a network: what is left of a request's cost is the proxy's own.
type cannedTransport struct{}

func (cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{
		StatusCode:    http.StatusOK,
		Header:        http.Header{"Content-Type": {"application/json"}, "Content-Length": {"15"}},
		Body:          io.NopCloser(strings.NewReader(`{"accounts":[]}`)),
		ContentLength: 15,
		Request:       r,
	}, nil
}

// BenchmarkProxyOverhead is BenchmarkProxyEndToEnd without the network: the
// bare engine and finproxy's handler in front of a transport that answers
// at once, so that ns/op is CPU the proxy itself spends, the difference
// finproxy's own.
func BenchmarkProxyOverhead(b *testing.B) {
	target, _ := url.Parse("http://upstream.invalid")
	bare := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			pr.Out.Header["Authorization"] = []string{"Bearer " + stubToken.AccessToken}
		},
		Transport:  cannedTransport{},
		BufferPool: CopyBuffers,
	}
	finproxy := func(log zerolog.Logger, lines *logbuf.Writer, verify func(string) (auth.Session, error)) http.Handler {
		h, err := New(Config{AccessURL: target, Keys: benchKeys(b), Tokens: &stubTokens{}, Lifecycle: &stubLifecycle{},
			Transport: cannedTransport{}, Log: log, RequestLog: lines, SessionRate: 1e9, SessionBurst: 1e9, VerifyJWT: verify})
		if err != nil {
			b.Fatal(err)
		}
		return h
	}
	jwt := benchJWT(b, "user-1")
	log, lines := prodLog(b)
	jlog, jlines := prodLog(b)
	for _, c := range []struct {
		name    string
		h       http.Handler
		session string
	}{
		{"bare", bare, benchSession},
		{"finproxy-nolog", finproxy(zerolog.Nop(), nil, nil), benchSession},
		// As production writes it: off the request path (logbuf), redacted,
		// the line of an answer without an error written directly.
		{"finproxy-prodlog", finproxy(log, lines, nil), benchSession},
		{"finproxy-jwt-prodlog", finproxy(jlog, jlines, benchVerify(b, 0)), jwt},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodGet, "/api/v2/accounts", nil)
				r.Header.Set(DefaultSessionConfig.Header, c.session)
				r.Header.Set("User-Agent", "wrk")
				w := httptest.NewRecorder()
				c.h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
