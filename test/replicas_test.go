package test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/finproxy/finproxy/test/emulator"
)

// testRedisURL is the shared Redis of the replica tests (database 14).
func testRedisURL() string {
	if u := os.Getenv("FINPROXY_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/14"
}

// redisClient connects to url and fails the test if Redis does not answer:
// CI starts one (scripts/ensure-redis.sh), so a missing Redis is a failure,
// not a skip.
func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("these tests need Redis at %s (run scripts/ensure-redis.sh): %v", url, err)
	}
	return c
}

// redisEnv returns the environment of a replica sharing Redis under a key
// prefix of the test's own; Cleanup scans every key and value the test left
// for raw sessions and plaintext tokens, then deletes them.
func redisEnv(t *testing.T, f *finapi, base map[string]string, url string) map[string]string {
	t.Helper()
	c := redisClient(t, url)
	prefix := fmt.Sprintf("finproxy-e2e:%s:%d:", t.Name(), time.Now().UnixNano())
	env := map[string]string{}
	for k, v := range base {
		env[k] = v
	}
	env["FINPROXY_STORE"] = "redis"
	env["FINPROXY_REDIS_URL"] = url
	env["FINPROXY_REDIS_PREFIX"] = prefix
	t.Cleanup(func() {
		ctx := context.Background()
		keys, err := c.Keys(ctx, prefix+"*").Result()
		if err != nil {
			return // the outage test's server is gone
		}
		secrets := append(f.secrets(), clientSecret, identitySecret)
		for _, k := range keys {
			v, _ := c.Get(ctx, k).Result()
			ttl, _ := c.PTTL(ctx, k).Result()
			if ttl <= 0 {
				t.Errorf("key %s has no TTL", k)
			}
			for _, s := range secrets {
				if len(s) >= 6 && (strings.Contains(k, s) || strings.Contains(v, s)) {
					t.Errorf("Redis key %s holds a secret in plaintext (%.3q…)", k, s)
				}
			}
			if strings.Contains(k, "s-"+strings.ReplaceAll(t.Name(), "/", "")) || strings.Contains(v, "0123456789") {
				t.Errorf("Redis key %s holds a raw session", k)
			}
		}
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return env
}

// replicas starts n proxies sharing one Redis.
func replicas(t *testing.T, f *finapi, env map[string]string, n int) []*proxyProc {
	ps := make([]*proxyProc, n)
	for i := range ps {
		ps[i] = startProxy(t, f, env)
	}
	for _, p := range ps {
		p.waitReady()
	}
	return ps
}

// spread sends n concurrent first requests of one session round-robin over
// the replicas; every one must succeed.
func spread(t *testing.T, ps []*proxyProc, s string, n int) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body, err := ps[i%len(ps)].try(request{path: "/api/v2/accounts", session: s})
			if err != nil || resp.StatusCode != 200 {
				t.Errorf("request %d via replica %d: %v %v %s", i, i%len(ps), err, resp, body)
			}
		}()
	}
	wg.Wait()
}

func TestReplicasCreateOneProcess(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	f.SetLatency("/api/v1/processes", 50*time.Millisecond) // widen the race window
	ps := replicas(t, f, redisEnv(t, f, processEnv(f), testRedisURL()), 3)
	spread(t, ps, session(t, 1), 60)
	t.Logf("60 concurrent first requests over 3 replicas: %d processes, %d exchanges", f.Processes(), f.Count(emulator.CounterProcessExchange))
	if f.Processes() != 1 {
		t.Errorf("processes = %d, want exactly 1 across replicas", f.Processes())
	}
}

func TestReplicasShareUsersAndTokens(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	f.SetLatency("/api/v2/users", 50*time.Millisecond)
	ps := replicas(t, f, redisEnv(t, f, proxyEnv(f), testRedisURL()), 3)
	spread(t, ps, session(t, 1), 60)
	created, grants := f.Count(emulator.CounterUsersCreate), f.Count(emulator.CounterPassword)
	t.Logf("60 concurrent first requests over 3 replicas: %d user creations, %d password grants", created, grants)
	if created != 1 || grants != 1 {
		t.Errorf("user creations = %d, password grants = %d; want 1 and 1", created, grants)
	}

	// A session first seen by replica 0 is served by replica 1 without
	// any token call.
	s := session(t, 2)
	if resp, body := ps[0].do(request{path: "/api/v2/accounts", session: s}); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	f.Reset()
	if resp, body := ps[1].do(request{path: "/api/v2/bankConnections", session: s}); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	for _, c := range []string{emulator.CounterUsersCreate, emulator.CounterUsersCreateExists, emulator.CounterPassword, emulator.CounterRefreshToken, emulator.CounterClientCredentials} {
		if n := f.Count(c); n != 0 {
			t.Errorf("replica 1 made %d %s calls for a session replica 0 holds", n, c)
		}
	}
}

func TestLogoutHonouredByOtherReplicas(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	ps := replicas(t, f, redisEnv(t, f, proxyEnv(f), testRedisURL()), 2)
	s := session(t, 1)
	for _, p := range ps { // both replicas hold the token in their L1
		if resp, body := p.do(request{path: "/api/v2/accounts", session: s}); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	if resp, body := ps[0].do(request{method: "POST", path: "/proxy/v1/session/logout", session: s}); resp.StatusCode != 204 {
		t.Fatalf("logout: %d %s", resp.StatusCode, body)
	}
	f.Reset()
	time.Sleep(500 * time.Millisecond) // pub/sub delivery on loopback, with room for a loaded CI machine
	if resp, body := ps[1].do(request{path: "/api/v2/accounts", session: s}); resp.StatusCode != 200 {
		t.Fatalf("after logout on replica 0: %d %s", resp.StatusCode, body)
	}
	if n := f.Count(emulator.CounterUnauthorized); n != 0 {
		t.Errorf("replica 1 sent the revoked token %d times after replica 0's logout", n)
	}
	if n := f.Count(emulator.CounterPassword); n != 1 {
		t.Errorf("password grants after logout = %d, want 1 (a fresh login)", n)
	}
}

func TestTamperedRedisEntryIsRejected(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	env := redisEnv(t, f, proxyEnv(f), testRedisURL())
	c := redisClient(t, testRedisURL())
	p1 := startProxy(t, f, env)
	s := session(t, 1)
	p1.do(request{path: "/api/v2/accounts", session: s})

	keys, err := c.Keys(context.Background(), env["FINPROXY_REDIS_PREFIX"]+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("no token in Redis: %v", err)
	}
	for _, k := range keys {
		v, err := c.Get(context.Background(), k).Bytes()
		if err != nil {
			continue // a lock, gone already
		}
		v[len(v)/2] ^= 0x01
		c.Set(context.Background(), k, v, time.Minute)
	}
	// A replica that has no L1 copy must not trust the tampered value.
	f.Reset()
	p2 := startProxy(t, f, env)
	if resp, body := p2.do(request{path: "/api/v2/accounts", session: s}); resp.StatusCode != 200 {
		t.Fatalf("after tampering: %d %s", resp.StatusCode, body)
	}
	if n := f.Count(emulator.CounterPassword); n != 1 {
		t.Errorf("password grants = %d, want 1: the tampered entry must count as a miss", n)
	}
	if n := f.Count(emulator.CounterUnauthorized); n != 0 {
		t.Errorf("a tampered token reached finAPI")
	}
}

// TestRedisOutage stops a Redis of its own mid-traffic: sessions held in L1
// keep working, new sessions still work without the store, readiness says
// the store is gone, and everything recovers when Redis is back.
func TestRedisOutage(t *testing.T) {
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	startRedis := func() *exec.Cmd {
		cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		if err := cmd.Start(); err != nil {
			t.Fatalf("redis-server: %v (scripts/ensure-redis.sh installs it)", err)
		}
		url := "redis://" + addr + "/0"
		eventually(t, 5*time.Second, "redis-server answers", func() bool {
			opt, _ := redis.ParseURL(url)
			c := redis.NewClient(opt)
			defer c.Close()
			return c.Ping(context.Background()).Err() == nil
		})
		return cmd
	}
	srv := startRedis()
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })

	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, redisEnv(t, f, proxyEnv(f), "redis://"+addr+"/0"))
	p.waitReady()
	cached := session(t, 0)
	if resp, body := p.do(request{path: "/api/v2/accounts", session: cached}); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}

	srv.Process.Kill()
	srv.Wait()
	for i := range 20 {
		if resp, body := p.do(request{path: "/api/v2/accounts", session: cached}); resp.StatusCode != 200 {
			t.Errorf("cached session with Redis down (%d): %d %s", i, resp.StatusCode, body)
		}
	}
	fresh := session(t, 1)
	for i := range 3 {
		if resp, body := p.do(request{path: "/api/v2/accounts", session: fresh}); resp.StatusCode != 200 {
			t.Errorf("new session with Redis down (%d): %d %s", i, resp.StatusCode, body)
		}
	}
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + p.admin + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Ready stays 200 (one shared Redis down must not take every replica
	// out of the Service), with the outage in its JSON.
	if code, body := readyz(); code != 200 || !strings.Contains(body, `"degraded":["token store unreachable`) {
		t.Errorf("/readyz with the store unreachable = %d %s, want 200 and degraded", code, body)
	}
	if n := countLines(p.out.String(), "redis failing"); n != 1 {
		t.Errorf("store failure logged %d times, want once", n)
	}

	srv = startRedis()
	eventually(t, 10*time.Second, "no longer degraded once Redis is back", func() bool {
		code, body := readyz()
		return code == 200 && !strings.Contains(body, "degraded")
	})
	if resp, body := p.do(request{path: "/api/v2/accounts", session: session(t, 2)}); resp.StatusCode != 200 {
		t.Errorf("new session after Redis came back: %d %s", resp.StatusCode, body)
	}
}
