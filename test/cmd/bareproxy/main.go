// Command bareproxy is the baseline of finproxy's load benchmark: a bare
// httputil.ReverseProxy with the same transport and buffer pool and a
// fixed Authorization: Bearer of a finAPI token's longest length (128
// characters, as the emulator hands out and finproxy injects), and nothing
// else (no session, no token lookup, no logging). -drop names a header it
// does not forward: the benchmark's session header, which finproxy strips,
// so that the upstream gets the same requests from both. -pprof serves
// net/http/pprof on another address, to compare profiles with finproxy's
// (FINPROXY_PPROF); without it allocations are not sampled for heap
// profiles, as in finproxy without FINPROXY_PPROF.
//
// -spin and -touch add synthetic work to every request, to calibrate what
// work costs a proxy under load: -spin busy-waits for a duration without
// touching memory, -touch reads and writes that many random bytes of a
// 4 MiB table (each one likely a cache line the request would not have
// touched otherwise), which BenchmarkTouch times in isolation.
//
// -gc-floor puts finproxy's heap floor (package gcfloor,
// FINPROXY_GC_HEAP_FLOOR_BYTES) under the bare engine too: the benchmark's
// bare-floor target, which shows what the floor alone gives a proxy and so
// what of finproxy's ratio is its code rather than its collector's pacing.
package main

import (
	"flag"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"net/http/pprof"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/finproxy/finproxy/gcfloor"
	"github.com/finproxy/finproxy/proxy"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18090", "listen address")
	target := flag.String("target", "http://127.0.0.1:18083", "upstream base URL")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address (off when empty)")
	spin := flag.Duration("spin", 0, "busy-wait this long on every request (synthetic work without memory traffic)")
	touch := flag.Int("touch", 0, "touch this many random bytes of a 4 MiB table on every request (synthetic memory traffic)")
	drop := flag.String("drop", "", "a request header not to forward (the benchmark's session header, which finproxy does not forward either); none when empty")
	floor := flag.Uint64("gc-floor", 0, "a floor of this many bytes under the heap goal, as finproxy's FINPROXY_GC_HEAP_FLOOR_BYTES (off when 0)")
	flag.Parse()
	if *pprofAddr == "" {
		runtime.MemProfileRate = 0 // as finproxy without FINPROXY_PPROF: no heap profiles to sample for
	}
	defer gcfloor.Start(*floor)()
	dropKey := http.CanonicalHeaderKey(*drop)
	u, err := url.Parse(*target)
	if err != nil {
		log.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
			pr.Out.Header["Authorization"] = bearer
			if dropKey != "" {
				delete(pr.Out.Header, dropKey)
			}
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
	var h http.Handler = rp
	if *touch > 0 {
		mapTable()
	}
	if *spin > 0 || *touch > 0 {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			busy(*spin)
			touchTable(*touch)
			rp.ServeHTTP(w, r)
		})
	}
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("bareproxy: %s -> %s", *addr, u)
	log.Fatal(srv.ListenAndServe())
}

// bearer is the fixed Authorization header: one slice shared by every
// request, as finproxy shares its header values (a 128-character token).
var bearer = []string{"Bearer " + strings.Repeat("t", 128)}

// busy spins for d, reading the clock only.
func busy(d time.Duration) {
	if d <= 0 {
		return
	}
	for start := time.Now(); time.Since(start) < d; {
	}
}

// table is what -touch touches, mapped by main only then and outside the
// Go heap: 4 MiB on the heap raised the collector's goal from 4 to 11 MB
// and so halved how often it ran, a saving no real proxy has (the
// baseline carried it once). touched keeps the work from being optimised
// away.
var (
	table   []byte
	touched atomic.Uint64
)

// mapTable gives table its 4 MiB (tableMemory), once.
func mapTable() {
	if table == nil {
		table = tableMemory(4 << 20)
	}
}

// touchTable increments n random bytes of table (a xorshift sequence, so
// that the next address is not predictable to the prefetcher).
func touchTable(n int) {
	x := rand.Uint64() | 1
	var sum uint64
	for range n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		i := x % uint64(len(table))
		table[i]++
		sum += uint64(table[i])
	}
	touched.Add(sum)
}
