package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/finproxy/finproxy/auth"
	"github.com/finproxy/finproxy/cache"
	"github.com/finproxy/finproxy/gcfloor"
)

// memSource hands each session a token shaped like finAPI's longest: 128
// characters of access and of refresh token, a 35-character user id, each
// its own allocation as when decoded from an answer.
type memSource struct{}

func (memSource) SessionToken(_ context.Context, s auth.Session, _ auth.Token) (auth.Token, error) {
	now := time.Now()
	return auth.Token{
		AccessToken:  fmt.Sprintf("%-128s", "a"+s.ID),
		RefreshToken: fmt.Sprintf("%-128s", "r"+s.ID),
		UserID:       "fp-" + s.ID[:32],
		Issued:       now,
		Expiry:       now.Add(time.Hour),
	}, nil
}

// rss returns the process's resident set in bytes.
func rss(tb testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		tb.Fatal(err)
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// memoryHandler is finproxy's handler in header mode with the memory store
// and a real auth.Sessions in front of memSource, its upstream a canned
// 200 in process. With index (the admin API on, as main wires it) the
// sessions keep the short-hash index in a memory store of its own, which
// it returns; without, none (nil).
func memoryHandler(tb testing.TB, index bool) (http.Handler, *cache.Memory[auth.Token], *cache.Memory[auth.Token], *server) {
	store := cache.NewMemory(time.Minute, auth.TokenCodec)
	sessions := &auth.Sessions{Source: memSource{}, Store: store, Timeout: 5 * time.Second, NoIndex: !index}
	var idx *cache.Memory[auth.Token]
	if index {
		idx = cache.NewMemory(time.Minute, auth.TokenCodec)
		sessions.Index = idx
	}
	target, _ := url.Parse("http://upstream.invalid")
	answer := []byte(`{"accounts":[]}`)
	h, err := New(Config{
		AccessURL: target,
		Keys:      mustKeys(tb),
		Tokens:    sessions,
		Lifecycle: &stubLifecycle{},
		Transport: roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(answer)), Request: r}, nil
		}),
		Log:          zerolog.Nop(),
		SessionRate:  100,
		SessionBurst: 200,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return h, store, idx, h.server
}

func mustKeys(tb testing.TB) *auth.Keys {
	k, err := auth.NewKeys(benchIdentitySecret)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// BenchmarkSessionMemory measures what a cached session costs: 100 000
// sessions, each with one request through the whole handler (session hash,
// store entry with 128-character tokens, per-session rate limiter), heap
// and RSS read before and after, divided. "rss-B/session" is the resident
// set as the process runs (the heap's GC headroom included);
// "settled-rss-B/session" after the runtime returned free memory to the
// OS, as its background scavenger does in time. "admin-off" is the
// default; "admin-on" adds the admin API's short-hash index entry per
// session (FINPROXY_ADMIN_TOKEN set). Both run under the Go runtime's
// default pacing; "admin-off-floor" under finproxy's default heap floor
// (FINPROXY_GC_HEAP_FLOOR_BYTES), as the binary runs, which should change
// nothing at this size: its live heap is far above half the floor.
func BenchmarkSessionMemory(b *testing.B) {
	const n = 100_000
	for _, c := range []struct {
		name  string
		admin bool
		floor uint64
	}{{"admin-off", false, 0}, {"admin-on", true, 0}, {"admin-off-floor", false, 16 << 20}} {
		admin := c.admin
		b.Run(c.name, func(b *testing.B) {
			defer gcfloor.Start(c.floor)()
			for b.Loop() {
				h, store, index, srv := memoryHandler(b, admin)
				settle := func() { runtime.GC(); debug.FreeOSMemory() }
				var m0, m1 runtime.MemStats
				settle()
				runtime.ReadMemStats(&m0)
				rss0 := rss(b)
				for i := range n {
					r := httptest.NewRequest(http.MethodGet, "/api/v2/accounts", nil)
					r.Header.Set(DefaultSessionConfig.Header, fmt.Sprintf("memory-session-%08d", i))
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					if w.Code != 200 {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
				}
				runtime.GC()
				rssRun := rss(b)
				settle()
				runtime.ReadMemStats(&m1)
				rss1 := rss(b)
				if store.Len() != n || srv.sessionLimits.len() != n {
					b.Fatalf("%d cached, %d buckets, want %d", store.Len(), srv.sessionLimits.len(), n)
				}
				if admin && index.Len() != n {
					b.Fatalf("%d index entries, want %d", index.Len(), n)
				}
				b.ReportMetric(float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc))/n, "heap-B/session")
				b.ReportMetric(float64(rssRun-rss0)/n, "rss-B/session")
				b.ReportMetric(float64(rss1-rss0)/n, "settled-rss-B/session")
				runtime.KeepAlive(h)
				runtime.KeepAlive(index)
			}
		})
	}
}
