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

// requestLog is the outermost middleware: it gives the request its state
// and id, answers errors through the error table, and writes one log line
// and one observation per request, also when the reverse proxy aborts a
// response midway (a panic with http.ErrAbortHandler, re-raised after).
func (s *server) requestLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		st := &state{start: time.Now(), requestID: requestID(ec.Request().Header.Get(RequestIDHeader))}
		ec.SetRequest(withState(ec.Request(), st))
		ec.Response().Header().Set(RequestIDHeader, st.requestID)
		// Every request body, whatever answers it, is bounded
		// (BodyTimeout), and is closed without waiting when the request
		// is done.
		if r := ec.Request(); r.Body != nil && r.Body != http.NoBody {
			body, release := s.bodies.wrap(r.Context(), r.Body)
			r.Body = body
			defer release()
		}
		defer func() {
			p := recover()
			s.finish(ec, st, p != nil)
			if p != nil {
				panic(p)
			}
		}()
		// CONNECT (also in authority form, which has no path to route)
		// and TRACE are refused whatever the route: no finAPI service
		// takes them, a CONNECT tunnel would pass every check, and
		// TRACE echoes the caller's headers. (Here rather than as a
		// middleware of its own: Echo wraps those anew per request.)
		var err error
		if m := ec.Request().Method; m == http.MethodConnect || m == http.MethodTrace {
			err = errMethodNotAllowed
		} else {
			err = next(ec)
		}
		if err != nil {
			st.err = err
			ec.Error(err)
		}
		return nil
	}
}

// finish reports the request to the observer and writes its log line.
func (s *server) finish(ec echo.Context, st *state, aborted bool) {
	r, res := ec.Request(), ec.Response()
	d := time.Since(st.start)
	status := res.Status
	if aborted && !res.Committed {
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
		RawJSON("duration_ms", millis(&st.scratch, d)).
		Str("route", route).
		Int64("bytes_in", max(r.ContentLength, 0)).
		Int64("bytes_out", res.Size)
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
	if reason := res.Header().Get(ReasonHeader); reason != "" {
		ev = ev.Str("error", reason)
		if status >= 500 {
			ev = ev.AnErr("cause", st.err) // auth and transport errors name no secret
		}
	}
	ev.Msg("request")
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
