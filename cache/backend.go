package cache

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"
)

// Kinds of Backend.
const (
	KindMemory = "memory"
	KindRedis  = "redis"
)

// BackendConfig configures OpenBackend.
type BackendConfig struct {
	// Kind is KindMemory (one replica) or KindRedis (shared). Required.
	Kind string
	// RedisURL is parsed by ParseRedisURL (KindRedis). Required there.
	RedisURL string
	// Prefix starts every Redis key. Optional. Default DefaultRedisPrefix.
	Prefix string
	// StorageKey seals values at rest (see NewSealer). Required for
	// KindRedis.
	StorageKey []byte
	// L1TTL is RedisConfig.L1TTL, except that zero turns the L1 off.
	L1TTL time.Duration
	// L1MaxAge is RedisConfig.L1MaxAge, except that zero turns it off.
	L1MaxAge time.Duration
	// Timeout bounds each Redis command (Conn). Optional. Default
	// DefaultRedisTimeout.
	Timeout time.Duration
	// LockTTL and LockWait configure the RedisLocker. Optional.
	LockTTL, LockWait time.Duration
	// Log receives Redis outages and go-redis's own lines. Optional.
	Log zerolog.Logger
}

// Backend is a token store with what a replica needs around it.
type Backend[V any] struct {
	Store[V]
	// Index is a second store under the same prefix, for bookkeeping
	// that must not count as cached sessions (Len) nor take room in the
	// L1: the admin API's index of short session hashes. Shared by the
	// replicas like Store, without an L1.
	Index Store[V]
	// Locker single-flights across replicas; nil for the memory store.
	Locker Locker
	// Ping asks the store whether it answers (readiness).
	Ping func(context.Context) error
	// Down reports that the store is failing and the replica serves
	// from its own memory (never, for the memory store).
	Down func() bool
	// Len is the number of entries this replica holds.
	Len func() int
	// Close releases the store.
	Close func() error
}

// OpenBackend builds the configured store: memory (its values kept
// through codec), or Redis behind a Conn with an in-memory L1, sealed
// values and a cross-replica lock.
func OpenBackend[V any](c BackendConfig, codec Codec[V]) (*Backend[V], error) {
	switch c.Kind {
	case KindMemory:
		mem := NewMemory(time.Minute, codec)
		return &Backend[V]{Store: mem, Index: NewMemory(time.Minute, codec), Ping: mem.Ping, Down: func() bool { return false }, Len: mem.Len, Close: func() error { return nil }}, nil
	case KindRedis:
	default:
		return nil, errors.New("cache: unknown store kind " + c.Kind)
	}
	SetRedisLogger(c.Log)
	client, err := ParseRedisURL(c.RedisURL)
	if err != nil {
		return nil, err
	}
	sealer, err := NewSealer(c.StorageKey)
	if err != nil {
		client.Close()
		return nil, err
	}
	l1 := c.L1TTL
	if l1 == 0 {
		l1 = -1 // RedisConfig: negative turns the L1 off
	}
	maxAge := c.L1MaxAge
	if maxAge == 0 {
		maxAge = -1
	}
	conn := NewConn(ConnConfig{Client: client, Timeout: c.Timeout, Log: c.Log})
	rs := NewRedis[V](RedisConfig{Conn: conn, Prefix: c.Prefix, Sealer: sealer, L1TTL: l1, L1MaxAge: maxAge, Log: c.Log})
	index := NewRedis[V](RedisConfig{Conn: conn, Prefix: c.Prefix, Sealer: sealer, L1TTL: -1, Log: c.Log})
	return &Backend[V]{
		Store:  rs,
		Index:  index,
		Locker: &RedisLocker{Conn: conn, Prefix: c.Prefix, TTL: c.LockTTL, Wait: c.LockWait},
		Ping:   rs.Ping,
		Down:   conn.Down,
		Len:    rs.Len,
		Close: func() error {
			err := errors.Join(rs.Close(), index.Close())
			conn.Close()
			return errors.Join(err, client.Close())
		},
	}, nil
}
