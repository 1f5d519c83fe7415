package test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/finproxy/finproxy/test/emulator"
)

// chromium finds Debian's Chromium; make test installs it when missing
// (scripts/ensure-chromium.sh).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: run scripts/ensure-chromium.sh (make test does)")
	return ""
}

// TestBrowserDemo clicks through the demo page (examples/web) in headless
// Chromium: the page on one loopback origin, finproxy on another, so every
// call with the session header is preceded by a real CORS preflight.
func TestBrowserDemo(t *testing.T) {
	chrome := chromium(t)
	f := newFinAPI(t, emulator.Config{})
	web := freeAddr(t)
	env := proxyEnv(f)
	env["FINPROXY_CORS_ORIGINS"] = "http://" + web
	p := startProxy(t, f, env)
	p.waitReady()
	startDemoweb(t, web, "http://"+p.addr)

	// One bound for everything, the browser's start included; cancelling
	// the allocator kills Chromium and waits for it.
	limit, stopLimit := context.WithTimeout(context.Background(), 90*time.Second)
	defer stopLimit()
	alloc, stopAlloc := chromedp.NewExecAllocator(limit,
		chromedp.ExecPath(chrome),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	defer stopAlloc()
	ctx, stopBrowser := chromedp.NewContext(alloc)
	defer stopBrowser()

	// Whatever the page throws or logs as an error fails the test.
	var (
		mu       sync.Mutex
		problems []string
	)
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()

	page := "http://" + web + "/"
	if err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#warm-up"))); err != nil {
		t.Fatalf("open %s: %v", page, err)
	}
	// Cancelling the allocator must end Chromium: the test leaves no
	// browser behind.
	browser := chromedp.FromContext(ctx).Browser.Process()
	defer func() {
		stopBrowser()
		stopAlloc()
		if err := browser.Signal(syscall.Signal(0)); err == nil {
			t.Errorf("Chromium (pid %d) still runs after the test", browser.Pid)
			browser.Kill()
		}
	}()
	if got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#proxy-url"))); err != nil || got != "http://"+p.addr {
		t.Errorf("the page shows proxy %q (%v), want http://%s from config.js", got, err, p.addr)
	}

	// step clicks a button and waits until the page is idle again with
	// calls rows in its call log.
	step := func(button string, calls int) {
		t.Helper()
		wait := `document.body.dataset.busy === "false" && document.querySelectorAll("#calls tr").length === ` + itoa(calls) +
			` && ![...document.querySelectorAll("#calls td.status")].some(td => td.textContent === "…")`
		_, err := chromedp.Run(ctx, chromedp.Steps(
			chromedp.Click(chromedp.CSS("#"+button)),
		))
		if err == nil {
			_, err = chromedp.Run(ctx, chromedp.Poll[bool](wait, chromedp.WithPollingTimeout(20*time.Second)))
		}
		if err != nil {
			log, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#calls")))
			t.Fatalf("step %s: %v; call log:\n%s", button, err, log)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	rows := func(sel string) [][]string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](
			`[...document.querySelectorAll(`+jsString(sel)+`)].map(tr => [...tr.cells].map(td => td.textContent))`))
		if err != nil {
			t.Fatalf("rows of %s: %v", sel, err)
		}
		return v
	}

	step("warm-up", 1)
	userID := text("#user-id")
	if !regexp.MustCompile(`^fp-[a-z0-9._-]+$`).MatchString(userID) || !f.UserExists(userID) {
		t.Fatalf("after warm-up the page shows user %q; want the finAPI user finproxy created; call log:\n%s", userID, text("#calls"))
	}
	step("show-user", 2)
	if got := text("#user-id"); got != userID {
		t.Errorf("GET /api/v2/users shows %q, want %q", got, userID)
	}
	step("list", 4)
	before := rows("#connections tr")
	if len(before) != 1 || len(rows("#accounts tr")) != 2 {
		t.Errorf("first list: connections %q, accounts %q; want the demo connection and its two accounts", before, rows("#accounts tr"))
	}
	step("import", 5)
	step("list", 7)
	after := rows("#connections tr")
	fresh := rows("#connections tr.new")
	if len(after) != len(before)+1 || len(fresh) != 1 || !strings.HasPrefix(fresh[0][1], "Imported at ") {
		t.Errorf("after the import: connections %q, highlighted %q; want one more, the imported one", after, fresh)
	}
	step("logout", 8)
	if s := text("#state"); !strings.HasPrefix(s, "Logged out") {
		t.Errorf("after logout the page says %q", s)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	png := filepath.Join(t.TempDir(), "demo-page.png")
	if err := os.WriteFile(png, shot, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the page after logout: %s", png)
	// The temp dir goes with the test; FINPROXY_TEST_ARTIFACTS names a
	// directory that keeps a copy (CI artefacts, a look by hand).
	if dir := os.Getenv("FINPROXY_TEST_ARTIFACTS"); dir != "" {
		keep := filepath.Join(dir, "demo-page.png")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keep, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot kept: %s", keep)
	}
	step("delete", 9)
	if s := text("#state"); !strings.HasPrefix(s, "Session deleted") || f.UserExists(userID) {
		t.Errorf("after delete the page says %q; user still exists at finAPI: %v", s, f.UserExists(userID))
	}

	want := [][3]string{
		{"POST", "/proxy/v1/session", "200"},
		{"GET", "/api/v2/users", "200"},
		{"GET", "/api/v2/bankConnections", "200"},
		{"GET", "/api/v2/accounts", "200"},
		{"POST", "/api/v2/bankConnections/import", "201"},
		{"GET", "/api/v2/bankConnections", "200"},
		{"GET", "/api/v2/accounts", "200"},
		{"POST", "/proxy/v1/session/logout", "204"},
		{"DELETE", "/proxy/v1/session", "204"},
	}
	calls := rows("#calls tr")
	ids := map[string]bool{}
	for i, row := range calls {
		if len(row) != 6 || i >= len(want) {
			t.Errorf("call log row %d: %q", i, row)
			continue
		}
		if row[1] != want[i][0] || row[2] != want[i][1] || row[3] != want[i][2] {
			t.Errorf("call %d: %s %s %s (%s), want %s %s %s", i+1, row[1], row[2], row[3], row[5], want[i][0], want[i][1], want[i][2])
		}
		// X-Request-Id reaches the page only when finproxy exposes it.
		if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(row[4]) || ids[row[4]] {
			t.Errorf("call %d: X-Request-Id %q, want a fresh 32-hex id", i+1, row[4])
		}
		ids[row[4]] = true
	}
	if len(calls) != len(want) {
		t.Errorf("%d calls in the log, want %d", len(calls), len(want))
	}

	// finproxy answered the browser's preflights itself: 204 in its
	// request log, and nothing of them reached finAPI.
	preflights := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(p.out.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Message, Method, Path string
			Status                int
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Message == "request" && line.Method == "OPTIONS" && line.Status == 204 {
			preflights[line.Path] = true
		}
	}
	for _, path := range []string{"/proxy/v1/session", "/api/v2/accounts", "/api/v2/bankConnections/import"} {
		if !preflights[path] {
			t.Errorf("no preflight of %s in finproxy's request log (preflights: %v)", path, preflights)
		}
	}
	for _, r := range f.Requests() {
		if r.Method == "OPTIONS" {
			t.Errorf("a preflight reached finAPI: %s", r.Path)
		}
	}
	// Run all steps does the same on a fresh page (a new session).
	if err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#run-all"))); err != nil {
		t.Fatalf("reload %s: %v", page, err)
	}
	step("run-all", len(want))
	for i, row := range rows("#calls tr") {
		if row[3] != want[i][2] {
			t.Errorf("run all, call %d: %s %s %s (%s), want %s", i+1, row[1], row[2], row[3], row[5], want[i][2])
		}
	}
	if s := text("#state"); !strings.HasPrefix(s, "Session deleted") {
		t.Errorf("after run all the page says %q", s)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, m := range problems {
		t.Errorf("page console: %s", m)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func jsString(s string) string { b, _ := json.Marshal(s); return string(b) }
