// Package config reads finproxy's configuration from the environment and
// validates it.
//
// Every variable is prefixed FINPROXY_. Every secret can also be read from a
// file named by <NAME>_FILE (Kubernetes secrets); trailing newlines and spaces
// are trimmed. Load collects every problem rather than stopping at the first,
// so an operator fixes a broken deployment in one round.
package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v10"

	"github.com/finproxy/finproxy/gcfloor"
)

// Prefix is the prefix of every variable finproxy reads.
const Prefix = "FINPROXY_"

// Modes of mapping a session to finAPI.
const (
	ModeUser    = "user"
	ModeProcess = "process"
)

// Session authentication kinds.
const (
	SessionAuthHeader = "header"
	SessionAuthJWT    = "jwt"
)

// Token stores.
const (
	StoreMemory = "memory"
	StoreRedis  = "redis"
)

// Config is finproxy's whole configuration. Field tags name the variable
// without its FINPROXY_ prefix; file:"true" marks those that also have a
// <NAME>_FILE variant.
type Config struct {
	ListenAddr string `env:"LISTEN_ADDR" envDefault:":8080" help:"proxy listener address"`
	AdminAddr  string `env:"ADMIN_ADDR" envDefault:":9090" help:"admin listener: /healthz, /readyz, /metrics"`

	AccessURL     string `env:"ACCESS_URL" envDefault:"https://sandbox.finapi.io" help:"finAPI Access base URL"`
	ProcessCtlURL string `env:"PROCESSCTL_URL" envDefault:"https://di-processctl-finapi-general-sandbox.finapi.io" help:"finAPI Process Controller base URL"`
	// Routes are extra upstreams, "prefix=url,prefix=url".
	Routes string `env:"ROUTES" help:"extra upstreams, prefix=url,prefix=url"`

	ClientID     string `env:"CLIENT_ID" file:"true" help:"finAPI client id (required)"`
	ClientSecret string `env:"CLIENT_SECRET" file:"true" help:"finAPI client secret (required)"`

	Mode      string `env:"MODE" envDefault:"user" help:"user (session to finAPI user) or process (session to Process Controller process)"`
	ProcessID string `env:"PROCESS_ID" envDefault:"USER_ONLY" help:"processId sent when a process is created"`
	// ProcessTokenTTL is how long an access token obtained from the Process
	// Controller is used; the Process Controller does not say.
	ProcessTokenTTL time.Duration `env:"PROCESS_TOKEN_TTL" envDefault:"1h" help:"how long a process access token is used"`
	// ProcessResumable exchanges process tokens with invalidate=false and
	// again when the access token expires or is refused.
	ProcessResumable bool `env:"PROCESS_RESUMABLE" envDefault:"false" help:"process mode: exchange with invalidate=false and exchange the same process again (up to 10 times) when its access token expires or is refused"`

	IdentitySecret string `env:"IDENTITY_SECRET" file:"true" help:"at least 32 bytes: root of derived user ids, passwords and storage keys (required)"`

	SessionHeader string `env:"SESSION_HEADER" envDefault:"X-Session-Id" help:"header that carries the app session"`
	SessionAuth   string `env:"SESSION_AUTH" envDefault:"header" help:"header (opaque session id) or jwt (verified JWT)"`

	JWTJWKSURL    string `env:"JWT_JWKS_URL" help:"jwt mode: JWKS endpoint of the identity provider"`
	JWTHMACSecret string `env:"JWT_HMAC_SECRET" file:"true" help:"jwt mode: HMAC key (at least 32 bytes) instead of a JWKS"`
	JWTIssuer     string `env:"JWT_ISSUER" help:"jwt mode: required iss"`
	JWTAudience   string `env:"JWT_AUDIENCE" help:"jwt mode: required aud"`
	JWTClaim      string `env:"JWT_CLAIM" envDefault:"sub" help:"jwt mode: the claim that names the app user"`
	// JWTUserIDClaim names a claim whose value is the finAPI user id.
	JWTUserIDClaim string `env:"JWT_USER_ID_CLAIM" help:"jwt mode, user mode: the claim whose value is the finAPI user id (its password is derived); unset: user ids are derived"`

	// CORSOrigins are exact browser origins, comma-separated.
	CORSOrigins string `env:"CORS_ORIGINS" help:"exact browser origins allowed, comma-separated"`
	// TrustedProxies are CIDRs (or addresses) whose X-Forwarded-For is
	// believed, comma-separated.
	TrustedProxies string `env:"TRUSTED_PROXIES" help:"CIDRs or addresses whose X-Forwarded-For is believed"`
	// MaxBodyBytes bounds request bodies; 0 means no limit.
	MaxBodyBytes int64 `env:"MAX_BODY_BYTES" envDefault:"10485760" help:"largest request body (413); 0 = no limit"`
	// MaxHeaderBytes bounds request headers (net/http answers 431).
	MaxHeaderBytes int `env:"MAX_HEADER_BYTES" envDefault:"65536" help:"largest request header block (431)"`
	// Rate limits (token buckets per second); a rate of 0 is no limit.
	RateSession      float64 `env:"RATE_SESSION" envDefault:"100" help:"requests per second per session; 0 = off"`
	RateSessionBurst int     `env:"RATE_SESSION_BURST" envDefault:"200" help:"burst of the per-session rate"`
	RateIP           float64 `env:"RATE_IP" envDefault:"0" help:"requests per second per client IP; 0 = off"`
	RateIPBurst      int     `env:"RATE_IP_BURST" envDefault:"200" help:"burst of the per-IP rate"`
	// New finAPI identities (users, processes) this replica creates per
	// second, and per client IP; a rate of 0 is no bound.
	NewSessionRate    float64 `env:"NEW_SESSION_RATE" envDefault:"20" help:"new finAPI identities (users, processes) per second per replica; 0 = off"`
	NewSessionBurst   int     `env:"NEW_SESSION_BURST" envDefault:"300" help:"burst of new identities per replica"`
	NewSessionIPRate  float64 `env:"NEW_SESSION_RATE_IP" envDefault:"0" help:"new finAPI identities per second per client IP; 0 = off"`
	NewSessionIPBurst int     `env:"NEW_SESSION_BURST_IP" envDefault:"20" help:"burst of new identities per client IP"`

	// UpstreamTimeout bounds a forwarded call (until response headers) and
	// every token acquisition, retries included.
	UpstreamTimeout time.Duration `env:"UPSTREAM_TIMEOUT" envDefault:"30s" help:"bounds a forwarded call until its response headers and every token acquisition"`
	// ReplayMaxBytes is the largest request body buffered for a replay
	// after an upstream 401.
	ReplayMaxBytes int64 `env:"REPLAY_MAX_BYTES" envDefault:"1048576" help:"largest request body buffered for a replay after a 401"`
	// ShutdownTimeout bounds how long in-flight requests may finish after
	// SIGTERM (after ShutdownDelay).
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"25s" help:"how long in-flight requests may finish after SIGTERM (after the delay)"`
	// ShutdownDelay is how long the listeners keep serving after SIGTERM
	// while /readyz already answers 503, so that load balancers stop
	// sending before the listeners close.
	ShutdownDelay time.Duration `env:"SHUTDOWN_DELAY" envDefault:"5s" help:"how long the listeners keep serving after SIGTERM while /readyz answers 503"`
	// BodyTimeout is how long a request body may stop arriving before
	// the request is cut off (408 body_timeout).
	BodyTimeout time.Duration `env:"BODY_TIMEOUT" envDefault:"30s" help:"a request body that stops arriving this long is cut off (408)"`
	// FinAPIConcurrency bounds this replica's concurrent calls to finAPI's
	// token, user and Process Controller endpoints.
	FinAPIConcurrency int `env:"FINAPI_CONCURRENCY" envDefault:"32" help:"most concurrent calls to finAPI token, user and Process Controller endpoints"`

	// RenewBefore is the share of a user token's lifetime left when it is
	// renewed in the background.
	RenewBefore float64 `env:"RENEW_BEFORE" envDefault:"0.2" help:"share of a token lifetime left when it is renewed ahead"`
	// ConflictHold is how long a session whose derived identity finAPI
	// refused is not tried again (every attempt counts toward finAPI's
	// lock of the user).
	ConflictHold time.Duration `env:"CONFLICT_HOLD" envDefault:"24h" help:"how long a session whose derived identity finAPI refused is not tried again"`
	// SessionIdle is how long an expired token's entry (with its refresh
	// token) is kept, so a session back from a pause renews with one
	// refresh grant; sessions idle for longer are evicted.
	SessionIdle time.Duration `env:"SESSION_IDLE" envDefault:"30m" help:"how long an expired token entry (with its refresh token) is kept"`

	Store    string `env:"STORE" envDefault:"memory" help:"memory (one replica) or redis (shared by all replicas)"`
	RedisURL string `env:"REDIS_URL" envDefault:"redis://127.0.0.1:6379/0" file:"true" help:"Redis URL, with the redis store"`
	// RedisPrefix starts every key finproxy writes to Redis.
	RedisPrefix string `env:"REDIS_PREFIX" envDefault:"finproxy:" help:"prefix of every Redis key"`
	// L1TTL is how long a replica serves a token from memory without
	// asking Redis: the bound on seeing another replica's logout while
	// Redis pub/sub is down.
	L1TTL time.Duration `env:"REDIS_L1_TTL" envDefault:"2s" help:"how long a token is served from memory without asking Redis; 0 = no L1"`
	// L1MaxAge is how long a replica serves a token from memory without
	// asking Redis while its invalidation channel proves that it hears
	// every invalidation: the bound on seeing a change made in Redis
	// without finproxy (an eviction, a manual DEL).
	L1MaxAge time.Duration `env:"REDIS_L1_MAX_AGE" envDefault:"30s" help:"how long a token is served from memory without asking Redis while the invalidation channel's heartbeat comes back; 0 = never past REDIS_L1_TTL"`
	// RedisTimeout bounds every Redis command; after a failure the
	// replica stops asking Redis until a background probe finds it
	// answering again.
	RedisTimeout time.Duration `env:"REDIS_TIMEOUT" envDefault:"250ms" help:"deadline of every Redis command"`
	// LockTTL and LockWait bound the cross-replica lock of a session's
	// token fetch: how long a holder keeps it at most, and how long
	// another replica waits for it before fetching without it. Zero means
	// UpstreamTimeout (plus 5s for the TTL), the longest a fetch runs.
	LockTTL  time.Duration `env:"LOCK_TTL" help:"longest a replica holds a session cross-replica lock (default: upstream timeout + 5s)"`
	LockWait time.Duration `env:"LOCK_WAIT" help:"how long a replica waits for another replica lock (default: upstream timeout)"`

	LogLevel  string `env:"LOG_LEVEL" envDefault:"info" help:"trace, debug, info, warn, error or disabled"`
	LogFormat string `env:"LOG_FORMAT" envDefault:"json" help:"json or console"`

	// GCHeapFloor is a floor under the Go collector's heap goal (package
	// gcfloor): while the live heap is small, GOGC is raised so that it
	// is not collected dozens of times a second. 0 leaves the runtime's
	// default; a GOGC variable in the environment turns it off too.
	GCHeapFloor int64 `env:"GC_HEAP_FLOOR_BYTES" envDefault:"16777216" help:"floor under the Go heap goal: fewer collections while the heap is small; 0 = the Go default (also off when GOGC is set)"`

	// Pprof serves net/http/pprof on the admin listener.
	Pprof bool `env:"PPROF" envDefault:"false" help:"serve net/http/pprof on the admin listener"`

	// Demo accepts the demo's published secrets (make demo, the README's
	// walk-throughs), for the local finAPI emulator only: never together
	// with a finAPI URL on *.finapi.io. See checkSecrets.
	Demo bool `env:"DEMO" envDefault:"false" help:"accept the demo's published secrets, against the local finAPI emulator only (refused with a URL on *.finapi.io)"`
	// AdminToken turns the admin API under /admin/v1/ on: operators send
	// it as a bearer token.
	AdminToken string `env:"ADMIN_TOKEN" file:"true" help:"at least 32 bytes: bearer token of the admin API under /admin/v1/ (off when unset)"`
	// DataDecryptionKey is the finAPI client's data decryption key, for
	// adopting existing finAPI users.
	DataDecryptionKey string `env:"DATA_DECRYPTION_KEY" file:"true" help:"finAPI data decryption key (hexadecimal): adopting existing finAPI users (client-side password change)"`
	// AdoptOnConflict adopts the finAPI user of an identity conflict
	// without an operator.
	AdoptOnConflict bool `env:"ADOPT_ON_CONFLICT" envDefault:"false" help:"adopt the finAPI user of an identity conflict at once (changes its password, revokes its tokens for every client)"`
}

// lockMargin is added to the upstream timeout for the default lock TTL, so
// that a fetch that uses its whole budget still stores its token while it
// holds the lock.
const lockMargin = 5 * time.Second

// Error is one configuration problem, naming the variable.
type Error struct {
	Var string // the full variable name, e.g. FINPROXY_CLIENT_ID
	Msg string
}

func (e *Error) Error() string { return e.Var + ": " + e.Msg }

// A Check validates a part of the configuration that another package
// knows how to read (a Redis URL is go-redis's to parse): it returns nil,
// an *Error, or several joined. Load runs the checks after its own, so
// config needs to import none of them.
type Check func(c *Config) error

// Load reads the configuration from environ (as os.Environ returns it) and
// validates it, then runs checks. The returned error, if any, joins one
// *Error per problem.
func Load(environ []string, checks ...Check) (*Config, error) {
	vars := env.ToMap(environ)
	var problems []error

	// <NAME>_FILE: read before parsing so that the file wins over nothing
	// and conflicts with a literal value.
	for _, name := range fileVars() {
		full := Prefix + name
		path, ok := vars[full+"_FILE"]
		if !ok {
			continue
		}
		if _, both := vars[full]; both {
			problems = append(problems, &Error{full + "_FILE", "set together with " + full + "; set only one"})
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			// The path is not secret; the error names it.
			problems = append(problems, &Error{full + "_FILE", fmt.Sprintf("cannot read: %v", err)})
			continue
		}
		vars[full] = strings.TrimRight(string(b), " \t\r\n")
	}

	cfg := &Config{}
	unparsed := map[string]bool{}
	if err := env.ParseWithOptions(cfg, env.Options{Environment: vars, Prefix: Prefix}); err != nil {
		for _, p := range parseProblems(err) {
			problems = append(problems, p)
			if e, ok := p.(*Error); ok {
				unparsed[e.Var] = true
			}
		}
	}
	// A variable that did not parse is reported once, not again for its
	// zero value.
	found := cfg.validate()
	for _, check := range checks {
		if err := check(cfg); err != nil {
			found = append(found, Problems(err)...)
		}
	}
	for _, p := range found {
		if e, ok := p.(*Error); !ok || !unparsed[e.Var] {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if cfg.LockTTL == 0 {
		cfg.LockTTL = cfg.UpstreamTimeout + lockMargin
	}
	if cfg.LockWait == 0 {
		cfg.LockWait = cfg.UpstreamTimeout
	}
	return cfg, nil
}

// Problems splits an error returned by Load into its single problems.
func Problems(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// parseProblems turns env's aggregate error into one *Error per variable.
func parseProblems(err error) []error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return []error{err}
	}
	fieldVar := fieldVars()
	out := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			out = append(out, &Error{fieldVar[pe.Name], fmt.Sprintf("invalid %s value: %v", pe.Type, unwrapAll(pe.Err))})
			continue
		}
		out = append(out, e)
	}
	return out
}

func unwrapAll(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// fieldVars maps Config's field names to their full variable names.
func fieldVars() map[string]string {
	t := reflect.TypeFor[Config]()
	m := make(map[string]string, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		m[f.Name] = Prefix + f.Tag.Get("env")
	}
	return m
}

// fileVars lists the variables (without prefix) that can also be read from
// a file named by <NAME>_FILE: every secret, and the client id.
func fileVars() []string {
	t := reflect.TypeFor[Config]()
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Tag.Get("file") == "true" {
			names = append(names, f.Tag.Get("env"))
		}
	}
	return names
}

func (c *Config) validate() []error {
	var p []error
	bad := func(name, format string, args ...any) {
		p = append(p, &Error{Prefix + name, fmt.Sprintf(format, args...)})
	}

	if err := checkAddr(c.ListenAddr); err != nil {
		bad("LISTEN_ADDR", "%v", err)
	}
	if err := checkAddr(c.AdminAddr); err != nil {
		bad("ADMIN_ADDR", "%v", err)
	}
	if c.ListenAddr != "" && c.ListenAddr == c.AdminAddr {
		bad("ADMIN_ADDR", "must differ from FINPROXY_LISTEN_ADDR")
	}
	if err := checkBaseURL(c.AccessURL); err != nil {
		bad("ACCESS_URL", "%v", err)
	}
	if err := checkBaseURL(c.ProcessCtlURL); err != nil {
		bad("PROCESSCTL_URL", "%v", err)
	}
	if _, err := ParseRoutes(c.Routes); err != nil {
		bad("ROUTES", "%v", err)
	}
	if c.ClientID == "" {
		bad("CLIENT_ID", "required")
	}
	if c.ClientSecret == "" {
		bad("CLIENT_SECRET", "required (or FINPROXY_CLIENT_SECRET_FILE)")
	}
	switch c.Mode {
	case ModeUser, ModeProcess:
	default:
		bad("MODE", "must be %q or %q, not %q", ModeUser, ModeProcess, c.Mode)
	}
	if c.ProcessID == "" {
		bad("PROCESS_ID", "must not be empty")
	}
	if c.ProcessTokenTTL < time.Minute {
		bad("PROCESS_TOKEN_TTL", "must be at least 1m, not %s", c.ProcessTokenTTL)
	}
	switch {
	case c.IdentitySecret == "":
		bad("IDENTITY_SECRET", "required (or FINPROXY_IDENTITY_SECRET_FILE), at least 32 bytes")
	case len(c.IdentitySecret) < 32:
		bad("IDENTITY_SECRET", "must be at least 32 bytes, has %d", len(c.IdentitySecret))
	}
	if !validHeaderName(c.SessionHeader) {
		bad("SESSION_HEADER", "%q is not a valid HTTP header name", c.SessionHeader)
	} else if reserved(c.SessionHeader) {
		bad("SESSION_HEADER", "%q is a header finproxy sets or strips itself", c.SessionHeader)
	}
	switch c.SessionAuth {
	case SessionAuthHeader:
	case SessionAuthJWT:
		switch {
		case c.JWTJWKSURL == "" && c.JWTHMACSecret == "":
			bad("JWT_JWKS_URL", "jwt sessions need a key source: FINPROXY_JWT_JWKS_URL or FINPROXY_JWT_HMAC_SECRET")
		case c.JWTJWKSURL != "" && c.JWTHMACSecret != "":
			bad("JWT_HMAC_SECRET", "set only one key source: FINPROXY_JWT_JWKS_URL or FINPROXY_JWT_HMAC_SECRET")
		case c.JWTHMACSecret != "" && len(c.JWTHMACSecret) < 32:
			bad("JWT_HMAC_SECRET", "must be at least 32 bytes, has %d", len(c.JWTHMACSecret))
		case c.JWTJWKSURL != "":
			if err := checkBaseURLWithPath(c.JWTJWKSURL); err != nil {
				bad("JWT_JWKS_URL", "%v", err)
			}
		}
		if c.JWTClaim == "" {
			bad("JWT_CLAIM", "must not be empty")
		}
	default:
		bad("SESSION_AUTH", "must be %q or %q, not %q", SessionAuthHeader, SessionAuthJWT, c.SessionAuth)
	}
	switch {
	case c.JWTUserIDClaim == "":
	case c.SessionAuth != SessionAuthJWT:
		bad("JWT_USER_ID_CLAIM", "only with jwt sessions (FINPROXY_SESSION_AUTH=jwt)")
	case c.Mode == ModeProcess:
		bad("JWT_USER_ID_CLAIM", "only in user mode: a process has no user id of the caller's")
	}
	if c.ProcessResumable && c.Mode != ModeProcess {
		bad("PROCESS_RESUMABLE", "only in process mode (FINPROXY_MODE=process)")
	}
	if _, err := ParseOrigins(c.CORSOrigins); err != nil {
		bad("CORS_ORIGINS", "%v", err)
	}
	if _, err := ParsePrefixes(c.TrustedProxies); err != nil {
		bad("TRUSTED_PROXIES", "%v", err)
	}
	if c.MaxBodyBytes < 0 {
		bad("MAX_BODY_BYTES", "must not be negative")
	}
	if c.GCHeapFloor != 0 && c.GCHeapFloor < gcfloor.MinFloor {
		bad("GC_HEAP_FLOOR_BYTES", "must be 0 (off) or at least %d (the Go runtime's own minimum), not %d", gcfloor.MinFloor, c.GCHeapFloor)
	}
	if c.MaxHeaderBytes < 4096 {
		bad("MAX_HEADER_BYTES", "must be at least 4096, not %d", c.MaxHeaderBytes)
	}
	for _, r := range []struct {
		name     string
		rate     float64
		burst    int
		burstVar string
	}{
		{"RATE_SESSION", c.RateSession, c.RateSessionBurst, "RATE_SESSION_BURST"},
		{"RATE_IP", c.RateIP, c.RateIPBurst, "RATE_IP_BURST"},
		{"NEW_SESSION_RATE", c.NewSessionRate, c.NewSessionBurst, "NEW_SESSION_BURST"},
		{"NEW_SESSION_RATE_IP", c.NewSessionIPRate, c.NewSessionIPBurst, "NEW_SESSION_BURST_IP"},
	} {
		if r.rate < 0 {
			bad(r.name, "must not be negative")
		}
		if r.rate > 0 && r.burst < 1 {
			bad(r.burstVar, "must be at least 1 when %s%s is set", Prefix, r.name)
		}
	}
	if c.UpstreamTimeout <= 0 {
		bad("UPSTREAM_TIMEOUT", "must be positive, not %s", c.UpstreamTimeout)
	}
	if c.ReplayMaxBytes < 0 {
		bad("REPLAY_MAX_BYTES", "must not be negative")
	}
	if c.ShutdownTimeout <= 0 {
		bad("SHUTDOWN_TIMEOUT", "must be positive, not %s", c.ShutdownTimeout)
	}
	if c.ShutdownDelay < 0 || c.ShutdownDelay > 5*time.Minute {
		bad("SHUTDOWN_DELAY", "must be between 0 and 5m, not %s", c.ShutdownDelay)
	}
	if c.BodyTimeout < time.Second {
		bad("BODY_TIMEOUT", "must be at least 1s, not %s", c.BodyTimeout)
	}
	if c.FinAPIConcurrency < 1 || c.FinAPIConcurrency > 10000 {
		bad("FINAPI_CONCURRENCY", "must be between 1 and 10000, not %d", c.FinAPIConcurrency)
	}
	if c.RenewBefore <= 0 || c.RenewBefore >= 1 {
		bad("RENEW_BEFORE", "must be a share of the token's lifetime between 0 and 1, not %v", c.RenewBefore)
	}
	if c.ConflictHold < time.Minute {
		bad("CONFLICT_HOLD", "must be at least 1m, not %s", c.ConflictHold)
	}
	if c.AdminToken != "" && len(c.AdminToken) < 32 {
		bad("ADMIN_TOKEN", "must be at least 32 bytes, has %d", len(c.AdminToken))
	}
	if c.DataDecryptionKey != "" && !validDDK(c.DataDecryptionKey) {
		bad("DATA_DECRYPTION_KEY", "must be finAPI's data decryption key: hexadecimal digits, an even number of them")
	}
	if c.AdoptOnConflict && (c.DataDecryptionKey == "" || c.Mode != ModeUser) {
		bad("ADOPT_ON_CONFLICT", "needs %sDATA_DECRYPTION_KEY and %sMODE=user", Prefix, Prefix)
	}
	if c.SessionIdle <= 0 {
		bad("SESSION_IDLE", "must be positive, not %s", c.SessionIdle)
	}
	switch c.Store {
	case StoreMemory:
	case StoreRedis:
		if c.L1TTL < 0 || c.L1TTL > time.Minute {
			bad("REDIS_L1_TTL", "must be between 0 and 1m, not %s", c.L1TTL)
		}
		if c.L1MaxAge != 0 && (c.L1MaxAge < c.L1TTL || c.L1MaxAge > time.Hour) {
			bad("REDIS_L1_MAX_AGE", "must be 0 (off) or between %sREDIS_L1_TTL (%s) and 1h, not %s", Prefix, c.L1TTL, c.L1MaxAge)
		}
		if c.RedisTimeout < 10*time.Millisecond || c.RedisTimeout > 5*time.Second {
			bad("REDIS_TIMEOUT", "must be between 10ms and 5s, not %s", c.RedisTimeout)
		}
		// A lock shorter than a fetch may run, or a wait shorter than
		// one, lets a second replica fetch too: two processes.
		if c.LockTTL != 0 && c.LockTTL < c.UpstreamTimeout {
			bad("LOCK_TTL", "must be at least FINPROXY_UPSTREAM_TIMEOUT (%s), not %s", c.UpstreamTimeout, c.LockTTL)
		}
		if c.LockWait != 0 && c.LockWait < c.UpstreamTimeout {
			bad("LOCK_WAIT", "must be at least FINPROXY_UPSTREAM_TIMEOUT (%s), not %s", c.UpstreamTimeout, c.LockWait)
		}
	default:
		bad("STORE", "must be %q or %q, not %q", StoreMemory, StoreRedis, c.Store)
	}
	switch c.LogLevel {
	case "trace", "debug", "info", "warn", "error", "fatal", "panic", "disabled":
	default:
		bad("LOG_LEVEL", "must be one of trace, debug, info, warn, error, disabled; not %q", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "console":
	default:
		bad("LOG_FORMAT", "must be json or console, not %q", c.LogFormat)
	}
	return append(p, c.checkSecrets()...)
}

// checkAddr accepts a listen address net.Listen("tcp", …) takes, with a
// numeric port: ":8080", "127.0.0.1:8080", "[::1]:8080", "localhost:8080".
// Load refuses anything else, so a typo is exit 2 naming the variable, not
// a failed listen after start.
func checkAddr(addr string) error {
	if addr == "" {
		return errors.New("must not be empty")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. :8080 or 127.0.0.1:8080)", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: the port must be a number from 0 to 65535", addr)
	}
	if host != "" && !validHost(host) {
		return fmt.Errorf("%q: %q is neither an IP address nor a host name", addr, host)
	}
	return nil
}

func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// checkBaseURLWithPath accepts an absolute http(s) URL that may have a
// query (a JWKS endpoint).
func checkBaseURLWithPath(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	return nil
}

// ParseOrigins parses FINPROXY_CORS_ORIGINS: comma-separated exact origins
// (scheme://host[:port]); no wildcard, no path.
func ParseOrigins(s string) ([]string, error) {
	var out []string
	for o := range strings.SplitSeq(s, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Contains(o, "*") ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("%q is not an exact origin such as https://app.example.com (no wildcard, no path)", o)
		}
		out = append(out, u.Scheme+"://"+strings.ToLower(u.Host))
	}
	return out, nil
}

// ParsePrefixes parses FINPROXY_TRUSTED_PROXIES: comma-separated CIDRs or
// single addresses.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR nor an IP address", item)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// checkBaseURL accepts an absolute http(s) URL without query or fragment.
func checkBaseURL(raw string) error {
	_, err := ParseBaseURL(raw)
	return err
}

// ParseBaseURL parses an upstream base URL: absolute, http or https, with a
// host, without user info, query or fragment.
func ParseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %q", raw)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("URL %q must use http or https", raw)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("URL %q has no host", raw)
	case u.User != nil:
		return nil, fmt.Errorf("URL %q must not carry credentials", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, fmt.Errorf("URL %q must not have a query or fragment", raw)
	}
	return u, nil
}

// validDDK reports whether s reads as a data decryption key: hexadecimal
// bytes (finAPI hands out 32 digits).
func validDDK(s string) bool {
	if len(s)%2 != 0 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}

func reserved(h string) bool {
	switch strings.ToLower(h) {
	case "authorization", "cookie", "host", "content-length", "content-type", "transfer-encoding",
		"connection", "x-request-id", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host":
		return true
	}
	return false
}

// Usage writes every variable with its default and meaning, for --help.
func Usage(w io.Writer) {
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		name := Prefix + f.Tag.Get("env")
		if f.Tag.Get("file") == "true" {
			name += " (or " + name + "_FILE)"
		}
		def := f.Tag.Get("envDefault")
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(w, "  %-44s %-28s %s\n", name, def, f.Tag.Get("help"))
	}
}

// Summary is a one-line description of a valid configuration for
// --check, naming no secret.
func (c *Config) Summary() string {
	return fmt.Sprintf("mode=%s session_auth=%s store=%s access_url=%s listen=%s admin=%s demo=%t",
		c.Mode, c.SessionAuth, c.Store, c.AccessURL, c.ListenAddr, c.AdminAddr, c.Demo)
}
