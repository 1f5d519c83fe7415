package test

import (
	"context"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/finproxy/finproxy/test/emulator"
)

// privateRedis is a redis-server of the test's own on a free loopback
// port, which the test may kill, freeze and restart.
type privateRedis struct {
	t    *testing.T
	addr string
	cmd  *exec.Cmd
}

func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	r := &privateRedis{t: t, addr: freeAddr(t)}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *privateRedis) url() string { return "redis://" + r.addr + "/0" }

// start runs redis-server (empty, nothing on disk) and waits until it
// answers.
func (r *privateRedis) start() {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.addr)
	r.cmd = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("redis-server: %v (scripts/ensure-redis.sh installs it)", err)
	}
	eventually(r.t, 5*time.Second, "redis-server answers", func() bool {
		c := redis.NewClient(&redis.Options{Addr: r.addr})
		defer c.Close()
		return c.Ping(context.Background()).Err() == nil
	})
}

// kill stops the server for good (a frozen one is resumed first).
func (r *privateRedis) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGCONT)
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.cmd = nil
}

func (r *privateRedis) freeze() { r.cmd.Process.Signal(syscall.SIGSTOP) }
func (r *privateRedis) thaw()   { r.cmd.Process.Signal(syscall.SIGCONT) }

// readyz returns /readyz's status and body.
func (p *proxyProc) readyz() (int, string) {
	resp, err := http.Get("http://" + p.admin + "/readyz")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

// timed sends r and returns the status and how long the answer took.
func (p *proxyProc) timed(r request) (int, time.Duration) {
	start := time.Now()
	resp, _, err := p.try(r)
	d := time.Since(start)
	if err != nil {
		p.t.Errorf("%s: %v", r.path, err)
		return 0, d
	}
	return resp.StatusCode, d
}

// TestRedisFrozen freezes Redis with SIGSTOP (as a failover, a fork stall
// or a partition does; a frozen Redis accepts connections and never
// answers, unlike a dead one): cached sessions are answered within a
// second, new sessions within two, the outage is logged once at each edge,
// readiness stays 200 and says degraded, and after SIGCONT everything
// recovers without a second finAPI user for any session.
func TestRedisFrozen(t *testing.T) {
	rs := startPrivateRedis(t)
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, redisEnv(t, f, proxyEnv(f), rs.url()))
	p.waitReady()
	cached := session(t, 0)
	if code, _ := p.timed(request{path: "/api/v2/accounts", session: cached}); code != 200 {
		t.Fatalf("warm-up: %d", code)
	}

	rs.freeze()
	time.Sleep(2500 * time.Millisecond) // the 2 s L1 copy ages
	var worstCached, worstNew time.Duration
	fresh := []string{}
	for i := range 12 {
		code, d := p.timed(request{path: "/api/v2/accounts", session: cached})
		if code != 200 {
			t.Errorf("cached session with Redis frozen: %d", code)
		}
		worstCached = max(worstCached, d)
		s := session(t, 100+i)
		fresh = append(fresh, s)
		code, d = p.timed(request{path: "/api/v2/accounts", session: s})
		if code != 200 {
			t.Errorf("new session with Redis frozen: %d", code)
		}
		worstNew = max(worstNew, d)
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("Redis frozen for ~6 s: slowest cached-session answer %v, slowest new-session answer %v",
		worstCached.Round(time.Millisecond), worstNew.Round(time.Millisecond))
	if worstCached > time.Second {
		t.Errorf("a cached session took %v with Redis frozen, want < 1s", worstCached)
	}
	if worstNew > 2*time.Second {
		t.Errorf("a new session took %v with Redis frozen, want < 2s", worstNew)
	}
	if code, body := p.readyz(); code != 200 || !strings.Contains(body, "degraded") {
		t.Errorf("/readyz with Redis frozen: %d %s, want 200 and degraded", code, body)
	}

	rs.thaw()
	eventually(t, 10*time.Second, "the outage's end logged", func() bool {
		return countLines(p.out.String(), "redis answering again") == 1
	})
	if n := countLines(p.out.String(), "redis failing"); n != 1 {
		t.Errorf("outage start logged %d times, want once", n)
	}
	if code, body := p.readyz(); code != 200 || strings.Contains(body, "degraded") {
		t.Errorf("/readyz after the outage: %d %s", code, body)
	}
	before := f.Count(emulator.CounterUsersCreate)
	for _, s := range append(fresh, cached) {
		if code, _ := p.timed(request{path: "/api/v2/accounts", session: s}); code != 200 {
			t.Errorf("after the outage: %d", code)
		}
	}
	// A second replica reaches the same users: none is created twice.
	p2 := startProxy(t, f, redisEnv(t, f, proxyEnv(f), rs.url()))
	p2.waitReady()
	for _, s := range append(fresh, cached) {
		if code, _ := p2.timed(request{path: "/api/v2/accounts", session: s}); code != 200 {
			t.Errorf("second replica after the outage: %d", code)
		}
	}
	if n := f.Count(emulator.CounterUsersCreate); n != before || n != len(fresh)+1 {
		t.Errorf("finAPI users created: %d (before the recovery %d), want %d: one per session", n, before, len(fresh)+1)
	}
}
