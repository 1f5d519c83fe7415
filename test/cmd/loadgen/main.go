// Command loadgen is the load generator of make bench (loopback only):
//
//	loadgen open -url U -rate R -duration D [-sessions N | -session-file F]
//	    open loop: requests start at a constant rate whether or not earlier
//	    ones have finished, and each latency counts from when its request
//	    was due, not from when it was sent, so a stalled target shows as
//	    queueing instead of being hidden (no coordinated omission)
//	loadgen cold -url U -n N -concurrency C [-prefix P]
//	    N requests, each of a session never seen before, C at a time: the
//	    cost of first sight (user creation and login through finAPI)
//	loadgen jwts -hmac K -issuer I -n N
//	    prints N HS256 session JWTs (sub user-1 … user-N, valid 2 h), one
//	    per line, for -session-file
//
// Results go to stdout as one human line and one line of key=value pairs
// starting with "RESULT" for scripts.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen open|cold|jwts [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "open":
		err = open(os.Args[2:])
	case "cold":
		err = cold(os.Args[2:])
	case "jwts":
		err = jwts(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// loopback refuses any target that is not on this machine.
func loopback(raw string) error {
	req, err := http.NewRequest(http.MethodGet, raw, nil)
	if err != nil {
		return err
	}
	ips, err := net.LookupIP(req.URL.Hostname())
	if err != nil {
		return err
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s is not a loopback address: loadgen only loads this machine", req.URL.Host)
		}
	}
	return nil
}

func client(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

// result is one request's outcome.
type result struct {
	latency time.Duration
	status  int // 0: transport error
}

func do(c *http.Client, url, header, session string) int {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if session != "" {
		if strings.EqualFold(header, "Authorization") {
			req.Header.Set("Authorization", "Bearer "+session)
		} else {
			req.Header.Set(header, session)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func sessions(n int, file, prefix string) ([]string, error) {
	if file == "" {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%06d", prefix, i)
		}
		return out, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, errors.New(file + " holds no sessions")
	}
	return out, sc.Err()
}

func open(args []string) error {
	fs := flag.NewFlagSet("open", flag.ExitOnError)
	url := fs.String("url", "", "target URL (loopback)")
	rate := fs.Float64("rate", 1000, "requests per second")
	duration := fs.Duration("duration", 10*time.Second, "how long to send")
	n := fs.Int("sessions", 1000, "sessions to rotate through (generated: <prefix>000000…)")
	prefix := fs.String("prefix", "bench-session-", "prefix of generated sessions")
	file := fs.String("session-file", "", "sessions to rotate through, one per line (instead of -sessions)")
	header := fs.String("header", "X-Session-Id", "header carrying the session (Authorization: as a Bearer token)")
	maxInFlight := fs.Int("max-in-flight", 4096, "requests outstanding at most; beyond, due requests are counted as dropped")
	warmup := fs.Duration("warmup", 2*time.Second, "sent at the same rate first and not counted: connections are opened then, not in the measurement")
	fs.Parse(args)
	if err := loopback(*url); err != nil {
		return err
	}
	ss, err := sessions(*n, *file, *prefix)
	if err != nil {
		return err
	}
	total := int(*rate * duration.Seconds())
	interval := time.Duration(float64(time.Second) / *rate)
	c := client(*maxInFlight)
	if *warmup > 0 {
		var wg sync.WaitGroup
		start := time.Now()
		for i := 0; i < int(*rate*warmup.Seconds()); i++ {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
			wg.Go(func() { do(c, *url, *header, ss[i%len(ss)]) })
		}
		wg.Wait()
	}
	results := make([]result, total)
	var inFlight, dropped atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		if inFlight.Load() >= int64(*maxInFlight) {
			dropped.Add(1)
			results[i] = result{status: -1}
			continue
		}
		inFlight.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer inFlight.Add(-1)
			status := do(c, *url, *header, ss[i%len(ss)])
			results[i] = result{latency: time.Since(due), status: status}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	report(fmt.Sprintf("open loop %.0f req/s for %v", *rate, *duration), results, elapsed, dropped.Load())
	return nil
}

func cold(args []string) error {
	fs := flag.NewFlagSet("cold", flag.ExitOnError)
	url := fs.String("url", "", "target URL (loopback)")
	n := fs.Int("n", 10000, "new sessions")
	concurrency := fs.Int("concurrency", 200, "requests at a time")
	prefix := fs.String("prefix", fmt.Sprintf("cold-%d-", time.Now().UnixNano()), "prefix of the new sessions")
	header := fs.String("header", "X-Session-Id", "header carrying the session")
	fs.Parse(args)
	if err := loopback(*url); err != nil {
		return err
	}
	c := client(*concurrency)
	results := make([]result, *n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range *concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= *n {
					return
				}
				t0 := time.Now()
				status := do(c, *url, *header, fmt.Sprintf("%s%06d", *prefix, i))
				results[i] = result{latency: time.Since(t0), status: status}
			}
		})
	}
	wg.Wait()
	report(fmt.Sprintf("cold path: %d new sessions, concurrency %d", *n, *concurrency), results, time.Since(start), 0)
	return nil
}

func report(what string, results []result, elapsed time.Duration, dropped int64) {
	var lat []time.Duration
	ok, failed := 0, map[int]int{}
	for _, r := range results {
		switch {
		case r.status == -1:
		case r.status >= 200 && r.status < 300:
			ok++
			lat = append(lat, r.latency)
		default:
			failed[r.status]++
			lat = append(lat, r.latency)
		}
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	errs := 0
	var kinds []string
	for status, n := range failed {
		errs += n
		name := fmt.Sprint(status)
		if status == 0 {
			name = "transport"
		}
		kinds = append(kinds, fmt.Sprintf("%s×%d", name, n))
	}
	slices.Sort(kinds)
	fmt.Printf("%s: %d answered in %.2fs (%.0f/s), %d ok, %d failed %v, %d dropped; latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
		what, len(lat), elapsed.Seconds(), float64(len(lat))/elapsed.Seconds(), ok, errs, kinds, dropped,
		pct(0.50), pct(0.90), pct(0.99), pct(0.999), pct(1))
	fmt.Printf("RESULT answered=%d ok=%d failed=%d dropped=%d seconds=%.3f p50=%.3f p90=%.3f p99=%.3f p999=%.3f max=%.3f\n",
		len(lat), ok, errs, dropped, elapsed.Seconds(), pct(0.50), pct(0.90), pct(0.99), pct(0.999), pct(1))
}

func jwts(args []string) error {
	fs := flag.NewFlagSet("jwts", flag.ExitOnError)
	key := fs.String("hmac", "", "HS256 key")
	issuer := fs.String("issuer", "", "iss")
	n := fs.Int("n", 1000, "how many")
	fs.Parse(args)
	if len(*key) < 32 {
		return errors.New("-hmac must be at least 32 bytes")
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	exp := time.Now().Add(2 * time.Hour)
	for i := 1; i <= *n; i++ {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
			Issuer: *issuer, Subject: fmt.Sprintf("user-%d", i), ExpiresAt: jwt.NewNumericDate(exp),
		}).SignedString([]byte(*key))
		if err != nil {
			return err
		}
		fmt.Fprintln(w, s)
	}
	return nil
}
