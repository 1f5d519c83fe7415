// Package curl runs the README's curl walk-throughs (user-mode.sh,
// process-mode.sh, jwt-mode.sh) against the real binaries, and checks that
// the README shows exactly the lines the scripts run.
package curl

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bin holds finproxy (built by scripts/build.sh) and finapi-emulator.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "finproxy-curl")
	if err != nil {
		panic(err)
	}
	bin = dir
	code := 1
	if build(dir) {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func build(dir string) bool {
	for _, cmd := range []*exec.Cmd{
		exec.Command("../../scripts/build.sh", filepath.Join(dir, "finproxy"), "curl-walkthrough"),
		exec.Command("go", "build", "-o", filepath.Join(dir, "finapi-emulator"), "../../test/cmd/finapi-emulator"),
	} {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			os.Stderr.WriteString("building " + cmd.String() + ": " + err.Error() + "\n")
			return false
		}
	}
	return true
}

// TestWalkthroughs runs each script on free ports and checks what its
// curl calls printed (each call also checks itself with curl -f or grep,
// so a failing step fails the script).
func TestWalkthroughs(t *testing.T) {
	tests := []struct {
		script string
		want   []string // lines of the script's output
	}{
		{"user-mode.sh", []string{`"name":"Demo connection"`, "401", "403", "204"}},
		{"process-mode.sh", []string{`"requestURI":"/api/v1/checks?x=1"`, "204"}},
		{"jwt-mode.sh", []string{"one finAPI user per subject, whichever token", "401"}},
	}
	for _, tt := range tests {
		t.Run(tt.script, func(t *testing.T) {
			out := runScript(t, tt.script)
			lines := strings.Split(out, "\n")
			for _, w := range tt.want {
				if !contains(lines, w) {
					t.Errorf("no output line %q:\n%s", w, out)
				}
			}
			if n := strings.Count(out, `"message":"demo mode (FINPROXY_DEMO=true)`); n != 1 {
				t.Errorf("%d demo-mode warnings, want exactly 1:\n%s", n, out)
			}
			for _, secret := range []string{"demo-secret", "demo-identity-secret-not-for-production-use", "demo-jwt-hmac-secret-not-for-production-use"} {
				if strings.Contains(out, secret) {
					t.Errorf("the output holds the secret %q", secret)
				}
			}
		})
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if strings.TrimSpace(l) == s {
			return true
		}
	}
	return false
}

// runScript runs script with the binaries of TestMain on free loopback
// ports and returns its output, failing the test unless it exits 0.
func runScript(t *testing.T, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "./"+script)
	cmd.Env = append(os.Environ(), "BIN="+bin,
		// The script's finproxy inherits these: no drain delay on
		// kill, and only its warnings (the demo-mode line among them).
		"FINPROXY_SHUTDOWN_DELAY=0s", "FINPROXY_LOG_LEVEL=warn")
	for i, addr := range freeAddrs(t, 5) {
		cmd.Env = append(cmd.Env, []string{"PROXY", "ADMIN", "ACCESS", "PROCESSCTL", "ECHO"}[i]+"="+addr)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so a hung walk-through's background
	// processes die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out.String())
	}
	return out.String()
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

// TestREADMEShowsTheScripts: the README's walk-through blocks are the
// scripts' lines between "# README begin" and "# README end", with each
// ${VAR} at the script's default.
func TestREADMEShowsTheScripts(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, script := range []string{"user-mode.sh", "process-mode.sh", "jwt-mode.sh"} {
		t.Run(script, func(t *testing.T) {
			block := readmeBlock(t, script)
			if !bytes.Contains(readme, []byte("```sh\n"+block+"```\n")) {
				t.Errorf("README.md has no sh block that is exactly %s's walk-through:\n%s", script, block)
			}
		})
	}
}

var defaultLine = regexp.MustCompile(`^([A-Z]+)=\$\{([A-Z]+):-(.*)\}$`)

// readmeBlock returns the walk-through of script as the README must show it.
func readmeBlock(t *testing.T, script string) string {
	t.Helper()
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	defaults := map[string]string{}
	var block strings.Builder
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		if m := defaultLine.FindStringSubmatch(l); m != nil && m[1] == m[2] {
			defaults[m[1]] = m[3]
		}
		switch l {
		case "# README begin":
			in = true
			continue
		case "# README end":
			in = false
		}
		if in {
			block.WriteString(l + "\n")
		}
	}
	if block.Len() == 0 {
		t.Fatalf("%s has no README block", script)
	}
	out := regexp.MustCompile(`\$\{([A-Z]+)\}`).ReplaceAllStringFunc(block.String(), func(v string) string {
		d, ok := defaults[v[2:len(v)-1]]
		if !ok {
			t.Errorf("%s: %s has no default", script, v)
		}
		return d
	})
	return out
}
