package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/finproxy/finproxy/test/emulator"
)

const (
	clientID       = "mobile-backend-client"
	clientSecret   = "mobile-backend-client-secret-0123"
	identitySecret = "mobile-backend-identity-secret-0123456789abcdef"
)

// TestOverviewThroughFinproxy runs the backend against the real finproxy
// binary in front of the emulator, over HTTP: each end user gets a finAPI
// user of their own on first sight and the same one afterwards, and the
// backend sends finproxy sessions only, never a finAPI token.
func TestOverviewThroughFinproxy(t *testing.T) {
	emu := emulator.New(emulator.Config{ClientID: clientID, ClientSecret: clientSecret})
	access := httptest.NewServer(emu.Handler())
	defer access.Close()
	proxyURL := startFinproxy(t, access.URL)

	rec := &recorder{next: http.DefaultTransport}
	b := &Backend{FinproxyURL: proxyURL, SessionKey: []byte("mobile-backend-test-session-key-0123456789"), Client: &http.Client{Transport: rec}}
	app := httptest.NewServer(b.Handler())
	defer app.Close()

	alice1 := overview(t, app.URL, "alice")
	alice2 := overview(t, app.URL, "alice")
	bob := overview(t, app.URL, "bob")

	if len(alice1.Accounts) == 0 || len(alice1.BankConnections) == 0 {
		t.Fatalf("alice's overview is empty: %+v", alice1)
	}
	if alice1.Accounts[0].IBAN == "" || alice1.Accounts[0].IBAN != alice2.Accounts[0].IBAN {
		t.Errorf("alice's accounts differ between calls: %+v, %+v", alice1.Accounts, alice2.Accounts)
	}
	if bob.Accounts[0].IBAN == alice1.Accounts[0].IBAN {
		t.Errorf("bob sees alice's account %s", bob.Accounts[0].IBAN)
	}
	if n := emu.Count(emulator.CounterUsersCreate); n != 2 {
		t.Errorf("finAPI users created: %d, want 2 (alice, bob)", n)
	}
	if n := emu.Count(emulator.CounterPassword); n != 2 {
		t.Errorf("password grants: %d, want 2 (one login per user; later calls use the cached token)", n)
	}

	resp, err := http.Get(app.URL + "/v1/overview")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("overview without a user: %d, want 401", resp.StatusCode)
	}

	req, _ := http.NewRequest(http.MethodPost, app.URL+"/v1/logout", nil)
	req.Header.Set("X-Demo-User", "alice")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("logout: %d, want 204", resp.StatusCode)
	}
	if n := emu.Count(emulator.CounterRevoke); n < 1 {
		t.Errorf("logout revoked nothing at finAPI")
	}

	sessions := map[string]bool{}
	for _, h := range rec.headers() {
		if h.Get("Authorization") != "" {
			t.Errorf("the backend sent an Authorization header to finproxy")
		}
		sessions[h.Get("X-Session-Id")] = true
	}
	if len(sessions) != 2 || sessions[""] {
		t.Errorf("sessions sent: %v, want one per user", sessions)
	}
	again := &Backend{SessionKey: b.SessionKey}
	if b.Session("alice") == b.Session("bob") || again.Session("alice") != b.Session("alice") {
		t.Errorf("Session is not one stable session per user")
	}
}

func overview(t *testing.T, base, user string) Overview {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/overview", nil)
	req.Header.Set("X-Demo-User", user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("overview of %s: %d", user, resp.StatusCode)
	}
	var o Overview
	if err := json.NewDecoder(resp.Body).Decode(&o); err != nil {
		t.Fatal(err)
	}
	return o
}

// recorder keeps the headers of every request the backend sends.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen []http.Header
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.seen = append(r.seen, req.Header.Clone())
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

func (r *recorder) headers() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.seen...)
}

// startFinproxy builds finproxy with scripts/build.sh, starts it in front
// of accessURL on free ports, waits until it is ready and returns its URL.
func startFinproxy(t *testing.T, accessURL string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "finproxy")
	if out, err := exec.Command("../../scripts/build.sh", bin, "mobile-backend-test").CombinedOutput(); err != nil {
		t.Fatalf("building finproxy: %v\n%s", err, out)
	}
	addrs := freeAddrs(t, 2)
	cmd := exec.Command(bin)
	cmd.Env = []string{
		"FINPROXY_LISTEN_ADDR=" + addrs[0], "FINPROXY_ADMIN_ADDR=" + addrs[1],
		"FINPROXY_ACCESS_URL=" + accessURL, "FINPROXY_PROCESSCTL_URL=" + accessURL,
		"FINPROXY_CLIENT_ID=" + clientID, "FINPROXY_CLIENT_SECRET=" + clientSecret,
		"FINPROXY_IDENTITY_SECRET=" + identitySecret, "FINPROXY_SHUTDOWN_DELAY=0s",
	}
	out := &syncWriter{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		for _, s := range []string{clientSecret, identitySecret} {
			if strings.Contains(out.String(), s) {
				t.Errorf("finproxy's output holds a secret")
			}
		}
		if strings.Contains(out.String(), "demo mode") {
			t.Errorf("finproxy without FINPROXY_DEMO logged a demo-mode warning")
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addrs[1] + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return "http://" + addrs[0]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("finproxy not ready:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncWriter collects a process's stdout and stderr.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freeAddrs returns n distinct free loopback addresses.
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

// TestDefaultAddrBesideDemo: the README runs this backend "next to make
// demo" with its default -addr and curls it there, so that address must be
// none of make demo's default ports, and the README's curl must name it.
func TestDefaultAddrBesideDemo(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	demo := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^(PORT|ADMIN|EMUPORT|WEBPORT)\s*\?=\s*(\d+)$`).FindAllStringSubmatch(string(mk), -1) {
		n, _ := strconv.Atoi(m[2])
		demo[strconv.Itoa(n)] = true
		if m[1] == "EMUPORT" {
			demo[strconv.Itoa(n+1)], demo[strconv.Itoa(n+2)] = true, true
		}
	}
	if len(demo) != 6 {
		t.Fatalf("make demo's default ports from the Makefile: %v, want 6", demo)
	}
	_, port, err := net.SplitHostPort(defaultAddr)
	if err != nil {
		t.Fatal(err)
	}
	if demo[port] {
		t.Errorf("default -addr %s takes a port of make demo (%v): the README's run next to make demo cannot bind", defaultAddr, demo)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "http://"+defaultAddr+"/v1/overview") {
		t.Errorf("README.md does not curl the backend at its default address http://%s/v1/overview", defaultAddr)
	}
}
