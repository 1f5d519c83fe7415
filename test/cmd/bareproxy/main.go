// Command bareproxy is the baseline of finproxy's load benchmark: a bare
// httputil.ReverseProxy with the same transport and buffer pool and a
// fixed Authorization: Bearer of a finAPI token's longest length (128
// characters, as the emulator hands out and finproxy injects), and nothing
// else (no session, no token lookup, no logging). -pprof serves
// net/http/pprof on another address, to compare profiles with finproxy's
// (FINPROXY_PPROF).
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/http/pprof"
	"net/url"
	"strings"
	"time"

	"github.com/finproxy/finproxy/proxy"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18090", "listen address")
	target := flag.String("target", "http://127.0.0.1:18083", "upstream base URL")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address (off when empty)")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil {
		log.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
			pr.Out.Header["Authorization"] = bearer
		},
		Transport:  proxy.NewTransport(30 * time.Second),
		BufferPool: proxy.CopyBuffers,
	}
	if *pprofAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		go func() { log.Print(http.ListenAndServe(*pprofAddr, mux)) }()
	}
	srv := &http.Server{Addr: *addr, Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("bareproxy: %s -> %s", *addr, u)
	log.Fatal(srv.ListenAndServe())
}

// bearer is the fixed Authorization header: one slice shared by every
// request, as finproxy shares its header values (a 128-character token).
var bearer = []string{"Bearer " + strings.Repeat("t", 128)}
