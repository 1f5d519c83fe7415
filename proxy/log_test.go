package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/finproxy/finproxy/auth"
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
}

// BenchmarkRequestLine builds the request line of an ordinary request both
// ways, into a discarding zerolog logger with the time stamp finproxy's
// has: field by field (requestFields, zerolog escaping every key and
// value; the only way before 2026-12-03) and in one buffer (requestLine).
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
}
