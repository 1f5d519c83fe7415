package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/finproxy/finproxy/auth"
	"github.com/finproxy/finproxy/finapi"
)

// Tokens gives sessions their finAPI tokens (auth.Sessions).
type Tokens interface {
	Token(ctx context.Context, s auth.Session) (auth.Token, error)
	Renew(ctx context.Context, s auth.Session, stale auth.Token) (auth.Token, error)
	// Invalidate forgets the session's token if it is still stale.
	Invalidate(ctx context.Context, s auth.Session, stale auth.Token) error
	Forget(ctx context.Context, s auth.Session) error
}

// NewTransport returns the shared transport toward finAPI, tuned for a busy
// proxy: a large keep-alive pool per host and bounded dial, TLS and
// response-header waits. timeout bounds the wait for response headers.
func NewTransport(timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
}

// CopyBuffers recycles the 32 KiB buffers ReverseProxy copies bodies
// through; without a pool it allocates one per request, most of the
// allocation and GC work of a busy proxy.
var CopyBuffers httputil.BufferPool = &bufferPool{pool: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}

const copyBufferSize = 32 << 10

// bufferPool pools array pointers, which sync.Pool holds without an
// allocation (a slice would be boxed on every Put).
type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte { return p.pool.Get().(*[copyBufferSize]byte)[:] }

func (p *bufferPool) Put(b []byte) {
	if cap(b) >= copyBufferSize {
		p.pool.Put((*[copyBufferSize]byte)(b[:copyBufferSize]))
	}
}

// forwarder sends a request, whose session already holds a token, to its
// upstream, and replays it once with a fresh token when finAPI answers 401.
type forwarder struct {
	rp        *httputil.ReverseProxy
	base      http.RoundTripper
	tokens    Tokens
	header    string // the session header (canonical), stripped
	processes bool   // process mode without resumable processes: a 401 means the process expired
	audit     auth.Audit
	// onRetry, if not nil, is called for every replay after a 401.
	onRetry func()
}

func newForwarder(base http.RoundTripper, tokens Tokens, header string, processes bool, audit auth.Audit, errorLog *log.Logger) *forwarder {
	f := &forwarder{base: base, tokens: tokens, header: http.CanonicalHeaderKey(header), processes: processes, audit: audit}
	f.rp = &httputil.ReverseProxy{
		Rewrite:        f.rewrite,
		Transport:      roundTripperFunc(f.roundTrip),
		ModifyResponse: f.modifyResponse,
		ErrorHandler:   f.errorHandler,
		ErrorLog:       errorLog,
		BufferPool:     CopyBuffers,
		// FlushInterval 0: ReverseProxy flushes at once for event
		// streams and bodies of unknown length, and buffers the rest.
	}
	return f
}

// rewrite builds the outgoing request: the upstream's URL with the
// remaining path and the query as they arrived, and header hygiene.
// Hop-by-hop headers and inbound X-Forwarded-* are already removed.
func (f *forwarder) rewrite(pr *httputil.ProxyRequest) {
	st := stateOf(pr.In)
	t := st.route.target
	out := pr.Out
	out.URL.Scheme, out.URL.Host = t.Scheme, t.Host
	out.URL.Path, out.URL.RawPath = st.outPath, st.outRawPath
	out.URL.RawQuery = pr.In.URL.RawQuery
	out.Host = ""

	h := out.Header
	for name := range h {
		if f.stripped(name) {
			delete(h, name)
		}
	}
	// The values live in the request's state (each a full slice, so an
	// Add elsewhere copies instead of writing into it): h.Set would
	// allocate a slice per header on every request.
	set := func(i int, name, v string) {
		if v != "" {
			st.headers[i] = v
			h[name] = st.headers[i : i+1 : i+1]
		}
	}
	set(0, "Authorization", "Bearer "+st.token.AccessToken)
	set(1, RequestIDHeader, st.requestID)
	set(2, "X-Forwarded-For", st.clientIP) // finproxy's, not the caller's chain
	set(3, psuIPHeader, st.psuIP)
	set(4, psuUserAgentHeader, st.psuUserAgent)
	h["X-Forwarded-Proto"] = protoHTTP
	if pr.In.TLS != nil {
		h["X-Forwarded-Proto"] = protoHTTPS
	}
}

// stripped reports whether the caller's header name never reaches an
// upstream: the session header and strippedHeaders. One pass over the
// request's headers, each compared with the few stripped names of its
// length, is cheaper than a map delete (which hashes) for each of the 18
// names: 130 against 430 ns for two headers, 600 against 750 for ten.
func (f *forwarder) stripped(name string) bool {
	return name == f.header || len(name) < len(strippedByLen) && slices.Contains(strippedByLen[len(name)], name)
}

// strippedByLen holds strippedHeaders by their length (all below 32).
var strippedByLen = func() (t [32][]string) {
	for _, name := range strippedHeaders {
		t[len(name)] = append(t[len(name)], name)
	}
	return t
}()

// X-Forwarded-Proto's values, shared by every request (read only;
// capacity 1, so an Add copies).
var protoHTTP, protoHTTPS = []string{"http"}, []string{"https"}

// strippedHeaders never reach an upstream from the caller (canonical
// forms, so deleting them costs no canonicalisation). Authorization and
// Cookie are the caller's credentials; ReasonHeader is finproxy's own. The
// rest are headers a proxy or framework in front of an upstream may
// believe: a path override (X-Original-URL, X-Rewrite-URL: past route
// denial), a base path or host for the URLs it builds (X-Forwarded-Prefix,
// X-Forwarded-Host, which ReverseProxy would set from the caller's Host:
// cache poisoning, links to another host), a client address
// (X-Real-Ip: X-Forwarded-For and PSU-IP-Address carry finproxy's). Expect
// goes too: net/http already answered the caller's 100-continue when the
// body was read, and an upstream's 100 would reach the caller as a second
// one and be logged as the status.
//
// Every key must be canonical (TestStrippedHeadersAreCanonical).
var strippedHeaders = []string{
	"Authorization", "Cookie", ReasonHeader, "Expect",
	"X-Original-Url", "X-Rewrite-Url", "X-Forwarded-Prefix", "X-Forwarded-Host",
	"X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Scheme", "X-Forwarded-Ssl",
	"X-Host", "X-Http-Host-Override", "X-Real-Ip", psuIPHeader, psuUserAgentHeader,
}

// joinPath appends the escaped remainder to the target's path. It returns
// the decoded path and the escaped one; net/url sends the escaped form when
// it encodes the decoded one, so encoded paths reach the upstream exactly.
func joinPath(t *url.URL, escaped string) (path, rawPath string) {
	esc := t.EscapedPath() + escaped
	p, err := url.PathUnescape(esc)
	if err != nil {
		return esc, ""
	}
	return p, esc
}

// renewCooldown is how young a token, itself obtained after a 401, is
// that a further 401 does not renew: an upstream that refuses every token
// (a Data Intelligence service the client is not enabled for) would
// otherwise cost a renewal per request. So a session renews at most once
// per cool-down on 401s; the others go back to the caller.
const renewCooldown = 5 * time.Second

func (f *forwarder) roundTrip(req *http.Request) (*http.Response, error) {
	st := stateOf(req)
	resp, err := f.base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	ctx := req.Context()
	if f.processes {
		drain(resp)
		_ = f.tokens.Invalidate(ctx, st.session, st.token)
		return nil, finapi.ErrProcessExpired
	}
	if st.token.After401 && time.Since(st.token.Issued) < renewCooldown {
		return resp, nil // renewed after a 401 moments ago: again would not help
	}
	if st.body == nil && req.ContentLength != 0 {
		// Not replayable: the 401 goes back, and the next request of
		// the session gets a fresh token.
		s, stale := st.session, st.token
		go func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			_, _ = f.tokens.Renew(rctx, s, stale)
		}()
		return resp, nil
	}
	drain(resp)
	t, err := f.tokens.Renew(ctx, st.session, st.token)
	if err != nil {
		return nil, err
	}
	st.token, st.replayed = t, true
	if f.onRetry != nil {
		f.onRetry()
	}
	retry := req.Clone(ctx)
	retry.Header.Set("Authorization", "Bearer "+t.AccessToken)
	if st.body != nil {
		retry.Body = io.NopCloser(bytes.NewReader(st.body))
	} else {
		retry.Body = http.NoBody
	}
	return f.base.RoundTrip(retry)
}

// modifyResponse notes finAPI's request id and forgets the session's tokens
// after the user deleted itself.
func (f *forwarder) modifyResponse(resp *http.Response) error {
	st := stateOf(resp.Request)
	st.finapiID = resp.Header.Get(RequestIDHeader)
	resp.Header.Del(RequestIDHeader) // ours is set already; finAPI echoes it
	if st.route.prefix == AccessRoute && resp.StatusCode/100 == 2 &&
		effectiveMethod(resp.Request) == http.MethodDelete && trimSlash(st.upstream) == "/api/v2/users" {
		if u, ok := f.tokens.(interface {
			Unbind(context.Context, auth.Session)
		}); ok {
			u.Unbind(resp.Request.Context(), st.session) // an adopted user is gone too
		}
		_ = f.tokens.Forget(resp.Request.Context(), st.session)
		f.audit.Record(resp.Request.Context(), auth.EventUserDeleted, st.session, st.token.UserID)
	}
	return nil
}

// errorHandler answers a failed forward through the error table; an error
// that is neither finproxy's nor a timeout means the upstream is unreachable.
func (f *forwarder) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	st := stateOf(r)
	st.err = err
	var ae *finapi.Error
	switch {
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The caller went away; nobody reads an answer.
		w.WriteHeader(499)
		return
	case isBodyTooLarge(err):
		err = errBodyTooLarge
	case isBodyTimeout(err):
		err = errBodyTimeout
	case errors.Is(err, finapi.ErrProcessExpired), errors.As(err, &ae), isTimeout(err):
		// classify knows these.
	default:
		err = errors.Join(errUpstreamDown, err)
	}
	writeError(w, r, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
