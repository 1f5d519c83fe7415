//go:build linux

// Command soak is finproxy's soak test (make soak): it shows that finproxy
// plateaus under a long, steady load instead of slowly filling up.
//
// It starts two finproxy replicas sharing one Redis (FINPROXY_STORE=redis,
// a prefix of its own per run; by default a redis-server of the soak's own
// on a free loopback port, so that restarting it disturbs no one else's;
// -redis-url uses an existing one instead) in front of one finAPI emulator,
// all on loopback, and drives them open loop: requests leave at a constant rate
// whether or not earlier ones were answered, so a slowing finproxy shows
// as latency and shed requests instead of as a quietly lower rate. Over
// the run every one of -sessions sessions is created, new ones arriving
// steadily, while returning sessions come back: a small resident set all
// the time (their tokens are renewed ahead, again and again), and sessions
// created within the last one or three minutes (tokens expired: a refresh
// on demand, or a new login after the entry was evicted). Some sessions
// log out or delete their finAPI user. User tokens and the session idle
// time are short (-token-ttl, -session-idle), so that every lifecycle path
// runs many times and the sessions in use reach their steady state within
// minutes rather than hours.
//
// Every -interval (one minute) it prints one line: requests sent in the
// interval and answered in it by class, sessions created so far, latency
// from each request's scheduled send time (so a stall is not hidden by the
// requests it kept from being sent), the time spent in finproxy and in its
// upstream calls, the machine's load; per replica its CPU and the peak over
// the interval (sampled every 10 s) of RSS, Go heap in use, goroutines,
// open fds, finproxy_sessions_cached and the heap held by finproxy's
// per-session tables (rate-limiter buckets and back-off holds: a sampled
// estimate from /debug/pprof/heap, as no metric counts them); then Redis's
// used_memory (the whole instance, shared with whatever else uses it) and
// its key count under the run's prefix, the emulator's CPU and RSS and the
// soak tool's own heap and goroutines.
//
// Faults, on a schedule printed at the start (-faults=false turns them
// off): the emulator's token endpoint answers 503 for 15 s, and the Redis
// is SIGKILLed and started again, empty, on the same port. With the
// defaults at 2.5 and 7.5 minutes (token) and 4.5 and 8.5 (Redis): the
// schedule is built around the two intervals the verdict compares, the
// steady one (minute 5 to 6) and the last (9 to 10), so that neither has a
// fault in it and each starts half an interval after a Redis restart and
// 1.5 to 3.5 minutes after a token fault: both are seen at the same phase
// of the store's refill, and a leak still shows as a difference between
// them. Longer runs place the faults the same way around their steady and
// last intervals; runs too short for a verdict get the default run's
// schedule scaled to -duration, and under 2 minutes none. The Redis
// restarts are skipped (with a note) with -redis-url, the token faults with
// -emulator. During a fault and 15 s after it (the grace: finproxy's
// token back-off is capped at 10 s, plus a retry in flight), finproxy's
// documented fault answers (503 with Retry-After, 502 or 504, 429 with
// Retry-After; each with its X-Finproxy-Error reason and in finAPI's
// ErrorMessage shape) are counted as expected, per fault and reason;
// anything else, a network error or timeout or a shed request, inside a
// window or out of it, still fails the run. Per fault it prints the
// recovery time: from the fault's end to the first whole second after it
// in which every answer was the one wanted. A row whose interval overlaps
// a fault window is marked (T token, R Redis) with its expected answers.
// Sessions must keep their finAPI user: the user id of every GET
// /api/v2/users answer is kept per session, and a session that shows
// another one later (across a Redis restart or not) fails the run.
//
// The rule, printed with the verdict: PLATEAU when no request failed or
// was shed (fault answers within a fault window excepted) and no session
// changed its finAPI user; no replica's RSS, heap in use, goroutines, open fds, cached
// sessions or table heap, nor the Redis key count, is higher in the last
// interval than at the steady state by more than 10 % plus a small
// absolute slack (for figures that are small or noisy); and neither
// latency nor work per request rose: after the steady interval the median
// p99 (medians over the intervals without a fault window, the first left
// out) is at most twice the median before it plus 10 ms (latency follows
// the load of the shared machine: the bound catches a doubling, not
// noise), and the median CPU time per request at most 1.25 times it plus
// 0.05 ms (barely moved by the load, it is what grows when a request's
// work grows with the run). The steady state is when the set of sessions
// finproxy may hold stops changing: returning sessions come back within 3
// minutes of their creation, and an entry lives a token's life plus the
// idle time after its last write, counted up to a minute longer by the L1
// (6 minutes with the defaults). Before it the caches fill, growth that
// stops; a leak keeps growing after it. If the steady or the last
// interval has a fault window (an unusual -duration or -interval), the
// verdict is INCONCLUSIVE. Otherwise GROWTH, and the exit
// status is 1, as it is after any unexpected answer. Runs too short to
// have 3 intervals after the steady one say INCONCLUSIVE (exit 0 if
// nothing failed).
//
// The emulator runs in a child process of this binary (the hidden
// subcommand "emulator"), not as bin/finapi-emulator: that binary records
// every request it serves for the tests' sake, which over a soak is a heap
// growing by about 75 MiB a minute at 400 req/s, on the same two cores.
// The child resets the record every 10 s; -emulator runs the real binary
// instead.
//
// Children are stopped on exit, also on Ctrl-C, and die with the soak if it
// is killed (Pdeathsig); the run's Redis keys are deleted at the end. Linux
// only (Pdeathsig, /proc).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/finproxy/finproxy/test/emulator"
)

const (
	clientID       = "soak-client"
	clientSecret   = "soak-client-secret"
	identitySecret = "soak-identity-secret-0123456789abcdef-not-for-production"
	sessionHeader  = "X-Session-Id"
	replicas       = 2
	// residentSessions are the first sessions created; they return all run
	// long and are never logged out or deleted, so their tokens are renewed
	// ahead over and over.
	residentSessions = 200
	// A returning session was created within recentWindow (half of the
	// returning requests) or within returnWindow (three tenths). Windows,
	// not the whole population: with a fixed window the set of sessions in
	// use stops changing after returnWindow, so the caches can reach a
	// steady state that a plateau can be judged against; with returns drawn
	// from everyone created so far, the set in use would keep growing with
	// the population, and so, rightly, would the caches.
	recentWindow = time.Minute
	returnWindow = 3 * time.Minute
	// janitorLag is how long an expired L1 entry may still be counted:
	// go-cache sweeps once a minute.
	janitorLag  = time.Minute
	sampleEvery = 10 * time.Second
	// maxConnsPerReplica bounds the soak's connections to one replica;
	// requests beyond it wait for one, their latency counted.
	maxConnsPerReplica = 64
	// defaultSessions is the figure for the default duration.
	defaultSessions = 50000
	defaultDuration = 10 * time.Minute
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "emulator" {
		os.Exit(emulatorChild(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:]))
}

type options struct {
	duration, interval, timeout, tokenTTL, sessionIdle time.Duration
	rate                                               float64
	sessions, maxInflight                              int
	finproxy, emulatorBin, redisURL, latency, logLevel string
	seed                                               uint64
	keepLogs, faults                                   bool
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.DurationVar(&o.duration, "duration", defaultDuration, "how long requests are sent")
	fs.Float64Var(&o.rate, "rate", 400, "requests per second, both replicas together (open loop)")
	fs.IntVar(&o.sessions, "sessions", defaultSessions, "sessions created over the run; unless given, scaled to -duration (50000 per 10m)")
	fs.IntVar(&o.maxInflight, "max-inflight", 256, "requests in flight at most; a request due beyond it is shed (and counts as a failure)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "timeout of one request")
	fs.DurationVar(&o.interval, "interval", time.Minute, "report interval")
	fs.DurationVar(&o.tokenTTL, "token-ttl", time.Minute, "expires_in of the emulator's user tokens")
	fs.DurationVar(&o.sessionIdle, "session-idle", time.Minute, "FINPROXY_SESSION_IDLE of the replicas")
	fs.StringVar(&o.latency, "latency", "/api/v2/=5ms", "emulator latency per path prefix: prefix=duration,…")
	fs.StringVar(&o.finproxy, "finproxy", "", "finproxy binary (default: go build into a temporary directory)")
	fs.StringVar(&o.emulatorBin, "emulator", "", "finapi-emulator binary to use instead of this binary's own emulator child")
	fs.StringVar(&o.redisURL, "redis-url", "", "an existing Redis for the replicas (the Redis restart faults are then skipped); default: a redis-server of the soak's own on a free loopback port")
	fs.BoolVar(&o.faults, "faults", true, "inject the faults (token endpoint 503s, Redis restarts) on the printed schedule")
	fs.StringVar(&o.logLevel, "log-level", "warn", "FINPROXY_LOG_LEVEL of the replicas")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the request mix")
	fs.BoolVar(&o.keepLogs, "keep-logs", false, "keep the children's logs (their directory is printed)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "sessions" })
	if !explicit {
		// A short debugging run keeps the new-session rate of the real one.
		o.sessions = int(math.Round(defaultSessions * o.duration.Seconds() / defaultDuration.Seconds()))
	}
	switch {
	case o.duration <= 0 || o.interval <= 0 || o.timeout <= 0 || o.tokenTTL <= 0 || o.sessionIdle <= 0:
		return o, errors.New("durations must be positive")
	case o.rate <= 0 || o.maxInflight <= 0 || o.sessions < 1:
		return o, errors.New("-rate, -max-inflight and -sessions must be positive")
	case float64(o.sessions)/o.duration.Seconds() > o.rate/2:
		return o, fmt.Errorf("%d sessions in %s need %.0f new sessions/s, more than half of -rate %.0f: raise -rate or lower -sessions",
			o.sessions, o.duration, float64(o.sessions)/o.duration.Seconds(), o.rate)
	}
	if _, err := parseLatency(o.latency); err != nil {
		return o, err
	}
	return o, nil
}

func run(args []string) int {
	o, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	s, err := setUp(ctx, o)
	if s != nil {
		defer s.tearDown()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		if s != nil {
			s.dumpLogs()
		}
		return 2
	}
	return s.soak(ctx)
}

// ---- processes ----

type child struct {
	name, logPath string
	cmd           *exec.Cmd
	done          chan struct{}
	exitErr       error
}

func startChild(name, logDir, bin string, args, env []string, files []*os.File) (*child, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.ExtraFiles = files
	// A group of its own keeps the terminal's Ctrl-C away from the
	// children, so that the soak stops them in order; Pdeathsig takes them
	// down if the soak itself is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		c.exitErr = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	return c, nil
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *child) stop() {
	if c.exited() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// rssMiB reads VmRSS of a child from /proc.
func rssMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return math.NaN()
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return math.NaN()
}

// listeners returns n loopback listeners; all are open until each is known,
// so no port is handed out twice.
func listeners(n int) ([]*net.TCPListener, error) {
	var out []*net.TCPListener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			for _, l := range out {
				l.Close()
			}
			return nil, err
		}
		out = append(out, ln.(*net.TCPListener))
	}
	return out, nil
}

// ---- set-up ----

type replica struct {
	name, addr, admin string
	proc              *child
}

type soak struct {
	o        options
	dir      string
	emu      *child
	reps     []*replica
	rdb      *redis.Client
	prefix   string
	client   *http.Client // the load: one pooled client for the whole run
	scrape   *http.Client
	ids      []string
	newLimit float64
	logsKept bool
	prev     counters // at the last row, for per-interval rates

	redisMu     sync.Mutex
	redisSrv    *child // the soak's own redis-server; nil with -redis-url
	redisPort   int
	redisStarts int
	faults      []*fault
	faultNotes  []string
	start       time.Time
	lastRow     time.Duration
	secs        *seconds
	users       userTrack
}

// counters are the cumulative figures a row turns into rates.
type counters struct {
	at               time.Time
	cpu              [replicas]float64 // process_cpu_seconds_total
	emuCPU           float64
	durSum, durCount float64 // finproxy_request_duration_seconds, both replicas
	upSum, upCount   float64 // finproxy_upstream_duration_seconds
}

func (s *soak) readCounters(ctx context.Context) counters {
	c := counters{at: time.Now(), emuCPU: cpuSeconds(s.emu.cmd.Process.Pid)}
	for i, r := range s.reps {
		m := s.metrics(ctx, r)
		c.cpu[i] = m["process_cpu_seconds_total"]
		c.durSum += sumMetric(m, "finproxy_request_duration_seconds_sum")
		c.durCount += sumMetric(m, "finproxy_request_duration_seconds_count")
		c.upSum += sumMetric(m, "finproxy_upstream_duration_seconds_sum")
		c.upCount += sumMetric(m, "finproxy_upstream_duration_seconds_count")
	}
	return c
}

// sumMetric sums a metric over its label sets.
func sumMetric(m map[string]float64, name string, labels ...string) float64 {
	var t float64
next:
	for k, v := range m {
		if k != name && !strings.HasPrefix(k, name+"{") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(k, l) {
				continue next
			}
		}
		t += v
	}
	return t
}

// cpuSeconds reads a child's user and system time from /proc (clock ticks
// of 1/100 s, as on every Linux this runs on).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return math.NaN()
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return math.NaN()
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100
}

// load1 is the machine's one-minute load average: the soak shares the
// machine, and this says how much with.
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return math.NaN()
	}
	v, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return v
}

func setUp(ctx context.Context, o options) (*soak, error) {
	dir, err := os.MkdirTemp("", "finproxy-soak-")
	if err != nil {
		return nil, err
	}
	s := &soak{o: o, dir: dir, prefix: fmt.Sprintf("finproxy-soak-%d-%d:", os.Getpid(), time.Now().Unix())}

	s.users.m = map[int]*seenUser{}
	s.secs = newSeconds(o.duration + o.timeout)
	if o.redisURL == "" {
		if s.redisPort, err = freePort(); err != nil {
			return s, err
		}
		s.o.redisURL = fmt.Sprintf("redis://127.0.0.1:%d/0", s.redisPort)
		ropt, _ := redis.ParseURL(s.o.redisURL)
		s.rdb = redis.NewClient(ropt)
		if err := s.startRedis(ctx); err != nil {
			return s, err
		}
	} else {
		ropt, err := redis.ParseURL(o.redisURL)
		if err != nil {
			return s, fmt.Errorf("-redis-url: %w", err)
		}
		s.rdb = redis.NewClient(ropt)
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err = s.rdb.Ping(pctx).Err()
		cancel()
		if err != nil {
			return s, fmt.Errorf("redis at %s does not answer (scripts/ensure-redis.sh starts one): %w", o.redisURL, err)
		}
	}

	if s.o.finproxy == "" {
		s.o.finproxy = filepath.Join(dir, "finproxy")
		build := exec.CommandContext(ctx, "go", "build", "-o", s.o.finproxy, "github.com/finproxy/finproxy")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return s, fmt.Errorf("go build finproxy: %w", err)
		}
	}

	lns, err := listeners(2 + 2*replicas)
	if err != nil {
		return s, err
	}
	access, processctl := lns[0].Addr().String(), lns[1].Addr().String()
	env := []string{"PATH=" + os.Getenv("PATH")}
	if s.o.emulatorBin != "" {
		lns[0].Close()
		lns[1].Close()
		s.emu, err = startChild("emulator", dir, s.o.emulatorBin, []string{
			"-addr", access, "-processctl-addr", processctl, "-echo-addr", "",
			"-client-id", clientID, "-client-secret", clientSecret,
			"-user-token-ttl", o.tokenTTL.String(), "-latency", o.latency,
		}, env, nil)
	} else {
		// The listeners themselves go to our own child: no port can be
		// taken by someone else between here and its start.
		var files []*os.File
		for _, ln := range lns[:2] {
			f, ferr := ln.File()
			if ferr != nil {
				return s, ferr
			}
			defer f.Close()
			files = append(files, f)
			ln.Close()
		}
		self, serr := os.Executable()
		if serr != nil {
			return s, serr
		}
		s.emu, err = startChild("emulator", dir, self, []string{
			"emulator", "-user-token-ttl", o.tokenTTL.String(), "-latency", o.latency,
		}, env, files)
	}
	if err != nil {
		return s, err
	}

	// Each replica may take all new sessions of both at twice the planned
	// rate: the new-identity budget guards against invented sessions, and
	// must not be what the soak measures.
	newPerSec := float64(o.sessions) / o.duration.Seconds()
	s.newLimit = math.Ceil(2 * newPerSec)
	for i := range replicas {
		r := &replica{name: fmt.Sprintf("r%d", i+1), addr: lns[2+2*i].Addr().String(), admin: lns[3+2*i].Addr().String()}
		lns[2+2*i].Close()
		lns[3+2*i].Close()
		renv := append(slices.Clone(env),
			"FINPROXY_LISTEN_ADDR="+r.addr,
			"FINPROXY_ADMIN_ADDR="+r.admin,
			"FINPROXY_ACCESS_URL=http://"+access,
			"FINPROXY_PROCESSCTL_URL=http://"+processctl,
			"FINPROXY_CLIENT_ID="+clientID,
			"FINPROXY_CLIENT_SECRET="+clientSecret,
			"FINPROXY_IDENTITY_SECRET="+identitySecret,
			"FINPROXY_STORE=redis",
			"FINPROXY_REDIS_URL="+s.o.redisURL,
			"FINPROXY_REDIS_PREFIX="+s.prefix,
			"FINPROXY_SESSION_IDLE="+o.sessionIdle.String(),
			"FINPROXY_NEW_SESSION_RATE="+strconv.FormatFloat(s.newLimit, 'f', -1, 64),
			"FINPROXY_LOG_LEVEL="+o.logLevel,
			"FINPROXY_PPROF=true",
			"FINPROXY_SHUTDOWN_DELAY=0s",
		)
		r.proc, err = startChild("finproxy-"+r.name, dir, s.o.finproxy, nil, renv, nil)
		if err != nil {
			return s, err
		}
		s.reps = append(s.reps, r)
	}

	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * o.maxInflight,
		MaxIdleConnsPerHost: maxConnsPerReplica, // as many as may be open: no connection churn
		// Bounded, so that a burst (a stall of the shared machine) does not
		// leave each replica with a connection, a goroutine and an fd per
		// request it held up: those figures are to measure finproxy.
		MaxConnsPerHost: maxConnsPerReplica,
		IdleConnTimeout: 90 * time.Second,
	}
	s.client = &http.Client{Transport: tr}
	s.scrape = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}

	if err := s.await(ctx, "emulator", "http://"+access+"/api/v2/banks", func(int) bool { return true }); err != nil {
		return s, err
	}
	for _, r := range s.reps {
		if err := s.await(ctx, "finproxy-"+r.name, "http://"+r.admin+"/readyz", func(c int) bool { return c == http.StatusOK }); err != nil {
			return s, err
		}
	}

	s.ids = make([]string, o.sessions)
	for i := range s.ids {
		s.ids[i] = fmt.Sprintf("soak-%d-session-%07d", os.Getpid(), i)
	}
	return s, nil
}

// await polls url until ok accepts its status, for up to 30 s.
func (s *soak) await(ctx context.Context, name, url string, ok func(int) bool) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := s.scrape.Get(url); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if ok(resp.StatusCode) {
				return nil
			}
		}
		if c := s.childByName(name); c != nil && c.exited() {
			return fmt.Errorf("%s exited at start: %v", name, c.exitErr)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready at %s after 30s", name, url)
}

func (s *soak) children() []*child {
	var out []*child
	if s.emu != nil {
		out = append(out, s.emu)
	}
	for _, r := range s.reps {
		out = append(out, r.proc)
	}
	return out
}

func (s *soak) childByName(name string) *child {
	for _, c := range s.children() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// dumpLogs prints the tail of every child's log, for a failed run.
func (s *soak) dumpLogs() {
	for _, c := range s.children() {
		b, err := os.ReadFile(c.logPath)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(b) == 0 {
			lines = []string{"(empty)"}
		}
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		fmt.Fprintf(os.Stderr, "--- %s (last lines of %s)\n%s\n", c.name, c.logPath, strings.Join(lines, "\n"))
	}
	s.logsKept = true
}

func (s *soak) tearDown() {
	var wg sync.WaitGroup
	for _, c := range s.children() {
		wg.Go(c.stop)
	}
	wg.Wait()
	if s.rdb != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		n, err := deletePrefix(ctx, s.rdb, s.prefix)
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "soak: cleaning Redis prefix %s: %v\n", s.prefix, err)
		} else {
			fmt.Fprintf(os.Stderr, "soak: deleted %d Redis keys under %s\n", n, s.prefix)
		}
		s.rdb.Close()
	}
	s.stopRedis()
	if s.o.keepLogs || s.logsKept {
		fmt.Fprintf(os.Stderr, "soak: logs kept in %s\n", s.dir)
	} else {
		os.RemoveAll(s.dir)
	}
}

// ---- Redis ----

func scanPrefix(ctx context.Context, rdb *redis.Client, prefix string, each func([]string) error) error {
	var cursor uint64
	for {
		// Small steps: one SCAN blocks Redis for the replicas meanwhile (a
		// COUNT of 1000 took up to 70 ms on the shared box).
		keys, next, err := rdb.Scan(ctx, cursor, prefix+"*", 100).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := each(keys); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

func countPrefix(ctx context.Context, rdb *redis.Client, prefix string) (int, error) {
	n := 0
	err := scanPrefix(ctx, rdb, prefix, func(keys []string) error { n += len(keys); return nil })
	return n, err
}

func deletePrefix(ctx context.Context, rdb *redis.Client, prefix string) (int, error) {
	n := 0
	err := scanPrefix(ctx, rdb, prefix, func(keys []string) error {
		d, err := rdb.Unlink(ctx, keys...).Result()
		n += int(d)
		return err
	})
	return n, err
}

func usedMemoryMiB(ctx context.Context, rdb *redis.Client) float64 {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return math.NaN()
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			b, _ := strconv.ParseFloat(v, 64)
			return b / (1 << 20)
		}
	}
	return math.NaN()
}

// ---- the load ----

type kind int

const (
	kindWarmUp kind = iota // POST /proxy/v1/session
	kindGet
	kindLogout // POST /proxy/v1/session/logout
	kindDelete // DELETE /proxy/v1/session
)

var getPaths = []string{"/api/v2/accounts", "/api/v2/bankConnections", "/api/v2/users"}

// Session states: >= 0 requests in flight; deleting and deleted keep a
// session's other requests away from its user deletion (they would race it
// and see a user that is gone, which is the caller's race, not finproxy's).
const (
	stDeleting int32 = -1
	stDeleted  int32 = -2
)

// interval collects one report interval's answers and samples; guarded
// by load.mu, which also guards swapping it, so that no answer lands in an
// interval already printed.
type interval struct {
	sent, ok, c2, c3, c4, c5, netErr, shed int
	unexpected, faultExp                   int
	latencies                              []time.Duration
	newTotal                               int
	replicaMax                             [replicas]replicaSample
	emuRSS, soakHeap                       float64
	soakGoroutines                         int
	sampled                                bool
}

type replicaSample struct {
	rss, heap, goroutines, fds, cached, tables float64
}

func (a *replicaSample) maxOf(b replicaSample) {
	a.rss = max(a.rss, b.rss)
	a.heap = max(a.heap, b.heap)
	a.goroutines = max(a.goroutines, b.goroutines)
	a.fds = max(a.fds, b.fds)
	a.cached = max(a.cached, b.cached)
	a.tables = max(a.tables, b.tables)
}

// row is one printed report line.
type row struct {
	load                                               float64
	cpu                                                [replicas]float64 // % of one core
	emuCPU, fpMs, upMs                                 float64
	cpuMs                                              float64 // both replicas' CPU time per answered request
	elapsed                                            time.Duration
	sent, ok, c2, c3, c4, c5, netErr, shed, unexpected int
	faultExp                                           int
	faults                                             string // markers of the faults whose windows overlap the interval
	newTotal                                           int
	p50, p99, max                                      time.Duration
	rep                                                [replicas]replicaSample
	redisMiB                                           float64
	redisKeys                                          int
	emuRSS, soakHeap                                   float64
	soakGoroutines                                     int
}

type load struct {
	s        *soak
	state    []atomic.Int32
	inflight chan struct{}
	wg       sync.WaitGroup
	failLog  atomic.Int32
	created  int // sessions whose first request was sent; scheduler only

	mu  sync.Mutex
	cur *interval
}

// update runs f on the current interval.
func (l *load) update(f func(*interval)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(l.cur)
}

// swap starts a new interval, its latency buffer sized like the last
// one's, and returns the finished one.
func (l *load) swap() *interval {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.cur
	l.cur = &interval{latencies: make([]time.Duration, 0, cap(old.latencies)), newTotal: old.newTotal}
	return old
}

// schedule sends requests at o.rate from start until start+o.duration.
func (l *load) schedule(ctx context.Context, start time.Time) {
	o := l.s.o
	rng := rand.New(rand.NewPCG(o.seed, 0x50a4))
	gap := time.Duration(float64(time.Second) / o.rate)
	newPerSec := float64(o.sessions) / o.duration.Seconds()
	recent := int(newPerSec * recentWindow.Seconds())
	back := int(newPerSec * returnWindow.Seconds())
	t := time.NewTimer(0)
	defer t.Stop()
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * gap)
		if at.Sub(start) >= o.duration {
			return
		}
		if d := time.Until(at); d > 0 {
			t.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		r := l.s.reps[i%replicas]
		idx, k := l.pick(rng, at.Sub(start), recent, back)
		shed := false
		select {
		case l.inflight <- struct{}{}:
		default:
			shed = true
			l.release(idx, k, false)
		}
		l.update(func(iv *interval) {
			iv.sent++
			iv.newTotal = l.created
			if shed {
				iv.shed++
			}
		})
		if shed {
			continue
		}
		l.wg.Go(func() {
			defer func() { <-l.inflight }()
			l.do(ctx, r, idx, k, at)
		})
	}
}

// pick chooses the next request: a new session while fewer have been
// created than the steady arrival says by now, else a returning one. It
// marks the session busy (or deleting); the scheduler goroutine alone calls
// it.
func (l *load) pick(rng *rand.Rand, elapsed time.Duration, recent, back int) (int, kind) {
	o := l.s.o
	due := int(float64(o.sessions) * elapsed.Seconds() / o.duration.Seconds())
	if l.created <= due && l.created < o.sessions {
		idx := l.created
		l.created++
		l.state[idx].Add(1)
		if idx%2 == 0 {
			return idx, kindWarmUp
		}
		return idx, kindGet
	}
	n := l.created
	resident := min(residentSessions, n)
	x := rng.Float64()
	if lo := max(resident, n-back); n > lo && x < 0.013 {
		// Logouts and deletions on non-resident sessions only: the resident
		// ones are there to renew ahead all run long.
		idx := lo + rng.IntN(n-lo)
		if x < 0.003 {
			if l.state[idx].CompareAndSwap(0, stDeleting) {
				return idx, kindDelete
			}
		} else if l.acquire(idx) {
			return idx, kindLogout
		}
	}
	for range 4 {
		var idx int
		switch y := rng.Float64(); {
		case y < 0.2:
			idx = rng.IntN(resident)
		case y < 0.7:
			lo := max(0, n-recent)
			idx = lo + rng.IntN(n-lo)
		default:
			lo := max(0, n-back)
			idx = lo + rng.IntN(n-lo)
		}
		if l.acquire(idx) {
			return idx, kindGet
		}
	}
	idx := rng.IntN(resident) // resident sessions are never deleted
	l.acquire(idx)
	return idx, kindGet
}

func (l *load) acquire(idx int) bool {
	for {
		v := l.state[idx].Load()
		if v < 0 {
			return false
		}
		if l.state[idx].CompareAndSwap(v, v+1) {
			return true
		}
	}
}

func (l *load) release(idx int, k kind, deleted bool) {
	switch {
	case k != kindDelete:
		l.state[idx].Add(-1)
	case deleted:
		l.state[idx].Store(stDeleted)
	default:
		l.state[idx].Store(0)
	}
}

func (l *load) do(ctx context.Context, r *replica, idx int, k kind, scheduled time.Time) {
	method, path, want := http.MethodGet, "", http.StatusOK
	switch k {
	case kindWarmUp:
		method, path = http.MethodPost, "/proxy/v1/session"
	case kindGet:
		path = getPaths[idx%len(getPaths)]
		if idx < residentSessions {
			// Resident sessions would otherwise always hit one path.
			path = getPaths[int(scheduled.UnixNano()/1e6)%len(getPaths)]
		}
	case kindLogout:
		method, path, want = http.MethodPost, "/proxy/v1/session/logout", http.StatusNoContent
	case kindDelete:
		method, path, want = http.MethodDelete, "/proxy/v1/session", http.StatusNoContent
	}
	rctx, cancel := context.WithTimeout(ctx, l.s.o.timeout)
	defer cancel()
	res, err := l.send(rctx, r, method, path, l.s.ids[idx])
	status, reason := res.status, res.reason
	l.release(idx, k, status == want)
	done := time.Now()
	lat := done.Sub(scheduled)
	bad := err != nil || status != want
	l.s.noteSecond(done, !bad)
	if !bad && res.userID != "" {
		l.s.noteUser(idx, res.userID, done)
	}
	expected := false
	if bad && ctx.Err() == nil {
		if f := l.s.faultAt(scheduled, done); f != nil {
			expected = err == nil && expectedInFault(res)
			f.record(res, err, expected)
		}
	}
	if expected {
		bad = false
	}
	l.update(func(iv *interval) {
		iv.latencies = append(iv.latencies, lat)
		switch {
		case err != nil:
			iv.netErr++
		case status < 300:
			iv.c2++
		case status < 400:
			iv.c3++
		case status < 500:
			iv.c4++
		default:
			iv.c5++
		}
		switch {
		case bad:
			iv.unexpected++
		case expected:
			iv.faultExp++
		default:
			iv.ok++
		}
	})
	if bad && ctx.Err() == nil && l.failLog.Add(1) <= 20 {
		fmt.Fprintf(os.Stderr, "soak: unexpected answer from %s: %s %s (session %d): status %d %s %v\n",
			r.name, method, path, idx, status, reason, err)
	}
}

// usersPath answers carry the session's finAPI user.
const usersPath = "/api/v2/users"

func (l *load) send(ctx context.Context, r *replica, method, path, session string) (result, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+r.addr+path, nil)
	if err != nil {
		return result{}, err
	}
	req.Header.Set(sessionHeader, session)
	resp, err := l.s.client.Do(req)
	if err != nil {
		return result{}, err
	}
	// Read to the end, so the connection goes back to the pool.
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	res := result{status: resp.StatusCode, reason: resp.Header.Get("X-Finproxy-Error"), retryAfter: resp.Header.Get("Retry-After") != ""}
	switch {
	case err != nil:
	case res.status >= 400:
		var em struct {
			Errors []struct {
				Code string `json:"code"`
			} `json:"errors"`
		}
		if json.Unmarshal(body, &em) == nil && len(em.Errors) > 0 {
			res.code = em.Errors[0].Code
		}
	case res.status == http.StatusOK && method == http.MethodGet && path == usersPath:
		var u struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(body, &u) == nil {
			res.userID = u.ID
		}
	}
	return res, err
}

// ---- observation ----

// sample scrapes every replica and the process figures into the current
// interval's maxima; the table heap only when tables is set (a heap
// profile costs the replica more than a scrape).
func (s *soak) sample(ctx context.Context, l *load, tables bool) {
	var reps [replicas]replicaSample
	for i, r := range s.reps {
		m := s.metrics(ctx, r)
		reps[i] = replicaSample{
			rss:        m["process_resident_memory_bytes"] / (1 << 20),
			heap:       m["go_memstats_heap_inuse_bytes"] / (1 << 20),
			goroutines: m["go_goroutines"],
			fds:        m["process_open_fds"],
			cached:     m["finproxy_sessions_cached"],
			tables:     math.NaN(),
		}
		if tables {
			reps[i].tables = s.tableHeapKiB(ctx, r)
		}
	}
	emu := rssMiB(s.emu.cmd.Process.Pid)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gor := runtime.NumGoroutine()
	l.update(func(iv *interval) { iv.merge(reps, emu, float64(ms.HeapInuse)/(1<<20), gor, tables) })
}

func (iv *interval) merge(reps [replicas]replicaSample, emu, soakHeap float64, gor int, tables bool) {
	for i := range reps {
		t := iv.replicaMax[i].tables
		if iv.sampled {
			iv.replicaMax[i].maxOf(reps[i])
		} else {
			iv.replicaMax[i] = reps[i]
		}
		// The table heap is read once, at the interval's end: no peak.
		if tables {
			t = reps[i].tables
		}
		iv.replicaMax[i].tables = t
	}
	iv.emuRSS = max(iv.emuRSS, emu)
	iv.soakHeap = max(iv.soakHeap, soakHeap)
	iv.soakGoroutines = max(iv.soakGoroutines, gor)
	iv.sampled = true
}

// metrics returns the unlabelled samples of a replica's /metrics, and the
// labelled ones under their full name{labels} spelling.
func (s *soak) metrics(ctx context.Context, r *replica) map[string]float64 {
	out := map[string]float64{}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.admin+"/metrics", nil)
	resp, err := s.scrape.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// tableMarkers name finproxy's per-session tables in heap profile stacks.
var tableMarkers = []string{"proxy.(*limiters)", "auth.(*backoffs)"}

// tableHeapKiB estimates the heap in use that was allocated inside
// finproxy's per-session tables, from the legacy text heap profile: its
// records are sampled (one per MemProfileRate bytes on average) and are
// scaled back as pprof does. An estimate, as of the replica's last GC.
func (s *soak) tableHeapKiB(ctx context.Context, r *replica) float64 {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.admin+"/debug/pprof/heap?debug=1", nil)
	resp, err := s.scrape.Do(req)
	if err != nil {
		return math.NaN()
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return math.NaN()
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	rate := 512.0 * 1024
	var total, objs, bytes float64
	var inTable bool
	flush := func() {
		if inTable && objs > 0 && bytes > 0 {
			total += bytes / (1 - math.Exp(-(bytes/objs)/rate))
		}
		inTable, objs, bytes = false, 0, 0
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "heap profile:"):
			if _, r, ok := strings.Cut(line, "@ heap/"); ok {
				if v, err := strconv.ParseFloat(strings.TrimSpace(r), 64); err == nil && v > 0 {
					rate = v / 2 // the header carries 2*MemProfileRate
				}
			}
		case strings.HasPrefix(line, "# runtime.MemStats"):
			flush()
			return total / 1024
		case strings.HasPrefix(line, "#"):
			for _, m := range tableMarkers {
				inTable = inTable || strings.Contains(line, m)
			}
		default:
			// "inuse_objects: inuse_bytes [alloc_objects: alloc_bytes] @ pcs"
			head, _, ok := strings.Cut(line, " [")
			if !ok {
				continue
			}
			flush()
			o, b, ok := strings.Cut(head, ": ")
			if !ok {
				continue
			}
			objs, _ = strconv.ParseFloat(o, 64)
			bytes, _ = strconv.ParseFloat(b, 64)
		}
	}
	flush()
	return total / 1024
}

// ---- the run ----

func (s *soak) soak(ctx context.Context) int {
	o := s.o
	newPerSec := float64(o.sessions) / o.duration.Seconds()
	fmt.Printf("soak: %d finproxy replicas (redis store %s, prefix %s) in front of one finAPI emulator, loopback, %d cores\n",
		replicas, redactURL(o.redisURL), s.prefix, runtime.NumCPU())
	fmt.Printf("soak: open loop %.0f req/s for %s, replicas alternating; %d sessions (%.1f new/s; %d resident, recent = created in the last %s, returning = in the last %s); "+
		"user tokens %s, FINPROXY_SESSION_IDLE %s, FINPROXY_NEW_SESSION_RATE %.0f per replica, emulator latency %s; max in flight %d, timeout %s\n",
		o.rate, o.duration, o.sessions, newPerSec, residentSessions, recentWindow, returnWindow, o.tokenTTL, o.sessionIdle, s.newLimit, o.latency, o.maxInflight, o.timeout)
	fmt.Println("soak: mix: new sessions (half start with POST /proxy/v1/session), returning 20 % resident / 50 % recent / 30 % returning; " +
		"GET /api/v2/accounts, /api/v2/bankConnections, /api/v2/users; 1 % logouts, 0.3 % user deletions")
	fmt.Println("soak: per interval: min = minutes since start; requests sent in it, answered in it (ok, 4xx, 5xx, net = network error or timeout), " +
		"shed (over -max-inflight), sessions created so far; latency in ms from the scheduled send: p50, p99, max; fpms, upms = mean time in " +
		"finproxy and in its upstream call (finproxy's histograms, both replicas); load = the machine's 1-minute load average")
	fmt.Println("soak: per replica: cpu% of one core; peaks of the 10 s samples: rss, heap (in use) MiB, gor = goroutines, fds = open fds, " +
		"cache = finproxy_sessions_cached; tblK = heap of the per-session tables (rate-limiter buckets, back-off holds) in KiB, " +
		"a sampled estimate from /debug/pprof/heap at the interval's end; then Redis used_memory MiB (the whole instance) and keys under the prefix, " +
		"emulator cpu% and RSS MiB, the soak tool's own heap MiB and goroutines")
	s.faults, s.faultNotes = s.planFaults()
	for _, n := range s.faultNotes {
		fmt.Println("soak: faults:", n)
	}
	if len(s.faults) > 0 {
		var parts []string
		for _, f := range s.faults {
			parts = append(parts, fmt.Sprintf("%.2f %s", f.at.Minutes(), f.label()))
		}
		fmt.Printf("soak: fault schedule (minutes): %s; answers during a fault and %s after it may be finproxy's documented fault answers "+
			"(503 with Retry-After, 502, 504, 429 with Retry-After; each with X-Finproxy-Error, in finAPI's error shape): counted as expected, "+
			"per fault; anything else fails the run; rows with a fault window are marked T (token) / R (Redis), with their expected answers\n",
			strings.Join(parts, ", "), faultGrace)
	}
	fmt.Println(header())

	l := &load{s: s, state: make([]atomic.Int32, o.sessions), inflight: make(chan struct{}, o.maxInflight),
		cur: &interval{latencies: make([]time.Duration, 0, int(o.rate*o.interval.Seconds())+16)}}
	lctx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	s.prev = s.readCounters(ctx)
	start := time.Now()
	s.start = start
	faultsDone := make(chan struct{})
	fctx, cancelFaults := context.WithCancel(ctx)
	defer cancelFaults()
	go func() {
		s.runFaults(fctx)
		close(faultsDone)
	}()
	scheduled := make(chan struct{})
	go func() {
		l.schedule(lctx, start)
		close(scheduled)
	}()

	var rows []row
	var died *child
	ticker := time.NewTicker(sampleEvery)
	defer ticker.Stop()
	end := start.Add(o.duration)
	next := start.Add(o.interval)
	interrupted := false
loop:
	for {
		wait := time.Until(next)
		if next.After(end) || next.Equal(end) {
			wait = time.Until(end)
		}
		timer := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			interrupted = true
			break loop
		case <-ticker.C:
			timer.Stop()
			s.sample(ctx, l, false)
			for _, c := range s.children() {
				if c.exited() {
					died = c
					break loop
				}
			}
		case <-timer.C:
			if !next.Before(end) {
				break loop
			}
			s.sample(ctx, l, true)
			rows = append(rows, s.row(ctx, l, time.Since(start)))
			next = next.Add(o.interval)
		}
	}
	if died != nil || interrupted {
		cancelLoad()
	}
	<-scheduled
	cancelFaults() // no fault begins after the load
	<-faultsDone
	l.wg.Wait() // bounded by the request timeout
	// The interval cut short by Ctrl-C is printed too; after a child died
	// its figures would be half missing.
	if died == nil {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		s.sample(sctx, l, true)
		rows = append(rows, s.row(sctx, l, time.Since(start)))
		cancel()
	}
	return s.summary(rows, died, interrupted)
}

func (s *soak) row(ctx context.Context, l *load, elapsed time.Duration) row {
	iv := l.swap()
	lat := iv.latencies
	slices.Sort(lat)
	rw := row{
		elapsed: elapsed, sent: iv.sent, ok: iv.ok, c2: iv.c2, c3: iv.c3, c4: iv.c4, c5: iv.c5,
		netErr: iv.netErr, shed: iv.shed, unexpected: iv.unexpected,
		p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), rep: iv.replicaMax,
		emuRSS: iv.emuRSS, soakHeap: iv.soakHeap, soakGoroutines: iv.soakGoroutines, newTotal: iv.newTotal,
		faultExp: iv.faultExp,
	}
	from, to := s.start.Add(s.lastRow), s.start.Add(elapsed)
	s.lastRow = elapsed
	for _, f := range s.faults {
		if a, b, ok := f.window(); ok && a.Before(to) && b.After(from) {
			rw.faults += f.marker()
		}
	}
	if len(lat) > 0 {
		rw.max = lat[len(lat)-1]
	}
	c := s.readCounters(ctx)
	dt := c.at.Sub(s.prev.at).Seconds()
	var cpu float64
	for i := range c.cpu {
		rw.cpu[i] = 100 * (c.cpu[i] - s.prev.cpu[i]) / dt
		cpu += c.cpu[i] - s.prev.cpu[i]
	}
	rw.cpuMs = 1000 * cpu / float64(iv.c2+iv.c3+iv.c4+iv.c5+iv.netErr)
	rw.emuCPU = 100 * (c.emuCPU - s.prev.emuCPU) / dt
	rw.fpMs = 1000 * (c.durSum - s.prev.durSum) / (c.durCount - s.prev.durCount)
	rw.upMs = 1000 * (c.upSum - s.prev.upSum) / (c.upCount - s.prev.upCount)
	rw.load = load1()
	s.prev = c
	rw.redisMiB = usedMemoryMiB(ctx, s.rdb)
	if n, err := countPrefix(ctx, s.rdb, s.prefix); err == nil {
		rw.redisKeys = n
	} else {
		rw.redisKeys = -1
	}
	fmt.Println(rw.String())
	return rw
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func header() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%5s %6s %6s %3s %3s %3s %4s %5s %5s %5s %5s %5s %5s %4s", "min", "sent", "ok", "4xx", "5xx", "net", "shed", "new",
		"p50", "p99", "max", "fpms", "upms", "load")
	for i := range replicas {
		fmt.Fprintf(&b, " | r%d %4s %4s %4s %3s %3s %5s %4s", i+1, "cpu%", "rss", "heap", "gor", "fds", "cache", "tblK")
	}
	fmt.Fprintf(&b, " | %5s %5s | %4s %4s | %4s %3s", "redis", "keys", "emu%", "emuM", "soak", "gor")
	return b.String()
}

func (r row) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%5.2f %6d %6d %3d %3d %3d %4d %5d %5.1f %5.1f %5.0f %5.1f %5.1f %4.1f", r.elapsed.Minutes(), r.sent, r.ok, r.c4, r.c5, r.netErr, r.shed,
		r.newTotal, ms(r.p50), ms(r.p99), ms(r.max), r.fpMs, r.upMs, r.load)
	for i, p := range r.rep {
		fmt.Fprintf(&b, " |    %4.0f %4.0f %4.1f %3.0f %3.0f %5.0f %4.0f", r.cpu[i], p.rss, p.heap, p.goroutines, p.fds, p.cached, p.tables)
	}
	fmt.Fprintf(&b, " | %5.1f %5d | %4.0f %4.0f | %4.1f %3d", r.redisMiB, r.redisKeys, r.emuCPU, r.emuRSS, r.soakHeap, r.soakGoroutines)
	if r.faults != "" {
		fmt.Fprintf(&b, " | fault %s, %d expected answers", r.faults, r.faultExp)
	}
	return b.String()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ---- verdict ----

// growthRule is one figure the verdict compares: its value in the last
// interval against its value at the steady state (see steadyAfter),
// allowed growthShare plus slack. Not against the start: the first minutes
// fill the caches up to their steady state, growth that stops.
type growthRule struct {
	name  string
	slack float64
	get   func(row) float64
}

const growthShare = 0.10

func rules() []growthRule {
	var out []growthRule
	for i := range replicas {
		p := func(f func(replicaSample) float64) func(row) float64 {
			return func(r row) float64 { return f(r.rep[i]) }
		}
		n := fmt.Sprintf("r%d ", i+1)
		out = append(out,
			growthRule{n + "RSS MiB", 8, p(func(x replicaSample) float64 { return x.rss })},
			growthRule{n + "heap in use MiB", 8, p(func(x replicaSample) float64 { return x.heap })},
			growthRule{n + "goroutines", 40, p(func(x replicaSample) float64 { return x.goroutines })},
			growthRule{n + "open fds", 40, p(func(x replicaSample) float64 { return x.fds })},
			growthRule{n + "sessions cached", 500, p(func(x replicaSample) float64 { return x.cached })},
			// A sampled estimate: one sample per 512 KiB allocated on average.
			growthRule{n + "tables KiB", 2048, p(func(x replicaSample) float64 { return x.tables })},
		)
	}
	return append(out, growthRule{"redis keys", 500, func(r row) float64 { return float64(r.redisKeys) }})
}

// steadyAfter is when the set of sessions finproxy may hold stops
// changing: sessions return within returnWindow of their creation, so the
// set in use is steady after it; an entry lives at most a token's life
// plus the idle time after its last write, and the L1 counts it for up to
// janitorLag longer.
func (s *soak) steadyAfter() time.Duration {
	return returnWindow + s.o.tokenTTL + s.o.sessionIdle + janitorLag
}

// trend is a figure compared between the halves around the steady
// interval: the later median may be at most factor times the earlier one
// plus slack.
type trend struct {
	name          string
	factor, slack float64
	get           func(row) float64
}

func trends() []trend {
	return []trend{
		{"p99 ms", 2, 10, func(r row) float64 { return ms(r.p99) }},
		{"CPU ms per request", 1.25, 0.05, func(r row) float64 { return r.cpuMs }},
	}
}

func trendFactors() string {
	var parts []string
	for _, t := range trends() {
		parts = append(parts, fmt.Sprintf("%g (%s)", t.factor, t.name))
	}
	return strings.Join(parts, ", ")
}

func (s *soak) summary(rows []row, died *child, interrupted bool) int {
	var total row
	for _, r := range rows {
		total.sent += r.sent
		total.ok += r.ok
		total.c4 += r.c4
		total.c5 += r.c5
		total.c3 += r.c3
		total.netErr += r.netErr
		total.shed += r.shed
		total.unexpected += r.unexpected
		total.faultExp += r.faultExp
	}
	fmt.Printf("\nsoak: total sent %d, ok %d, expected during faults %d, unexpected %d (answers of all classes: 3xx %d, 4xx %d, 5xx %d, network/timeout %d), shed %d; sessions created %d of %d\n",
		total.sent, total.ok, total.faultExp, total.unexpected, total.c3, total.c4, total.c5, total.netErr, total.shed, created(rows), s.o.sessions)
	s.totals()
	s.faultReport()
	s.users.mu.Lock()
	seen, crossed, changed := len(s.users.m), s.users.crossed, s.users.changed
	s.users.mu.Unlock()
	fmt.Printf("soak: finAPI users (from GET /api/v2/users answers): %d sessions seen, %d of them seen again after a Redis restart with the same user, %d changed their user\n",
		seen, crossed, changed)

	failed := total.unexpected > 0 || total.shed > 0 || changed > 0
	switch {
	case died != nil:
		fmt.Printf("soak: %s exited during the run: %v\n", died.name, died.exitErr)
		s.dumpLogs()
		fmt.Println("verdict: FAILED")
		return 1
	case interrupted:
		fmt.Println("verdict: INTERRUPTED")
		return 130
	case len(rows) == 0:
		fmt.Println("verdict: FAILED (no interval completed)")
		return 1
	}

	steady := s.steadyAfter()
	need := int(math.Ceil(steady.Seconds()/s.o.interval.Seconds())) - 1
	enough := need+3 < len(rows)
	mid := min(need, len(rows)-1)
	first, middle, last := rows[0], rows[mid], rows[len(rows)-1]
	fmt.Printf("\n%-22s %10s %10s %10s %10s %10s %8s\n", "figure", "first", "steady", "last", "slack", "allowed", "growth")
	fmt.Printf("%-22s %10.2f %10.2f %10.2f\n", "at minute", first.elapsed.Minutes(), middle.elapsed.Minutes(), last.elapsed.Minutes())
	growth := false
	for _, g := range rules() {
		f, m, l := g.get(first), g.get(middle), g.get(last)
		allowed := m*(1+growthShare) + g.slack
		verdict := ""
		if enough && (l > allowed || math.IsNaN(l)) {
			verdict = "  GROWTH"
			growth = true
		}
		fmt.Printf("%-22s %10.1f %10.1f %10.1f %10.0f %10.1f %7.1f%%%s\n", g.name, f, m, l, g.slack, allowed, 100*(l-m)/m, verdict)
	}
	// Trends: the median over the intervals after the steady one against
	// the median up to it (the first, the warm-up, left out). Latency
	// moves with the load of the shared machine, so its bound catches a
	// doubling, not noise; CPU time per request barely does, and is what
	// would rise if finproxy did more work per request as it ran (a table
	// scanned per request, a growing list walked).
	halves := func(get func(row) float64) (early, late float64) {
		var e, l []float64
		for i, r := range rows {
			switch {
			case i == 0, r.faults != "":
			case i <= mid:
				e = append(e, get(r))
			default:
				l = append(l, get(r))
			}
		}
		return median(e), median(l)
	}
	for _, t := range trends() {
		e, l := halves(t.get)
		limit := t.factor*e + t.slack
		verdict := ""
		if enough && !(l <= limit) {
			verdict = "  GROWTH"
			growth = true
		}
		fmt.Printf("%-22s %10.2f %10.2f %10.2f %10.2f %10.2f %7.1f%%%s\n", t.name+" *", t.get(first), e, l, t.slack, limit, 100*(l-e)/e, verdict)
	}
	for _, t := range []trend{
		{name: "finproxy mean ms", get: func(r row) float64 { return r.fpMs }},
		{name: "machine load", get: func(r row) float64 { return r.load }},
	} {
		e, l := halves(t.get)
		fmt.Printf("%-22s %10.2f %10.2f %10.2f   (informational)\n", t.name+" *", t.get(first), e, l)
	}
	fmt.Printf("%-22s %10.1f %10.1f %10.1f   (informational: the whole instance)\n", "redis used_memory MiB", first.redisMiB, middle.redisMiB, last.redisMiB)
	fmt.Printf("%-22s %10.1f %10.1f %10.1f   (informational)\n", "emulator RSS MiB", first.emuRSS, middle.emuRSS, last.emuRSS)
	fmt.Printf("%-22s %10.1f %10.1f %10.1f   (informational)\n", "soak tool heap MiB", first.soakHeap, middle.soakHeap, last.soakHeap)
	fmt.Printf("%-22s %10d %10d %10d   (informational)\n", "soak tool goroutines", first.soakGoroutines, middle.soakGoroutines, last.soakGoroutines)

	fmt.Println("* the first interval's value, then the median over the intervals up to the steady one (the first and those with a fault window left out) and over those after it (those with a fault window left out)")
	fmt.Printf("\nrule: PLATEAU when no request failed or was shed; every figure without * is in the last interval at most its value in the steady interval "+
		"(minute %.2f: the workload's steady state is reached after %s, the return window %s + token life %s + idle %s + the L1 janitor's %s) "+
		"+ %.0f %% + its slack (per-replica figures: the peak of the interval's 10 s samples); and for the figures with * the median after the "+
		"steady interval is at most the median up to it times %s + the slack; it needs 3 intervals after the steady one\n",
		middle.elapsed.Minutes(), steady, returnWindow, s.o.tokenTTL, s.o.sessionIdle, janitorLag, 100*growthShare, trendFactors())
	faultyCompare := enough && (middle.faults != "" || last.faults != "")
	if len(s.faults) > 0 {
		fmt.Printf("rule with faults: answers inside a fault window (+ %s) that are finproxy's documented fault answers do not fail the run; "+
			"the steady and the last interval must be free of fault windows, and the schedule starts each of them half an interval after a Redis restart, "+
			"so that both are compared at the same phase of the store's refill (Redis keys, cached sessions); trend medians leave out intervals with a fault window\n", faultGrace)
	}
	switch {
	case failed:
		fmt.Printf("verdict: FAILED (%d unexpected answers, %d shed, %d sessions changed their finAPI user)\n", total.unexpected, total.shed, changed)
		s.dumpLogs()
		return 1
	case !enough:
		fmt.Printf("verdict: INCONCLUSIVE (%d intervals; the rule needs %d: -duration of at least %s)\n",
			len(rows), need+4, time.Duration(need+4)*s.o.interval)
		return 0
	case faultyCompare:
		fmt.Println("verdict: INCONCLUSIVE (the steady or the last interval has a fault window: -duration and -interval moved the schedule)")
		return 0
	case growth:
		fmt.Println("verdict: GROWTH")
		s.dumpLogs()
		return 1
	}
	fmt.Println("verdict: PLATEAU")
	return 0
}

// totals prints what finproxy did over the run, summed over the
// replicas, to show the lifecycle paths were taken.
func (s *soak) totals() {
	sum := map[string]float64{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, r := range s.reps {
		for k, v := range s.metrics(ctx, r) {
			sum[k] += v
		}
	}
	pick := func(name string, labels ...string) float64 { return sumMetric(sum, name, labels...) }
	fmt.Printf("soak: finproxy (both replicas): users created %.0f; password grants ok %.0f, refresh grants ok %.0f, token requests failed %.0f; "+
		"renewals ahead %.0f, on demand %.0f; 401 replays %.0f; rate limited %.0f; identity conflicts %.0f\n",
		pick("finproxy_users_created_total"),
		pick("finproxy_token_requests_total", `kind="password"`, `outcome="ok"`),
		pick("finproxy_token_requests_total", `kind="refresh"`, `outcome="ok"`),
		pick("finproxy_token_requests_total", `outcome="error"`),
		pick("finproxy_token_renewals_total", `when="ahead"`),
		pick("finproxy_token_renewals_total", `when="on_demand"`),
		pick("finproxy_upstream_retries_total"),
		pick("finproxy_rate_limited_total"),
		pick("finproxy_identity_conflicts_total"))
}

func created(rows []row) int {
	if len(rows) == 0 {
		return 0
	}
	return rows[len(rows)-1].newTotal
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func redactURL(u string) string {
	if ropt, err := redis.ParseURL(u); err == nil {
		return fmt.Sprintf("%s/%d", ropt.Addr, ropt.DB)
	}
	return "?"
}

// ---- the emulator child ----

func parseLatency(spec string) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	for _, item := range strings.Split(spec, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		prefix, d, ok := strings.Cut(item, "=")
		dur, err := time.ParseDuration(d)
		if !ok || !strings.HasPrefix(prefix, "/") || err != nil || dur < 0 {
			return nil, fmt.Errorf("-latency: %q is not prefix=duration", item)
		}
		out[prefix] = dur
	}
	return out, nil
}

// emulatorChild serves the emulator on the listeners passed as fds 3
// (Access) and 4 (Process Controller) until SIGTERM.
func emulatorChild(args []string) int {
	fs := flag.NewFlagSet("soak emulator", flag.ContinueOnError)
	ttl := fs.Duration("user-token-ttl", time.Hour, "expires_in of user tokens")
	spec := fs.String("latency", "", "prefix=duration,…")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	latency, err := parseLatency(*spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak emulator:", err)
		return 2
	}
	emu := emulator.New(emulator.Config{ClientID: clientID, ClientSecret: clientSecret, UserTokenTTL: *ttl})
	apply := func() {
		for p, d := range latency {
			emu.SetLatency(p, d)
		}
	}
	apply()
	var servers []*http.Server
	for i, h := range []http.Handler{emu.Handler(), emu.ProcessController()} {
		ln, err := net.FileListener(os.NewFile(uintptr(3+i), "listener"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak emulator:", err)
			return 2
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		go srv.Serve(ln)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// SIGUSR1 takes the token endpoint down (503), SIGUSR2 brings it back:
	// the soak's token fault; kept over the Resets.
	usr := make(chan os.Signal, 4)
	signal.Notify(usr, syscall.SIGUSR1, syscall.SIGUSR2)
	down := false
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case sig := <-usr:
			down = sig == syscall.SIGUSR1
			emu.SetDown(down)
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			for _, srv := range servers {
				srv.Shutdown(sctx)
			}
			cancel()
			return 0
		case <-t.C:
			// Reset drops the request record (and, with it, the latency
			// settings, put back at once: a request arriving in between
			// goes without the delay, which changes nothing measured).
			emu.Reset()
			apply()
			emu.SetDown(down)
		}
	}
}

// ---- faults ----

const (
	// tokenFaultFor is how long the emulator's token endpoint answers 503.
	tokenFaultFor = 15 * time.Second
	// faultGrace is how long after a fault ends finproxy's fault answers
	// still count as expected: finproxy's back-off of the token grants
	// (capped at 10 s, finapi's backoffCap) may have begun just before the
	// endpoint came back, and a retry may be in flight when it ends.
	faultGrace = 15 * time.Second
)

// A fault is one planned disturbance and what callers saw during it.
type fault struct {
	kind string        // "token" or "redis"
	at   time.Duration // planned, since the start

	mu           sync.Mutex
	start, end   time.Time // actual; end zero while it lasts
	byAnswer     map[string]int
	expected     int
	failed       int // answers in the window that still fail the run
	no503RA      int // 503s without Retry-After (they fail the run)
	statuses503  int
	failedReason map[string]int
}

func (f *fault) label() string {
	if f.kind == "token" {
		return fmt.Sprintf("token endpoint 503 for %s", tokenFaultFor)
	}
	return "Redis SIGKILLed, restarted empty"
}

func (f *fault) marker() string {
	if f.kind == "token" {
		return "T"
	}
	return "R"
}

// window is the fault's accounting window: its actual start to its end
// plus faultGrace; ok is false before it started. A fault that lasts has
// no end yet.
func (f *fault) window() (from, to time.Time, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.start.IsZero() {
		return time.Time{}, time.Time{}, false
	}
	to = f.end.Add(faultGrace)
	if f.end.IsZero() {
		to = time.Now().Add(24 * time.Hour)
	}
	return f.start, to, true
}

// planFaults is the schedule. With enough intervals for a verdict it is
// placed around the two intervals the verdict compares, the steady one and
// the last: each starts half an interval after a Redis restart (so both see
// the same phase of the store refilling: a restart 30 s before, the token
// fault long over), and a token fault lies in the middle of the intervals
// before each (2.5, 4.5, 7.5, 8.5 minutes with the defaults). Shorter runs
// get the same four faults at the default run's fractions of -duration;
// under 2 minutes none.
func (s *soak) planFaults() ([]*fault, []string) {
	o := s.o
	if !o.faults {
		return nil, []string{"faults off (-faults=false)"}
	}
	var notes []string
	iv := o.interval
	need := int(math.Ceil(s.steadyAfter().Seconds()/iv.Seconds())) - 1
	nRows := int(math.Ceil(o.duration.Seconds() / iv.Seconds()))
	var token, rds []time.Duration
	switch {
	case need+3 < nRows:
		steadyStart := time.Duration(need) * iv
		lastStart := time.Duration(nRows-1) * iv
		token = []time.Duration{steadyStart / 2, (steadyStart + iv + lastStart) / 2}
		rds = []time.Duration{steadyStart - iv/2, lastStart - iv/2}
	case o.duration >= 2*time.Minute:
		d := o.duration
		token = []time.Duration{d / 4, d * 3 / 4}
		rds = []time.Duration{d * 45 / 100, d * 85 / 100}
		notes = append(notes, "a run too short for a verdict: the default run's schedule scaled to -duration")
	default:
		return nil, []string{"no faults: -duration under 2m"}
	}
	var out []*fault
	if o.emulatorBin != "" {
		notes = append(notes, "token endpoint faults skipped: -emulator runs a binary the soak cannot switch")
	} else {
		for _, t := range token {
			out = append(out, &fault{kind: "token", at: t})
		}
	}
	if s.redisSrv == nil {
		notes = append(notes, "Redis restarts skipped: -redis-url names a Redis of someone else's, not the soak's own")
	} else {
		for _, t := range rds {
			out = append(out, &fault{kind: "redis", at: t})
		}
	}
	slices.SortFunc(out, func(a, b *fault) int { return int(a.at - b.at) })
	return out, notes
}

// runFaults injects the planned faults at their times.
func (s *soak) runFaults(ctx context.Context) {
	for _, f := range s.faults {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(s.start.Add(f.at))):
		}
		f.mu.Lock()
		f.start = time.Now()
		f.mu.Unlock()
		fmt.Printf("soak: fault at %.2f: %s\n", time.Since(s.start).Minutes(), f.label())
		var err error
		switch f.kind {
		case "token":
			err = s.emu.cmd.Process.Signal(syscall.SIGUSR1)
			select {
			case <-ctx.Done():
			case <-time.After(tokenFaultFor):
			}
			if e := s.emu.cmd.Process.Signal(syscall.SIGUSR2); err == nil {
				err = e
			}
		case "redis":
			err = s.restartRedis(ctx)
		}
		f.mu.Lock()
		f.end = time.Now()
		f.mu.Unlock()
		if err != nil {
			fmt.Printf("soak: fault at %.2f: %v\n", f.at.Minutes(), err)
		}
		fmt.Printf("soak: fault ended at %.2f (%s after it began)\n", time.Since(s.start).Minutes(), f.end.Sub(f.start).Round(time.Millisecond))
	}
}

// faultAt is the fault whose accounting window overlaps [from, to], the
// latest begun first.
func (s *soak) faultAt(from, to time.Time) *fault {
	for i := len(s.faults) - 1; i >= 0; i-- {
		f := s.faults[i]
		if a, b, ok := f.window(); ok && !to.Before(a) && !from.After(b) {
			return f
		}
	}
	return nil
}

// result is what the soak reads from one answer.
type result struct {
	status     int
	reason     string // X-Finproxy-Error
	retryAfter bool
	code       string // the first errors[].code of finAPI's ErrorMessage
	userID     string // id of a GET /api/v2/users answer
}

// expectedInFault says whether an answer is one of finproxy's documented
// answers to a fault: 503 (with Retry-After), 502 or 504, or 429 with
// Retry-After, each with its X-Finproxy-Error reason and in finAPI's
// ErrorMessage shape.
func expectedInFault(r result) bool {
	if r.reason == "" || r.code == "" {
		return false
	}
	switch r.status {
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		return r.retryAfter
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func (f *fault) record(r result, err error, expected bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := fmt.Sprintf("%d %s", r.status, r.reason)
	if err != nil {
		key = "network error/timeout"
	}
	if r.status == http.StatusServiceUnavailable {
		f.statuses503++
		if !r.retryAfter {
			f.no503RA++
		}
	}
	if expected {
		if f.byAnswer == nil {
			f.byAnswer = map[string]int{}
		}
		f.byAnswer[key]++
		f.expected++
		return
	}
	if f.failedReason == nil {
		f.failedReason = map[string]int{}
	}
	f.failedReason[key]++
	f.failed++
}

// ---- per-second outcomes, for the recovery time ----

type seconds struct {
	total, good []atomic.Int32
}

func newSeconds(d time.Duration) *seconds {
	n := int(d/time.Second) + 120
	return &seconds{total: make([]atomic.Int32, n), good: make([]atomic.Int32, n)}
}

func (s *soak) noteSecond(done time.Time, good bool) {
	i := int(done.Sub(s.start) / time.Second)
	if i < 0 || i >= len(s.secs.total) {
		return
	}
	s.secs.total[i].Add(1)
	if good {
		s.secs.good[i].Add(1)
	}
}

// recovery is the time from a fault's end to the first whole second after
// it in which every answer was the one wanted.
func (s *soak) recovery(f *fault) string {
	_, _, ok := f.window()
	if !ok {
		return "did not happen"
	}
	f.mu.Lock()
	end := f.end
	f.mu.Unlock()
	if end.IsZero() {
		return "did not end"
	}
	off := end.Sub(s.start)
	for i := int(math.Ceil(off.Seconds())); i < len(s.secs.total); i++ {
		t := s.secs.total[i].Load()
		if t > 0 && s.secs.good[i].Load() == t {
			return fmt.Sprintf("%.1f s (second %d after the start: all %d answers ok)", (time.Duration(i)*time.Second - off).Seconds(), i, t)
		}
	}
	return "not recovered by the end of the run"
}

// ---- sessions' finAPI users ----

type seenUser struct {
	id      string
	at      time.Time
	crossed bool // seen again, the same, after a Redis restart
}

type userTrack struct {
	mu      sync.Mutex
	m       map[int]*seenUser
	crossed int
	changed int
}

func (s *soak) noteUser(idx int, id string, at time.Time) {
	s.users.mu.Lock()
	defer s.users.mu.Unlock()
	u := s.users.m[idx]
	if u == nil {
		s.users.m[idx] = &seenUser{id: id, at: at}
		return
	}
	if u.id != id {
		s.users.changed++
		if s.users.changed <= 10 {
			fmt.Fprintf(os.Stderr, "soak: session %d changed its finAPI user: %s, then %s\n", idx, u.id, id)
		}
		return
	}
	if !u.crossed {
		for _, f := range s.faults {
			if f.kind != "redis" {
				continue
			}
			f.mu.Lock()
			st, en := f.start, f.end
			f.mu.Unlock()
			if !st.IsZero() && !en.IsZero() && st.After(u.at) && en.Before(at) {
				u.crossed = true
				s.users.crossed++
				break
			}
		}
	}
}

// ---- the soak's own Redis ----

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *soak) startRedis(ctx context.Context) error {
	s.redisStarts++
	c, err := startChild(fmt.Sprintf("redis-%d", s.redisStarts), s.dir, "redis-server", []string{
		"--port", strconv.Itoa(s.redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
	}, []string{"PATH=" + os.Getenv("PATH")}, nil)
	if err != nil {
		return err
	}
	s.redisMu.Lock()
	s.redisSrv = c
	s.redisMu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := s.rdb.Ping(pctx).Err()
		cancel()
		switch {
		case err == nil:
			return nil
		case c.exited():
			return fmt.Errorf("redis-server exited at start: %v (log %s)", c.exitErr, c.logPath)
		case ctx.Err() != nil:
			return ctx.Err()
		case time.Now().After(deadline):
			return fmt.Errorf("redis-server on port %d does not answer after 10s: %v", s.redisPort, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *soak) restartRedis(ctx context.Context) error {
	s.redisMu.Lock()
	c := s.redisSrv
	s.redisMu.Unlock()
	_ = c.cmd.Process.Kill()
	<-c.done
	return s.startRedis(ctx)
}

func (s *soak) stopRedis() {
	s.redisMu.Lock()
	c := s.redisSrv
	s.redisMu.Unlock()
	if c != nil && !c.exited() {
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// faultReport prints what each fault did to the callers and how soon
// they were all answered well again.
func (s *soak) faultReport() {
	if len(s.faults) == 0 {
		return
	}
	fmt.Println()
	for _, f := range s.faults {
		a, _, ok := f.window()
		if !ok {
			fmt.Printf("fault at %.2f (%s): not reached\n", f.at.Minutes(), f.label())
			continue
		}
		f.mu.Lock()
		var parts []string
		for k, v := range f.byAnswer {
			parts = append(parts, fmt.Sprintf("%s ×%d", k, v))
		}
		slices.Sort(parts)
		var bad []string
		for k, v := range f.failedReason {
			bad = append(bad, fmt.Sprintf("%s ×%d", k, v))
		}
		slices.Sort(bad)
		exp, failed, n503, no := f.expected, f.failed, f.statuses503, f.no503RA
		lasted := f.end.Sub(f.start)
		f.mu.Unlock()
		if len(parts) == 0 {
			parts = []string{"none"}
		}
		ra := "every 503 had Retry-After"
		if n503 == 0 {
			ra = "no 503"
		} else if no > 0 {
			ra = fmt.Sprintf("%d of %d 503s WITHOUT Retry-After", no, n503)
		}
		fmt.Printf("fault at %.2f (%s, lasted %s, window + %s grace): expected answers %d: %s; %s; failing answers in the window %d",
			a.Sub(s.start).Minutes(), f.label(), lasted.Round(time.Millisecond), faultGrace, exp, strings.Join(parts, ", "), ra, failed)
		if len(bad) > 0 {
			fmt.Printf(" (%s)", strings.Join(bad, ", "))
		}
		fmt.Printf("; recovered %s\n", s.recovery(f))
	}
}
