package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// grace is how long after the last due time a request may still be
	// sent; what is unsent by then is dropped.
	grace = time.Second
	// overrun is how long after the end of a phase everything stops,
	// answered or not: requests still waiting for their response then
	// count as failed (status 0).
	overrun = 10 * time.Second
	// maxDialFails is how many dials in a row a connection may fail before
	// it gives up for the rest of the phase.
	maxDialFails = 5
	dialTimeout  = 5 * time.Second
)

func open(args []string, w io.Writer) ([]summary, error) {
	fs := flag.NewFlagSet("open", flag.ContinueOnError)
	target := fs.String("url", "", "target URL (http, loopback)")
	compare := fs.String("compare", "", "a second target (http, loopback), measured interleaved with -url: each side sends the same schedule in turns of -slice, and what -compare adds to -url's p50 and p99 is printed")
	slice := fs.Duration("slice", time.Second, "with -compare: how long one turn of one side lasts; -duration is each side's total")
	rate := fs.Float64("rate", 1000, "requests per second")
	duration := fs.Duration("duration", 10*time.Second, "how long to send (with -compare: to each target)")
	conns := fs.Int("conns", 64, "persistent keep-alive connections, one sender each: at most this many requests outstanding (with -compare: to each target)")
	n := fs.Int("sessions", 1000, "sessions to rotate through (generated: <prefix>000000…)")
	prefix := fs.String("prefix", "bench-session-", "prefix of generated sessions")
	file := fs.String("session-file", "", "sessions to rotate through, one per line (instead of -sessions)")
	header := fs.String("header", "X-Session-Id", "header carrying the session (Authorization: as a Bearer token)")
	warmup := fs.Duration("warmup", 2*time.Second, "sent at the same rate first (to each target) and not counted: connections and the target warm up then, not in the measurement")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *rate <= 0 || *duration <= 0 || *conns < 1 || *warmup < 0 {
		return nil, errors.New("-rate, -duration and -conns must be positive, -warmup not negative")
	}
	if *compare != "" && *rate*slice.Seconds() < 1 {
		return nil, errors.New("with -compare, -slice must hold at least one request at -rate")
	}
	urls := []string{*target}
	if *compare != "" {
		urls = append(urls, *compare)
	}
	ss, err := sessions(*n, *file, *prefix)
	if err != nil {
		return nil, err
	}
	sides := make([]*side, len(urls))
	for k, u := range urls {
		if err := loopback(u); err != nil {
			return nil, err
		}
		g, err := newGenerator(u, *header, ss, *conns)
		if err != nil {
			return nil, err
		}
		defer g.close()
		sides[k] = &side{g: g}
	}
	for _, sd := range sides {
		if *warmup > 0 {
			sd.g.run(*rate, *warmup)
		}
	}
	// One side alone runs its whole duration at once. Two take turns:
	// url, compare, compare, url, url, … so that each is as often first
	// of a pair of turns, and a machine whose speed drifts over the run
	// (or stalls for a moment) lands on both alike.
	turns, turn := 1, *duration
	if len(sides) == 2 {
		turns = max(1, int((*duration+*slice/2) / *slice))
		turn = *duration / time.Duration(turns)
	}
	for k := range turns {
		order := sides
		if k%2 == 1 {
			order = []*side{sides[1], sides[0]}
		}
		for _, sd := range order {
			sd.add(sd.g.run(*rate, turn))
		}
	}
	what := fmt.Sprintf("open loop %.0f req/s for %v", *rate, *duration)
	if len(sides) == 2 {
		what += fmt.Sprintf(" in %d turns of %v", turns, turn)
	}
	var out []summary
	var failed error
	for k, sd := range sides {
		extra := fmt.Sprintf("; max lag %.2f ms (how far behind schedule a sender got at most), %d connections", float64(sd.maxLag.Microseconds())/1000, *conns)
		if sd.gaveUp > 0 {
			extra += fmt.Sprintf("; %d times a connection gave up after %d failed dials in a row (last: %s)", sd.gaveUp, maxDialFails, sd.lastErr)
			if failed == nil {
				failed = fmt.Errorf("%d times a connection gave up dialling %s: %s", sd.gaveUp, sd.g.addr, sd.lastErr)
			}
		}
		label, tag := what, ""
		if len(sides) == 2 {
			label, tag = urls[k]+": "+what, []string{"url", "compare"}[k]
		}
		out = append(out, report(w, label, tag, sd.results, sd.elapsed, sd.dropped, extra))
	}
	if len(out) == 2 {
		d50, d99 := out[1].p50-out[0].p50, out[1].p99-out[0].p99
		fmt.Fprintf(w, "added by %s to %s: p50 %+.2f ms, p99 %+.2f ms\n", urls[1], urls[0], d50, d99)
		fmt.Fprintf(w, "ADDED p50=%.3f p99=%.3f\n", d50, d99)
	}
	return out, failed
}

// side is one target's generator and what its runs add up to.
type side struct {
	g       *generator
	results []result
	elapsed time.Duration
	maxLag  time.Duration
	dropped int64
	gaveUp  int   // connections that gave up dialling, summed over runs
	lastErr error // why the last of them did
}

func (s *side) add(ph *phase) {
	s.results = append(s.results, ph.results...)
	s.elapsed += ph.elapsed
	s.maxLag = max(s.maxLag, ph.maxLag)
	for _, r := range ph.results {
		if r.status == -1 {
			s.dropped++
		}
	}
	for _, err := range ph.gaveUp {
		if err != nil {
			s.gaveUp++
			s.lastErr = err
		}
	}
}

// generator holds the precomputed requests and the connections that send
// them; phases (warm-up, measurement) reuse the connections.
type generator struct {
	addr  string
	reqs  [][]byte // one raw request per session
	conns []*hconn
}

// hconn is one persistent HTTP/1.1 connection; nil c: to be dialled.
type hconn struct {
	c      net.Conn
	br     *bufio.Reader
	reused bool // has answered a request since it was dialled
}

func newGenerator(target, header string, ss []string, conns int) (*generator, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("%s: only http:// targets", target)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	g := &generator{addr: addr, reqs: make([][]byte, len(ss))}
	for i, s := range ss {
		if strings.ContainsAny(s, "\r\n") {
			return nil, fmt.Errorf("session %d holds a line break", i)
		}
		if strings.EqualFold(header, "Authorization") {
			s = "Bearer " + s
		}
		g.reqs[i] = []byte("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\n" + header + ": " + s + "\r\n\r\n")
	}
	for range conns {
		c := &hconn{}
		if err := c.dial(addr, time.Now().Add(dialTimeout)); err != nil {
			g.close()
			return nil, err
		}
		g.conns = append(g.conns, c)
	}
	return g, nil
}

func (g *generator) close() {
	for _, c := range g.conns {
		c.close()
	}
}

func (c *hconn) dial(addr string, deadline time.Time) error {
	nc, err := net.DialTimeout("tcp", addr, min(dialTimeout, time.Until(deadline)))
	if err != nil {
		return err
	}
	nc.SetDeadline(deadline)
	c.c, c.reused = nc, false
	if c.br == nil {
		c.br = bufio.NewReaderSize(nc, 16<<10)
	} else {
		c.br.Reset(nc)
	}
	return nil
}

func (c *hconn) close() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// phase is one run of the schedule: request i is due at start + i/rate.
type phase struct {
	start   time.Time
	rate    float64
	total   int64
	next    atomic.Int64 // the next request index to take
	sendBy  time.Time    // last due time + grace: unsent then, dropped
	stop    time.Time    // hard stop: end + overrun
	results []result     // by request index; status -1: never sent
	elapsed time.Duration
	maxLag  time.Duration
	gaveUp  []error // by connection: why it stopped dialling, or nil
}

func (p *phase) due(i int64) time.Time {
	return p.start.Add(time.Duration(float64(i) * float64(time.Second) / p.rate))
}

// run sends rate*d requests on schedule over the generator's connections
// and returns when all are answered, dropped or stopped (by d + overrun).
func (g *generator) run(rate float64, d time.Duration) *phase {
	p := &phase{rate: rate, total: max(int64(rate*d.Seconds()), 1)}
	p.results = make([]result, p.total)
	for i := range p.results {
		p.results[i].status = -1
	}
	lags := make([]time.Duration, len(g.conns))
	p.gaveUp = make([]error, len(g.conns))
	p.start = time.Now()
	p.stop = p.start.Add(d + overrun)
	p.sendBy = p.due(p.total - 1).Add(grace)
	var wg sync.WaitGroup
	for k, c := range g.conns {
		wg.Go(func() { lags[k], p.gaveUp[k] = g.send(c, p) })
	}
	wg.Wait()
	p.elapsed = time.Since(p.start)
	for _, l := range lags {
		p.maxLag = max(p.maxLag, l)
	}
	return p
}

// send is one connection's sender: it takes the next request index, waits
// for its due time if early, sends it and reads the answer, until the
// schedule is exhausted or past its send-by time. It returns how far behind
// schedule it started a request at most, and why it gave up dialling if it
// did.
func (g *generator) send(c *hconn, p *phase) (maxLag time.Duration, gaveUp error) {
	if c.c != nil {
		c.c.SetDeadline(p.stop)
	}
	fails := 0
	for {
		i := p.next.Add(1) - 1
		if i >= p.total {
			return maxLag, nil
		}
		due := p.due(i)
		now := time.Now()
		// Latency counts from the due time when the sender comes to a
		// request late (it was waiting for the target: queueing shows),
		// and from when it woke when it was early and slept: the timer
		// wakes up to a millisecond late, which is the generator's
		// delay, not the target's.
		from := due
		if d := due.Sub(now); d > 0 {
			time.Sleep(d)
			now = time.Now()
			from = now
		}
		if now.After(p.sendBy) || now.After(p.stop) {
			return maxLag, nil // this one and all later ones stay unsent: dropped
		}
		maxLag = max(maxLag, now.Sub(due))
		if c.c == nil {
			if err := c.dial(g.addr, p.stop); err != nil {
				p.results[i] = result{latency: time.Since(from), status: 0}
				if fails++; fails >= maxDialFails {
					return maxLag, err
				}
				time.Sleep(time.Duration(fails) * 10 * time.Millisecond)
				continue
			}
			fails = 0
		}
		status := c.do(g.reqs[i%int64(len(g.reqs))], g.addr, p.stop)
		p.results[i] = result{latency: time.Since(from), status: status}
	}
}

// do sends one request and reads its response: the status, or 0 when the
// connection failed (it is closed then, and dialled again by the next
// request). As net/http does, a request whose reused connection turns out
// closed by the server before any byte of an answer is retried once on a
// new connection.
func (c *hconn) do(req []byte, addr string, stop time.Time) int {
	for attempt := 0; ; attempt++ {
		reused := c.reused
		status, keep, err := c.roundTrip(req)
		if err == nil {
			c.reused = true
			if !keep {
				c.close()
			}
			return status
		}
		c.close()
		if !reused || attempt > 0 || !idleClosed(err) || c.dial(addr, stop) != nil {
			return 0
		}
	}
}

// errNoAnswer: the connection ended before the first byte of an answer.
var errNoAnswer = errors.New("connection closed before an answer")

func idleClosed(err error) bool {
	return errors.Is(err, errNoAnswer) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (c *hconn) roundTrip(req []byte) (status int, keep bool, err error) {
	if _, err := c.c.Write(req); err != nil {
		return 0, false, err
	}
	if _, err := c.br.Peek(1); err != nil {
		if err == io.EOF {
			return 0, false, errNoAnswer
		}
		return 0, false, err
	}
	return readResponse(c.br)
}

// overlong stands for a header line longer than the read buffer (a big
// cookie, say): never one of the headers readResponse looks at.
var overlong = []byte("x-overlong: ")

// readLine returns the next line without its line end, valid until the next
// read.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		for err == bufio.ErrBufferFull {
			_, err = br.ReadSlice('\n')
		}
		if err != nil {
			return nil, err
		}
		return overlong, nil
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

var (
	hContentLength    = []byte("Content-Length")
	hTransferEncoding = []byte("Transfer-Encoding")
	hConnection       = []byte("Connection")
	vChunked          = []byte("chunked")
	vClose            = []byte("close")
	vKeepAlive        = []byte("keep-alive")
)

// readResponse reads one HTTP/1.x response to a GET: the status line, the
// headers (only Content-Length, Transfer-Encoding and Connection matter),
// and the body, discarded, delimited by Content-Length, chunked encoding
// or the end of the connection. keep: the connection may carry the next
// request. It allocates nothing.
func readResponse(br *bufio.Reader) (status int, keep bool, err error) {
	for {
		line, err := readLine(br)
		if err != nil {
			return 0, false, err
		}
		// HTTP/1.1 200 OK
		if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
			return 0, false, fmt.Errorf("malformed status line %q", line)
		}
		status = 0
		for _, b := range line[9:12] {
			if b < '0' || b > '9' {
				return 0, false, fmt.Errorf("malformed status line %q", line)
			}
			status = status*10 + int(b-'0')
		}
		keep = line[7] != '0' // HTTP/1.0: close unless the server says keep-alive
		length, chunked := int64(-1), false
		for {
			line, err := readLine(br)
			if err != nil {
				return 0, false, err
			}
			if len(line) == 0 {
				break
			}
			colon := bytes.IndexByte(line, ':')
			if colon < 0 {
				return 0, false, fmt.Errorf("malformed header line %q", line)
			}
			name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
			switch {
			case bytes.EqualFold(name, hContentLength):
				if length, err = parseUint(value, 10); err != nil {
					return 0, false, fmt.Errorf("Content-Length %q: %w", value, err)
				}
			case bytes.EqualFold(name, hTransferEncoding):
				chunked = hasToken(value, vChunked)
			case bytes.EqualFold(name, hConnection):
				if hasToken(value, vClose) {
					keep = false
				} else if hasToken(value, vKeepAlive) {
					keep = true
				}
			}
		}
		switch {
		case status >= 100 && status < 200 && status != 101:
			continue // an interim answer (100 Continue, 103 Early Hints): the real one follows
		case status == 101:
			return 0, false, errors.New("unexpected 101 Switching Protocols")
		case status == 204 || status == 304:
		case chunked:
			if err := discardChunked(br); err != nil {
				return 0, false, err
			}
		case length >= 0:
			if _, err := br.Discard(int(length)); err != nil {
				return 0, false, err
			}
		default: // the body runs to the end of the connection
			if _, err := io.Copy(io.Discard, br); err != nil {
				return 0, false, err
			}
			keep = false
		}
		return status, keep, nil
	}
}

func discardChunked(br *bufio.Reader) error {
	for {
		line, err := readLine(br)
		if err != nil {
			return err
		}
		if semi := bytes.IndexByte(line, ';'); semi >= 0 {
			line = line[:semi] // chunk extensions
		}
		size, err := parseUint(bytes.TrimSpace(line), 16)
		if err != nil {
			return fmt.Errorf("chunk size %q: %w", line, err)
		}
		if size == 0 {
			for { // trailers, up to the empty line
				line, err := readLine(br)
				if err != nil {
					return err
				}
				if len(line) == 0 {
					return nil
				}
			}
		}
		if _, err := br.Discard(int(size)); err != nil {
			return err
		}
		if line, err := readLine(br); err != nil {
			return err
		} else if len(line) != 0 {
			return errors.New("chunk not followed by CRLF")
		}
	}
}

var errNumber = errors.New("not a number")

func parseUint(b []byte, base int64) (int64, error) {
	if len(b) == 0 || len(b) > 15 {
		return 0, errNumber
	}
	var n int64
	for _, c := range b {
		var d int64
		switch {
		case c >= '0' && c <= '9':
			d = int64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = int64(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = int64(c-'A') + 10
		default:
			return 0, errNumber
		}
		n = n*base + d
	}
	return n, nil
}

// hasToken reports whether the comma-separated list v holds tok (any case).
func hasToken(v, tok []byte) bool {
	for len(v) > 0 {
		var t []byte
		if comma := bytes.IndexByte(v, ','); comma >= 0 {
			t, v = v[:comma], v[comma+1:]
		} else {
			t, v = v, nil
		}
		if bytes.EqualFold(bytes.TrimSpace(t), tok) {
			return true
		}
	}
	return false
}
