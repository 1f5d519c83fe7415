package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/finproxy/finproxy/config"
)

const (
	testClientSecret   = "client-secret-9f8e7d6c5b4a"
	testIdentitySecret = "identity-secret-0123456789abcdef0123456789"
)

// environ returns the minimal valid environment with set applied on top;
// a value of "\x00unset" removes the variable.
func environ(set map[string]string) []string {
	vars := map[string]string{
		"FINPROXY_CLIENT_ID":       "client-id",
		"FINPROXY_CLIENT_SECRET":   testClientSecret,
		"FINPROXY_IDENTITY_SECRET": testIdentitySecret,
		"PATH":                     "/usr/bin", // foreign variables are ignored
	}
	for k, v := range set {
		if v == unset {
			delete(vars, k)
			continue
		}
		vars[k] = v
	}
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

const unset = "\x00unset"

// problems returns the *config.Error values of err, failing the test for
// anything else.
func problems(t *testing.T, err error) []*config.Error {
	t.Helper()
	if err == nil {
		return nil
	}
	var out []*config.Error
	for _, p := range config.Problems(err) {
		var ce *config.Error
		if !errors.As(p, &ce) {
			t.Errorf("problem %q (%T) is not a *config.Error", p, p)
			continue
		}
		out = append(out, ce)
	}
	return out
}

func vars(ps []*config.Error) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Var)
	}
	slices.Sort(out)
	return out
}

// TestLoadDefaults checks the defaults CONTRACT.md fixes, and those of the
// tuning variables, with only the required variables set.
func TestLoadDefaults(t *testing.T) {
	cfg, err := config.Load(environ(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	tests := []struct {
		variable  string
		got, want any
	}{
		{"FINPROXY_LISTEN_ADDR", cfg.ListenAddr, ":8080"},
		{"FINPROXY_ADMIN_ADDR", cfg.AdminAddr, ":9090"},
		{"FINPROXY_ACCESS_URL", cfg.AccessURL, "https://sandbox.finapi.io"},
		{"FINPROXY_PROCESSCTL_URL", cfg.ProcessCtlURL, "https://di-processctl-finapi-general-sandbox.finapi.io"},
		{"FINPROXY_CLIENT_ID", cfg.ClientID, "client-id"},
		{"FINPROXY_CLIENT_SECRET", cfg.ClientSecret, testClientSecret},
		{"FINPROXY_MODE", cfg.Mode, "user"},
		{"FINPROXY_PROCESS_ID", cfg.ProcessID, "USER_ONLY"},
		{"FINPROXY_IDENTITY_SECRET", cfg.IdentitySecret, testIdentitySecret},
		{"FINPROXY_SESSION_HEADER", cfg.SessionHeader, "X-Session-Id"},
		{"FINPROXY_SESSION_AUTH", cfg.SessionAuth, "header"},
		{"FINPROXY_ROUTES", cfg.Routes, ""},
		{"FINPROXY_REPLAY_MAX_BYTES", cfg.ReplayMaxBytes, int64(1048576)},
		{"FINPROXY_STORE", cfg.Store, "memory"},
		{"FINPROXY_REDIS_URL", cfg.RedisURL, "redis://127.0.0.1:6379/0"},
		{"FINPROXY_LOG_LEVEL", cfg.LogLevel, "info"},
		{"FINPROXY_LOG_FORMAT", cfg.LogFormat, "json"},
		{"FINPROXY_PROCESS_TOKEN_TTL", cfg.ProcessTokenTTL, time.Hour},
		{"FINPROXY_UPSTREAM_TIMEOUT", cfg.UpstreamTimeout, 30 * time.Second},
		{"FINPROXY_SHUTDOWN_TIMEOUT", cfg.ShutdownTimeout, 25 * time.Second},
		{"FINPROXY_RENEW_BEFORE", cfg.RenewBefore, 0.2},
		{"FINPROXY_SESSION_IDLE", cfg.SessionIdle, 30 * time.Minute},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s defaults to %v, want %v", tt.variable, tt.got, tt.want)
		}
	}
}

// TestLoadEmptyMeansDefault checks that a variable set to the empty string
// takes its default, as an unset one does.
func TestLoadEmptyMeansDefault(t *testing.T) {
	cfg, err := config.Load(environ(map[string]string{
		"FINPROXY_LISTEN_ADDR": "", "FINPROXY_ADMIN_ADDR": "", "FINPROXY_PROCESS_ID": "", "FINPROXY_MODE": "",
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.ListenAddr != ":8080" || cfg.AdminAddr != ":9090" || cfg.ProcessID != "USER_ONLY" || cfg.Mode != "user" {
		t.Errorf("empty values did not take defaults: %+v", cfg)
	}
}

func TestLoadOverrides(t *testing.T) {
	cfg, err := config.Load(environ(map[string]string{
		"FINPROXY_LISTEN_ADDR":       "127.0.0.1:18080",
		"FINPROXY_ADMIN_ADDR":        "127.0.0.1:19090",
		"FINPROXY_ACCESS_URL":        "http://localhost:8000/base",
		"FINPROXY_PROCESSCTL_URL":    "http://localhost:8001",
		"FINPROXY_ROUTES":            "/di=http://localhost:8002",
		"FINPROXY_MODE":              "process",
		"FINPROXY_PROCESS_ID":        "OTHER",
		"FINPROXY_SESSION_HEADER":    "X-App-Session",
		"FINPROXY_REPLAY_MAX_BYTES":  "0",
		"FINPROXY_UPSTREAM_TIMEOUT":  "5s",
		"FINPROXY_RENEW_BEFORE":      "0.5",
		"FINPROXY_LOG_LEVEL":         "debug",
		"FINPROXY_LOG_FORMAT":        "console",
		"FINPROXY_PROCESS_TOKEN_TTL": "10m",
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"ListenAddr", cfg.ListenAddr, "127.0.0.1:18080"},
		{"AdminAddr", cfg.AdminAddr, "127.0.0.1:19090"},
		{"AccessURL", cfg.AccessURL, "http://localhost:8000/base"},
		{"ProcessCtlURL", cfg.ProcessCtlURL, "http://localhost:8001"},
		{"Routes", cfg.Routes, "/di=http://localhost:8002"},
		{"Mode", cfg.Mode, config.ModeProcess},
		{"ProcessID", cfg.ProcessID, "OTHER"},
		{"SessionHeader", cfg.SessionHeader, "X-App-Session"},
		{"ReplayMaxBytes", cfg.ReplayMaxBytes, int64(0)},
		{"UpstreamTimeout", cfg.UpstreamTimeout, 5 * time.Second},
		{"RenewBefore", cfg.RenewBefore, 0.5},
		{"LogLevel", cfg.LogLevel, "debug"},
		{"LogFormat", cfg.LogFormat, "console"},
		{"ProcessTokenTTL", cfg.ProcessTokenTTL, 10 * time.Minute},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestLoadProblems checks that every problem is reported, once, as a
// *config.Error naming its variable.
func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name     string
		set      map[string]string
		wantVars []string // sorted
	}{
		{
			name:     "nothing set",
			set:      map[string]string{"FINPROXY_CLIENT_ID": unset, "FINPROXY_CLIENT_SECRET": unset, "FINPROXY_IDENTITY_SECRET": unset},
			wantVars: []string{"FINPROXY_CLIENT_ID", "FINPROXY_CLIENT_SECRET", "FINPROXY_IDENTITY_SECRET"},
		},
		{
			name:     "identity secret of 31 bytes",
			set:      map[string]string{"FINPROXY_IDENTITY_SECRET": strings.Repeat("s", 31)},
			wantVars: []string{"FINPROXY_IDENTITY_SECRET"},
		},
		{
			name:     "user id claim outside jwt mode",
			set:      map[string]string{"FINPROXY_JWT_USER_ID_CLAIM": "finapi_user"},
			wantVars: []string{"FINPROXY_JWT_USER_ID_CLAIM"},
		},
		{
			name: "user id claim in process mode",
			set: map[string]string{"FINPROXY_JWT_USER_ID_CLAIM": "finapi_user", "FINPROXY_MODE": "process",
				"FINPROXY_SESSION_AUTH": "jwt", "FINPROXY_JWT_HMAC_SECRET": strings.Repeat("h", 32)},
			wantVars: []string{"FINPROXY_JWT_USER_ID_CLAIM"},
		},
		{
			name:     "resumable processes in user mode",
			set:      map[string]string{"FINPROXY_PROCESS_RESUMABLE": "true"},
			wantVars: []string{"FINPROXY_PROCESS_RESUMABLE"},
		},
		{
			name:     "resumable not a boolean",
			set:      map[string]string{"FINPROXY_PROCESS_RESUMABLE": "yes please", "FINPROXY_MODE": "process"},
			wantVars: []string{"FINPROXY_PROCESS_RESUMABLE"},
		},
		{
			name:     "invalid duration",
			set:      map[string]string{"FINPROXY_UPSTREAM_TIMEOUT": "soon"},
			wantVars: []string{"FINPROXY_UPSTREAM_TIMEOUT"},
		},
		{
			name:     "invalid int",
			set:      map[string]string{"FINPROXY_REPLAY_MAX_BYTES": "1MB"},
			wantVars: []string{"FINPROXY_REPLAY_MAX_BYTES"},
		},
		{
			name:     "negative int",
			set:      map[string]string{"FINPROXY_REPLAY_MAX_BYTES": "-1"},
			wantVars: []string{"FINPROXY_REPLAY_MAX_BYTES"},
		},
		{
			name:     "invalid float",
			set:      map[string]string{"FINPROXY_RENEW_BEFORE": "a fifth"},
			wantVars: []string{"FINPROXY_RENEW_BEFORE"},
		},
		{
			name:     "renew before out of range",
			set:      map[string]string{"FINPROXY_RENEW_BEFORE": "1"},
			wantVars: []string{"FINPROXY_RENEW_BEFORE"},
		},
		{
			name: "several invalid values at once",
			set: map[string]string{
				"FINPROXY_UPSTREAM_TIMEOUT":  "soon",
				"FINPROXY_SHUTDOWN_TIMEOUT":  "-5s",
				"FINPROXY_SESSION_IDLE":      "forever",
				"FINPROXY_REPLAY_MAX_BYTES":  "lots",
				"FINPROXY_PROCESS_TOKEN_TTL": "30s",
				"FINPROXY_MODE":              "users",
				"FINPROXY_LOG_LEVEL":         "verbose",
				"FINPROXY_LOG_FORMAT":        "xml",
				"FINPROXY_STORE":             "etcd",
				"FINPROXY_SESSION_AUTH":      "cookie",
				"FINPROXY_ACCESS_URL":        "ftp://sandbox.finapi.io",
				"FINPROXY_PROCESSCTL_URL":    "https://",
				"FINPROXY_ROUTES":            "/di",
			},
			wantVars: []string{
				"FINPROXY_ACCESS_URL", "FINPROXY_LOG_FORMAT", "FINPROXY_LOG_LEVEL", "FINPROXY_MODE",
				"FINPROXY_PROCESSCTL_URL", "FINPROXY_PROCESS_TOKEN_TTL",
				"FINPROXY_REPLAY_MAX_BYTES", "FINPROXY_ROUTES", "FINPROXY_SESSION_AUTH",
				"FINPROXY_SESSION_IDLE", "FINPROXY_SHUTDOWN_TIMEOUT", "FINPROXY_STORE",
				"FINPROXY_UPSTREAM_TIMEOUT",
			},
		},
		{
			name:     "admin address equals listen address",
			set:      map[string]string{"FINPROXY_LISTEN_ADDR": ":8000", "FINPROXY_ADMIN_ADDR": ":8000"},
			wantVars: []string{"FINPROXY_ADMIN_ADDR"},
		},
		{
			name:     "session header that is no header name",
			set:      map[string]string{"FINPROXY_SESSION_HEADER": "X Session"},
			wantVars: []string{"FINPROXY_SESSION_HEADER"},
		},
		{
			name:     "session header finproxy strips itself",
			set:      map[string]string{"FINPROXY_SESSION_HEADER": "authorization"},
			wantVars: []string{"FINPROXY_SESSION_HEADER"},
		},
		{
			name:     "jwt without a key source",
			set:      map[string]string{"FINPROXY_SESSION_AUTH": "jwt"},
			wantVars: []string{"FINPROXY_JWT_JWKS_URL"},
		},
		{
			name:     "jwt with both key sources",
			set:      map[string]string{"FINPROXY_SESSION_AUTH": "jwt", "FINPROXY_JWT_JWKS_URL": "https://idp.example.com/jwks", "FINPROXY_JWT_HMAC_SECRET": strings.Repeat("h", 32)},
			wantVars: []string{"FINPROXY_JWT_HMAC_SECRET"},
		},
		{
			name:     "jwt hmac secret too short",
			set:      map[string]string{"FINPROXY_SESSION_AUTH": "jwt", "FINPROXY_JWT_HMAC_SECRET": "short-secret"},
			wantVars: []string{"FINPROXY_JWT_HMAC_SECRET"},
		},
		{
			name:     "jwks url not http",
			set:      map[string]string{"FINPROXY_SESSION_AUTH": "jwt", "FINPROXY_JWT_JWKS_URL": "file:///etc/jwks.json"},
			wantVars: []string{"FINPROXY_JWT_JWKS_URL"},
		},
		{
			name: "edge settings",
			set: map[string]string{
				"FINPROXY_CORS_ORIGINS":     "https://app.example.com,*",
				"FINPROXY_TRUSTED_PROXIES":  "10.0.0.0/8,not-an-ip",
				"FINPROXY_MAX_BODY_BYTES":   "-1",
				"FINPROXY_MAX_HEADER_BYTES": "100",
				"FINPROXY_RATE_SESSION":     "-1",
				"FINPROXY_RATE_IP":          "5",
				"FINPROXY_RATE_IP_BURST":    "0",
			},
			wantVars: []string{"FINPROXY_CORS_ORIGINS", "FINPROXY_MAX_BODY_BYTES", "FINPROXY_MAX_HEADER_BYTES", "FINPROXY_RATE_IP_BURST", "FINPROXY_RATE_SESSION", "FINPROXY_TRUSTED_PROXIES"},
		},
		{
			name:     "redis store with locks shorter than a fetch",
			set:      map[string]string{"FINPROXY_STORE": "redis", "FINPROXY_LOCK_TTL": "10s", "FINPROXY_LOCK_WAIT": "5s", "FINPROXY_REDIS_TIMEOUT": "5ms"},
			wantVars: []string{"FINPROXY_LOCK_TTL", "FINPROXY_LOCK_WAIT", "FINPROXY_REDIS_TIMEOUT"},
		},
		{
			name:     "redis L1 max age below its TTL",
			set:      map[string]string{"FINPROXY_STORE": "redis", "FINPROXY_REDIS_L1_TTL": "5s", "FINPROXY_REDIS_L1_MAX_AGE": "4s"},
			wantVars: []string{"FINPROXY_REDIS_L1_MAX_AGE"},
		},
		{
			name:     "redis L1 max age above an hour",
			set:      map[string]string{"FINPROXY_STORE": "redis", "FINPROXY_REDIS_L1_MAX_AGE": "2h"},
			wantVars: []string{"FINPROXY_REDIS_L1_MAX_AGE"},
		},
		{
			name:     "failure budgets out of range",
			set:      map[string]string{"FINPROXY_BODY_TIMEOUT": "10ms", "FINPROXY_SHUTDOWN_DELAY": "-1s", "FINPROXY_FINAPI_CONCURRENCY": "0", "FINPROXY_NEW_SESSION_RATE": "-1", "FINPROXY_NEW_SESSION_RATE_IP": "2", "FINPROXY_NEW_SESSION_BURST_IP": "0"},
			wantVars: []string{"FINPROXY_BODY_TIMEOUT", "FINPROXY_FINAPI_CONCURRENCY", "FINPROXY_NEW_SESSION_BURST_IP", "FINPROXY_NEW_SESSION_RATE", "FINPROXY_SHUTDOWN_DELAY"},
		},
		{
			name:     "GC heap floor below the runtime's minimum",
			set:      map[string]string{"FINPROXY_GC_HEAP_FLOOR_BYTES": "1048576"},
			wantVars: []string{"FINPROXY_GC_HEAP_FLOOR_BYTES"},
		},
		{
			name:     "access URL with credentials",
			set:      map[string]string{"FINPROXY_ACCESS_URL": "https://user:pw@sandbox.finapi.io"},
			wantVars: []string{"FINPROXY_ACCESS_URL"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load(environ(tt.set))
			if err == nil {
				t.Fatalf("Load succeeded with %+v, want problems with %v", cfg, tt.wantVars)
			}
			if cfg != nil {
				t.Errorf("Load returned a config together with an error")
			}
			ps := problems(t, err)
			if got := vars(ps); !slices.Equal(got, tt.wantVars) {
				t.Errorf("problems name %v, want %v; problems:\n%v", got, tt.wantVars, err)
			}
			for _, p := range ps {
				if !strings.HasPrefix(p.Error(), p.Var+": ") || p.Msg == "" {
					t.Errorf("problem %q does not start with its variable and a message", p)
				}
				for _, secret := range []string{testClientSecret, testIdentitySecret} {
					if strings.Contains(p.Error(), secret) {
						t.Errorf("problem %q contains a secret", p)
					}
				}
			}
		})
	}
}

// TestLoadInvalidValueNamesVariable checks the message of a parse error:
// it names the variable and the kind of value expected.
func TestLoadInvalidValueNamesVariable(t *testing.T) {
	tests := []struct {
		name, variable, value, wantInMsg string
	}{
		{"duration", "FINPROXY_UPSTREAM_TIMEOUT", "soon", "time.Duration"},
		{"duration without unit", "FINPROXY_SESSION_IDLE", "30", "time.Duration"},
		{"int64", "FINPROXY_REPLAY_MAX_BYTES", "1.5", "int64"},
		{"float", "FINPROXY_RENEW_BEFORE", "x", "float64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(environ(map[string]string{tt.variable: tt.value}))
			ps := problems(t, err)
			if len(ps) != 1 {
				t.Fatalf("got %d problems, want 1: %v", len(ps), err)
			}
			if ps[0].Var != tt.variable {
				t.Errorf("problem names %s, want %s", ps[0].Var, tt.variable)
			}
			if !strings.Contains(ps[0].Msg, tt.wantInMsg) {
				t.Errorf("problem %q does not mention %q", ps[0], tt.wantInMsg)
			}
		})
	}
}

func TestLoadSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	clientFile := write("client", testClientSecret+"-file\n")
	identityFile := write("identity", testIdentitySecret+"-file \t\r\n\n  ")
	shortFile := write("short", strings.Repeat("x", 31)+"\n")
	innerSpace := write("inner", "  leading and inner spaces stay 0123456789\n")

	t.Run("both files are read and trimmed", func(t *testing.T) {
		cfg, err := config.Load(environ(map[string]string{
			"FINPROXY_CLIENT_SECRET":        unset,
			"FINPROXY_IDENTITY_SECRET":      unset,
			"FINPROXY_CLIENT_SECRET_FILE":   clientFile,
			"FINPROXY_IDENTITY_SECRET_FILE": identityFile,
		}))
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if cfg.ClientSecret != testClientSecret+"-file" {
			t.Errorf("ClientSecret = %q, want %q", cfg.ClientSecret, testClientSecret+"-file")
		}
		if cfg.IdentitySecret != testIdentitySecret+"-file" {
			t.Errorf("IdentitySecret = %q, want %q", cfg.IdentitySecret, testIdentitySecret+"-file")
		}
	})

	t.Run("only trailing whitespace is trimmed", func(t *testing.T) {
		cfg, err := config.Load(environ(map[string]string{
			"FINPROXY_IDENTITY_SECRET":      unset,
			"FINPROXY_IDENTITY_SECRET_FILE": innerSpace,
		}))
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if want := "  leading and inner spaces stay 0123456789"; cfg.IdentitySecret != want {
			t.Errorf("IdentitySecret = %q, want %q", cfg.IdentitySecret, want)
		}
	})

	tests := []struct {
		name      string
		set       map[string]string
		wantVar   string
		wantInMsg string
	}{
		{
			name:      "client secret and its file both set",
			set:       map[string]string{"FINPROXY_CLIENT_SECRET_FILE": clientFile},
			wantVar:   "FINPROXY_CLIENT_SECRET_FILE",
			wantInMsg: "FINPROXY_CLIENT_SECRET",
		},
		{
			name:      "identity secret and its file both set",
			set:       map[string]string{"FINPROXY_IDENTITY_SECRET_FILE": identityFile},
			wantVar:   "FINPROXY_IDENTITY_SECRET_FILE",
			wantInMsg: "FINPROXY_IDENTITY_SECRET",
		},
		{
			name:      "client secret file missing",
			set:       map[string]string{"FINPROXY_CLIENT_SECRET": unset, "FINPROXY_CLIENT_SECRET_FILE": filepath.Join(dir, "nope")},
			wantVar:   "FINPROXY_CLIENT_SECRET_FILE",
			wantInMsg: "cannot read",
		},
		{
			name:      "identity secret file is a directory",
			set:       map[string]string{"FINPROXY_IDENTITY_SECRET": unset, "FINPROXY_IDENTITY_SECRET_FILE": dir},
			wantVar:   "FINPROXY_IDENTITY_SECRET_FILE",
			wantInMsg: "cannot read",
		},
		{
			name:      "identity secret file too short",
			set:       map[string]string{"FINPROXY_IDENTITY_SECRET": unset, "FINPROXY_IDENTITY_SECRET_FILE": shortFile},
			wantVar:   "FINPROXY_IDENTITY_SECRET",
			wantInMsg: "32 bytes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(environ(tt.set))
			ps := problems(t, err)
			var found bool
			for _, p := range ps {
				if p.Var == tt.wantVar {
					found = true
					if !strings.Contains(p.Msg, tt.wantInMsg) {
						t.Errorf("problem %q does not mention %q", p, tt.wantInMsg)
					}
				}
			}
			if !found {
				t.Errorf("no problem names %s; got %v", tt.wantVar, err)
			}
			if err == nil {
				return
			}
			for _, secret := range []string{testClientSecret, testIdentitySecret, strings.Repeat("x", 31)} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains a secret", err)
				}
			}
		})
	}
}

func TestProblemsOfSingleError(t *testing.T) {
	e := &config.Error{Var: "FINPROXY_X", Msg: "bad"}
	ps := config.Problems(e)
	if len(ps) != 1 || ps[0] != error(e) {
		t.Errorf("Problems(single) = %v, want [%v]", ps, e)
	}
	if got, want := e.Error(), "FINPROXY_X: bad"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestLoadRunsChecks: the checks of other packages (a Redis URL, which
// go-redis parses) run after config's own, and their problems are
// collected with the others.
func TestLoadRunsChecks(t *testing.T) {
	check := func(c *config.Config) error {
		if c.Store == config.StoreRedis {
			return &config.Error{Var: "FINPROXY_REDIS_URL", Msg: "not a redis URL"}
		}
		return nil
	}
	_, err := config.Load(environ(map[string]string{"FINPROXY_STORE": "redis", "FINPROXY_MODE": "nope"}), check)
	if got := vars(problems(t, err)); !slices.Equal(got, []string{"FINPROXY_MODE", "FINPROXY_REDIS_URL"}) {
		t.Errorf("problems name %v, want FINPROXY_MODE and FINPROXY_REDIS_URL", got)
	}
	if _, err := config.Load(environ(nil), check); err != nil {
		t.Errorf("a check that finds nothing: %v", err)
	}
}

// TestLoadAddresses: every *_ADDR variable that net.Listen would refuse is
// exit-2 configuration, naming the variable.
func TestLoadAddresses(t *testing.T) {
	for _, name := range []string{"FINPROXY_LISTEN_ADDR", "FINPROXY_ADMIN_ADDR"} {
		for _, addr := range []string{":99999", "nonsense", "127.0.0.1:65536", "127.0.0.18080", ":http", "127.0.0.1:-1", "bad_host:8080", "[::1:8080"} {
			t.Run(name+"="+addr, func(t *testing.T) {
				_, err := config.Load(environ(map[string]string{name: addr}))
				ps := problems(t, err)
				if got := vars(ps); !slices.Equal(got, []string{name}) {
					t.Fatalf("problems name %v, want [%s]; problems:\n%v", got, name, err)
				}
				if !strings.Contains(ps[0].Msg, addr) {
					t.Errorf("problem %q does not quote the address", ps[0])
				}
			})
		}
	}
	for _, addr := range []string{":8080", "127.0.0.1:0", "[::1]:65535", "localhost:9090", "proxy.internal:80"} {
		t.Run("valid "+addr, func(t *testing.T) {
			cfg, err := config.Load(environ(map[string]string{"FINPROXY_LISTEN_ADDR": addr}))
			if err != nil {
				t.Fatalf("Load(%q): %v", addr, err)
			}
			if cfg.ListenAddr != addr {
				t.Errorf("ListenAddr = %q, want %q", cfg.ListenAddr, addr)
			}
		})
	}
}

// TestLoadRefusesPlaceholderSecrets: REPLACE_ME (any case, in any secret
// variable, even in demo mode), the old manifest placeholder and, outside
// demo mode, the demo's published secrets are refused, one problem per
// variable saying why and never quoting the value.
func TestLoadRefusesPlaceholderSecrets(t *testing.T) {
	const demoIdentity = "demo-identity-secret-not-for-production-use"
	emulator := map[string]string{"FINPROXY_ACCESS_URL": "http://127.0.0.1:18081", "FINPROXY_PROCESSCTL_URL": "http://127.0.0.1:18082"}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name     string
		set      map[string]string
		wantVars []string // sorted; nil: Load succeeds
		wantMsg  string   // in every problem
	}{
		{"client secret REPLACE_ME", with(nil, "FINPROXY_CLIENT_SECRET", "secret-REPLACE_ME"), []string{"FINPROXY_CLIENT_SECRET"}, "REPLACE_ME"},
		{"identity secret of the manifests", with(nil, "FINPROXY_IDENTITY_SECRET", "REPLACE_ME_with_output_of_openssl_rand_base64_48"), []string{"FINPROXY_IDENTITY_SECRET"}, "placeholder"},
		{"lower case marker in the client id", with(nil, "FINPROXY_CLIENT_ID", "replace_me-client"), []string{"FINPROXY_CLIENT_ID"}, "REPLACE_ME"},
		{"redis URL password", with(nil, "FINPROXY_STORE", "redis", "FINPROXY_REDIS_URL", "redis://:Replace_Me@redis:6379/0"), []string{"FINPROXY_REDIS_URL"}, "REPLACE_ME"},
		{"jwt hmac secret", with(nil, "FINPROXY_SESSION_AUTH", "jwt", "FINPROXY_JWT_HMAC_SECRET", "REPLACE_ME_with_output_of_openssl_rand_base64_48"), []string{"FINPROXY_JWT_HMAC_SECRET"}, "REPLACE_ME"},
		{"REPLACE_ME even in demo mode", with(emulator, "FINPROXY_DEMO", "true", "FINPROXY_IDENTITY_SECRET", "REPLACE_ME_with_output_of_openssl_rand_base64_48"), []string{"FINPROXY_IDENTITY_SECRET"}, "even with FINPROXY_DEMO"},
		{"old manifest placeholder", with(nil, "FINPROXY_IDENTITY_SECRET", "replace-with-at-least-32-random-bytes"), []string{"FINPROXY_IDENTITY_SECRET"}, "old manifest"},
		{"old manifest placeholder in demo mode", with(emulator, "FINPROXY_DEMO", "true", "FINPROXY_IDENTITY_SECRET", "replace-with-at-least-32-random-bytes"), []string{"FINPROXY_IDENTITY_SECRET"}, "old manifest"},
		{"demo secrets without demo mode", with(emulator, "FINPROXY_CLIENT_SECRET", "demo-secret", "FINPROXY_IDENTITY_SECRET", demoIdentity), []string{"FINPROXY_CLIENT_SECRET", "FINPROXY_IDENTITY_SECRET"}, "FINPROXY_DEMO=true"},
		{"the JWT walk-through's key without demo mode", with(emulator, "FINPROXY_SESSION_AUTH", "jwt", "FINPROXY_JWT_HMAC_SECRET", "demo-jwt-hmac-secret-not-for-production-use"), []string{"FINPROXY_JWT_HMAC_SECRET"}, "FINPROXY_DEMO=true"},
		{"demo secrets in demo mode", with(emulator, "FINPROXY_DEMO", "true", "FINPROXY_CLIENT_SECRET", "demo-secret", "FINPROXY_IDENTITY_SECRET", demoIdentity), nil, ""},
		{"demo mode with the default finAPI sandbox", with(nil, "FINPROXY_DEMO", "true"), []string{"FINPROXY_DEMO"}, "FINPROXY_ACCESS_URL"},
		{"demo mode in process mode with the default Process Controller", with(nil, "FINPROXY_DEMO", "true", "FINPROXY_MODE", "process", "FINPROXY_ACCESS_URL", "http://127.0.0.1:18081"), []string{"FINPROXY_DEMO"}, "FINPROXY_PROCESSCTL_URL"},
		{"demo mode in user mode ignores the unused Process Controller", with(nil, "FINPROXY_DEMO", "true", "FINPROXY_ACCESS_URL", "http://127.0.0.1:18081",
			"FINPROXY_CLIENT_SECRET", "demo-secret", "FINPROXY_IDENTITY_SECRET", demoIdentity), nil, ""},
		{"demo mode with the live Access URL", with(emulator, "FINPROXY_DEMO", "true", "FINPROXY_ACCESS_URL", "https://LIVE.finapi.io"), []string{"FINPROXY_DEMO"}, "FINPROXY_ACCESS_URL"},
		{"demo mode with a finAPI route", with(emulator, "FINPROXY_DEMO", "true", "FINPROXY_ROUTES", "/di=https://di-sandbox.finapi.io"), []string{"FINPROXY_DEMO"}, "FINPROXY_ROUTES"},
		{"demo mode off a look-alike host", with(emulator, "FINPROXY_DEMO", "true", "FINPROXY_ROUTES", "/x=http://notfinapi.io.example"), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load(environ(tt.set))
			if tt.wantVars == nil {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if !cfg.Demo {
					t.Errorf("Demo = false, want true")
				}
				return
			}
			ps := problems(t, err)
			if got := vars(ps); !slices.Equal(got, tt.wantVars) {
				t.Fatalf("problems name %v, want %v; problems:\n%v", got, tt.wantVars, err)
			}
			for _, p := range ps {
				if !strings.Contains(p.Msg, tt.wantMsg) {
					t.Errorf("problem %q does not say %q", p, tt.wantMsg)
				}
				for k, v := range tt.set {
					if strings.Contains(k, "SECRET") || k == "FINPROXY_REDIS_URL" {
						if strings.Contains(p.Error(), v) {
							t.Errorf("problem %q quotes the value of %s", p, k)
						}
					}
				}
			}
		})
	}
}

// TestGCHeapFloor: on by default at 16 MiB; 0 turns it off.
func TestGCHeapFloor(t *testing.T) {
	for _, c := range []struct {
		set  string
		want int64
	}{{unset, 16 << 20}, {"0", 0}, {"67108864", 64 << 20}} {
		cfg, err := config.Load(environ(map[string]string{"FINPROXY_GC_HEAP_FLOOR_BYTES": c.set}))
		if err != nil {
			t.Fatalf("%q: %v", c.set, err)
		}
		if cfg.GCHeapFloor != c.want {
			t.Errorf("%q: GCHeapFloor = %d, want %d", c.set, cfg.GCHeapFloor, c.want)
		}
	}
}
