// Command demoweb serves the browser page of make demo (examples/web) on a
// loopback address of its own, so that the page and finproxy are different
// origins and the browser makes real CORS preflights.
//
// The page learns finproxy's URL from /config.js, which demoweb writes from
// its flags; nothing in examples/web names a host or a port.
//
//	-addr            listen address, loopback only (default 127.0.0.1:8000)
//	-dir             the page's files (default examples/web)
//	-proxy           finproxy's base URL as the browser reaches it (default http://127.0.0.1:8080)
//	-session-header  finproxy's FINPROXY_SESSION_HEADER (default X-Session-Id)
//
// SIGINT or SIGTERM shut it down.
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
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	log.SetFlags(log.LstdFlags | log.LUTC)
	if err := run(os.Args[1:]); err != nil {
		log.Printf("demoweb: %v", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("demoweb", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8000", "listen address (loopback only)")
	dir := fs.String("dir", "examples/web", "directory of the page")
	proxy := fs.String("proxy", "http://127.0.0.1:8080", "finproxy's base URL, as the browser reaches it")
	header := fs.String("session-header", "X-Session-Id", "finproxy's session header")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := loopbackOnly(*addr); err != nil {
		return err
	}
	origin, err := originOf(*proxy)
	if err != nil {
		return err
	}
	if st, err := os.Stat(*dir); err != nil || !st.IsDir() {
		return fmt.Errorf("-dir %q is not a directory", *dir)
	}
	config, err := configJS(origin, *header)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler(*dir, origin, config), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Printf("demoweb: listening http://%s dir=%s proxy=%s", ln.Addr(), *dir, origin)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		srv.Close()
	}
	return nil
}

// loopbackOnly refuses a listen address that is not a loopback IP or
// localhost: the page is a demo, not a server for a network.
func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("-addr %q: only a loopback address (127.0.0.1, [::1], localhost) is served", addr)
}

// originOf returns the origin (scheme://host[:port]) of an http(s) URL.
func originOf(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("-proxy %q is not an http(s) URL", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}

// configJS is the script the page loads before its own: where finproxy is
// and which header carries the session.
func configJS(proxy, header string) ([]byte, error) {
	b, err := json.Marshal(map[string]string{"proxyURL": proxy, "sessionHeader": header})
	if err != nil {
		return nil, err
	}
	return []byte("window.FINPROXY_DEMO = " + string(b) + ";\n"), nil
}

// handler serves config.js and the page's files. The Content-Security-Policy
// lets the page load only its own files and talk only to finproxy.
func handler(dir, proxy string, config []byte) http.Handler {
	files := http.FileServer(http.Dir(dir))
	csp := "default-src 'self'; connect-src " + proxy + "; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		if r.URL.Path == "/config.js" {
			h.Set("Content-Type", "text/javascript; charset=utf-8")
			w.Write(config)
			return
		}
		files.ServeHTTP(w, r)
	})
}
