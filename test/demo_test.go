package test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	demoBinsOnce sync.Once
	demoBinsErr  error
)

// demoClient bounds every call of these tests: a server that accepts and
// never answers fails the test instead of hanging it past its cleanups
// (demo.sh's process group would outlive a timed-out test binary).
var demoClient = &http.Client{Timeout: 10 * time.Second}

// demoBinaries builds finapi-emulator and demoweb next to the finproxy
// binary under test, once per run, and returns that directory: the layout
// scripts/demo.sh expects of bin/.
func demoBinaries(t *testing.T) string {
	t.Helper()
	dir := filepath.Dir(binary)
	demoBinsOnce.Do(func() {
		for name, pkg := range map[string]string{"finapi-emulator": "./cmd/finapi-emulator", "demoweb": "./cmd/demoweb"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg).CombinedOutput()
			if err != nil {
				demoBinsErr = fmt.Errorf("building %s: %v\n%s", name, err, out)
				return
			}
		}
	})
	if demoBinsErr != nil {
		t.Fatal(demoBinsErr)
	}
	return dir
}

// startDemoweb serves examples/web on addr with finproxy at proxyURL, until
// the test ends.
func startDemoweb(t *testing.T, addr, proxyURL string) {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(filepath.Join(demoBinaries(t), "demoweb"), "-addr", addr, "-dir", "../examples/web", "-proxy", proxyURL)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("demoweb did not stop on SIGTERM")
		}
	})
	eventually(t, 10*time.Second, "demoweb listening", func() bool {
		select {
		case <-done:
			t.Fatalf("demoweb exited:\n%s", out.String())
		default:
		}
		resp, err := demoClient.Get("http://" + addr + "/config.js")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func TestDemowebLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0"} {
		out, err := exec.Command(filepath.Join(demoBinaries(t), "demoweb"), "-addr", addr, "-dir", "../examples/web").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "only a loopback address") {
			t.Errorf("-addr %s: err %v, output %q; want a refusal", addr, err, out)
		}
	}
}

func TestDemowebConfig(t *testing.T) {
	addr := freeAddr(t)
	startDemoweb(t, addr, "http://127.0.0.1:4711/ignored/path")
	resp, body := get(t, "http://"+addr+"/config.js")
	if resp.StatusCode != 200 || string(body) != `window.FINPROXY_DEMO = {"proxyURL":"http://127.0.0.1:4711","sessionHeader":"X-Session-Id"};`+"\n" {
		t.Errorf("config.js: %d %q", resp.StatusCode, body)
	}
	resp, body = get(t, "http://"+addr+"/")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `<script src="config.js">`) {
		t.Errorf("page: %d %.80q", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src http://127.0.0.1:4711;") {
		t.Errorf("Content-Security-Policy %q does not limit connections to the proxy", csp)
	}
	// Nothing under examples/web names a host: the page learns the proxy
	// from config.js only.
	files, _ := filepath.Glob("../examples/web/*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"127.0.0.1", "localhost", "http://", "https://"} {
			if strings.Contains(string(b), s) {
				t.Errorf("%s contains %q: the page must take the proxy's URL from config.js", f, s)
			}
		}
	}
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := demoClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// demoPorts are free ports for scripts/demo.sh: PORT, ADMIN, WEBPORT and
// an EMUPORT whose two successors are free too.
type demoPorts struct{ port, admin, emu, web int }

func freeDemoPorts(t *testing.T) demoPorts {
	t.Helper()
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	listen := func(port int) bool {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			return false
		}
		held = append(held, ln)
		return true
	}
	one := func() int {
		if !listen(0) {
			t.Fatal("no free port")
		}
		return held[len(held)-1].Addr().(*net.TCPAddr).Port
	}
	p := demoPorts{port: one(), admin: one(), web: one()}
	for range 50 {
		base := one()
		if base < 65534 && listen(base+1) && listen(base+2) {
			p.emu = base
			return p
		}
	}
	t.Fatal("no three consecutive free ports")
	return p
}

// demoRun is scripts/demo.sh running.
type demoRun struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

func startDemo(t *testing.T, p demoPorts, env ...string) *demoRun {
	t.Helper()
	cmd := exec.Command("bash", "scripts/demo.sh")
	cmd.Dir = ".."
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "DEMO_BIN=" + demoBinaries(t),
		"PORT=" + strconv.Itoa(p.port), "ADMIN=" + strconv.Itoa(p.admin),
		"EMUPORT=" + strconv.Itoa(p.emu), "WEBPORT=" + strconv.Itoa(p.web),
		"FINPROXY_LOG_FORMAT=json"}, env...)
	// Its own process group, so that the cleanup can stop whatever is left.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	d := &demoRun{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = d.out, d.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
	})
	return d
}

// children returns the pids and names of the script's child processes.
func children(t *testing.T, ppid int) map[int]string {
	t.Helper()
	out := map[int]string{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:])
		if len(fields) < 2 || fields[1] != strconv.Itoa(ppid) || fields[0] == "Z" {
			continue
		}
		pid, _ := strconv.Atoi(s[:strings.IndexByte(s, ' ')])
		out[pid] = s[strings.IndexByte(s, '(')+1 : i]
	}
	return out
}

func TestDemoScript(t *testing.T) {
	p := freeDemoPorts(t)
	d := startDemo(t, p)
	eventually(t, 60*time.Second, "the demo's banner", func() bool {
		select {
		case <-d.done:
			t.Fatalf("demo.sh exited (%v) before its banner:\n%s", d.err, d.out.String())
		default:
		}
		return strings.Contains(d.out.String(), "Ctrl-C stops all three.")
	})
	out := d.out.String()
	pageURL := fmt.Sprintf("http://127.0.0.1:%d/", p.web)
	curl := fmt.Sprintf("curl -s -H 'X-Session-Id: demo-session-0123456789' http://127.0.0.1:%d/api/v2/accounts", p.port)
	banner := out[strings.Index(out, "finproxy is ready"):]
	if i, j := strings.Index(banner, "  "+pageURL+"\n"), strings.Index(banner, curl); i < 0 || j < 0 || i > j {
		t.Errorf("banner must show the page URL %s, then the curl line:\n%s", pageURL, banner)
	}

	resp, body := get(t, pageURL)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "finproxy demo") {
		t.Errorf("page: %d %.80q", resp.StatusCode, body)
	}
	_, body = get(t, pageURL+"config.js")
	if !strings.Contains(string(body), fmt.Sprintf(`"proxyURL":"http://127.0.0.1:%d"`, p.port)) {
		t.Errorf("config.js does not name the demo's finproxy: %s", body)
	}
	// The proxied call of the banner's curl line.
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/api/v2/accounts", p.port), nil)
	req.Header.Set("X-Session-Id", "demo-session-0123456789")
	resp, err := demoClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"accounts"`) {
		t.Errorf("proxied call: %d %.200s", resp.StatusCode, body)
	}
	// CORS allows exactly the page's origin.
	for origin, want := range map[string]string{
		strings.TrimSuffix(pageURL, "/"):          strings.TrimSuffix(pageURL, "/"),
		fmt.Sprintf("http://localhost:%d", p.web): "",
	} {
		req, _ := http.NewRequest("OPTIONS", fmt.Sprintf("http://127.0.0.1:%d/proxy/v1/session", p.port), nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "x-session-id")
		resp, err := demoClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != want {
			t.Errorf("preflight from %s: Access-Control-Allow-Origin %q, want %q", origin, got, want)
		}
	}

	kids := children(t, d.cmd.Process.Pid)
	names := map[string]int{}
	for pid, name := range kids {
		names[name] = pid
	}
	for _, name := range []string{"finapi-emulator", "finproxy", "demoweb"} {
		if names[name] == 0 {
			t.Errorf("no %s among demo.sh's children %v", name, kids)
		}
	}
	d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("demo.sh still runs 20 s after SIGINT:\n%s", d.out.String())
	}
	for name, pid := range names {
		// demo.sh waits for its children before it exits: none may be left.
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still runs after demo.sh exited (kill -0: %v)", name, pid, err)
		}
	}
	for _, port := range []int{p.port, p.admin, p.emu, p.emu + 1, p.emu + 2, p.web} {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			t.Errorf("port %d still answers after demo.sh exited", port)
		}
	}
}

// TestDemoScriptOldBash: macOS's /bin/bash (3.2) has no `wait -n`; there
// too the demo must keep serving after its banner until it is stopped. An
// exported function wait stands in for that bash: `wait -n` fails as it
// does there, any other wait is the builtin.
func TestDemoScriptOldBash(t *testing.T) {
	p := freeDemoPorts(t)
	d := startDemo(t, p, `BASH_FUNC_wait%%=() { if [ "$1" = -n ]; then echo "wait: -n: invalid option" >&2; return 2; fi; builtin wait "$@"; }`)
	eventually(t, 60*time.Second, "the demo's banner", func() bool {
		select {
		case <-d.done:
			t.Fatalf("demo.sh exited (%v) before its banner:\n%s", d.err, d.out.String())
		default:
		}
		return strings.Contains(d.out.String(), "Ctrl-C stops all three.")
	})
	select {
	case <-d.done:
		t.Fatalf("demo.sh exited (%v) right after its banner:\n%s", d.err, d.out.String())
	case <-time.After(2 * time.Second):
	}
	if resp, _ := get(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", p.admin)); resp.StatusCode != 200 {
		t.Errorf("finproxy /readyz %d after the banner", resp.StatusCode)
	}
	d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("demo.sh still runs 20 s after SIGINT:\n%s", d.out.String())
	}
}

// TestDemoScriptPortTaken: a port that is taken makes demo.sh fail at once,
// naming the port, whether something listens there (found before anything
// starts) or holds it without listening (found when finproxy cannot bind
// and exits), and it never says ready.
func TestDemoScriptPortTaken(t *testing.T) {
	t.Run("listening", func(t *testing.T) {
		p := freeDemoPorts(t)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p.port))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		d := startDemo(t, p)
		wantFailure(t, d, fmt.Sprintf("port %d is taken (PORT, finproxy)", p.port))
	})
	bound := func(t *testing.T, env ...string) {
		p := freeDemoPorts(t)
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer syscall.Close(fd)
		if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: p.admin, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			t.Fatal(err)
		}
		d := startDemo(t, p, env...)
		wantFailure(t, d, "finproxy exited", fmt.Sprintf("port %d is taken", p.admin))
	}
	t.Run("bound", func(t *testing.T) { bound(t) })
	// On a loaded machine the tee that keeps a process's output may write
	// its last lines well after the process exited; the port is named all
	// the same. A tee that starts half a second late stands in for that.
	t.Run("bound, output late", func(t *testing.T) {
		tee, err := exec.LookPath("tee")
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "tee"), []byte("#!/bin/sh\nsleep 0.5\nexec "+tee+" \"$@\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		bound(t, "PATH="+dir+":"+os.Getenv("PATH"))
	})
	// Two of the demo's ports the same: refused before anything starts,
	// naming both uses, instead of one process blaming the other.
	t.Run("given twice", func(t *testing.T) {
		p := freeDemoPorts(t)
		p.admin = p.emu + 2 // the emulator's echo upstream
		d := startDemo(t, p)
		wantFailure(t, d, fmt.Sprintf("port %d is given twice (EMUPORT+2, the emulator's echo upstream; ADMIN, finproxy's admin listener)", p.admin))
	})
}

// wantFailure waits (20 s at most) for demo.sh to exit non-zero with a line
// that holds every one of parts, and no ready banner.
func wantFailure(t *testing.T, d *demoRun, parts ...string) {
	t.Helper()
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("demo.sh still runs 20 s after start:\n%s", d.out.String())
	}
	out := d.out.String()
	if d.err == nil {
		t.Errorf("demo.sh exited 0:\n%s", out)
	}
	if strings.Contains(out, "is ready") {
		t.Errorf("demo.sh said ready:\n%s", out)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "demo: ") && containsAll(line, parts) {
			return
		}
	}
	t.Errorf("no line with %q:\n%s", parts, out)
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
