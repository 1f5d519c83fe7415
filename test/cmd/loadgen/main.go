// Command loadgen is the load generator of make bench (loopback only):
//
//	loadgen open -url U -rate R -duration D [-conns C] [-sessions N | -session-file F]
//	    open loop at a constant rate, modelled on wrk2 (Gil Tene's
//	    constant-throughput wrk; no code of it is used here)
//	loadgen open -url U -compare V -slice S ...
//	    the same for two targets taking turns of S, and what V adds to
//	    U's p50 and p99
//	loadgen cold -url U -n N -concurrency C [-prefix P]
//	    N requests, each of a session never seen before, C at a time: the
//	    cost of first sight (user creation and login through finAPI)
//	loadgen jwts -hmac K -issuer I -n N
//	    prints N HS256 session JWTs (sub user-1 … user-N, valid 2 h), one
//	    per line, for -session-file
//
// # Open loop
//
// The schedule is global and fixed before the run: request i (of
// rate*duration) is due at start + i/rate, whatever the target does. C
// persistent keep-alive HTTP/1.1 connections (-conns, 64) each have one
// sender goroutine that takes the next request index from a shared counter,
// sleeps until that request is due if it is early, writes a precomputed raw
// GET (one byte slice per session, rotating over the sessions; -header
// Authorization sends "Authorization: Bearer <session>"), and reads the
// response with a small parser of its own (status line, headers, a body by
// Content-Length, chunked or to the end of the connection) that allocates
// nothing. This is wrk2's approach: the cost per request is a write and a
// read on a connection that already exists, not a goroutine and a net/http
// round trip, so the generator stays cheap next to the target sharing its
// cores.
//
// Latency counts from when the request was due, not from when it was sent:
// a sender that is still waiting for a slow answer takes its next request
// late, and that delay is part of the next request's latency, so queueing
// behind a stalled target shows instead of being hidden (no coordinated
// omission). A sender that was early and slept counts from when it woke
// instead: Go's timers wake up to a millisecond late, a delay of the
// generator's own that would otherwise add about half a millisecond to
// every p50. At most C requests are outstanding; a target slower than
// C/rate per answer makes the senders fall behind schedule, which shows as
// latency and in "max lag", how far behind schedule a sender started a
// request at most (a generator that cannot keep up shows there too). Timer
// granularity makes max lag a little above zero even on an idle machine.
//
// A request whose connection fails counts as failed (status 0) and the next
// one on that connection dials again; after 5 failed dials in a row a
// connection gives up for the run, which is reported (and the exit status
// is 1). A request on a reused connection that the server had closed
// before any byte of an answer is retried once on a new one, as net/http
// does.
//
// Dropped: requests that were due but still unsent one second after the
// last due time (the senders were that far behind). Everything stops at
// the duration plus 10 s; a request still unanswered then counts as failed.
// The warm-up (-warmup, 2 s) runs the same schedule first on the same
// connections and is not counted.
//
// # Two targets in turns
//
// With -compare, each target gets its own C connections and warm-up, and
// then the two take turns: the -url target sends the schedule of one
// -slice (1 s), then the -compare target twice as long, the first again
// twice, and so on, until each has sent for -duration; each side's turns
// are summed into one set of figures. A machine whose speed drifts, or that
// stalls for a moment now and then (a neighbour on a shared host, a
// collector elsewhere), then weighs on both sides alike instead of on
// whichever ran in that stretch: the difference of two tail latencies
// measured one after the other is mostly that noise. Each turn is an open
// loop of its own, from its first due time; a turn starts when the last
// answer of the previous one came in.
//
// Results go to stdout as one human line and one line of key=value pairs
// starting with "RESULT" for scripts; with -compare, one of each per side
// (RESULT side=url, RESULT side=compare), then the line "added by …" and
// "ADDED p50=… p99=…", the -compare side's figures less the -url side's.
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
		_, err = open(os.Args[2:], os.Stdout)
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
	report(os.Stdout, fmt.Sprintf("cold path: %d new sessions, concurrency %d", *n, *concurrency), "", results, time.Since(start), 0, "")
	return nil
}

// summary is what report prints, for tests.
type summary struct {
	answered, ok, failed int
	byStatus             map[int]int // failed requests by status, 0: transport error
	dropped              int64
	p50, p99, max        float64 // ms
}

// report prints one human line (what, the figures, then extra) and one
// RESULT line of key=value pairs, side=tag first when tag is set. Results
// of status -1 were never sent and are not counted as answered.
func report(w io.Writer, what, tag string, results []result, elapsed time.Duration, dropped int64, extra string) summary {
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
	fmt.Fprintf(w, "%s: %d answered in %.2fs (%.0f/s), %d ok, %d failed %v, %d dropped; latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms%s\n",
		what, len(lat), elapsed.Seconds(), float64(len(lat))/elapsed.Seconds(), ok, errs, kinds, dropped,
		pct(0.50), pct(0.90), pct(0.99), pct(0.999), pct(1), extra)
	if tag != "" {
		tag = " side=" + tag
	}
	fmt.Fprintf(w, "RESULT%s answered=%d ok=%d failed=%d dropped=%d seconds=%.3f p50=%.3f p90=%.3f p99=%.3f p999=%.3f max=%.3f\n", tag,
		len(lat), ok, errs, dropped, elapsed.Seconds(), pct(0.50), pct(0.90), pct(0.99), pct(0.999), pct(1))
	return summary{answered: len(lat), ok: ok, failed: errs, byStatus: failed, dropped: dropped, p50: pct(0.5), p99: pct(0.99), max: pct(1)}
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
