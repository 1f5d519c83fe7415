package test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/finproxy/finproxy/test/emulator"
)

// stalledRequest opens a raw connection to the proxy, sends the head of a
// request and the first part of its body, then stalls. It returns the
// connection, from which the answer can be read.
func stalledRequest(t *testing.T, p *proxyProc, s string, chunked bool) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p.mu.Lock()
	p.sessions = append(p.sessions, s)
	p.mu.Unlock()
	head := "POST /api/v2/bankConnections/import HTTP/1.1\r\nHost: finproxy\r\nX-Session-Id: " + s + "\r\nContent-Type: application/json\r\n"
	if chunked {
		head += "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"ban"
	} else {
		head += "Content-Length: 100\r\n\r\n{\"bankId\":"
	}
	if _, err := c.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	return c
}

// readAnswer reads the status line and headers the proxy answered on c,
// or the error (a closed connection) within d.
func readAnswer(c net.Conn, d time.Duration) (*http.Response, error) {
	c.SetReadDeadline(time.Now().Add(d))
	return http.ReadResponse(bufio.NewReader(c), nil)
}

// TestStalledBodyIsCutOff: a caller that sends the head of a request and
// then stalls its body, chunked or short of its Content-Length, is
// answered 408 body_timeout within FINPROXY_BODY_TIMEOUT, and the upstream
// request is aborted.
func TestStalledBodyIsCutOff(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	env := proxyEnv(f)
	env["FINPROXY_BODY_TIMEOUT"] = "2s"
	p := startProxy(t, f, env)
	p.waitReady()
	for _, chunked := range []bool{true, false} {
		name := map[bool]string{true: "chunked", false: "short Content-Length"}[chunked]
		t.Run(name, func(t *testing.T) {
			s := session(t, 1)
			p.do(request{path: "/api/v2/accounts", session: s}) // token cached: the body is read at once
			start := time.Now()
			c := stalledRequest(t, p, s, chunked)
			resp, err := readAnswer(c, 10*time.Second)
			d := time.Since(start)
			if err != nil {
				t.Fatalf("no answer to a stalled body after %v: %v", d, err)
			}
			t.Logf("%s body stalled: %d %s after %v", name, resp.StatusCode, resp.Header.Get("X-Finproxy-Error"), d.Round(time.Millisecond))
			if resp.StatusCode != 408 || resp.Header.Get("X-Finproxy-Error") != "body_timeout" {
				t.Errorf("answer %d %q, want 408 body_timeout", resp.StatusCode, resp.Header.Get("X-Finproxy-Error"))
			}
			if d < 1500*time.Millisecond || d > 5*time.Second {
				t.Errorf("answered after %v, want about the 2s body timeout", d)
			}
			// The connection is closed after the answer.
			resp.Body.Close()
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if n, err := c.Read(make([]byte, 1)); err == nil {
				t.Errorf("connection still open after the 408 (%d bytes more)", n)
			}
		})
	}
	// A request refused before its body is read (no session) is answered
	// at once, not after the stalled body.
	t.Run("refused before the body is read", func(t *testing.T) {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		c.Write([]byte("POST /api/v2/bankConnections/import HTTP/1.1\r\nHost: finproxy\r\nContent-Length: 100\r\n\r\n{\"bank"))
		resp, err := readAnswer(c, 10*time.Second)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		resp.Body.Close()
		if d := time.Since(start); resp.StatusCode != 401 || d > time.Second {
			t.Errorf("answer %d after %v, want 401 at once", resp.StatusCode, d)
		}
	})
	// The upstream never got a complete import: nothing was imported.
	if n := len(f.requestsTo("/api/v2/bankConnections/import")); n != 0 {
		t.Errorf("%d imports reached finAPI complete, want 0 (the upstream request is aborted)", n)
	}
}

// TestSIGTERMWithStalledBody: a stalled body does not hold the shutdown:
// SIGTERM right after exits 0 within a few seconds.
func TestSIGTERMWithStalledBody(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f)) // body timeout 30s, shutdown delay 0
	p.waitReady()
	s := session(t, 1)
	p.do(request{path: "/api/v2/accounts", session: s})
	stalledRequest(t, p, s, true)
	stalledRequest(t, p, s, false)
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("finproxy did not exit within 15s of SIGTERM with stalled bodies")
	}
	d := time.Since(start)
	t.Logf("SIGTERM with two stalled bodies: exit %d after %v", p.exitCode, d.Round(time.Millisecond))
	if p.exitCode != 0 {
		t.Errorf("exit status %d, want 0:\n%s", p.exitCode, p.out.String())
	}
	if d > 5*time.Second {
		t.Errorf("shutdown took %v, want a few seconds at most", d)
	}
}

// TestDrainUnderLoad: on SIGTERM /readyz answers 503 at once while the
// listener keeps serving FINPROXY_SHUTDOWN_DELAY; traffic that stops once
// readiness flipped (as a load balancer's would) sees no failed request,
// and the process exits 0.
func TestDrainUnderLoad(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	f.SetLatency("/api/v2/accounts", 100*time.Millisecond) // requests are in flight at any time
	env := proxyEnv(f)
	env["FINPROXY_SHUTDOWN_DELAY"] = "2s"
	p := startProxy(t, f, env)
	p.waitReady()
	for i := range 8 {
		p.do(request{path: "/api/v2/accounts", session: session(t, i)})
	}

	var flipped atomic.Bool
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	stopAt := time.Time{}
	var mu sync.Mutex
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				done := !stopAt.IsZero() && time.Now().After(stopAt)
				mu.Unlock()
				if done {
					return
				}
				resp, body, err := p.try(request{path: "/api/v2/accounts", session: session(t, w)})
				switch {
				case err != nil:
					failed.Add(1)
					t.Errorf("worker %d: %v", w, err)
				case resp.StatusCode != 200:
					failed.Add(1)
					t.Errorf("worker %d: %d %s", w, resp.StatusCode, body)
				default:
					ok.Add(1)
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	sigAt := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	eventually(t, time.Second, "/readyz answers 503 after SIGTERM", func() bool {
		code, _ := p.readyz()
		if code == 503 {
			flipped.Store(true)
		}
		return code == 503
	})
	flippedAfter := time.Since(sigAt)
	// The load balancer stops sending half a second after readiness
	// flipped, well within the shutdown delay.
	mu.Lock()
	stopAt = time.Now().Add(500 * time.Millisecond)
	mu.Unlock()
	wg.Wait()
	inFlightAtStop := ok.Load()
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatal("no exit within 20s of SIGTERM")
	}
	t.Logf("drain: readiness 503 after %v; %d requests answered 200 around SIGTERM, %d failed; exit %d after %v",
		flippedAfter.Round(time.Millisecond), inFlightAtStop, failed.Load(), p.exitCode, time.Since(sigAt).Round(time.Millisecond))
	if failed.Load() != 0 || p.exitCode != 0 {
		t.Errorf("%d failed requests, exit %d; want 0 and 0", failed.Load(), p.exitCode)
	}
	if took := time.Since(sigAt); took < 2*time.Second {
		t.Errorf("exited %v after SIGTERM, before the 2s shutdown delay", took)
	}
	if !strings.Contains(p.out.String(), "draining in-flight requests") {
		t.Errorf("no drain line in the log")
	}
}
