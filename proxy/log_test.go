package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/finproxy/finproxy/auth"
	"github.com/finproxy/finproxy/logbuf"
)

// TestRequestLineAsZerolog: the request line built in one buffer is, byte
// for byte, what zerolog writes field by field, for every optional field
// and for strings that take the field-by-field path; each line is JSON.
func TestRequestLineAsZerolog(t *testing.T) {
	plainURL, _ := url.Parse("http://127.0.0.1:28183")
	oddURL := &url.URL{Scheme: "http", Host: `odd"host`}
	routes := []*route{nil, ptr(newRoute("/fast", plainURL)), ptr(newRoute(AccessRoute, oddURL))}
	if routes[2].logged.prefix != "" {
		t.Fatalf("a host with a quote was encoded once: %q", routes[2].logged.host)
	}
	sessions := []auth.Session{{}, {ID: strings.Repeat("c5", 32)}}
	fast := 0
	for i := range 600 {
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		pick := func(n int) int { return rng.IntN(n) }
		// Each string is plain four times in five, so that both paths
		// are taken often.
		oddly := func(plain string, odd ...string) string {
			if pick(5) == 0 {
				return odd[pick(len(odd))]
			}
			return plain
		}
		users := []string{"", oddly("fp-cdivjzvrxm5vqfflwyal3z2pqbkomd6d", "fp-\u00e4\"x")}
		st := &state{start: time.Now(), requestID: oddly("59a8b4326020b3e6612252890f1a0a57", `a"b`, `back\slash`)}
		st.route = routes[1]
		if pick(5) == 0 {
			st.route = routes[[]int{0, 2}[pick(2)]]
		}
		if s := sessions[pick(2)]; s.ID != "" {
			st.session, st.hasSession = s, true
		}
		st.token = auth.Token{UserID: users[pick(len(users))]}
		if pick(2) == 1 {
			st.token.AccessToken = "token"
		}
		switch pick(3) {
		case 1:
			st.finapiID = st.requestID
		case 2:
			st.finapiID = oddly("finapi-4f1c", "finapi-\x00")
		}
		st.replayed = pick(2) == 1
		aborted := pick(4) == 0
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Method = oddly([]string{"GET", "POST"}[pick(2)], "M\"X")
		r.URL.Path = oddly("/fast/api/v2/accounts", "/a b", "", "/caf\u00e9", "/q\"\\", "/\x01", "/\x7f")
		r.ContentLength = int64(pick(3) - 1)
		status := []int{200, 401, 502}[pick(3)]
		d := time.Duration(pick(1e9))

		var want, got bytes.Buffer
		wl, gl := zerolog.New(&want), zerolog.New(&got)
		requestFields(wl.Info(), r, st, status, 610, d, aborted).Msg("request")
		if err := json.Unmarshal(want.Bytes(), new(map[string]any)); err != nil {
			t.Fatalf("not JSON: %v: %s", err, want.String())
		}
		var buf [16]byte // small: long lines grow it
		line, ok := requestLine(buf[:0], r, st, status, 610, d, aborted)
		if !ok {
			continue
		}
		fast++
		gl.Info().RawJSON("request_id", line).Msg("request")
		if got.String() != want.String() {
			t.Fatalf("request line differs from zerolog's:\n got %s\nwant %s", got.String(), want.String())
		}
		// The whole line as directLog writes it, against zerolog's with
		// a timestamp (the times apart).
		var direct, stamped bytes.Buffer
		lb := logbuf.New(&direct, 0)
		(&directLog{out: lb}).write(append([]byte(directHead), line...))
		lb.Close()
		sl := zerolog.New(&stamped).With().Timestamp().Logger()
		sl.Info().RawJSON("request_id", line).Msg("request")
		if g, w := untimed(t, direct.String()), untimed(t, stamped.String()); g != w {
			t.Fatalf("direct line differs from zerolog's:\n got %s\nwant %s", g, w)
		}
		var v map[string]any
		if err := json.Unmarshal(got.Bytes(), &v); err != nil {
			t.Fatalf("not JSON: %v: %s", err, got.String())
		}
	}
	if fast < 100 || fast > 500 {
		t.Fatalf("%d of 600 lines took the one-buffer path: the cases do not cover both", fast)
	}
}

func ptr[T any](v T) *T { return &v }

// logTestServer is a handler logging to lb as main wires it, with direct
// lines or without, in front of a transport that answers at once.
func logTestServer(t *testing.T, lb *logbuf.Writer, direct bool) http.Handler {
	t.Helper()
	target, _ := url.Parse("http://upstream.invalid")
	c := Config{AccessURL: target, Keys: benchKeys(t), Tokens: &stubTokens{}, Lifecycle: &stubLifecycle{},
		Transport: cannedTransport{}, Log: zerolog.New(lb).With().Timestamp().Logger()}
	if direct {
		c.RequestLog = lb
	}
	h, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

var timeField = regexp.MustCompile(`"time":"([^"]*)"`)

// untimed returns a log line with its one time field's value blanked,
// after checking that it is an RFC 3339 time of the last minute.
func untimed(t *testing.T, line string) string {
	t.Helper()
	m := timeField.FindAllStringSubmatch(line, -1)
	if len(m) != 1 {
		t.Fatalf("%d time fields in %s", len(m), line)
	}
	at, err := time.Parse(time.RFC3339, m[0][1])
	if err != nil || time.Since(at) > time.Minute || time.Until(at) > time.Second {
		t.Fatalf("time %q is not RFC 3339 and now (%v): %s", m[0][1], err, line)
	}
	return timeField.ReplaceAllString(line, `"time":"-"`)
}

// TestDirectLogThroughHandler: a server with Config.RequestLog logs what
// one without it logs, line for line, byte for byte (durations and times
// apart), for answers without an error (direct lines), with one (a
// session missing, a route denied: through zerolog, with their error), and
// with a path that needs escaping (through zerolog field by field); and
// a direct line allocates no more than zerolog's.
func TestDirectLogThroughHandler(t *testing.T) {
	serve := func(direct bool) string {
		var out bytes.Buffer
		lb := logbuf.New(&out, 0)
		h := logTestServer(t, lb, direct)
		for i, req := range []struct{ path, session string }{
			{"/api/v2/accounts", benchSession},
			{"/api/v2/accounts/7", benchSession},
			{"/api/v2/accounts", ""},
			{"/api/v2/mandatorAdmin/getUserList", benchSession},
			{"/api/v2/caf\u00e9", benchSession},
		} {
			r := httptest.NewRequest(http.MethodGet, req.path, nil)
			r.Header.Set(RequestIDHeader, fmt.Sprintf("req-%d", i))
			if req.session != "" {
				r.Header.Set(DefaultSessionConfig.Header, req.session)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
		}
		lb.Close()
		return out.String()
	}
	durations := regexp.MustCompile(`"duration_ms":[0-9.]+`)
	normal := func(log string) []string {
		lines := strings.Split(strings.TrimSuffix(log, "\n"), "\n")
		for i, l := range lines {
			lines[i] = durations.ReplaceAllString(untimed(t, l), `"duration_ms":0`)
		}
		return lines
	}
	got, want := normal(serve(true)), normal(serve(false))
	if len(got) != 5 || len(want) != 5 {
		t.Fatalf("lines: %d direct, %d through zerolog; want 5 each:\n%s\n%s", len(got), len(want), strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	allocs := func(direct bool) float64 {
		lb := logbuf.New(io.Discard, 0)
		defer lb.Close()
		h := logTestServer(t, lb, direct)
		return testing.AllocsPerRun(200, func() {
			r := httptest.NewRequest(http.MethodGet, "/api/v2/accounts", nil)
			r.Header.Set(DefaultSessionConfig.Header, benchSession)
			h.ServeHTTP(httptest.NewRecorder(), r)
		})
	}
	if d, z := allocs(true), allocs(false); d > z {
		t.Errorf("a request with a direct line allocates %v times, through zerolog %v", d, z)
	}
	for i, wantError := range []bool{false, false, true, true, false} {
		if strings.Contains(got[i], `"error":`) != wantError {
			t.Errorf("line %d: an error field is %v, want %v: %s", i, !wantError, wantError, got[i])
		}
	}
}

// TestPlainJSON: the eight-bytes-at-a-time test agrees with a byte loop,
// for every byte value at every position of strings long enough to cross
// the word boundaries, and on random text.
func TestPlainJSON(t *testing.T) {
	ref := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
				return false
			}
		}
		return true
	}
	for n := 1; n <= 20; n++ {
		for pos := range n {
			for c := range 256 {
				b := bytes.Repeat([]byte{'a'}, n)
				b[pos] = byte(c)
				if got, want := plainJSON(string(b)), ref(string(b)); got != want {
					t.Fatalf("plainJSON(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(0x1e + rng.IntN(0x64)) // around every edge: 0x1e..0x81
		}
		if got, want := plainJSON(string(b)), ref(string(b)); got != want {
			t.Fatalf("plainJSON(%q) = %v, want %v", b, got, want)
		}
	}
	if !plainJSON("") {
		t.Fatal("the empty string needs no escaping")
	}
}

// TestRequestLineAllocatesNothing: the line of an ordinary request is
// built on the stack.
func TestRequestLineAllocatesNothing(t *testing.T) {
	target, _ := url.Parse("http://127.0.0.1:28183")
	rt := newRoute("/fast", target)
	st := &state{start: time.Now(), requestID: "59a8b4326020b3e6612252890f1a0a57", route: &rt, hasSession: true,
		session: auth.Session{ID: strings.Repeat("c5", 32)},
		token:   auth.Token{AccessToken: "x", UserID: "fp-cdivjzvrxm5vqfflwyal3z2pqbkomd6d"}, err: errors.New("x")}
	r := httptest.NewRequest(http.MethodGet, "/fast/api/v2/accounts", nil)
	var out bytes.Buffer
	s := &server{cfg: Config{Log: zerolog.New(&out)}}
	h := http.Header{}
	s.finish(r, st, 200, 610, true, h, false) // the buffer grows once
	if n := testing.AllocsPerRun(100, func() {
		out.Reset()
		s.finish(r, st, 200, 610, true, h, false)
	}); n != 0 {
		t.Fatalf("%v allocations per request line", n)
	}
	// A direct line too (its buffer on the stack). Two rounds of lines
	// first, so that both of logbuf's buffers have grown.
	lb := logbuf.New(io.Discard, 0)
	defer lb.Close()
	s = &server{cfg: Config{Log: zerolog.New(lb).With().Timestamp().Logger(), RequestLog: lb}, lines: newDirectLog(lb)}
	for range 2 {
		for range 400 {
			s.finish(r, st, 200, 610, true, h, false)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := testing.AllocsPerRun(100, func() {
		s.finish(r, st, 200, 610, true, h, false)
	}); n != 0 {
		t.Fatalf("%v allocations per direct request line", n)
	}
}

// BenchmarkRequestLine builds the request line of an ordinary request both
// ways, into a discarding zerolog logger with the time stamp finproxy's
// has: field by field (requestFields, zerolog escaping every key and
// value; the only way before 2026-12-03) and in one buffer (requestLine);
// then the whole of finish both ways: through zerolog, and directLog's.
func BenchmarkRequestLine(b *testing.B) {
	target, _ := url.Parse("http://127.0.0.1:28183")
	rt := newRoute("/fast", target)
	st := &state{start: time.Now(), requestID: "59a8b4326020b3e6612252890f1a0a57", route: &rt, hasSession: true,
		session: auth.Session{ID: strings.Repeat("c5", 32)},
		token:   auth.Token{AccessToken: "x", UserID: "fp-cdivjzvrxm5vqfflwyal3z2pqbkomd6d"}}
	r := httptest.NewRequest(http.MethodGet, "/fast/api/v2/accounts", nil)
	log := zerolog.New(io.Discard).With().Timestamp().Logger()
	d := 2080 * time.Microsecond
	b.Run("fields", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			requestFields(log.Info(), r, st, 200, 610, d, false).Msg("request")
		}
	})
	b.Run("buffer", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var buf [384]byte
			line, _ := requestLine(buf[:0], r, st, 200, 610, d, false)
			log.Info().RawJSON("request_id", line).Msg("request")
		}
	})
	// The whole of finish (without metrics), into logbuf as finproxy
	// writes: the line through zerolog, and written directly (directLog).
	lb := logbuf.New(io.Discard, 0)
	defer lb.Close()
	h := http.Header{}
	for _, direct := range []bool{false, true} {
		s := &server{cfg: Config{Log: zerolog.New(lb).With().Timestamp().Logger()}}
		name := "finish-zerolog"
		if direct {
			s.cfg.RequestLog, s.lines, name = lb, newDirectLog(lb), "finish-direct"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.finish(r, st, 200, 610, true, h, false)
			}
		})
	}
}
