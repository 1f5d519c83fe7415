package test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/finproxy/finproxy/test/emulator"
)

func processEnv(f *finapi) map[string]string {
	env := proxyEnv(f)
	env["FINPROXY_MODE"] = "process"
	env["FINPROXY_PROCESS_ID"] = "GIRO_IDENT"
	return env
}

func TestProcessCreatedAndExchangedOnFirstSight(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, processEnv(f))
	s := session(t, 1)

	resp, body := p.do(request{path: "/api/v2/accounts", session: s})
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if f.Processes() != 1 || f.Count(emulator.CounterProcessExchange) != 1 {
		t.Errorf("processes %d, exchanges %d; want 1 and 1", f.Processes(), f.Count(emulator.CounterProcessExchange))
	}
	if n := f.Count(emulator.CounterUsersCreate) + f.Count(emulator.CounterPassword); n != 0 {
		t.Errorf("process mode created users or used password grants (%d)", n)
	}
	creates := f.requestsTo("/api/v1/processes")
	if len(creates) != 2 {
		t.Fatalf("process controller calls = %d, want 2", len(creates))
	}
	var params struct {
		ClientID         string `json:"clientId"`
		ClientSecret     string `json:"clientSecret"`
		ProcessID        string `json:"processId"`
		ClientReferences []struct {
			ClientReference string `json:"clientReference"`
		} `json:"clientReferences"`
	}
	if err := json.Unmarshal(creates[0].Body, &params); err != nil {
		t.Fatal(err)
	}
	if params.ClientID != clientID || params.ClientSecret != clientSecret || params.ProcessID != "GIRO_IDENT" {
		t.Errorf("create params: id %q processId %q", params.ClientID, params.ProcessID)
	}
	if len(params.ClientReferences) != 1 || params.ClientReferences[0].ClientReference != mustKeys(t).Session(s).Reference() ||
		strings.Contains(string(creates[0].Body), s) {
		t.Errorf("client reference must be the session's keyed hash: %+v", params.ClientReferences)
	}
	if ex := creates[1]; ex.Method != "GET" || ex.RawQuery != "invalidate=true" {
		t.Errorf("exchange = %s ?%s, want GET with invalidate=true", ex.Method, ex.RawQuery)
	}

	// Cached: no further process.
	p.do(request{path: "/api/v2/bankConnections", session: s})
	if f.Processes() != 1 {
		t.Errorf("processes = %d after a second request", f.Processes())
	}

	// Warm-up in process mode has no userId.
	resp, body = p.do(request{method: "POST", path: "/proxy/v1/session", session: s})
	var warm map[string]any
	json.Unmarshal(body, &warm)
	if resp.StatusCode != 200 || warm["mode"] != "process" || warm["userId"] != nil || warm["expiresAt"] == nil {
		t.Errorf("warm-up: %d %s", resp.StatusCode, body)
	}
}

func TestConcurrentFirstRequestsCreateOneProcess(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, processEnv(f))
	s := session(t, 1)
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body, err := p.try(request{path: "/api/v2/accounts", session: s})
			if err != nil || resp.StatusCode != 200 {
				t.Errorf("request %d: %v %v %s", i, err, resp, body)
			}
		}()
	}
	wg.Wait()
	t.Logf("30 concurrent first requests: %d processes, %d exchanges", f.Processes(), f.Count(emulator.CounterProcessExchange))
	if f.Processes() != 1 {
		t.Errorf("processes = %d, want 1", f.Processes())
	}
	if n := auditEvents(t, p.out.String(), "process_created", mustKeys(t).Session(s).Short(), ""); n != 1 {
		t.Errorf("process_created audit events = %d, want 1", n)
	}
}

func TestExpiredProcessAnswers401ThenStartsOver(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, processEnv(f))
	s := session(t, 1)
	p.do(request{path: "/api/v2/accounts", session: s})

	f.RejectNextUserToken(1)
	resp, body := p.do(request{path: "/api/v2/accounts", session: s})
	wantError(t, resp, body, 401, "process_expired")
	if f.Processes() != 1 {
		t.Errorf("a process was created before the caller saw the 401")
	}
	resp, body = p.do(request{path: "/api/v2/accounts", session: s})
	if resp.StatusCode != 200 {
		t.Fatalf("next request: %d %s", resp.StatusCode, body)
	}
	if f.Processes() != 2 {
		t.Errorf("processes = %d, want 2 (a new one after the expiry)", f.Processes())
	}
}

func TestProcessControllerFailures(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, processEnv(f))

	f.FailNext("/api/v1/processes", 503, 1)
	resp, body := p.do(request{path: "/api/v2/accounts", session: session(t, 1)})
	wantError(t, resp, body, 503, "token_unavailable")
	if f.Processes() != 0 {
		t.Errorf("processes = %d", f.Processes())
	}

	env := processEnv(f)
	env["FINPROXY_PROCESSCTL_URL"] = "http://" + freeAddr(t) // nothing listens
	p2 := startProxy(t, f, env)
	resp, body = p2.do(request{path: "/api/v2/accounts", session: session(t, 2)})
	wantError(t, resp, body, 502, "upstream_unavailable")
}
