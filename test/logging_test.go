package test

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/finproxy/finproxy/test/emulator"
)

// TestStalledStdoutNeverStallsRequests: finproxy's stdout is a pipe nobody
// reads (a blocked log pipeline: the pipe's 64 KiB fill after ~150 debug
// lines). Requests keep being answered at once; once stdout is read
// again, the lines come out.
func TestStalledStdoutNeverStallsRequests(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	addrs := freeAddrs(t, 2)
	cmd := exec.Command(binary)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "FINPROXY_LISTEN_ADDR=" + addrs[0], "FINPROXY_ADMIN_ADDR=" + addrs[1]}
	for k, v := range proxyEnv(f) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	p := &proxyProc{t: t, addr: addrs[0], admin: addrs[1], f: f}
	p.waitReady()

	const n = 2000
	var (
		mu    sync.Mutex
		worst time.Duration
		bad   int
		wg    sync.WaitGroup
	)
	for g := range 4 {
		wg.Go(func() {
			for i := range n / 4 {
				start := time.Now()
				resp, _, err := p.try(request{path: "/api/v2/accounts", session: session(t, g*1000+i%20)})
				d := time.Since(start)
				mu.Lock()
				worst = max(worst, d)
				if err != nil || resp.StatusCode != http.StatusOK {
					bad++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("%d requests with stdout stalled: %d failed, slowest %v", n, bad, worst.Round(time.Millisecond))
	if bad > 0 {
		t.Errorf("%d requests failed with stdout stalled", bad)
	}
	if worst > 2*time.Second {
		t.Errorf("a request took %v with stdout stalled: logging blocks requests", worst)
	}

	// Reading stdout again: the buffered lines come out.
	lines := make(chan int)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		count := 0
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"message":"request"`) {
				count++
				if count == 1000 {
					lines <- count
				}
			}
		}
	}()
	select {
	case <-lines:
	case <-time.After(10 * time.Second):
		t.Errorf("the request lines buffered while stdout stalled did not come out")
	}
}
