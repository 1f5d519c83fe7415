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

	// unsure holds the tokens of attempts whose answer was lost (a
	// timeout): Redis may have set the lock all the same, and nobody
	// would release it before TTL. They are released in the background
	// and before this locker's next attempt on the key.
	mu     sync.Mutex
	unsure map[string]string // Redis key → token
}

// maxUnsure bounds the table of unsure attempts; beyond it an arbitrary
// one is forgotten (its lock, if it exists, expires by TTL).
const maxUnsure = 10_000

// releasers bounds the background releases of unsure attempts running at
// once, across lockers.
var releasers = make(chan struct{}, 64)

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

	l.releaseUnsure(ctx, rkey)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		var ok bool
		err := l.Conn.Do(ctx, func(ctx context.Context) (err error) {
			ok, err = l.Conn.Client().SetNX(ctx, rkey, token, ttl).Result()
			return err
		})
		if failing(err) && !errors.Is(err, ErrRedisDown) {
			// The SET may have been carried out with its answer lost
			// (a timeout): without this, the session would wait for a
			// lock nobody holds until TTL, on every replica.
			l.rememberUnsure(rkey, token)
		}
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

// rememberUnsure records a lost attempt and releases it in the background
// once Redis may answer again (past the breaker, like unlock).
func (l *RedisLocker) rememberUnsure(rkey, token string) {
	l.mu.Lock()
	if l.unsure == nil {
		l.unsure = map[string]string{}
	}
	if len(l.unsure) >= maxUnsure {
		for k := range l.unsure {
			delete(l.unsure, k)
			break
		}
	}
	l.unsure[rkey] = token
	l.mu.Unlock()
	select {
	case releasers <- struct{}{}:
	default:
		return // enough releases running: the next Lock on rkey releases it
	}
	go func() {
		defer func() { <-releasers }()
		for _, after := range []time.Duration{100 * time.Millisecond, time.Second, 5 * time.Second} {
			time.Sleep(after)
			ctx, cancel := context.WithTimeout(context.Background(), l.Conn.timeout)
			err := unlockScript.Run(ctx, l.Conn.Client(), []string{rkey}, token).Err()
			cancel()
			if err == nil {
				l.forgetUnsure(rkey, token)
				return
			}
		}
	}()
}

// releaseUnsure releases this locker's own lost attempt on rkey, if any,
// before it tries again.
func (l *RedisLocker) releaseUnsure(ctx context.Context, rkey string) {
	l.mu.Lock()
	token, ok := l.unsure[rkey]
	l.mu.Unlock()
	if !ok {
		return
	}
	err := l.Conn.Do(ctx, func(ctx context.Context) error {
		return unlockScript.Run(ctx, l.Conn.Client(), []string{rkey}, token).Err()
	})
	if err == nil {
		l.forgetUnsure(rkey, token)
	}
}

func (l *RedisLocker) forgetUnsure(rkey, token string) {
	l.mu.Lock()
	if l.unsure[rkey] == token {
		delete(l.unsure, rkey)
	}
	l.mu.Unlock()
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
