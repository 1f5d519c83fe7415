package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lock errors a caller branches on.
var (
	// ErrLockTimeout is returned when another holder kept the lock for
	// the whole wait.
	ErrLockTimeout = errors.New("cache: lock wait timed out")
	// ErrLockUnavailable wraps a failure of the lock's backend; the
	// caller may proceed without the lock (degraded).
	ErrLockUnavailable = errors.New("cache: lock unavailable")
)

// A Locker serialises work on a key across everything that shares it, so
// that concurrent first requests of one session fetch one token. After
// Lock returns, the caller re-reads the store: a loser uses the winner's
// token. Lock must be safe for concurrent use.
type Locker interface {
	// Lock waits until it holds the lock on key, and returns the function
	// that releases it (safe to call more than once).
	Lock(ctx context.Context, key string) (unlock func(), err error)
}

var _ Locker = (*RedisLocker)(nil)

// RedisLocker is a Locker shared by all replicas through Redis: SET key
// token NX PX TTL, polled while another holder has it, and released with a
// compare-and-delete script, so that only the holder's token deletes. A
// holder that dies releases by expiry after TTL; waiters then get it.
//
// The lock is advisory and best-effort (one Redis, no fencing): a holder
// that outlives TTL may overlap the next one. Keep TTL above the longest
// fetch it guards.
type RedisLocker struct {
	// Conn talks to Redis, with a deadline per command and a breaker:
	// while it is open Lock fails at once with ErrLockUnavailable.
	// Required.
	Conn *Conn
	// Prefix starts lock keys (Prefix + "lock:" + key). Optional. Default
	// value DefaultRedisPrefix.
	Prefix string
	// TTL is how long a lock lives when its holder never releases it.
	// Optional. Default value 10s.
	TTL time.Duration
	// Wait is how long Lock waits for another holder before
	// ErrLockTimeout. Optional. Default value 10s.
	Wait time.Duration
	// Retry is the poll interval while waiting; each wait is drawn
	// between half of it and all of it. Optional. Default value 25ms.
	Retry time.Duration
}

// unlockScript deletes the lock only when it still holds the caller's
// token: a holder whose lock expired must not release the next holder's.
var unlockScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// Lock implements Locker. It returns ErrLockTimeout after Wait, an error
// wrapping ErrLockUnavailable when Redis fails, and ctx's error when ctx
// ends first.
func (l *RedisLocker) Lock(ctx context.Context, key string) (func(), error) {
	if l.Conn == nil {
		return nil, fmt.Errorf("%w: no redis connection", ErrLockUnavailable)
	}
	prefix := l.Prefix
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	rkey := prefix + "lock:" + key
	var b [16]byte
	rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	ttl, wait, retry := orDefault(l.TTL, 10*time.Second), orDefault(l.Wait, 10*time.Second), orDefault(l.Retry, 25*time.Millisecond)

	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		var ok bool
		err := l.Conn.Do(ctx, func(ctx context.Context) (err error) {
			ok, err = l.Conn.Client().SetNX(ctx, rkey, token, ttl).Result()
			return err
		})
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, fmt.Errorf("cache: lock: %w", ctx.Err())
		case err != nil:
			return nil, fmt.Errorf("%w: %w", ErrLockUnavailable, err)
		case ok:
			return l.unlock(rkey, token), nil
		}
		poll := time.NewTimer(retry/2 + mrand.N(retry/2+1))
		select {
		case <-poll.C:
		case <-deadline.C:
			poll.Stop()
			return nil, ErrLockTimeout
		case <-ctx.Done():
			poll.Stop()
			return nil, fmt.Errorf("cache: lock: %w", ctx.Err())
		}
	}
}

func (l *RedisLocker) unlock(rkey, token string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			// Past the breaker: a lock held for its whole TTL stalls the
			// session on every other replica, so the release is tried
			// once even while this replica thinks Redis is down.
			ctx, cancel := context.WithTimeout(context.Background(), l.Conn.timeout)
			defer cancel()
			_ = unlockScript.Run(ctx, l.Conn.Client(), []string{rkey}, token).Err()
		})
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
