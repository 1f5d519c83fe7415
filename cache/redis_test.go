package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{}) // failure tests would flood the output with dial errors
	os.Exit(m.Run())
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// testRedisURL is the Redis the tests use: FINPROXY_TEST_REDIS_URL, or
// database 15 of a local server.
func testRedisURL() string {
	if u := os.Getenv("FINPROXY_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/15"
}

// newTestClient connects to the test Redis; a missing Redis fails the test
// rather than skipping it.
func newTestClient(tb testing.TB) redis.UniversalClient {
	tb.Helper()
	raw := testRedisURL()
	client, err := ParseRedisURL(raw)
	if err != nil {
		tb.Fatalf("FINPROXY_TEST_REDIS_URL: %v", err)
	}
	tb.Cleanup(func() { client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		shown := raw
		if u, perr := url.Parse(raw); perr == nil {
			shown = redactURL(u)
		}
		tb.Fatalf("the cache tests need a Redis at %s (set FINPROXY_TEST_REDIS_URL, or run scripts/ensure-redis.sh): %v", shown, err)
	}
	return client
}

var unsafeKeyChars = regexp.MustCompile(`[^A-Za-z0-9_/-]`)

// testPrefix returns a key prefix of the test's own and deletes every key
// under it when the test ends.
func testPrefix(tb testing.TB, client redis.UniversalClient) string {
	var b [4]byte
	rand.Read(b[:])
	prefix := "finproxy-test:" + unsafeKeyChars.ReplaceAllString(tb.Name(), "_") + ":" + hex.EncodeToString(b[:]) + ":"
	tb.Cleanup(func() {
		ctx := context.Background()
		keys, err := scanKeys(ctx, client, prefix)
		if err == nil && len(keys) > 0 {
			err = client.Del(ctx, keys...).Err()
		}
		if err != nil {
			tb.Errorf("clean up %s*: %v", prefix, err)
		}
	})
	return prefix
}

func scanKeys(ctx context.Context, client redis.UniversalClient, prefix string) ([]string, error) {
	var keys []string
	iter := client.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	return keys, iter.Err()
}

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func newTestSealer(tb testing.TB, keys ...[]byte) *Sealer {
	tb.Helper()
	if len(keys) == 0 {
		keys = [][]byte{testKey(1)}
	}
	s, err := NewSealer(keys[0], keys[1:]...)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// newTestRedis returns a store subscribed to its invalidations; cfg's
// Sealer defaults to newTestSealer's.
func newTestRedis(tb testing.TB, cfg RedisConfig) *Redis[testValue] {
	tb.Helper()
	if cfg.Sealer == nil {
		cfg.Sealer = newTestSealer(tb)
	}
	r := NewRedis[testValue](cfg)
	tb.Cleanup(func() { r.Close() })
	select {
	case <-r.ready:
	case <-time.After(3 * time.Second):
		tb.Fatal("the store did not subscribe to its invalidation channel")
	}
	return r
}

// freeAddr returns a local address nothing listens on.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// deadClient talks to an address where no Redis listens, with short
// timeouts.
func deadClient(tb testing.TB) redis.UniversalClient {
	c := redis.NewClient(&redis.Options{Addr: freeAddr(tb), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
	tb.Cleanup(func() { c.Close() })
	return c
}

// startRedisServer runs a throwaway redis-server on addr, without
// persistence, and returns the function that kills it.
func startRedisServer(t *testing.T, addr string) (stop func()) {
	t.Helper()
	cmd := runRedisServer(t, addr)
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	t.Cleanup(stop)
	return stop
}

// runRedisServer starts a redis-server of the test's own on addr, waits
// until it answers and kills it at cleanup (a stopped one is resumed
// first).
func runRedisServer(t *testing.T, addr string) *exec.Cmd {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("redis-server", "--bind", host, "--port", port, "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server (scripts/ensure-redis.sh installs it): %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		cmd.Wait()
	})
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for deadline := time.Now().Add(5 * time.Second); c.Ping(context.Background()).Err() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer", addr)
		}
	}
	return cmd
}

// syncBuffer is a log sink that the store's goroutines and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// eventually polls cond every 10ms until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func TestRedisAtRest(t *testing.T) {
	ctx := context.Background()
	client := newTestClient(t)
	prefix := testPrefix(t, client)
	r := newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: client}), Prefix: prefix})
	secrets := map[string]testValue{
		"0f1e2d3c": {Access: "plain-access-token-AAAA", Secret: "plain-refresh-secret-BBBB", N: 424242},
		"4b5a6978": {Access: "plain-access-token-CCCC", Secret: "plain-refresh-secret-DDDD", N: 737373},
	}
	for k, v := range secrets {
		if err := r.Set(ctx, k, v, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := scanKeys(ctx, client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(secrets) {
		t.Fatalf("keys under the prefix: %q, want %d", keys, len(secrets))
	}
	for _, k := range keys {
		if _, ok := secrets[strings.TrimPrefix(k, prefix)]; !ok {
			t.Errorf("key %q is not prefix + the caller's key", k)
		}
		if ttl := client.PTTL(ctx, k).Val(); ttl <= 0 || ttl > time.Minute {
			t.Errorf("PTTL(%q) = %v, want within (0, 1m]", k, ttl)
		}
		raw, err := client.Get(ctx, k).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range secrets {
			for _, plain := range []string{v.Access, v.Secret, strconv.Itoa(v.N), `"access"`, `"secret"`, "plain-"} {
				if bytes.Contains(raw, []byte(plain)) {
					t.Errorf("value of %q holds %q in plain text", k, plain)
				}
			}
		}
	}
}

func TestRedisUnreadableEntries(t *testing.T) {
	ctx := context.Background()
	client := newTestClient(t)
	prefix := testPrefix(t, client)
	logs := new(syncBuffer)
	r := newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: client}), Prefix: prefix, L1TTL: -1, Log: zerolog.New(logs)})
	if err := r.Set(ctx, "good", testValue{Access: "tok"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	good, err := client.Get(ctx, prefix+"good").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		return b
	}
	cases := map[string][]byte{
		"empty":              {},
		"short":              []byte("xyz"),
		"version flipped":    flip(0),
		"nonce flipped":      flip(1),
		"ciphertext flipped": flip(1 + sealNonceSize),
		"tag flipped":        flip(len(good) - 1),
		"truncated":          good[:len(good)-1],
		"garbage":            bytes.Repeat([]byte{0xff}, 64),
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			if err := client.Set(ctx, prefix+"bad", raw, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				v, ok, err := r.Get(ctx, "bad")
				if ok || err != nil || v != (testValue{}) {
					t.Fatalf("Get = %+v, %v, %v; want a miss", v, ok, err)
				}
			}
		})
	}
	t.Run("moved to another key", func(t *testing.T) {
		if err := client.Set(ctx, prefix+"other", good, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := r.Get(ctx, "other"); ok || err != nil {
			t.Fatalf("Get of a copied value = %+v, %v, %v; want a miss", v, ok, err)
		}
	})
	t.Run("sealed but not JSON", func(t *testing.T) {
		if err := client.Set(ctx, prefix+"nojson", r.sealer.Seal(prefix+"nojson", []byte("{not json")), time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := r.Get(ctx, "nojson"); ok || err != nil {
			t.Fatalf("Get = %+v, %v, %v; want a miss", v, ok, err)
		}
	})
	if _, ok, err := r.Get(ctx, "good"); !ok || err != nil {
		t.Fatalf("the good entry: %v, %v", ok, err)
	}
	// One warning per kind: short, unknown version, failed authentication,
	// undecodable.
	if n := strings.Count(logs.String(), `"level":"warn"`); n != 4 {
		t.Errorf("%d warnings, want 4 (one per kind):\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "tok") || strings.Contains(logs.String(), prefix) {
		t.Errorf("logs name a value or key:\n%s", logs.String())
	}
}

func TestRedisKeyRotation(t *testing.T) {
	ctx := context.Background()
	client := newTestClient(t)
	prefix := testPrefix(t, client)
	oldKey, newKey := testKey(1), testKey(2)
	before := newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: client}), Prefix: prefix, L1TTL: -1, Sealer: newTestSealer(t, oldKey)})
	rotated := newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: client}), Prefix: prefix, L1TTL: -1, Sealer: newTestSealer(t, newKey, oldKey)})
	onlyNew := newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: client}), Prefix: prefix, L1TTL: -1, Sealer: newTestSealer(t, newKey)})

	if err := before.Set(ctx, "old", testValue{Access: "old"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := rotated.Get(ctx, "old"); !ok || err != nil || v.Access != "old" {
		t.Fatalf("rotated store reading an old entry: %+v, %v, %v", v, ok, err)
	}
	if _, ok, err := onlyNew.Get(ctx, "old"); ok || err != nil {
		t.Fatalf("a store without the previous key read an old entry: %v, %v", ok, err)
	}
	if err := rotated.Set(ctx, "new", testValue{Access: "new"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := onlyNew.Get(ctx, "new"); !ok || err != nil || v.Access != "new" {
		t.Fatalf("new entries are not sealed with the current key: %+v, %v, %v", v, ok, err)
	}
	if _, ok, err := before.Get(ctx, "new"); ok || err != nil {
		t.Fatalf("the old key read a new entry: %v, %v", ok, err)
	}
}

// TestRedisReplicas: two stores, as on two replicas, with an L1 long
// enough that only the invalidation channel explains a prompt update.
func TestRedisReplicas(t *testing.T) {
	ctx := context.Background()
	prefix := testPrefix(t, newTestClient(t))
	a := newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: newTestClient(t)}), Prefix: prefix, L1TTL: time.Minute})
	b := newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: newTestClient(t)}), Prefix: prefix, L1TTL: time.Minute})

	if err := a.Set(ctx, "s", testValue{Access: "v1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	// b's first read may race with a's invalidation and not fill its L1.
	eventually(t, time.Second, "b holds the value in its L1", func() bool {
		v, ok, err := b.Get(ctx, "s")
		if !ok || err != nil || v.Access != "v1" {
			t.Fatalf("b.Get = %+v, %v, %v", v, ok, err)
		}
		return b.Len() == 1
	})
	if err := a.Delete(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	d := eventually(t, time.Second, "b sees a's delete", func() bool {
		_, ok, err := b.Get(ctx, "s")
		return !ok && err == nil
	})
	t.Logf("delete seen by the other replica after %v", d)

	if _, ok, _ := b.Get(ctx, "s"); ok {
		t.Fatal("b still has it")
	}
	if err := b.Set(ctx, "s", testValue{Access: "v2"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Get(ctx, "s"); err != nil { // a's L1 now holds v2
		t.Fatal(err)
	}
	if err := b.Set(ctx, "s", testValue{Access: "v3"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "a sees b's overwrite", func() bool {
		v, _, _ := a.Get(ctx, "s")
		return v.Access == "v3"
	})
}

// A store without an L1 holds no subscription (nothing of it to
// invalidate), and its writes still invalidate the others' copies.
func TestRedisWithoutL1DoesNotSubscribe(t *testing.T) {
	ctx := context.Background()
	client := newTestClient(t)
	prefix := testPrefix(t, client)
	cached := newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: newTestClient(t)}), Prefix: prefix, L1TTL: time.Minute})
	bare := newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: newTestClient(t)}), Prefix: prefix, L1TTL: -1})
	if n := client.PubSubNumSub(ctx, prefix+"invalidate").Val()[prefix+"invalidate"]; n != 1 {
		t.Errorf("%d subscriptions to the invalidation channel, want 1 (the store with an L1)", n)
	}
	if err := cached.Set(ctx, "s", testValue{Access: "v1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := bare.Delete(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "the L1 copy dropped on the other store's delete", func() bool { return cached.Len() == 0 })
	if err := bare.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestRedisStalenessBound: with invalidations lost, a replica's L1 serves
// a deleted entry for L1TTL at most.
func TestRedisStalenessBound(t *testing.T) {
	ctx := context.Background()
	client := newTestClient(t)
	prefix := testPrefix(t, client)
	const l1 = 300 * time.Millisecond
	a := newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: client}), Prefix: prefix, L1TTL: l1})
	b := newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: client}), Prefix: prefix, L1TTL: l1})
	b.Close() // b hears no more invalidations

	if err := a.Set(ctx, "s", testValue{Access: "v1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.Get(ctx, "s"); !ok || err != nil {
		t.Fatalf("b.Get = %v, %v", ok, err)
	}
	filled := time.Now()
	if err := a.Delete(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := b.Get(ctx, "s"); !ok {
		t.Log("b dropped its copy before L1TTL (not required)")
	}
	eventually(t, l1+time.Second, "b forgets a's delete", func() bool {
		_, ok, _ := b.Get(ctx, "s")
		return !ok
	})
	if d := time.Since(filled); d > l1+150*time.Millisecond {
		t.Errorf("b served a deleted entry for %v, beyond L1TTL %v", d, l1)
	}
}

// beatDropper is a go-redis hook that, once on, swallows the heartbeats
// published on channel: they seem sent but never reach Redis, as on a
// subscription that went silent.
type beatDropper struct {
	channel string // set before on
	on      atomic.Bool
}

func (*beatDropper) DialHook(next redis.DialHook) redis.DialHook { return next }

func (*beatDropper) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (d *beatDropper) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); d.on.Load() && cmd.Name() == "publish" && len(args) > 1 && args[1] == d.channel {
			cmd.(*redis.IntCmd).SetVal(1)
			return nil
		}
		return next(ctx, cmd)
	}
}

// TestRedisL1PastTTLWhileHeard: while a store's heartbeats come back, a
// copy is served past L1TTL without asking Redis (a change made behind
// finproxy's back goes unseen, up to L1MaxAge); once they stop, within
// L1TTL, not only when the store gives up on its subscription.
func TestRedisL1PastTTLWhileHeard(t *testing.T) {
	ctx := context.Background()
	raw := newTestClient(t)
	prefix := testPrefix(t, raw)
	const l1 = 200 * time.Millisecond
	drop := new(beatDropper)
	dropping := newTestClient(t)
	dropping.AddHook(drop)
	logs := new(syncBuffer)
	a := newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: newTestClient(t)}), Prefix: prefix, L1TTL: l1, L1MaxAge: time.Hour})
	b := newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: dropping}), Prefix: prefix, L1TTL: l1, L1MaxAge: time.Hour, Log: zerolog.New(logs)})
	ttlOnly := newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: newTestClient(t)}), Prefix: prefix, L1TTL: l1, L1MaxAge: -1})
	drop.channel = b.beat

	for _, key := range []string{"s", "t"} {
		if err := a.Set(ctx, key, testValue{Access: "v"}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	// a's invalidations reach b and ttlOnly before a heartbeat each sent
	// after them: no copy read from here on is dropped by them.
	for _, r := range []*Redis[testValue]{b, ttlOnly} {
		since := int64(r.now())
		eventually(t, 2*time.Second, "a heartbeat after a's writes", func() bool { return r.heard.Load() >= since })
	}
	eventually(t, time.Second, "b and ttlOnly holding both keys", func() bool {
		for _, r := range []*Redis[testValue]{b, ttlOnly} {
			for _, key := range []string{"s", "t"} {
				if _, ok, err := r.Get(ctx, key); !ok || err != nil {
					t.Fatalf("Get(%q) = %v, %v", key, ok, err)
				}
			}
		}
		return b.Len() == 2 && ttlOnly.Len() == 2
	})
	if err := raw.Del(ctx, prefix+"s", prefix+"t").Err(); err != nil { // no invalidation
		t.Fatal(err)
	}
	time.Sleep(3 * l1)
	if _, ok, _ := b.Get(ctx, "s"); !ok {
		t.Error("b asked Redis past L1TTL although its heartbeats came back")
	}
	eventually(t, time.Second, "ttlOnly asking Redis after L1TTL", func() bool {
		_, ok, _ := ttlOnly.Get(ctx, "s")
		return !ok
	})

	drop.on.Store(true)
	d := eventually(t, 2*time.Second, "b asking Redis once its heartbeats stop coming back", func() bool {
		_, ok, _ := b.Get(ctx, "t")
		return !ok
	})
	if strings.Contains(logs.String(), "subscribing anew") {
		t.Errorf("b served its copy until it gave up on the subscription (%v), not for L1TTL (%v) after its last heartbeat", d, l1)
	}
	t.Logf("copy served for %v after the heartbeats stopped (L1TTL %v)", d, l1)
}

// TestRedisL1ExtensionRules: which copies may be served past L1TTL.
func TestRedisL1ExtensionRules(t *testing.T) {
	ctx := context.Background()
	client := newTestClient(t)
	prefix := testPrefix(t, client)
	conn := NewConn(ConnConfig{Client: client, Probe: time.Hour})
	defer conn.Close()
	r := newTestRedis(t, RedisConfig{Conn: conn, Prefix: prefix, L1TTL: 40 * time.Millisecond, L1MaxAge: time.Hour})
	eventually(t, 2*time.Second, "a heartbeat coming back", func() bool { return r.heard.Load() != 0 })
	until := func(key string) time.Duration {
		x, ok := r.l1.Get(key)
		if !ok {
			t.Fatalf("%q not in the L1", key)
		}
		return x.(*l1Entry[testValue]).until
	}
	v := testValue{Access: "v"}

	if err := r.Set(ctx, "written", v, time.Minute); err != nil {
		t.Fatal(err)
	}
	if until("written") == 0 {
		t.Error("a value Redis took is not servable past L1TTL")
	}
	keep := func(key string, ttl, read time.Duration, inRedis bool) {
		s := r.stripe(key)
		s.mu.Lock()
		defer s.mu.Unlock()
		r.keep(key, v, ttl, read, inRedis)
	}
	keep("before", time.Minute, time.Duration(r.subscribed.Load())-time.Nanosecond, true)
	keep("unsure", time.Minute, r.now(), false)
	keep("short", time.Second, r.now(), true)
	if until("before") != 0 {
		t.Error("a value read before the subscription was in place is servable past L1TTL")
	}
	if until("unsure") != 0 {
		t.Error("a value not known to be in Redis is servable past L1TTL")
	}
	if x, ok := r.l1.Get("short"); !ok || x.(*l1Entry[testValue]).until-x.(*l1Entry[testValue]).read > time.Second {
		t.Error("a copy is servable past its own time to live")
	}
	r.heard.Store(int64(r.now())) // a heartbeat just came back
	later := &l1Entry[testValue]{v: v, read: r.now() + time.Hour, until: r.now() + 2*time.Hour}
	if r.fresh(later) {
		t.Error("a copy is servable on a heartbeat sent before it was read")
	}
	heard := &l1Entry[testValue]{v: v, read: 1, until: r.now() + time.Hour}
	if !r.fresh(heard) {
		t.Error("a copy read before the last heartbeat is not servable")
	}

	conn.trip(errors.New("test: redis failing"))
	if err := r.Set(ctx, "failed", v, time.Minute); err == nil {
		t.Fatal("Set with the breaker open succeeded")
	}
	if until("failed") != 0 {
		t.Error("a value whose write failed is servable past L1TTL")
	}
	r.Close()
	if r.fresh(heard) {
		t.Error("a closed store, which hears no heartbeat, serves a copy past L1TTL")
	}
}

// TestRedisClusterKeepsL1TTL: in a Cluster an invalidation and a
// heartbeat take different links of the cluster bus, so a heartbeat that
// came back proves nothing of the invalidations: no copy is served past
// L1TTL there.
func TestRedisClusterKeepsL1TTL(t *testing.T) {
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{freeAddr(t)}})
	defer client.Close()
	logs := new(syncBuffer)
	r := NewRedis[testValue](RedisConfig{Conn: NewConn(ConnConfig{Client: client}), Sealer: newTestSealer(t), L1TTL: time.Second, L1MaxAge: time.Hour, Log: zerolog.New(logs)})
	defer r.Close()
	if r.maxAge > r.l1TTL {
		t.Errorf("a Cluster store serves copies for %v, past its L1TTL %v", r.maxAge, r.l1TTL)
	}
	if !strings.Contains(logs.String(), "max age does not apply") {
		t.Errorf("not logged that the max age does not apply: %q", logs.String())
	}
}

// gate is a go-redis hook that holds, once each when armed, a script before
// it is sent and a pipeline after its answer came back, until released:
// a test can then order a read of the same replica around a write.
type gate struct{ script, pipeline hold }

type hold struct {
	armed   atomic.Bool
	in, out chan struct{}
}

func newGate() *gate {
	return &gate{hold{in: make(chan struct{}), out: make(chan struct{})}, hold{in: make(chan struct{}), out: make(chan struct{})}}
}

func (h *hold) pass() {
	if h.armed.CompareAndSwap(true, false) {
		h.in <- struct{}{}
		<-h.out
	}
}

func (*gate) DialHook(next redis.DialHook) redis.DialHook { return next }

func (g *gate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			g.script.pass()
		}
		return next(ctx, cmd)
	}
}

func (g *gate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		g.pipeline.pass()
		return err
	}
}

// TestRedisOwnWriteRacingRead: a replica's read that Redis answers just
// before the replica's own delete or overwrite runs must not leave the old
// value in the L1, where heartbeats would keep it servable past L1TTL (the
// replica hears no invalidation of its own).
func TestRedisOwnWriteRacingRead(t *testing.T) {
	ctx := context.Background()
	g := newGate()
	client := newTestClient(t)
	client.AddHook(g)
	prefix := testPrefix(t, client)
	const l1 = 100 * time.Millisecond
	r := newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: client, Timeout: 5 * time.Second}), Prefix: prefix, L1TTL: l1, L1MaxAge: time.Hour})
	for _, key := range []string{"deleted", "overwritten"} {
		if err := r.Set(ctx, key, testValue{Access: "old"}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)

	// Delete: its read-through comes in between the L1 drop and the script.
	g.script.armed.Store(true)
	go func() { done <- r.Delete(ctx, "deleted") }()
	<-g.script.in
	if v, ok, err := r.Get(ctx, "deleted"); !ok || err != nil || v.Access != "old" {
		t.Fatalf("Get before the delete ran = %+v, %v, %v", v, ok, err)
	}
	g.script.out <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Set: a reload reads the old value before the script runs and fills
	// the L1 after the Set is done.
	g.script.armed.Store(true)
	go func() { done <- r.Set(ctx, "overwritten", testValue{Access: "new"}, time.Minute) }()
	<-g.script.in
	g.pipeline.armed.Store(true)
	reloaded := make(chan testValue, 1)
	go func() {
		v, _, _ := r.Reload(ctx, "overwritten")
		reloaded <- v
	}()
	<-g.pipeline.in // Redis answered the reload with the old value
	g.script.out <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	g.pipeline.out <- struct{}{}
	if v := <-reloaded; v.Access != "old" {
		t.Fatalf("the reload read %q, not the old value: the race was not set up", v.Access)
	}

	time.Sleep(3 * l1) // past L1TTL, heartbeats coming back
	if v, ok, _ := r.Get(ctx, "deleted"); ok {
		t.Errorf("the deleted key is served from the L1 (%+v)", v)
	}
	if v, _, _ := r.Get(ctx, "overwritten"); v.Access != "new" {
		t.Errorf("the overwritten key reads %q, want the value written", v.Access)
	}
}

// TestRedisUnreachable: a store whose Redis does not answer fails fast and
// still serves what its L1 holds.
func TestRedisUnreachable(t *testing.T) {
	ctx := context.Background()
	logs := new(syncBuffer)
	r := NewRedis[testValue](RedisConfig{Conn: NewConn(ConnConfig{Client: deadClient(t), Log: zerolog.New(logs)}), Sealer: newTestSealer(t), Log: zerolog.New(logs)})
	defer r.Close()

	if err := r.Set(ctx, "held", testValue{Access: "v"}, time.Minute); err == nil {
		t.Fatal("Set to an unreachable Redis: no error")
	}
	if v, ok, err := r.Get(ctx, "held"); !ok || err != nil || v.Access != "v" {
		t.Fatalf("L1 hit with Redis down: %+v, %v, %v", v, ok, err)
	}
	start := time.Now()
	for range 5 {
		if _, ok, err := r.Get(ctx, "other"); ok || err == nil {
			t.Fatalf("Get of an unknown key with Redis down: %v, %v; want an error", ok, err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("5 failing Gets took %v", d)
	}
	if err := r.Ping(ctx); err == nil {
		t.Error("Ping: no error")
	}
	if n := strings.Count(logs.String(), `"level":"error"`); n != 1 {
		t.Errorf("%d error lines for one outage, want 1:\n%s", n, logs.String())
	}
}

// TestRedisRestart: a Redis that goes away and comes back (empty). While
// it is away, the store serves its L1 copies past L1TTL (unless
// NoStaleOnError); afterwards it reconnects by itself, and its L1, which
// may have missed invalidations, is flushed.
func TestRedisRestart(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is needed for the restart test (scripts/ensure-redis.sh installs it)")
	}
	ctx := context.Background()
	addr := freeAddr(t)
	stop := startRedisServer(t, addr)
	client := func() redis.UniversalClient {
		c, err := ParseRedisURL("redis://" + addr + "?dial_timeout=200ms&read_timeout=200ms&write_timeout=200ms")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	logs := new(syncBuffer)
	const l1 = 100 * time.Millisecond
	// Prefixes of their own: their invalidations must not meet.
	stale := newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: client(), Log: zerolog.New(logs)}), Prefix: "stale:", L1TTL: l1, Log: zerolog.New(logs)})
	strict := newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: client()}), Prefix: "strict:", L1TTL: l1, NoStaleOnError: true})
	long := newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: client()}), Prefix: "long:", L1TTL: time.Hour})
	for _, s := range []*Redis[testValue]{stale, strict, long} {
		if err := s.Set(ctx, "s", testValue{Access: "v"}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}

	stop()
	time.Sleep(2 * l1)
	if v, ok, err := stale.Get(ctx, "s"); !ok || err != nil || v.Access != "v" {
		t.Errorf("stale-on-error store with Redis down: %+v, %v, %v; want its L1 copy", v, ok, err)
	}
	if _, ok, err := strict.Get(ctx, "s"); ok || err == nil {
		t.Errorf("NoStaleOnError store with Redis down: %v, %v; want an error", ok, err)
	}
	if _, ok, _ := long.Get(ctx, "s"); !ok {
		t.Error("a fresh L1 copy is not served while Redis is down")
	}

	startRedisServer(t, addr) // empty: the entry is gone
	eventually(t, 5*time.Second, "stale store reconnects", func() bool {
		return stale.Set(ctx, "t", testValue{Access: "w"}, time.Minute) == nil
	})
	eventually(t, 5*time.Second, "resubscribed store flushes its L1", func() bool {
		_, ok, _ := long.Get(ctx, "s")
		return !ok
	})
	if v, ok, err := stale.Get(ctx, "t"); !ok || err != nil || v.Access != "w" {
		t.Errorf("after the restart: %+v, %v, %v", v, ok, err)
	}
	if n := strings.Count(logs.String(), "redis failing"); n != 1 {
		t.Errorf("outage logged %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "redis answering again") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
}

func TestNewRedisRequiresClientAndSealer(t *testing.T) {
	for name, cfg := range map[string]RedisConfig{
		"no client": {Sealer: newTestSealer(t)},
		"no sealer": {Conn: NewConn(ConnConfig{Client: deadClient(t)})},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			NewRedis[testValue](cfg)
		})
	}
}

// BenchmarkStoreGet compares a Get that the memory store answers, that the
// Redis store's L1 answers, and that goes to Redis (L1 off).
func BenchmarkStoreGet(b *testing.B) {
	ctx := context.Background()
	client := newTestClient(b)
	v := testValue{Access: strings.Repeat("a", 600), Secret: strings.Repeat("r", 600), N: 1, At: time.Now()}
	stores := []struct {
		name  string
		store Store[testValue]
	}{
		{"memory", NewMemory(time.Minute, Codec[testValue]{})},
		{"redis-l1-hit", newTestRedis(b, RedisConfig{Conn: NewConn(ConnConfig{Client: client}), Prefix: testPrefix(b, client), L1TTL: time.Hour})},
		{"redis-l1-miss", newTestRedis(b, RedisConfig{Conn: NewConn(ConnConfig{Client: client}), Prefix: testPrefix(b, client), L1TTL: -1})},
	}
	for _, s := range stores {
		b.Run(s.name, func(b *testing.B) {
			if err := s.store.Set(ctx, "0123456789abcdef", v, time.Hour); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, ok, err := s.store.Get(ctx, "0123456789abcdef"); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
