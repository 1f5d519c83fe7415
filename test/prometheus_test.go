package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/finproxy/finproxy/test/emulator"
)

// TestPrometheusScrapesFinproxy starts a real Prometheus (Debian's, from
// scripts/ensure-prometheus.sh) on loopback with a config of its own that
// scrapes a running finproxy's admin listener as job "finproxy" and loads
// deploy/prometheus-alerts.yaml, then reads finproxy's request counter back
// through Prometheus' query API: the metrics, the job name the alert rules
// match and the rules themselves work in a real server, not only in promtool.
func TestPrometheusScrapesFinproxy(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus not installed (scripts/ensure-prometheus.sh installs it): %v", err)
	}
	rules, err := filepath.Abs("../deploy/prometheus-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}

	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, proxyEnv(f))
	p.waitReady()
	const sent = 3
	for i := range sent {
		if resp, body := p.do(request{path: "/api/v2/accounts", session: session(t, i)}); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}

	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, fmt.Appendf(nil, `global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: finproxy
    static_configs:
      - targets: [%q]
`, rules, p.admin), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // the bound of the whole test
	defer cancel()
	out := &syncBuffer{}
	cmd := exec.CommandContext(ctx, bin,
		"--config.file="+config,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
	)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()

	// query runs an instant query and returns the single sample's value.
	query := func(q string) (float64, bool) {
		resp, err := http.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return 0, false
		}
		defer resp.Body.Close()
		var r struct {
			Status string
			Data   struct {
				Result []struct {
					Value [2]any
				}
			}
		}
		if json.NewDecoder(resp.Body).Decode(&r) != nil || r.Status != "success" || len(r.Data.Result) != 1 {
			return 0, false
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil
	}
	const q = `sum(finproxy_requests_total{job="finproxy", route="/", code="200"})`
	deadline := time.Now().Add(60 * time.Second)
	for {
		if v, ok := query(q); ok && v == sent {
			break
		}
		select {
		case <-done:
			t.Fatalf("prometheus exited:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			v, ok := query(q)
			t.Fatalf("%s = %v (%v), want %d within 60 s; prometheus:\n%s", q, v, ok, sent, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v, ok := query(`up{job="finproxy"}`); !ok || v != 1 {
		t.Errorf(`up{job="finproxy"} = %v (%v), want 1`, v, ok)
	}

	// The alert rules loaded into the server, all healthy.
	resp, err := http.Get("http://" + addr + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Groups []struct {
				Rules []struct{ Name, Health string }
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range r.Data.Groups {
		for _, rule := range g.Rules {
			n++
			if rule.Health == "err" {
				t.Errorf("rule %s: health %s", rule.Name, rule.Health)
			}
		}
	}
	if n != 8 {
		t.Errorf("prometheus loaded %d rules, want the 8 of deploy/prometheus-alerts.yaml", n)
	}
}
