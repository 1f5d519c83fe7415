package proxy

import (
	"context"
	"net/http"
	"time"

	"github.com/finproxy/finproxy/auth"
)

// state is what finproxy learns about one request on its way through the
// middleware, the forwarder and the transport. It lives in the request's
// context, created once by the outermost middleware.
type state struct {
	start     time.Time
	requestID string

	session    auth.Session
	hasSession bool

	route    *route
	upstream string // escaped path sent upstream

	token auth.Token // the token injected; replaced by a replay
	// body holds a request body buffered for a replay after a 401; nil
	// when the body is not replayable.
	body      []byte
	replayed  bool
	finapiID  string // X-Request-Id finAPI echoed
	forgetRun bool   // the session's tokens were forgotten after the call
}

type stateKey struct{}

// withState returns r with a fresh state in its context.
func withState(r *http.Request, st *state) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
}

// stateOf returns r's state; every request through the server has one.
func stateOf(r *http.Request) *state {
	st, _ := r.Context().Value(stateKey{}).(*state)
	if st == nil {
		st = &state{}
	}
	return st
}
