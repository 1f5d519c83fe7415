package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// These tests assert counts and orderings, never rates or latency bounds
// that a busy machine could break: the one latency assertion (queueing)
// can only fail if time ran faster than the handler's sleep.

func runOpen(t *testing.T, args ...string) (summary, string, error) {
	t.Helper()
	var out bytes.Buffer
	s, err := open(append([]string{"-warmup", "0"}, args...), &out)
	t.Log(strings.TrimSpace(out.String()))
	if len(s) == 0 {
		return summary{}, out.String(), err
	}
	return s[0], out.String(), err
}

// server starts a loopback test server that counts the connections it
// accepts.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	s := httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s, &conns
}

func TestEveryRequestArrivesWithItsSession(t *testing.T) {
	for _, tc := range []struct{ header, prefix string }{
		{"X-Session-Id", ""},
		{"Authorization", "Bearer "},
	} {
		t.Run(tc.header, func(t *testing.T) {
			var mu sync.Mutex
			seen := map[string]int{}
			s, conns := server(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.RequestURI() != "/api/v2/accounts?x=1" || r.Method != http.MethodGet {
					http.Error(w, "wrong request "+r.Method+" "+r.URL.RequestURI(), http.StatusBadRequest)
					return
				}
				mu.Lock()
				seen[r.Header.Get(tc.header)]++
				mu.Unlock()
				w.Write([]byte(`{"accounts":[]}`))
			})
			const n, sessions = 200, 7
			got, out, err := runOpen(t, "-url", s.URL+"/api/v2/accounts?x=1", "-rate", "1000", "-duration", "200ms",
				"-conns", "4", "-sessions", fmt.Sprint(sessions), "-prefix", "s-", "-header", tc.header)
			if err != nil {
				t.Fatal(err)
			}
			if got.answered != n || got.ok != n || got.failed != 0 || got.dropped != 0 {
				t.Errorf("answered %d ok %d failed %d dropped %d, want %d answered and ok", got.answered, got.ok, got.failed, got.dropped, n)
			}
			want := map[string]int{}
			for i := range n {
				want[fmt.Sprintf("%ss-%06d", tc.prefix, i%sessions)]++
			}
			mu.Lock()
			defer mu.Unlock()
			if fmt.Sprint(seen) != fmt.Sprint(want) {
				t.Errorf("sessions seen %v, want %v", seen, want)
			}
			if c := conns.Load(); c != 4 {
				t.Errorf("%d connections, want 4 kept alive", c)
			}
			if !strings.Contains(out, fmt.Sprintf("RESULT answered=%d ok=%d failed=0 dropped=0 seconds=", n, n)) ||
				!strings.Contains(out, " p50=") || !strings.Contains(out, " p999=") || !strings.Contains(out, " max=") {
				t.Errorf("no RESULT line with the keys bench-proxy.sh reads: %s", out)
			}
			if !strings.Contains(out, "max lag ") {
				t.Errorf("human line without max lag: %s", out)
			}
		})
	}
}

func TestBodies(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 40<<10/16) // beyond the 16 KiB read buffer
	for name, h := range map[string]http.HandlerFunc{
		"content-length": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			w.Write(big)
		},
		"chunked": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Checksum")
			w.Write([]byte("first part"))
			w.(http.Flusher).Flush() // no Content-Length any more: chunked
			w.Write(big)
			w.(http.Flusher).Flush()
			w.Write([]byte("last part"))
			w.Header().Set("X-Checksum", "42")
		},
		"empty": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		},
	} {
		t.Run(name, func(t *testing.T) {
			var chunked atomic.Int64
			s, conns := server(t, func(w http.ResponseWriter, r *http.Request) {
				h(w, r)
				if name == "chunked" {
					chunked.Add(1)
				}
			})
			const n = 100
			got, _, err := runOpen(t, "-url", s.URL+"/x", "-rate", "500", "-duration", "200ms", "-conns", "2", "-sessions", "3")
			if err != nil {
				t.Fatal(err)
			}
			if got.ok != n || got.failed != 0 || got.dropped != 0 {
				t.Errorf("ok %d failed %d %v dropped %d, want %d ok", got.ok, got.failed, got.byStatus, got.dropped, n)
			}
			// Two connections for all: each body was read to its exact end,
			// or the next response on the connection would not have parsed.
			if c := conns.Load(); c != 2 {
				t.Errorf("%d connections, want 2 kept alive", c)
			}
		})
	}
}

func TestConnectionCloseRedials(t *testing.T) {
	s, conns := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.Write([]byte("bye"))
	})
	const n = 50
	got, _, err := runOpen(t, "-url", s.URL+"/x", "-rate", "250", "-duration", "200ms", "-conns", "2")
	if err != nil {
		t.Fatal(err)
	}
	if got.ok != n || got.failed != 0 || got.dropped != 0 {
		t.Errorf("ok %d failed %d %v dropped %d, want %d ok", got.ok, got.failed, got.byStatus, got.dropped, n)
	}
	if c := conns.Load(); c != n {
		t.Errorf("%d connections, want one per request (%d)", c, n)
	}
}

func TestLatencyCountsFromDueTime(t *testing.T) {
	const sleep = 50 * time.Millisecond
	s, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(sleep)
	})
	// 100/s on one connection to a target taking 50 ms: requests queue
	// behind each other, and those still unsent a second after the last
	// was due are dropped.
	const n = 50
	got, _, err := runOpen(t, "-url", s.URL+"/x", "-rate", "100", "-duration", "500ms", "-conns", "1")
	if err != nil {
		t.Fatal(err)
	}
	if got.p99 < 2*float64(sleep.Milliseconds()) {
		t.Errorf("p99 %.2f ms, want at least %v: latency must count from the due time", got.p99, 2*sleep)
	}
	if got.answered+int(got.dropped) != n || got.answered == 0 || got.dropped == 0 {
		t.Errorf("answered %d + dropped %d, want %d, some of each", got.answered, got.dropped, n)
	}
}

// With -compare the two targets take turns of -slice, url first, then
// compare twice, url twice, …, each sending its own full schedule, and the
// added latency printed is the difference of the two sides' figures.
func TestCompareTakesTurns(t *testing.T) {
	const sleep = 5 * time.Millisecond
	var mu sync.Mutex
	var order []string // which target answered, in the order of arrival
	handler := func(name string, d time.Duration) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			time.Sleep(d)
		}
	}
	a, _ := server(t, handler("a", 0))
	b, _ := server(t, handler("b", sleep))
	var out bytes.Buffer
	got, err := open([]string{"-warmup", "0", "-url", a.URL + "/x", "-compare", b.URL + "/x",
		"-rate", "200", "-duration", "300ms", "-slice", "100ms", "-conns", "4"}, &out)
	t.Log(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ok != 60 || got[1].ok != 60 || got[0].dropped+got[1].dropped != 0 {
		t.Fatalf("%+v, want 60 answered on each side", got)
	}
	// Turns a, b, b, a, a, b of 20 requests each: runs of 20, 40, 40, 20.
	var runs []string
	for i, name := range order {
		if i == 0 || name != order[i-1] {
			runs = append(runs, name)
		}
		runs[len(runs)-1] += "."
	}
	want := "a" + strings.Repeat(".", 20) + " b" + strings.Repeat(".", 40) + " a" + strings.Repeat(".", 40) + " b" + strings.Repeat(".", 20)
	if strings.Join(runs, " ") != want {
		t.Errorf("arrivals by target: %s, want a×20 b×40 a×40 b×20", strings.Join(runs, " "))
	}
	if got[1].p50 < float64(sleep.Milliseconds()) {
		t.Errorf("compare side's p50 %.2f ms, below its handler's %v", got[1].p50, sleep)
	}
	var d50, d99 float64
	i := strings.Index(out.String(), "\nADDED ")
	if i < 0 {
		t.Fatal("no ADDED line")
	}
	if _, err := fmt.Sscanf(out.String()[i+1:], "ADDED p50=%f p99=%f", &d50, &d99); err != nil {
		t.Fatalf("ADDED line: %v", err)
	}
	if math.Abs(d50-(got[1].p50-got[0].p50)) > 0.001 || math.Abs(d99-(got[1].p99-got[0].p99)) > 0.001 {
		t.Errorf("ADDED p50=%.3f p99=%.3f, want the sides' differences %.3f and %.3f", d50, d99, got[1].p50-got[0].p50, got[1].p99-got[0].p99)
	}
	// Each side's RESULT line: its own figures, all three turns' time.
	for k, side := range []string{"url", "compare"} {
		var answered, ok, failed, dropped int
		var seconds, p50 float64
		line := out.String()[max(0, strings.Index(out.String(), "RESULT side="+side+" ")):]
		if _, err := fmt.Sscanf(line, "RESULT side="+side+" answered=%d ok=%d failed=%d dropped=%d seconds=%f p50=%f",
			&answered, &ok, &failed, &dropped, &seconds, &p50); err != nil {
			t.Errorf("RESULT line of side %s: %v", side, err)
			continue
		}
		if answered != 60 || seconds < 0.25 {
			t.Errorf("side %s: %d answered in %.3f s, want 60 in three turns of about 0.1 s", side, answered, seconds)
		}
		if math.Abs(p50-got[k].p50) > 0.001 {
			t.Errorf("side %s's line: p50 %.3f ms, its figures %.3f ms", side, p50, got[k].p50)
		}
	}
	if _, err := open([]string{"-url", a.URL, "-compare", b.URL, "-rate", "5", "-slice", "100ms"}, io.Discard); err == nil {
		t.Error("-compare with turns shorter than one request: no error")
	}
}

func TestRefusesOtherTargets(t *testing.T) {
	for _, u := range []string{"http://192.0.2.1/x", "http://10.0.0.1:8080/x"} {
		if _, _, err := runOpen(t, "-url", u, "-duration", "100ms"); err == nil || !strings.Contains(err.Error(), "not a loopback") {
			t.Errorf("%s: %v, want refused as not loopback", u, err)
		}
	}
	if _, _, err := runOpen(t, "-url", "https://127.0.0.1:1/x", "-duration", "100ms"); err == nil || !strings.Contains(err.Error(), "only http") {
		t.Errorf("https: %v, want refused", err)
	}
}

func TestNon2xxCountAsFailed(t *testing.T) {
	s, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("X-Session-Id") {
		case "s-000001":
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		case "s-000002":
			http.NotFound(w, r)
		}
	})
	got, out, err := runOpen(t, "-url", s.URL+"/x", "-rate", "600", "-duration", "150ms", "-conns", "3", "-sessions", "3", "-prefix", "s-")
	if err != nil {
		t.Fatal(err)
	}
	if got.ok != 30 || got.failed != 60 || got.byStatus[503] != 30 || got.byStatus[404] != 30 || got.answered != 90 {
		t.Errorf("ok %d failed %d %v answered %d, want 30 ok, 30×503, 30×404", got.ok, got.failed, got.byStatus, got.answered)
	}
	if !strings.Contains(out, "[404×30 503×30]") {
		t.Errorf("human line without the failures by status: %s", out)
	}
}

func TestGivesUpRedialling(t *testing.T) {
	var once sync.Once
	var s *httptest.Server
	s, _ = server(t, func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { s.Listener.Close() }) // no new connections from now on
		w.Header().Set("Connection", "close")
	})
	got, out, err := runOpen(t, "-url", s.URL+"/x", "-rate", "100", "-duration", "500ms", "-conns", "1")
	if err == nil || !strings.Contains(err.Error(), "gave up") || !strings.Contains(out, "gave up") {
		t.Errorf("%v, want an error saying the connection gave up", err)
	}
	if got.ok != 1 || got.byStatus[0] != maxDialFails || got.dropped != 50-1-maxDialFails {
		t.Errorf("ok %d, transport errors %d, dropped %d; want 1, %d, %d", got.ok, got.byStatus[0], got.dropped, maxDialFails, 50-1-maxDialFails)
	}
}

// A stream of pipelined responses of every framing readResponse knows,
// ending with a body delimited by the end of the connection.
// The read buffer is smaller than some lines (an overlong header is skipped)
// and than some bodies.
var stream = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Long: " + strings.Repeat("x", 200) + "\r\nContent-Type: text/plain\r\n\r\nhello" +
	"HTTP/1.1 100 Continue\r\n\r\n" +
	"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n0123456789\r\n46\r\n" + strings.Repeat("y", 70) + "\r\n0\r\nX-Trailer: t\r\n\r\n" +
	"HTTP/1.1 204 No Content\r\n\r\n" +
	"HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\nconnection: keep-alive\r\n\r\nnot" +
	"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n" +
	"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno" +
	"HTTP/1.0 200 OK\r\n\r\nto the end"

func TestReadResponse(t *testing.T) {
	br := bufio.NewReaderSize(strings.NewReader(stream), 48)
	for i, want := range []struct {
		status int
		keep   bool
	}{{200, true}, {201, true}, {204, true}, {404, true}, {200, true}, {503, false}, {200, false}} {
		status, keep, err := readResponse(br)
		if err != nil || status != want.status || keep != want.keep {
			t.Fatalf("response %d: %d keep %v err %v, want %d keep %v", i, status, keep, err, want.status, want.keep)
		}
	}
	if _, _, err := readResponse(br); err == nil {
		t.Error("read past the end")
	}
	for _, bad := range []string{"HTTP/1.1 2x0 OK\r\n\r\n", "SSH-2.0\r\n", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"} {
		if _, _, err := readResponse(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestReadResponseAllocatesNothing(t *testing.T) {
	const one = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" +
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
	src := strings.NewReader(one)
	br := bufio.NewReaderSize(src, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		src.Reset(one)
		br.Reset(src)
		for range 2 {
			if _, _, err := readResponse(br); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per two responses, want none", allocs)
	}
}
