// Command finproxy is an authenticating reverse proxy in front of finAPI: it
// maps an app session to a finAPI user (or Process Controller process),
// injects that identity's token and forwards the call.
//
// main only wires: it reads the configuration, builds the parts, starts the
// proxy and admin listeners, waits for a signal and shuts down.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/finproxy/finproxy/admin"
	"github.com/finproxy/finproxy/auth"
	"github.com/finproxy/finproxy/cache"
	"github.com/finproxy/finproxy/config"
	"github.com/finproxy/finproxy/finapi"
	"github.com/finproxy/finproxy/gcfloor"
	"github.com/finproxy/finproxy/jwtsession"
	"github.com/finproxy/finproxy/logbuf"
	"github.com/finproxy/finproxy/metrics"
	"github.com/finproxy/finproxy/proxy"
	"github.com/finproxy/finproxy/redact"
	"github.com/finproxy/finproxy/tracing"
)

func main() {
	runtime.MemProfileRate = memProfileRate(os.Getenv)
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// memProfileRate is the runtime's sampling of allocations for heap
// profiles: its default (one sample per 512 KiB allocated, a stack walk
// each, about half a per cent of a proxied request's CPU) when
// FINPROXY_PPROF is on, and none when it is off, as without it nothing
// can read them. It is set first thing in main, as the runtime asks,
// before config.Load has parsed the variable: a value that does not
// parse leaves the default, and the start fails on it anyway.
func memProfileRate(getenv func(string) string) int {
	v := getenv("FINPROXY_PPROF")
	if on, err := strconv.ParseBool(v); on || err != nil && v != "" {
		return runtime.MemProfileRate
	}
	return 0
}

// run returns the exit status: 0 after a clean shutdown (or --version,
// --help, a --check that passed), 1 when a listener fails, 2 for invalid
// configuration or flags.
func run(args, environ []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("finproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.Bool("version", false, "print the version and exit")
	check := fs.Bool("check", false, "validate the configuration as a start would, print the problems (exit 2) or a summary (exit 0), and exit without listening")
	// Parse reports a bad flag on stderr itself; the usage goes to stdout,
	// once, and only when asked for.
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout, fs)
			return 0
		}
		fmt.Fprintln(stderr, "finproxy: see finproxy --help")
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "finproxy: unexpected argument %q; configuration comes from FINPROXY_* variables (see --help)\n", fs.Arg(0))
		return 2
	}
	if *version {
		fmt.Fprintln(stdout, "finproxy", metrics.Version(), runtime.Version())
		return 0
	}
	cfg, err := config.Load(environ, checkRedisURL)
	if err != nil {
		for _, p := range config.Problems(err) {
			fmt.Fprintln(stderr, "finproxy: invalid configuration:", p)
		}
		return 2
	}
	if *check {
		fmt.Fprintln(stdout, "finproxy: configuration valid:", cfg.Summary())
		return 0
	}
	// Every log line passes the redaction guard, whatever logger wrote it,
	// off the request path: logbuf gathers lines and one goroutine redacts
	// and writes them, never making a request wait for stdout.
	logOut := logbuf.New(redact.NewWriter(stdout, logSecrets(cfg)...), 0)
	defer logOut.Close()
	log := newLogger(cfg, logOut)
	if cfg.Demo {
		log.Warn().Msg("demo mode (FINPROXY_DEMO=true): the demo's published secrets are accepted; for the local finAPI emulator only, never in production")
	}

	defer startGCFloor(cfg, log)()

	env := envMap(environ)
	traced := tracing.Enabled(func(k string) string { return env[k] })
	if traced {
		shutdown, err := tracing.Setup(context.Background(), metrics.Version())
		if err != nil {
			log.Error().Err(err).Msg("cannot start tracing")
			return 1
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			shutdown(ctx)
		}()
		log.Info().Msg("OpenTelemetry tracing on (OTEL_EXPORTER_OTLP_ENDPOINT)")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	parts, err := build(ctx, cfg, log, logOut, traced)
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		return 1
	}
	defer parts.close()

	proxyLn, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		log.Error().Err(err).Str("addr", cfg.ListenAddr).Msg("cannot listen (proxy)")
		return 1
	}
	adminLn, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		proxyLn.Close()
		log.Error().Err(err).Str("addr", cfg.AdminAddr).Msg("cannot listen (admin)")
		return 1
	}

	go parts.clientToken.Prove(ctx, log)

	servers := []*http.Server{
		newServer(parts.proxy, cfg.MaxHeaderBytes, log.With().Str("listener", "proxy").Logger()),
		newServer(parts.admin, cfg.MaxHeaderBytes, log.With().Str("listener", "admin").Logger()),
	}
	failed := make(chan error, len(servers))
	for i, ln := range []net.Listener{proxyLn, adminLn} {
		go func() {
			if err := servers[i].Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				failed <- err
			}
		}()
	}
	log.Info().Str("proxy", proxyLn.Addr().String()).Str("admin", adminLn.Addr().String()).
		Str("mode", cfg.Mode).Str("access_url", cfg.AccessURL).Str("store", cfg.Store).
		Msg("finproxy listening")

	status := 0
	select {
	case <-ctx.Done():
		// Readiness goes first, the listeners later: load balancers
		// still sending during endpoint propagation are served.
		parts.draining.Store(true)
		again := make(chan os.Signal, 1)
		signal.Notify(again, syscall.SIGINT, syscall.SIGTERM) // before stop: no signal may go uncaught
		stop()
		log.Info().Dur("delay", cfg.ShutdownDelay).Msg("signal received: /readyz answers 503; serving on while load balancers stop sending (a second signal ends the wait)")
		select {
		case <-time.After(cfg.ShutdownDelay):
		case <-again:
		}
		// Signals stay caught: a third one must not kill the drain.
	case err := <-failed:
		stop()
		parts.draining.Store(true)
		log.Error().Err(err).Msg("listener failed, shutting down")
		status = 1
	}

	// Drain: no new connections; stalled request bodies are cut; in-flight
	// requests finish within the shutdown timeout; renewals running in
	// the background store their tokens; the admin listener closes last.
	log.Info().Dur("timeout", cfg.ShutdownTimeout).Msg("draining in-flight requests")
	parts.drain()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := servers[0].Shutdown(sctx); err != nil {
		log.Warn().Err(err).Msg("in-flight requests did not finish in time; closing their connections")
		servers[0].Close()
		status = max(status, 1)
	}
	if err := parts.sessions.Wait(sctx); err != nil {
		log.Warn().Err(err).Msg("background token renewals did not finish in time; their sessions renew on their next request")
	}
	if err := servers[1].Shutdown(sctx); err != nil {
		servers[1].Close()
	}
	log.Info().Int("status", status).Msg("finproxy stopped")
	return status
}

// usage is --help: the flags, then every variable.
func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "finproxy: an authenticating reverse proxy in front of finAPI.")
	fmt.Fprintln(w, "\nUsage: finproxy [--check | --version | --help]\n\nFlags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintln(w, "\nConfiguration comes from these environment variables (name, default, meaning):")
	config.Usage(w)
	fmt.Fprintln(w, "\nA secret holding REPLACE_ME (any case) is refused, and so are the demo's published secrets unless FINPROXY_DEMO=true.")
	fmt.Fprintln(w, "\nOTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) turns OpenTelemetry tracing on.")
}

// checkRedisURL is config's check of FINPROXY_REDIS_URL, which go-redis
// parses.
func checkRedisURL(c *config.Config) error {
	if c.Store != config.StoreRedis {
		return nil
	}
	if err := cache.CheckRedisURL(c.RedisURL); err != nil {
		return &config.Error{Var: config.Prefix + "REDIS_URL", Msg: err.Error()} // redacted by cache
	}
	return nil
}

// parts are finproxy's built components.
type parts struct {
	proxy, admin http.Handler
	clientToken  *auth.ReuseToken
	ready        *atomic.Bool
	draining     *atomic.Bool // set on SIGTERM: /readyz answers 503
	drain        func()       // cuts stalled request bodies
	sessions     *auth.Sessions
	close        func() error // releases the store
}

// newVerifier returns the JWT check of jwt mode and its readiness check
// (keys fetched), or nil and an always-ready check in header mode.
func newVerifier(ctx context.Context, cfg *config.Config, keys *auth.Keys, log zerolog.Logger) (func(string) (auth.Session, error), admin.Check, error) {
	if cfg.SessionAuth != config.SessionAuthJWT {
		return nil, func(context.Context) error { return nil }, nil
	}
	v, err := jwtsession.New(ctx, jwtsession.Config{
		JWKSURL:     cfg.JWTJWKSURL,
		HMACSecret:  []byte(cfg.JWTHMACSecret),
		Issuer:      cfg.JWTIssuer,
		Audience:    cfg.JWTAudience,
		Claim:       cfg.JWTClaim,
		UserIDClaim: cfg.JWTUserIDClaim,
		Log:         log.With().Str("source", "jwt").Logger(),
		Derive:      proxy.DeriveSession(keys),
	})
	if err != nil {
		return nil, nil, err
	}
	return proxy.VerifyWith(v), func(context.Context) error { return v.Ready() }, nil
}

// build makes finproxy's parts from cfg; log writes to logOut (newLogger).
// With traced, the proxy handler and every call to finAPI are instrumented
// with OpenTelemetry.
func build(ctx context.Context, cfg *config.Config, log zerolog.Logger, logOut *logbuf.Writer, traced bool) (*parts, error) {
	keys, err := auth.NewKeys([]byte(cfg.IdentitySecret))
	if err != nil {
		return nil, err
	}
	accessURL, _ := config.ParseBaseURL(cfg.AccessURL) // validated by config.Load
	var routes []proxy.Route
	parsed, _ := config.ParseRoutes(cfg.Routes) // validated by config.Load
	for _, r := range parsed {
		routes = append(routes, proxy.Route{Prefix: r.Prefix, URL: r.URL})
	}
	origins, _ := config.ParseOrigins(cfg.CORSOrigins)
	trusted, _ := config.ParsePrefixes(cfg.TrustedProxies)

	m := metrics.New()
	auditLog := log.With().Str("logger", "audit").Logger()
	audit := auth.Audit{Log: &auditLog}

	var transport http.RoundTripper = proxy.NewTransport(cfg.UpstreamTimeout)
	if traced {
		transport = otelhttp.NewTransport(transport)
	}
	httpClient := &http.Client{Transport: transport, Timeout: cfg.UpstreamTimeout}
	limit := finapi.NewLimiter(cfg.FinAPIConcurrency) // shared by every finAPI client of the replica
	access := &finapi.Client{BaseURL: accessURL, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, HTTPClient: httpClient, Observe: m.ObserveFinAPI, Limit: limit, Log: log}

	ready := &atomic.Bool{}
	clientToken := &auth.ReuseToken{
		Source:  auth.ClientCredentials{Client: access},
		Timeout: cfg.UpstreamTimeout,
		OnFirst: func() { ready.Store(true) },
	}
	st, err := cache.OpenBackend[auth.Token](cache.BackendConfig{
		Kind: cfg.Store, RedisURL: cfg.RedisURL, Prefix: cfg.RedisPrefix, StorageKey: keys.StorageKey(),
		L1TTL: cfg.L1TTL, L1MaxAge: cfg.L1MaxAge, Timeout: cfg.RedisTimeout, LockTTL: cfg.LockTTL, LockWait: cfg.LockWait, Log: log,
	}, auth.TokenCodec)
	if err != nil {
		return nil, err
	}
	m.SetSessions(st.Len)
	userLogin := &auth.UserLogin{Client: access, ClientToken: clientToken, Audit: audit, Bindings: st.Store}
	sessions := &auth.Sessions{
		Source:       userLogin,
		UserOf:       userLogin.UserOf,
		Store:        st.Store,
		Index:        st.Index,
		NoIndex:      cfg.AdminToken == "", // only the admin API looks sessions up by short hash
		Locker:       st.Locker,
		Timeout:      cfg.UpstreamTimeout,
		RenewBefore:  cfg.RenewBefore,
		Idle:         cfg.SessionIdle,
		ConflictHold: cfg.ConflictHold,
		Log:          log,
		Hooks:        m.Hooks(),
		Audit:        audit,
	}
	finapiClients := []*finapi.Client{access}
	if cfg.Mode == config.ModeProcess {
		processCtlURL, _ := config.ParseBaseURL(cfg.ProcessCtlURL)
		processCtl := &finapi.Client{BaseURL: processCtlURL, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, HTTPClient: httpClient, Observe: m.ObserveFinAPI, Limit: limit, Log: log}
		finapiClients = append(finapiClients, processCtl)
		sessions.Source = &auth.ProcessLogin{Client: processCtl, ProcessID: cfg.ProcessID, TTL: cfg.ProcessTokenTTL, Resumable: cfg.ProcessResumable, Audit: audit}
		sessions.NoRenewAhead = true
		sessions.UserOf = nil
	}
	adopter, err := newAdopter(cfg, keys, access, clientToken, st.Store, audit, log)
	if err != nil {
		return nil, err
	}
	if adopter != nil && cfg.AdoptOnConflict {
		log.Warn().Msg("FINPROXY_ADOPT_ON_CONFLICT=true: an identity conflict changes that finAPI user's password at once, revoking its tokens for every client")
		sessions.AdoptOnConflict = func(ctx context.Context, s auth.Session, userID string) error {
			_, err := adopter.Adopt(ctx, s, userID)
			return err
		}
	}
	lifecycle := &auth.Lifecycle{Sessions: sessions, Client: access, ClientToken: clientToken, Users: cfg.Mode == config.ModeUser, Audit: audit}
	verify, jwtReady, err := newVerifier(ctx, cfg, keys, log)
	if err != nil {
		return nil, err
	}
	proxyHandler, err := proxy.New(proxy.Config{
		VerifyJWT:         verify,
		AccessURL:         accessURL,
		Routes:            routes,
		Processes:         cfg.Mode == config.ModeProcess,
		ResumeProcesses:   cfg.ProcessResumable,
		SessionHeader:     cfg.SessionHeader,
		Keys:              keys,
		Tokens:            sessions,
		Lifecycle:         lifecycle,
		Transport:         transport,
		ReplayMaxBytes:    cfg.ReplayMaxBytes,
		MaxBodyBytes:      cfg.MaxBodyBytes,
		BodyTimeout:       cfg.BodyTimeout,
		CORSOrigins:       origins,
		TrustedProxies:    trusted,
		SessionRate:       cfg.RateSession,
		SessionBurst:      cfg.RateSessionBurst,
		IPRate:            cfg.RateIP,
		IPBurst:           cfg.RateIPBurst,
		NewSessionRate:    cfg.NewSessionRate,
		NewSessionBurst:   cfg.NewSessionBurst,
		NewSessionIPRate:  cfg.NewSessionIPRate,
		NewSessionIPBurst: cfg.NewSessionIPBurst,
		Log:               log,
		RequestLog:        requestLog(cfg, logOut),
		Audit:             audit,
		Observer:          m,
	})
	if err != nil {
		return nil, err
	}
	sessions.Admit = proxyHandler.AdmitNewSession
	credentialsRefused := func() bool {
		for _, c := range finapiClients {
			if c.CredentialsRefused() != nil {
				return true
			}
		}
		return false
	}
	m.SetHealth(metrics.Health{FinAPIInFlight: limit.InUse, FinAPIWaiting: limit.Waiting, StoreDown: st.Down, CredentialsRefused: credentialsRefused,
		LogLinesDropped: logOut.Dropped})
	var handler http.Handler = proxyHandler
	if traced {
		handler = otelhttp.NewHandler(handler, "finproxy",
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "finproxy " + r.Method }))
	}

	var adminAPI http.Handler
	if cfg.AdminToken != "" {
		op := &auth.Operator{Keys: keys, Sessions: sessions, Lifecycle: lifecycle, Adopter: adopter, UserOf: sessions.UserOf, Audit: audit}
		if adminAPI, err = admin.NewAPI(admin.APIConfig{Token: cfg.AdminToken, Operator: op}); err != nil {
			return nil, err
		}
	}
	draining := &atomic.Bool{}
	adminHandler := admin.Handler(admin.Config{
		API: adminAPI,
		Ready: []admin.Check{
			func(context.Context) error {
				if !ready.Load() {
					return errors.New("client credentials not yet proven: no client token obtained since start")
				}
				return nil
			},
			func(ctx context.Context) error {
				if err := st.Ping(ctx); err != nil {
					return errors.New("token store unreachable")
				}
				return nil
			},
			jwtReady,
		},
		Degraded: []admin.Check{
			func(context.Context) error {
				if st.Down() {
					return errors.New("token store unreachable: serving from this replica's memory")
				}
				return nil
			},
			func(context.Context) error {
				if credentialsRefused() {
					return errors.New("finAPI refuses the client credentials")
				}
				return nil
			},
		},
		Draining: draining.Load,
		Metrics:  m.Handler(),
		Pprof:    cfg.Pprof,
	})
	return &parts{proxy: handler, admin: adminHandler, clientToken: clientToken, ready: ready, draining: draining,
		drain: proxyHandler.Drain, sessions: sessions, close: st.Close}, nil
}

// newAdopter returns the Adopter of existing finAPI users when the data
// decryption key is configured (user mode), else nil.
func newAdopter(cfg *config.Config, keys *auth.Keys, access *finapi.Client, clientToken *auth.ReuseToken, store cache.Store[auth.Token], audit auth.Audit, log zerolog.Logger) (*auth.Adopter, error) {
	if cfg.DataDecryptionKey == "" || cfg.Mode != config.ModeUser {
		return nil, nil
	}
	ddk, err := finapi.NewDataDecryptionKey(cfg.DataDecryptionKey)
	if err != nil {
		return nil, err
	}
	return &auth.Adopter{Client: access, ClientToken: clientToken, Key: ddk, Keys: keys, Store: store, Audit: audit, Log: log}, nil
}

func newServer(h http.Handler, maxHeaderBytes int, log zerolog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ConnContext:       proxy.ConnContext, // request bodies' idle bound
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          newStdLogger(log),
	}
}

// requestLog is the writer proxy.Config.RequestLog names: newLogger's
// own, when it writes JSON to it as it is (not the console format).
func requestLog(cfg *config.Config, out *logbuf.Writer) *logbuf.Writer {
	if cfg.LogFormat == "console" {
		return nil
	}
	return out
}

func newLogger(cfg *config.Config, out io.Writer) zerolog.Logger {
	level, _ := zerolog.ParseLevel(cfg.LogLevel) // validated by config.Load
	if cfg.LogFormat == "console" {
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: time.RFC3339}
	}
	return zerolog.New(out).Level(level).With().Timestamp().Logger()
}

// newStdLogger routes net/http's own error log (TLS handshakes, bad
// requests) into zerolog.
func newStdLogger(log zerolog.Logger) *stdlog.Logger {
	return stdlog.New(log.With().Str("source", "net/http").Logger(), "", 0)
}

// envMap turns environ (os.Environ's form) into a map.
func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// logSecrets lists the configured secrets the redaction guard blanks.
func logSecrets(cfg *config.Config) []string {
	return []string{cfg.ClientSecret, cfg.IdentitySecret, cfg.JWTHMACSecret, urlPassword(cfg.RedisURL), cfg.AdminToken, cfg.DataDecryptionKey}
}

// urlPassword returns the password in raw's user info, for redaction.
func urlPassword(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return ""
	}
	p, _ := u.User.Password()
	return p
}

// startGCFloor puts the configured floor under the Go heap goal (package
// gcfloor), unless GOGC is set in the process's environment: the runtime
// read that one, and an operator who set it chose the collector's pacing
// already. It returns what ends the floor.
func startGCFloor(cfg *config.Config, log zerolog.Logger) (stop func()) {
	switch gogc, set := os.LookupEnv("GOGC"); {
	case cfg.GCHeapFloor == 0:
		return func() {}
	case set:
		log.Info().Str("GOGC", gogc).Msg("GOGC is set: no heap floor (FINPROXY_GC_HEAP_FLOOR_BYTES)")
		return func() {}
	}
	log.Debug().Int64("bytes", cfg.GCHeapFloor).Msg("heap floor on (FINPROXY_GC_HEAP_FLOOR_BYTES)")
	return gcfloor.Start(uint64(cfg.GCHeapFloor))
}
