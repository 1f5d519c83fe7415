package proxy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/finproxy/finproxy/finapi"
	"github.com/finproxy/finproxy/logbuf"
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
	warn := status >= 500 || aborted
	// Only error answers carry a reason: no header lookup for the others.
	reason := reasonOf(status, h)
	var buf [512]byte // the line, on the stack: zerolog and logbuf copy it
	if s.lines != nil && !warn && reason == "" && s.lines.enabled(s.cfg.Log) {
		if line, ok := requestLine(append(buf[:0], directHead...), r, st, status, size, d, aborted); ok {
			s.lines.write(line)
			return
		}
	}
	ev := s.cfg.Log.Info()
	if warn {
		ev = s.cfg.Log.Warn()
	}
	if ev == nil {
		return // below the log level
	}
	if line, ok := requestLine(buf[:0], r, st, status, size, d, aborted); ok {
		ev = ev.RawJSON("request_id", line)
	} else {
		ev = requestFields(ev, r, st, status, size, d, aborted)
	}
	if reason != "" {
		ev = ev.Str("error", reason)
		if status >= 500 {
			ev = ev.AnErr("cause", st.err) // auth and transport errors name no secret
		}
	}
	ev.Msg("request")
}

// directLog writes the line of a request answered without an error
// without zerolog's event, which costs a pool round trip, a hook call and
// a copy of the fields per line: the level, the fields (requestLine), the
// time and the message go into one buffer on the stack, written in one
// call, byte for byte as Config.Log would write them
// (TestRequestLineAsZerolog, TestDirectLogThroughHandler). Only with
// zerolog's default field names and time format, which finproxy never
// changes.
type directLog struct {
	out *logbuf.Writer
}

// The line around requestLine's fields, as zerolog writes an info line
// with a timestamp: {"level":"info","request_id":…,"time":"…","message":"request"}.
const (
	directHead = `{"level":"info","request_id":`
	directTime = `,"time":"`
	directTail = `","message":"request"}` + "\n"
)

// newDirectLog returns nil (every line through Log) without out, or when
// zerolog's globals are not the defaults directHead and directTail spell.
func newDirectLog(out *logbuf.Writer) *directLog {
	if out == nil || zerolog.TimeFieldFormat != time.RFC3339 || zerolog.LevelFieldName != "level" ||
		zerolog.TimestampFieldName != "time" || zerolog.MessageFieldName != "message" ||
		zerolog.LevelFieldMarshalFunc(zerolog.InfoLevel) != "info" {
		return nil
	}
	return &directLog{out: out}
}

// enabled reports whether log writes info lines (Config.RequestLog: its
// writer is the direct log's, and it samples nothing).
func (*directLog) enabled(log zerolog.Logger) bool {
	return log.GetLevel() <= zerolog.InfoLevel && zerolog.GlobalLevel() <= zerolog.InfoLevel
}

// write ends line (directHead and the fields) with the time and the
// message, and writes it.
func (d *directLog) write(line []byte) {
	line = zerolog.TimestampFunc().AppendFormat(append(line, directTime...), time.RFC3339)
	d.out.Write(append(line, directTail...))
}

// requestFields adds the request line's fields to ev one by one, each
// string escaped by zerolog: the line of a request whose strings need it.
func requestFields(ev *zerolog.Event, r *http.Request, st *state, status int, size int64, d time.Duration, aborted bool) *zerolog.Event {
	var scratch [24]byte // the duration's digits, on the stack: zerolog copies them
	route := "-"
	if st.route != nil {
		route = st.route.prefix
	}
	ev = ev.Str("request_id", st.requestID).
		Str("method", r.Method).
		Str("path", r.URL.Path).
		Int("status", status).
		RawJSON("duration_ms", appendMillis(scratch[:0], d)).
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
	return ev
}

// requestLine appends to dst the fields requestFields adds, byte for byte
// as zerolog writes them, from the value of request_id on; false when one
// of its strings would need escaping. The line under load is most of
// finproxy's logging: its field names and the route's strings are copied
// instead of scanned byte by byte for escapes as zerolog scans every key
// and value, and the rest is checked eight bytes at a time. The result is
// given to zerolog as the raw value of its first field, so that the
// logger's level, hooks, time stamp and output (the redaction guard
// included) stay as for every other line.
func requestLine(dst []byte, r *http.Request, st *state, status int, size int64, d time.Duration, aborted bool) ([]byte, bool) {
	logRoute, logHost := `"-"`, ""
	if st.route != nil {
		logRoute, logHost = st.route.logged.prefix, st.route.logged.host
		if logRoute == "" {
			return dst, false
		}
	}
	user := ""
	if st.hasSession {
		user = st.token.UserID
	}
	finapiID := st.finapiID
	if finapiID == st.requestID {
		finapiID = ""
	}
	if !plainJSON(st.requestID) || !plainJSON(r.Method) || !plainJSON(r.URL.Path) || !plainJSON(user) || !plainJSON(finapiID) {
		return dst, false
	}
	dst = appendQuoted(dst, st.requestID)
	dst = appendQuoted(append(dst, `,"method":`...), r.Method)
	dst = appendQuoted(append(dst, `,"path":`...), r.URL.Path)
	dst = strconv.AppendInt(append(dst, `,"status":`...), int64(status), 10)
	dst = appendMillis(append(dst, `,"duration_ms":`...), d)
	dst = append(append(dst, `,"route":`...), logRoute...)
	dst = strconv.AppendInt(append(dst, `,"bytes_in":`...), max(r.ContentLength, 0), 10)
	dst = strconv.AppendInt(append(dst, `,"bytes_out":`...), size, 10)
	if st.route != nil && st.token.AccessToken != "" {
		dst = append(append(dst, `,"upstream":`...), logHost...)
	}
	if st.hasSession {
		dst = appendQuoted(append(dst, `,"session":`...), st.session.Short()) // hex
		if user != "" {
			dst = appendQuoted(append(dst, `,"finapi_user":`...), user)
		}
	}
	if finapiID != "" {
		dst = appendQuoted(append(dst, `,"finapi_request_id":`...), finapiID)
	}
	if st.replayed {
		dst = append(dst, `,"replayed":true`...)
	}
	if aborted {
		dst = append(dst, `,"aborted":true`...)
	}
	return dst, true
}

const ones, highs = 0x0101010101010101, 0x8080808080808080

// zeroByte has a high bit set if a byte of v is zero (and never if none
// is).
func zeroByte(v uint64) uint64 { return (v - ones) &^ v & highs }

func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// plainJSON reports whether s goes into a JSON string as it is, as
// zerolog writes strings: printable ASCII (0x20 to 0x7e) without '"' or
// '\\'. Eight bytes at a time: a byte is out of place if it is below
// 0x20, has its high bit set, or is '"', '\\' or 0x7f (each test exact
// as a whole: any byte that fails it sets a high bit).
func plainJSON(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		below := (x - 0x20*ones) &^ x & highs
		if below|x&highs|zeroByte(x^0x22*ones)|zeroByte(x^0x5c*ones)|zeroByte(x^0x7f*ones) != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
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

// appendMillis appends d as milliseconds with three decimals
// (microseconds): zerolog's Dur formats a float, a tenth of a request
// line's cost.
func appendMillis(dst []byte, d time.Duration) []byte {
	us := max(d.Microseconds(), 0)
	dst = strconv.AppendInt(dst, us/1000, 10)
	frac := us % 1000
	return append(dst, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}
