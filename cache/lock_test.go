package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
