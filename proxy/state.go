package proxy

import (
	"context"
	"net/http"
	"time"

	"github.com/finproxy/finproxy/auth"
	"github.com/finproxy/finproxy/finapi"
)

// state is what finproxy learns about one request on its way through the
// middleware, the forwarder and the transport. It lives in the request's
// context, created once by the outermost middleware.
type state struct {
	ctx       stateContext // the request's context node (withState)
	w         response     // the answer's writer on serveDirect's path
	start     time.Time
	requestID string

	session    auth.Session
	hasSession bool

	clientIP string
	// psuIP and psuUserAgent are the PSU headers sent upstream.
	psuIP, psuUserAgent string
	// headers backs the values rewrite sets, so that setting them
	// allocates nothing (see rewrite).
	headers [5]string

	route    *route
	upstream string // escaped path after the route's prefix
	// outPath and outRawPath are the path sent upstream (the route URL's
	// path joined with upstream), decoded and escaped.
	outPath, outRawPath string

	token auth.Token // the token injected; replaced by a replay
	// body holds a request body buffered for a replay after a 401; nil
	// when the body is not replayable.
	body     []byte
	replayed bool
	finapiID string // X-Request-Id finAPI echoed
	err      error  // why forwarding failed, for the log line
}

type stateKey struct{}

// withState returns r with st in its context, and st's request id for
// finAPI calls and audit events made on its behalf. The context node lives
// in st itself: one allocation (the request copy) instead of three.
func withState(r *http.Request, st *state) *http.Request {
	st.ctx = stateContext{Context: r.Context(), st: st}
	return r.WithContext(&st.ctx)
}

// stateContext is the context node carrying a request's state, and its
// request id under finapi's key.
type stateContext struct {
	context.Context
	st *state
}

func (c *stateContext) Value(key any) any {
	if _, ok := key.(stateKey); ok {
		return c.st
	}
	if finapi.IsRequestIDKey(key) {
		return c.st.requestID
	}
	return c.Context.Value(key)
}

// stateOf returns r's state; every request through the server has one.
func stateOf(r *http.Request) *state {
	st, _ := r.Context().Value(stateKey{}).(*state)
	if st == nil {
		st = &state{}
	}
	return st
}
