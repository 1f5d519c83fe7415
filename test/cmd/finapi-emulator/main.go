// Command finapi-emulator serves the finAPI emulator of package emulator:
// finAPI Access, the finAPI Process Controller, an echo upstream and the
// load benchmark's fixed upstream, each on its own address, for demos and black-box tests. It needs no credentials
// and no internet.
//
// Every flag has an environment variable that sets its default:
//
//	-addr             FINAPI_EMULATOR_ADDR             finAPI Access (default 127.0.0.1:8081)
//	-processctl-addr  FINAPI_EMULATOR_PROCESSCTL_ADDR  Process Controller (default 127.0.0.1:8082)
//	-echo-addr        FINAPI_EMULATOR_ECHO_ADDR        echo upstream (default 127.0.0.1:8083)
//	-fixed-addr       FINAPI_EMULATOR_FIXED_ADDR       fixed finAPI-like upstream: one account
//	                  list for every request (emulator.FixedHandler; default off)
//	-client-id        FINAPI_EMULATOR_CLIENT_ID        accepted client id (default demo-client)
//	-client-secret    FINAPI_EMULATOR_CLIENT_SECRET    accepted client secret (default demo-secret)
//	-user-token-ttl   FINAPI_EMULATOR_USER_TOKEN_TTL   expires_in of user tokens (default 1h)
//	-user-auto-verification FINAPI_EMULATOR_USER_AUTO_VERIFICATION
//	                  the client's isUserAutoVerificationEnabled (default true);
//	                  false: new users must be verified before they can log in
//	-latency          FINAPI_EMULATOR_LATENCY          prefix=duration,… e.g.
//	                  /api/v2/oauth/token=50ms,/api/v2/users=50ms (default none)
//	-fail             FINAPI_EMULATOR_FAIL             prefix=status:count,… e.g.
//	                  /api/v2/oauth/token=503:10: the next 10 token calls answer 503
//
// An empty address switches that listener off. SIGINT or SIGTERM shut it
// down gracefully.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/finproxy/finproxy/test/emulator"
)

func main() {
	log.SetFlags(log.LstdFlags | log.LUTC)
	if err := run(os.Args[1:]); err != nil {
		log.Printf("finapi-emulator: %v", err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func run(args []string) error {
	fs := flag.NewFlagSet("finapi-emulator", flag.ContinueOnError)
	addr := fs.String("addr", env("FINAPI_EMULATOR_ADDR", "127.0.0.1:8081"), "finAPI Access listen address")
	pcAddr := fs.String("processctl-addr", env("FINAPI_EMULATOR_PROCESSCTL_ADDR", "127.0.0.1:8082"), "Process Controller listen address")
	echoAddr := fs.String("echo-addr", env("FINAPI_EMULATOR_ECHO_ADDR", "127.0.0.1:8083"), "echo upstream listen address")
	fixedAddr := fs.String("fixed-addr", env("FINAPI_EMULATOR_FIXED_ADDR", ""), "fixed finAPI-like upstream listen address (the load benchmark's; off when empty)")
	clientID := fs.String("client-id", env("FINAPI_EMULATOR_CLIENT_ID", "demo-client"), "accepted client id")
	clientSecret := fs.String("client-secret", env("FINAPI_EMULATOR_CLIENT_SECRET", "demo-secret"), "accepted client secret")
	ttl, err := time.ParseDuration(env("FINAPI_EMULATOR_USER_TOKEN_TTL", "1h"))
	if err != nil {
		return fmt.Errorf("FINAPI_EMULATOR_USER_TOKEN_TTL: %w", err)
	}
	fs.DurationVar(&ttl, "user-token-ttl", ttl, "expires_in of user tokens")
	autoVerify, err := strconv.ParseBool(env("FINAPI_EMULATOR_USER_AUTO_VERIFICATION", "true"))
	if err != nil {
		return fmt.Errorf("FINAPI_EMULATOR_USER_AUTO_VERIFICATION: %w", err)
	}
	fs.BoolVar(&autoVerify, "user-auto-verification", autoVerify, "isUserAutoVerificationEnabled: false makes new users unverified until POST /api/v2/users/verify/{userId}")
	latency := fs.String("latency", env("FINAPI_EMULATOR_LATENCY", ""), "latency per path prefix: prefix=duration,…")
	fail := fs.String("fail", env("FINAPI_EMULATOR_FAIL", ""), "failures per path prefix: prefix=status:count,…")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *clientID == "" || *clientSecret == "" {
		return errors.New("-client-id and -client-secret must not be empty")
	}
	if ttl <= 0 {
		return errors.New("-user-token-ttl must be positive")
	}

	emu := emulator.New(emulator.Config{ClientID: *clientID, ClientSecret: *clientSecret, UserTokenTTL: ttl, ManualUserVerification: !autoVerify})
	if err := faults(emu, *latency, *fail); err != nil {
		return err
	}
	services := []struct {
		name, addr string
		handler    http.Handler
	}{
		{"access", *addr, withStats(emu)},
		{"processctl", *pcAddr, emu.ProcessController()},
		{"echo", *echoAddr, emulator.EchoHandler()},
		{"fixed", *fixedAddr, emulator.FixedHandler()},
	}

	var servers []*http.Server
	var where []string
	errc := make(chan error, len(services))
	for _, s := range services {
		if s.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			for _, srv := range servers {
				srv.Close()
			}
			return fmt.Errorf("%s: %w", s.name, err)
		}
		srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		where = append(where, fmt.Sprintf("%s=http://%s", s.name, ln.Addr()))
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s: %w", s.name, err)
			}
		}()
	}
	if len(servers) == 0 {
		return errors.New("every listener is switched off")
	}
	log.Printf("finapi-emulator: listening %s client_id=%s user_token_ttl=%s user_auto_verification=%t",
		strings.Join(where, " "), *clientID, ttl, autoVerify)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var serveErr error
	select {
	case <-ctx.Done():
		log.Printf("finapi-emulator: shutting down")
	case serveErr = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			srv.Close()
		}
	}
	return serveErr
}

// faults applies the -latency and -fail flags.
func faults(emu *emulator.Emulator, latency, fail string) error {
	for _, item := range splitList(latency) {
		prefix, d, ok := strings.Cut(item, "=")
		dur, err := time.ParseDuration(d)
		if !ok || !strings.HasPrefix(prefix, "/") || err != nil || dur < 0 {
			return fmt.Errorf("-latency: %q is not prefix=duration", item)
		}
		emu.SetLatency(prefix, dur)
	}
	for _, item := range splitList(fail) {
		prefix, spec, ok := strings.Cut(item, "=")
		st, n, ok2 := strings.Cut(spec, ":")
		status, err1 := strconv.Atoi(st)
		count, err2 := strconv.Atoi(n)
		if !ok || !ok2 || !strings.HasPrefix(prefix, "/") || err1 != nil || err2 != nil || status < 100 || status > 599 || count < 1 {
			return fmt.Errorf("-fail: %q is not prefix=status:count", item)
		}
		emu.FailNext(prefix, status, count)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// withStats is the Access handler plus GET /_emulator/stats (not finAPI's:
// for make bench): the peak number of concurrent requests the emulator
// served and a few counters, as JSON.
func withStats(emu *emulator.Emulator) http.Handler {
	access := emu.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/_emulator/stats" {
			access.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]int{
			"peak_concurrency": emu.PeakConcurrency(),
			"users_created":    emu.Count(emulator.CounterUsersCreate),
			"password_grants":  emu.Count(emulator.CounterPassword),
			"refresh_grants":   emu.Count(emulator.CounterRefreshToken),
		})
	})
}
