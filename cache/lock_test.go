package cache

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRedisLockerWaitsForHolder(t *testing.T) {
	ctx := context.Background()
	client := newTestClient(t)
	prefix := testPrefix(t, client)
	a := &RedisLocker{Conn: NewConn(ConnConfig{Client: client}), Prefix: prefix}
	b := &RedisLocker{Conn: NewConn(ConnConfig{Client: newTestClient(t)}), Prefix: prefix}

	unlock, err := a.Lock(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		unlockB, err := b.Lock(ctx, "s")
		if err == nil {
			unlockB()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("second locker got the lock while it was held: %v", err)
	case <-time.After(150 * time.Millisecond):
	}
	released := time.Now()
	unlock()
	unlock() // twice is harmless
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("waiter got the lock %v after the release", time.Since(released))
	case <-time.After(time.Second):
		t.Fatal("waiter did not get the lock after the release")
	}
}

func TestRedisLockerHolderDies(t *testing.T) {
	ctx := context.Background()
	client := newTestClient(t)
	prefix := testPrefix(t, client)
	const ttl = 300 * time.Millisecond
	dead := &RedisLocker{Conn: NewConn(ConnConfig{Client: client}), Prefix: prefix, TTL: ttl}
	if _, err := dead.Lock(ctx, "s"); err != nil { // never unlocked
		t.Fatal(err)
	}
	start := time.Now()
	waiter := &RedisLocker{Conn: NewConn(ConnConfig{Client: client}), Prefix: prefix, Wait: 3 * time.Second}
	unlock, err := waiter.Lock(ctx, "s")
	if err != nil {
		t.Fatalf("waiter after a dead holder: %v", err)
	}
	defer unlock()
	if d := time.Since(start); d < ttl/2 {
		t.Errorf("waiter got a held lock after %v", d)
	}
}

func TestRedisLockerOnlyHolderReleases(t *testing.T) {
	ctx := context.Background()
	client := newTestClient(t)
	prefix := testPrefix(t, client)
	late := &RedisLocker{Conn: NewConn(ConnConfig{Client: client}), Prefix: prefix, TTL: 100 * time.Millisecond}
	unlockLate, err := late.Lock(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	next := &RedisLocker{Conn: NewConn(ConnConfig{Client: client}), Prefix: prefix, TTL: time.Minute, Wait: 2 * time.Second}
	unlockNext, err := next.Lock(ctx, "s") // after late's lock expired
	if err != nil {
		t.Fatal(err)
	}
	defer unlockNext()
	unlockLate() // must not release next's lock
	if n := client.Exists(ctx, prefix+"lock:s").Val(); n != 1 {
		t.Fatal("an expired holder's unlock deleted the next holder's lock")
	}
	third := &RedisLocker{Conn: NewConn(ConnConfig{Client: client}), Prefix: prefix, Wait: 100 * time.Millisecond}
	if _, err := third.Lock(ctx, "s"); !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("third locker: %v, want ErrLockTimeout", err)
	}
}

func TestRedisLockerErrors(t *testing.T) {
	client := newTestClient(t)
	prefix := testPrefix(t, client)
	holder := &RedisLocker{Conn: NewConn(ConnConfig{Client: client}), Prefix: prefix}
	unlock, err := holder.Lock(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()

	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		l := &RedisLocker{Conn: NewConn(ConnConfig{Client: client}), Prefix: prefix, Wait: 200 * time.Millisecond}
		_, err := l.Lock(context.Background(), "s")
		if !errors.Is(err, ErrLockTimeout) {
			t.Fatalf("err = %v, want ErrLockTimeout", err)
		}
		if d := time.Since(start); d < 200*time.Millisecond || d > time.Second {
			t.Errorf("timed out after %v, want about 200ms", d)
		}
	})
	t.Run("context ends", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		l := &RedisLocker{Conn: NewConn(ConnConfig{Client: client}), Prefix: prefix}
		if _, err := l.Lock(ctx, "s"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("redis unreachable", func(t *testing.T) {
		l := &RedisLocker{Conn: NewConn(ConnConfig{Client: deadClient(t)})}
		if _, err := l.Lock(context.Background(), "s"); !errors.Is(err, ErrLockUnavailable) {
			t.Fatalf("err = %v, want ErrLockUnavailable", err)
		}
	})
	t.Run("no client", func(t *testing.T) {
		if _, err := (&RedisLocker{}).Lock(context.Background(), "s"); !errors.Is(err, ErrLockUnavailable) {
			t.Fatalf("err = %v, want ErrLockUnavailable", err)
		}
	})
}

// TestRedisLockerExcludes: many lockers on one key never overlap.
func TestRedisLockerExcludes(t *testing.T) {
	client := newTestClient(t)
	prefix := testPrefix(t, client)
	var inside, most, done atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		l := &RedisLocker{Conn: NewConn(ConnConfig{Client: client}), Prefix: prefix, Retry: 5 * time.Millisecond}
		wg.Go(func() {
			for range 5 {
				unlock, err := l.Lock(context.Background(), "s")
				if err != nil {
					t.Errorf("Lock: %v", err)
					return
				}
				n := inside.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(time.Millisecond)
				inside.Add(-1)
				done.Add(1)
				unlock()
			}
		})
	}
	wg.Wait()
	if most.Load() != 1 || done.Load() != 40 {
		t.Fatalf("at most %d holders at once over %d locks; want 1 over 40", most.Load(), done.Load())
	}
}

// slowLink relays to Redis and, while slow is set, holds every answer
// past the Conn's deadline: the command is carried out, its answer lost.
type slowLink struct {
	ln   net.Listener
	slow atomic.Bool
}

func newSlowLink(t *testing.T, target string) *slowLink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &slowLink{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(u, c); u.Close() }()
			go func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := u.Read(buf)
					if l.slow.Load() {
						time.Sleep(300 * time.Millisecond)
					}
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				c.Close()
			}()
		}
	}()
	return l
}

// TestRedisLockerLostAnswer: a SET NX whose answer is lost (Redis set the
// lock; the deadline passed first) does not leave the session waiting for
// a lock nobody holds until its TTL: the locker releases its own attempt.
func TestRedisLockerLostAnswer(t *testing.T) {
	ctx := context.Background()
	direct := newTestClient(t)
	prefix := testPrefix(t, direct)
	opt := direct.(*redis.Client).Options()
	link := newSlowLink(t, opt.Addr)
	viaLink := redis.NewClient(&redis.Options{Addr: link.ln.Addr().String(), DB: opt.DB, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { viaLink.Close() })
	l := &RedisLocker{Conn: NewConn(ConnConfig{Client: viaLink, Timeout: 100 * time.Millisecond}), Prefix: prefix,
		TTL: time.Minute, Wait: 3 * time.Second}

	// A pooled connection first (its handshake must not be the one
	// delayed), so that the SET itself goes out.
	if err := viaLink.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	link.slow.Store(true)
	if _, err := l.Lock(ctx, "s"); !errors.Is(err, ErrLockUnavailable) {
		t.Fatalf("with the answer lost: %v, want ErrLockUnavailable", err)
	}
	// Checked at once, before the background release (100 ms on).
	if ttl := direct.PTTL(ctx, prefix+"lock:s").Val(); ttl <= 0 {
		t.Fatalf("the SET did not reach Redis (PTTL %v): the test shows nothing", ttl)
	}
	link.slow.Store(false)
	// Another replica gets the lock soon (the background release), not
	// after the minute of TTL.
	other := &RedisLocker{Conn: NewConn(ConnConfig{Client: direct}), Prefix: prefix, Wait: 3 * time.Second}
	start := time.Now()
	unlock, err := other.Lock(ctx, "s")
	if err != nil {
		t.Fatalf("another replica after the lost answer: %v (waited %v)", err, time.Since(start))
	}
	unlock()
	t.Logf("the orphaned lock was gone after %v", time.Since(start).Round(time.Millisecond))
}
