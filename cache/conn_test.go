package cache

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestConnFrozenRedis: a Redis that hangs (SIGSTOP, as a failover or a fork
// stall does) costs one command one timeout; then the breaker answers at
// once until the probe finds Redis back. Each edge is logged once.
func TestConnFrozenRedis(t *testing.T) {
	addr := freeAddr(t)
	srv := runRedisServer(t, addr)
	client, err := ParseRedisURL("redis://" + addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	logs := new(syncBuffer)
	var mu sync.Mutex
	var edges []bool
	conn := NewConn(ConnConfig{Client: client, Timeout: 200 * time.Millisecond, Probe: 100 * time.Millisecond,
		Log: zerolog.New(logs), OnChange: func(down bool) { mu.Lock(); edges = append(edges, down); mu.Unlock() }})
	defer conn.Close()
	store := NewRedis[testValue](RedisConfig{Conn: conn, Sealer: newTestSealer(t), Prefix: "frozen:", L1TTL: 50 * time.Millisecond})
	defer store.Close()
	ctx := context.Background()
	if err := store.Set(ctx, "held", testValue{Access: "v"}, time.Minute); err != nil {
		t.Fatal(err)
	}

	srv.Process.Signal(syscall.SIGSTOP)
	time.Sleep(100 * time.Millisecond) // the L1 copy ages
	start := time.Now()
	v, ok, err := store.Get(ctx, "held")
	first := time.Since(start)
	if !ok || err != nil || v.Access != "v" {
		t.Errorf("Get with Redis frozen: %+v %v %v, want the L1 copy", v, ok, err)
	}
	if first > time.Second {
		t.Errorf("first Get with Redis frozen took %v, want about the 200ms timeout", first)
	}
	start = time.Now()
	for range 50 {
		if _, _, err := store.Get(ctx, "unknown"); !errors.Is(err, ErrRedisDown) {
			t.Fatalf("Get with the breaker open = %v, want ErrRedisDown", err)
		}
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("50 Gets with the breaker open took %v, want next to nothing", d)
	}
	locker := &RedisLocker{Conn: conn, Prefix: "frozen:"}
	if _, err := locker.Lock(ctx, "k"); !errors.Is(err, ErrLockUnavailable) {
		t.Errorf("Lock with the breaker open = %v, want ErrLockUnavailable", err)
	}
	time.Sleep(500 * time.Millisecond) // several probes fail
	t.Logf("frozen Redis: first Get %v, then the breaker answers", first.Round(time.Millisecond))

	srv.Process.Signal(syscall.SIGCONT)
	deadline := time.Now().Add(5 * time.Second)
	for conn.Down() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if conn.Down() {
		t.Fatal("breaker still open 5s after Redis resumed")
	}
	if _, ok, err := store.Get(ctx, "held"); !ok || err != nil {
		t.Errorf("Get after the outage: %v %v", ok, err)
	}
	out := logs.String()
	if n := strings.Count(out, "redis failing"); n != 1 {
		t.Errorf("outage start logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "redis answering again"); n != 1 {
		t.Errorf("outage end logged %d times, want once:\n%s", n, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(edges) != 2 || !edges[0] || edges[1] {
		t.Errorf("OnChange saw %v, want [true false]", edges)
	}
}

// TestConnCallerGivingUpIsNoOutage: a caller's own cancellation does not
// open the breaker.
func TestConnCallerGivingUpIsNoOutage(t *testing.T) {
	conn := NewConn(ConnConfig{Client: deadClient(t)})
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	conn.Do(ctx, func(ctx context.Context) error { return ctx.Err() })
	if conn.Down() {
		t.Error("a cancelled caller opened the breaker")
	}
	conn.Do(context.Background(), func(ctx context.Context) error { return errors.New("connection refused") })
	if !conn.Down() {
		t.Error("a failure did not open the breaker")
	}
}

// TestConnRedisRepliesAreNoOutage: an error reply of Redis's own (here an
// unknown command; OOM on a write is another) is an answer: it opens no
// breaker, which a PING could not close again.
func TestConnRedisRepliesAreNoOutage(t *testing.T) {
	conn := NewConn(ConnConfig{Client: newTestClient(t)})
	defer conn.Close()
	err := conn.Do(context.Background(), func(ctx context.Context) error {
		return conn.Client().Do(ctx, "NOSUCHCOMMAND").Err()
	})
	if err == nil {
		t.Fatal("an unknown command succeeded")
	}
	if conn.Down() {
		t.Errorf("a reply error (%v) opened the breaker", err)
	}
}
