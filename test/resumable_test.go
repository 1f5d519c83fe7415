package test

import (
	"context"
	"strings"
	"testing"

	"github.com/finproxy/finproxy/test/emulator"
)

func resumableEnv(f *finapi) map[string]string {
	env := processEnv(f)
	env["FINPROXY_PROCESS_RESUMABLE"] = "true"
	return env
}

// exchangeQueries returns the query of every exchange of a process token.
func (f *finapi) exchangeQueries() []string {
	var out []string
	for _, r := range f.requestsTo("/api/v1/processes/") {
		out = append(out, r.RawQuery)
	}
	return out
}

// processTokens returns every process token finproxy was handed, the
// secrets of resumable processes.
func (f *finapi) processTokens() []string {
	var out []string
	for _, r := range f.requestsTo("/api/v1/processes/") {
		out = append(out, strings.TrimPrefix(r.Path, "/api/v1/processes/"))
	}
	return out
}

// checkNoProcessToken fails if a process token shows in any output.
func checkNoProcessToken(t *testing.T, f *finapi, outputs ...string) {
	t.Helper()
	for _, pt := range f.processTokens() {
		for _, out := range outputs {
			if strings.Contains(out, pt) {
				t.Errorf("a process token shows in plaintext (%.4q…)", pt)
			}
		}
	}
}

// TestResumableProcessExchangesAgainAfter401: with
// FINPROXY_PROCESS_RESUMABLE a refused access token is replaced by another
// exchange of the same process, and the call replayed.
func TestResumableProcessExchangesAgainAfter401(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, resumableEnv(f))
	s := session(t, 1)
	if resp, body := p.do(request{path: "/api/v2/accounts", session: s}); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	f.RejectNextUserToken(1)
	resp, body := p.do(request{path: "/api/v2/accounts", session: s})
	if resp.StatusCode != 200 {
		t.Fatalf("after a refused token: %d %s, want the replay's 200", resp.StatusCode, body)
	}
	if f.Processes() != 1 || f.Count(emulator.CounterProcessExchange) != 2 {
		t.Errorf("processes %d, exchanges %d; want 1 process exchanged twice", f.Processes(), f.Count(emulator.CounterProcessExchange))
	}
	if q := f.exchangeQueries(); len(q) != 2 || q[0] != "invalidate=false" || q[1] != "invalidate=false" {
		t.Errorf("exchanges sent %q, want invalidate=false twice", q)
	}
	checkNoProcessToken(t, f, p.out.String())
}

// TestResumableProcessAcrossReplicasAndRestart: with Redis, another
// replica and a restarted one resume the process a session has, rather
// than creating one; the process token is stored sealed.
func TestResumableProcessAcrossReplicasAndRestart(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	url := testRedisURL()
	env := redisEnv(t, f, resumableEnv(f), url)
	ps := replicas(t, f, env, 2)
	s1, s2 := session(t, 1), session(t, 2)
	for _, s := range []string{s1, s2} {
		if resp, body := ps[0].do(request{path: "/api/v2/accounts", session: s}); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	if f.Processes() != 2 {
		t.Fatalf("processes = %d, want 2", f.Processes())
	}

	// The second replica: the token of s1 is refused there.
	f.RejectNextUserToken(1)
	if resp, body := ps[1].do(request{path: "/api/v2/accounts", session: s1}); resp.StatusCode != 200 {
		t.Fatalf("second replica: %d %s", resp.StatusCode, body)
	}
	if f.Processes() != 2 || f.Count(emulator.CounterProcessExchange) != 3 {
		t.Errorf("second replica: processes %d, exchanges %d; want 2 and 3", f.Processes(), f.Count(emulator.CounterProcessExchange))
	}

	// A restart of both: the replica after it resumes s2's process.
	outs := []string{ps[0].out.String(), ps[1].out.String()}
	for _, p := range ps {
		p.stop()
	}
	after := startProxy(t, f, env)
	after.waitReady()
	f.RejectNextUserToken(1)
	if resp, body := after.do(request{path: "/api/v2/accounts", session: s2}); resp.StatusCode != 200 {
		t.Fatalf("after the restart: %d %s", resp.StatusCode, body)
	}
	if f.Processes() != 2 || f.Count(emulator.CounterProcessExchange) != 4 {
		t.Errorf("after the restart: processes %d, exchanges %d; want 2 and 4", f.Processes(), f.Count(emulator.CounterProcessExchange))
	}

	// Sealed: no process token in any output, key or value.
	c := redisClient(t, url)
	ctx := context.Background()
	keys, err := c.Keys(ctx, env["FINPROXY_REDIS_PREFIX"]+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("redis keys: %v, %d", err, len(keys))
	}
	for _, k := range keys {
		v, _ := c.Get(ctx, k).Result()
		outs = append(outs, k, v)
	}
	checkNoProcessToken(t, f, append(outs, after.out.String())...)
}
