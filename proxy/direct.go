package proxy

import (
	"net/http"
	"slices"
	"strings"
)

// serveDirect serves a request to an upstream without Echo: the same layers
// as the Echo route "/*" (requestLog, resolve, edge, the session, the
// session limit, forward), called in turn instead of through Echo's
// context, router and response wrapper, which every proxied request paid
// for nothing. Requests Echo must see (the session endpoints, CORS) still
// go to it (New's dispatch).
func (s *server) serveDirect(w http.ResponseWriter, r *http.Request) {
	st, r := s.begin(w, r)
	rw := &st.w
	rw.reset(w)
	if release := s.boundBody(r); release != nil {
		defer release()
	}
	defer func() {
		p := recover()
		s.finish(r, st, rw.status, rw.size, rw.committed, rw.Header(), p != nil)
		if p != nil {
			panic(p)
		}
	}()
	err := refusedMethod(r)
	if err == nil {
		err = s.route(r, st)
	}
	if err == nil {
		err = s.checkEdge(rw, r, st)
	}
	if err == nil {
		err = s.session.identify(r, st)
	}
	if err == nil {
		err = s.limitSession(st)
	}
	if err == nil {
		err = s.forwardTo(rw, r, st)
	}
	if err != nil {
		st.err = err
		s.answer(rw, rw.committed, r, err)
	}
}

// direct reports whether r may take serveDirect: a request for an upstream
// (Echo routes /proxy and everything under /proxy/ itself, matching the
// path as it arrived, as Echo does), and, when CORS is on, one that is no
// CORS request (no Origin, not OPTIONS), which gets the Vary: Origin that
// Echo's CORS middleware would have added.
func (s *server) direct(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.RawPath
	if p == "" {
		p = r.URL.Path
	}
	if p == "/proxy" || strings.HasPrefix(p, "/proxy/") {
		return false
	}
	if s.cors {
		if r.Method == http.MethodOptions || r.Header.Get("Origin") != "" {
			return false
		}
		w.Header().Add("Vary", "Origin")
	}
	return true
}

// response is the http.ResponseWriter of serveDirect: it notes the status,
// the size and whether an answer began, for the log line and the error
// table, as echo.Response does on Echo's routes. It lives in the request's
// state (no allocation per request).
type response struct {
	http.ResponseWriter
	status    int
	size      int64
	committed bool
	// After an interim answer the reverse proxy clears the header map,
	// so the headers finproxy set before it began (the request id, Vary:
	// Origin) are noted at the first one and set again on the final.
	interim  bool
	keepID   string
	keepVary bool
}

// reset makes w write to rw, with the status net/http answers when nothing
// is written.
func (w *response) reset(rw http.ResponseWriter) {
	*w = response{ResponseWriter: rw, status: http.StatusOK}
}

// WriteHeader sends the status once. An interim (1xx) answer an upstream
// sent, such as 103 Early Hints, goes out without ending the header: the
// final status is still to come.
func (w *response) WriteHeader(code int) {
	if w.committed {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		if h := w.Header(); !w.interim {
			// Ours come first: set before the upstream's were added.
			w.interim = true
			if v := h[RequestIDHeader]; len(v) > 0 {
				w.keepID = v[0]
			}
			w.keepVary = slices.Contains(h["Vary"], "Origin")
		}
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.interim {
		h := w.Header()
		if w.keepID != "" {
			h[RequestIDHeader] = []string{w.keepID}
		}
		if w.keepVary && !slices.Contains(h["Vary"], "Origin") {
			h.Add("Vary", "Origin")
		}
	}
	w.status, w.committed = code, true
	w.ResponseWriter.WriteHeader(code)
}

func (w *response) Write(b []byte) (int, error) {
	if !w.committed {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.size += int64(n)
	return n, err
}

// FlushError flushes what was written (the reverse proxy flushes event
// streams and bodies of unknown length as they come).
func (w *response) FlushError() error {
	if !w.committed {
		w.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *response) Flush() { _ = w.FlushError() }

// Unwrap gives http.ResponseController the server's writer.
func (w *response) Unwrap() http.ResponseWriter { return w.ResponseWriter }
