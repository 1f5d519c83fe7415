package emulator

import (
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// A failure is one FailNext or AnswerNext instruction.
type failure struct {
	prefix    string
	status    int
	answer    *Answer // nil: the standard body for status
	remaining int
}

// Answer is a canned answer for AnswerNext: anything an upstream might send,
// nonsense included.
type Answer struct {
	// Status is the HTTP status. Required unless Reset.
	Status int
	// Header is added to the answer. Optional.
	Header http.Header
	// Body is sent as is. Optional.
	Body string
	// Reset, if set, answers nothing: the connection is closed with a
	// TCP reset (SO_LINGER 0) as soon as the request has arrived, as a
	// crashing load balancer or a dropped NAT entry does.
	Reset bool
}

// AnswerNext makes the next n requests whose path starts with pathPrefix, on
// either handler, get a without anything being done: for answers finAPI
// does not give (a 200 with garbage, a 429 with a Retry-After date). The
// requests are recorded but counted by no counter. It shares FailNext's
// queue of instructions.
func (e *Emulator) AnswerNext(pathPrefix string, a Answer, n int) {
	if n <= 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failures = append(e.failures, &failure{prefix: pathPrefix, status: a.Status, answer: &a, remaining: n})
}

// FailNext makes the next n requests whose path starts with pathPrefix, on
// either handler, answer status without doing anything: a BadCredentialsError
// for 401 (as finAPI answers 401s), otherwise an ErrorMessage whose code is
// UNEXPECTED_ERROR for 5xx, UNAUTHORIZED_ACCESS for 403, UNKNOWN_ENTITY for
// 404, LOCKED for 423 and BAD_REQUEST for anything else. The requests are
// recorded but counted by no counter. Instructions apply in the order given.
func (e *Emulator) FailNext(pathPrefix string, status int, n int) {
	if n <= 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failures = append(e.failures, &failure{prefix: pathPrefix, status: status, remaining: n})
}

// takeFailure consumes one matching FailNext or AnswerNext instruction, if
// any.
func (e *Emulator) takeFailure(path string) (*failure, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, f := range e.failures {
		if strings.HasPrefix(path, f.prefix) {
			f.remaining--
			if f.remaining == 0 {
				e.failures = append(e.failures[:i:i], e.failures[i+1:]...)
			}
			return f, true
		}
	}
	return nil, false
}

// SetLatency makes requests whose path starts with pathPrefix wait d before
// being handled; a request whose context ends first gets no answer. When
// several prefixes match, the longest wins. d = 0 removes the prefix.
func (e *Emulator) SetLatency(pathPrefix string, d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if d <= 0 {
		delete(e.latency, pathPrefix)
		return
	}
	e.latency[pathPrefix] = d
}

// latencyLocked returns the latency for path.
func (e *Emulator) latencyLocked(path string) time.Duration {
	best, d := -1, time.Duration(0)
	for prefix, l := range e.latency {
		if strings.HasPrefix(path, prefix) && len(prefix) > best {
			best, d = len(prefix), l
		}
	}
	return d
}

// RejectNextUserToken makes the next n calls to user endpoints (the data
// endpoints and GET, PATCH and DELETE /api/v2/users) that present a valid
// user token answer 401 as if the token had been revoked, and invalidates
// that access token, so the caller must get a new one (its refresh token
// stays valid). Calls with an already invalid token do not use up n.
func (e *Emulator) RejectNextUserToken(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rejectUser += n
}

// SetDown switches maintenance on or off: while down, the token endpoint
// answers 503 with an ErrorMessage (UNEXPECTED_ERROR); other endpoints work.
func (e *Emulator) SetDown(down bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.down = down
}

// RevokeAll invalidates every issued access and refresh token, the client's
// and the processes' included.
func (e *Emulator) RevokeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range e.tokens {
		e.revokeGrantLocked(t.grant)
	}
	for _, g := range e.refresh {
		e.revokeGrantLocked(g)
	}
}

// ClearFaults ends every FailNext, AnswerNext, SetLatency and SetDown
// instruction, keeping the counters, the recorded requests and the state
// (users, tokens, processes): a fault healed, as opposed to Reset.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failures = nil
	e.latency = map[string]time.Duration{}
	e.down = false
}

// write answers the instruction: its canned answer, or the standard one.
func (f *failure) write(e *Emulator, w http.ResponseWriter, r *http.Request) {
	if f.answer == nil {
		e.writeFault(w, r, f.status)
		return
	}
	if f.answer.Reset {
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			c.Close()
		}
		return
	}
	for k, vs := range f.answer.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(f.answer.Status)
	io.WriteString(w, f.answer.Body)
}
