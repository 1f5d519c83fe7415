// Command bareproxy is the baseline of finproxy's load benchmark: a bare
// httputil.ReverseProxy with the same transport and buffer pool and nothing
// else (no session, no token, no logging).
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/finproxy/finproxy/proxy"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18090", "listen address")
	target := flag.String("target", "http://127.0.0.1:18083", "upstream base URL")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil {
		log.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		Transport:  proxy.NewTransport(30 * time.Second),
		BufferPool: proxy.CopyBuffers,
	}
	srv := &http.Server{Addr: *addr, Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("bareproxy: %s -> %s", *addr, u)
	log.Fatal(srv.ListenAndServe())
}
