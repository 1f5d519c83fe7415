package proxy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/finproxy/finproxy/finapi"
)

// RequestIDHeader carries the request id, kept from the caller or
// generated, sent to finAPI and returned to the caller.
const RequestIDHeader = "X-Request-Id"

// maxRequestIDLen is finAPI's limit for X-Request-Id.
const maxRequestIDLen = 255

// requestLog is the outermost middleware of the routes Echo serves (the
// session endpoints, the requests of browsers when CORS is on; the others
// take serveDirect, which does the same without Echo): it gives the
// request its state and id, answers errors through the error table, and
// writes one log line and one observation per request, also when the
// reverse proxy aborts a response midway (a panic with
// http.ErrAbortHandler, re-raised after).
func (s *server) requestLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		st, r := s.begin(ec.Response(), ec.Request())
		ec.SetRequest(r)
		if release := s.boundBody(r); release != nil {
			defer release()
		}
		defer func() {
			p := recover()
			res := ec.Response()
			s.finish(ec.Request(), st, res.Status, res.Size, res.Committed, res.Header(), p != nil)
			if p != nil {
				panic(p)
			}
		}()
		var err error
		if err = refusedMethod(r); err == nil {
			err = next(ec)
		}
		if err != nil {
			st.err = err
			ec.Error(err)
		}
		return nil
	}
}

// begin returns r with a new state in its context, and the state: the
// request id (the caller's or a new one), also set on the answer.
func (s *server) begin(w http.ResponseWriter, r *http.Request) (*state, *http.Request) {
	st := &state{start: time.Now(), requestID: requestID(r.Header.Get(RequestIDHeader))}
	// A slice of the state's own (capacity 1, so an Add copies): Set
	// would allocate one.
	st.headers[1] = st.requestID
	w.Header()[RequestIDHeader] = st.headers[1:2:2]
	return st, withState(r, st)
}

// boundBody bounds r's body, whatever answers it (BodyTimeout), and
// returns the function that closes it without waiting when the request is
// done; nil for a request without a body.
func (s *server) boundBody(r *http.Request) (release func()) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	body, release := s.bodies.wrap(r.Context(), r.Body)
	r.Body = body
	return release
}

// refusedMethod refuses CONNECT (also in authority form, which has no path
// to route) and TRACE, whatever the route: no finAPI service takes them, a
// CONNECT tunnel would pass every check, and TRACE echoes the caller's
// headers.
func refusedMethod(r *http.Request) error {
	if m := r.Method; m == http.MethodConnect || m == http.MethodTrace {
		return errMethodNotAllowed
	}
	return nil
}

// finish reports the request to the observer and writes its log line.
// status, size, committed and h are what was answered.
func (s *server) finish(r *http.Request, st *state, status int, size int64, committed bool, h http.Header, aborted bool) {
	d := time.Since(st.start)
	var scratch [24]byte // the duration's digits, on the stack: zerolog copies them
	if aborted && !committed {
		status = http.StatusInternalServerError // the connection is dropped unanswered
	}
	route := "-"
	if st.route != nil {
		route = st.route.prefix
	}
	if s.cfg.Observer != nil {
		s.cfg.Observer.Request(route, r.Method, status, d)
	}
	ev := s.cfg.Log.Info()
	if status >= 500 || aborted {
		ev = s.cfg.Log.Warn()
	}
	ev = ev.Str("request_id", st.requestID).
		Str("method", r.Method).
		Str("path", r.URL.Path).
		Int("status", status).
		RawJSON("duration_ms", millis(&scratch, d)).
		Str("route", route).
		Int64("bytes_in", max(r.ContentLength, 0)).
		Int64("bytes_out", size)
	if st.route != nil && st.token.AccessToken != "" {
		ev = ev.Str("upstream", st.route.target.Host)
	}
	if st.hasSession {
		ev = ev.Str("session", st.session.Short())
		if st.token.UserID != "" {
			ev = ev.Str("finapi_user", st.token.UserID)
		}
	}
	if st.finapiID != "" && st.finapiID != st.requestID {
		ev = ev.Str("finapi_request_id", st.finapiID)
	}
	if st.replayed {
		ev = ev.Bool("replayed", true)
	}
	if aborted {
		ev = ev.Bool("aborted", true)
	}
	// Only error answers carry a reason: no header lookup for the others.
	if reason := reasonOf(status, h); reason != "" {
		ev = ev.Str("error", reason)
		if status >= 500 {
			ev = ev.AnErr("cause", st.err) // auth and transport errors name no secret
		}
	}
	ev.Msg("request")
}

// reasonOf returns the reason of an error answer (ReasonHeader), "" for
// the others.
func reasonOf(status int, h http.Header) string {
	if status < 400 {
		return ""
	}
	if v := h[ReasonHeader]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// requestID keeps the caller's id if finAPI would accept it (up to 255
// printable ASCII characters), else makes a new one.
func requestID(in string) string {
	if in != "" && len(in) <= maxRequestIDLen {
		ok := true
		for i := 0; i < len(in); i++ {
			if in[i] < 0x21 || in[i] > 0x7e {
				ok = false
				break
			}
		}
		if ok {
			return in
		}
	}
	return finapi.NewRequestID()
}

// millis writes d as milliseconds with three decimals (microseconds) into
// buf: zerolog's Dur formats a float, a tenth of a request line's cost.
func millis(buf *[24]byte, d time.Duration) []byte {
	us := max(d.Microseconds(), 0)
	b := strconv.AppendInt(buf[:0], us/1000, 10)
	frac := us % 1000
	return append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}
