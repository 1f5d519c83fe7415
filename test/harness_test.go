// Package test holds finproxy's end-to-end tests: the real binary, built
// once per run, against the finAPI emulator over real HTTP on loopback.
package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/finproxy/finproxy/test/emulator"
)

// Credentials of the emulated finAPI client; the secret must never show in
// finproxy's output.
const (
	clientID       = "e2e-client"
	clientSecret   = "e2e-client-secret-DO-NOT-LOG-7f3a"
	identitySecret = "e2e-identity-secret-DO-NOT-LOG-0123456789abcdef"
)

var binary string // the finproxy binary under test

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "finproxy-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "finproxy")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "github.com/finproxy/finproxy")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building finproxy:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// finapi is an emulated finAPI (Access, Process Controller and an echo
// upstream) on loopback.
type finapi struct {
	*emulator.Emulator
	access, processctl, echo *httptest.Server
	echoHits                 atomic.Int64 // requests that reached the echo upstream
}

func newFinAPI(t *testing.T, cfg emulator.Config) *finapi {
	t.Helper()
	cfg.ClientID, cfg.ClientSecret = clientID, clientSecret
	emu := emulator.New(cfg)
	f := &finapi{
		Emulator:   emu,
		access:     httptest.NewServer(emu.Handler()),
		processctl: httptest.NewServer(emu.ProcessController()),
	}
	echo := emulator.EchoHandler()
	f.echo = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.echoHits.Add(1)
		echo.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		f.access.Close()
		f.processctl.Close()
		f.echo.Close()
	})
	return f
}

// requestsTo returns the recorded requests whose path starts with prefix.
func (f *finapi) requestsTo(prefix string) []emulator.Request {
	var out []emulator.Request
	for _, r := range f.Requests() {
		if strings.HasPrefix(r.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// secrets returns every secret value finAPI saw: tokens, passwords and
// client secrets, as sent in headers, forms and JSON bodies.
func (f *finapi) secrets() []string {
	var out []string
	for _, r := range f.Requests() {
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
			out = append(out, strings.TrimPrefix(a, "Bearer "))
		}
		if form, err := url.ParseQuery(string(r.Body)); err == nil {
			for _, k := range []string{"password", "refresh_token", "client_secret", "token"} {
				if v := form.Get(k); v != "" {
					out = append(out, v)
				}
			}
		}
		var body map[string]any
		if json.Unmarshal(r.Body, &body) == nil {
			for _, k := range []string{"password", "clientSecret"} {
				if v, ok := body[k].(string); ok && v != "" {
					out = append(out, v)
				}
			}
		}
	}
	return out
}

// proxyProc is one running finproxy process.
type proxyProc struct {
	t           *testing.T
	cmd         *exec.Cmd
	addr, admin string
	out         *syncBuffer
	done        chan struct{}
	exitCode    int

	mu       sync.Mutex
	sessions []string // raw sessions sent through it
	f        *finapi
}

// proxyEnv is the base environment of a proxy in front of f.
func proxyEnv(f *finapi) map[string]string {
	return map[string]string{
		"FINPROXY_ACCESS_URL":      f.access.URL,
		"FINPROXY_PROCESSCTL_URL":  f.processctl.URL,
		"FINPROXY_CLIENT_ID":       clientID,
		"FINPROXY_CLIENT_SECRET":   clientSecret,
		"FINPROXY_IDENTITY_SECRET": identitySecret,
		"FINPROXY_LOG_LEVEL":       "debug",
		// Tests stop their proxies at once; the drain test sets its own.
		"FINPROXY_SHUTDOWN_DELAY": "0s",
	}
}

// startProxy starts finproxy with env on free loopback ports and waits until
// its admin listener answers. Cleanup stops it and checks that its output
// holds no secret.
func startProxy(t *testing.T, f *finapi, env map[string]string) *proxyProc {
	t.Helper()
	addrs := freeAddrs(t, 2)
	p := &proxyProc{t: t, addr: addrs[0], admin: addrs[1], out: &syncBuffer{}, done: make(chan struct{}), f: f}
	cmd := exec.Command(binary)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "FINPROXY_LISTEN_ADDR=" + p.addr, "FINPROXY_ADMIN_ADDR=" + p.admin}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	go func() {
		cmd.Wait()
		p.exitCode = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		p.assertNoSecrets(env)
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + p.admin + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-p.done:
			t.Fatalf("finproxy exited with %d:\n%s", p.exitCode, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("finproxy did not start:\n%s", p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// waitReady waits until /readyz answers 200.
func (p *proxyProc) waitReady() {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + p.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("finproxy not ready:\n%s", p.out.String())
}

// stop sends SIGTERM and waits for the exit.
func (p *proxyProc) stop() int {
	select {
	case <-p.done:
		return p.exitCode
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("finproxy did not stop within 30s after SIGTERM")
	}
	return p.exitCode
}

// assertNoSecrets scans everything the process wrote for secrets.
func (p *proxyProc) assertNoSecrets(env map[string]string) {
	out := p.out.String()
	p.mu.Lock()
	secrets := append([]string{clientSecret, identitySecret}, p.sessions...)
	p.mu.Unlock()
	for k, v := range env {
		if strings.Contains(k, "SECRET") && v != "" {
			secrets = append(secrets, v)
		}
	}
	secrets = append(secrets, p.f.secrets()...)
	for _, s := range secrets {
		if len(s) >= 6 && strings.Contains(out, s) {
			p.t.Errorf("finproxy output contains a secret (%d chars, starting %.3q…)", len(s), s)
		}
	}
}

// request is one call through the proxy.
type request struct {
	method, path, session string
	body                  []byte
	header                http.Header
}

// do sends r through the proxy and returns the response with its body read.
func (p *proxyProc) do(r request) (*http.Response, []byte) {
	p.t.Helper()
	resp, body, err := p.try(r)
	if err != nil {
		p.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	return resp, body
}

// try is do for other goroutines: it returns errors instead of failing.
func (p *proxyProc) try(r request) (*http.Response, []byte, error) {
	if r.method == "" {
		r.method = http.MethodGet
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequest(r.method, "http://"+p.addr+r.path, body)
	if err != nil {
		return nil, nil, err
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if r.session != "" {
		p.mu.Lock()
		p.sessions = append(p.sessions, r.session)
		p.mu.Unlock()
		req.Header.Set("X-Session-Id", r.session)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// errorBody is finAPI's ErrorMessage as finproxy answers it.
type errorBody struct {
	Errors []struct {
		Message, Code, Type string
	} `json:"errors"`
	Date        string  `json:"date"`
	RequestID   string  `json:"requestId"`
	Endpoint    string  `json:"endpoint"`
	AuthContext *string `json:"authContext"`
	Bank        *string `json:"bank"`
}

// wantError checks that resp is finproxy's own error with status and reason
// in the contract's shape.
func wantError(t *testing.T, resp *http.Response, body []byte, status int, reason string) errorBody {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if got := resp.Header.Get("X-Finproxy-Error"); got != reason {
		t.Errorf("X-Finproxy-Error = %q, want %q", got, reason)
	}
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, body)
	}
	if len(e.Errors) != 1 || e.Errors[0].Code == "" || e.Errors[0].Message == "" || e.Errors[0].Type == "" {
		t.Errorf("error body lacks errors[0].code/message/type: %s", body)
	}
	if e.Date == "" || e.RequestID == "" || e.Endpoint == "" {
		t.Errorf("error body lacks date/requestId/endpoint: %s", body)
	}
	if e.RequestID != resp.Header.Get("X-Request-Id") {
		t.Errorf("requestId %q differs from X-Request-Id %q", e.RequestID, resp.Header.Get("X-Request-Id"))
	}
	if status == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	return e
}

func freeAddr(t *testing.T) string { return freeAddrs(t, 1)[0] }

// freeAddrs returns n distinct free loopback addresses: all are held open
// until each is known, so none is handed out twice.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		out = append(out, ln.Addr().String())
	}
	return out
}

// session returns a valid, unique session id for a test.
func session(t *testing.T, n int) string {
	return fmt.Sprintf("s-%s-%04d-0123456789", regexp.MustCompile(`[^A-Za-z0-9]`).ReplaceAllString(t.Name(), ""), n)
}

// syncBuffer is a bytes.Buffer safe for a process's output and readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %s", what, d)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
