package cache

import (
	"context"
	"time"

	gocache "github.com/patrickmn/go-cache"
)

// Memory is a Store in this process's memory, backed by go-cache. Expired
// entries are swept every CleanupInterval.
type Memory[V any] struct {
	c     *gocache.Cache
	codec Codec[V]
}

var _ Store[int] = (*Memory[int])(nil)

// A Codec keeps a store's values as compact strings: one allocation per
// entry instead of a boxed struct and its fields' own, and nothing for the
// garbage collector to follow inside. Decode must not fail on what Encode
// made and should return substrings of s (free) rather than copies. The
// zero Codec keeps values as they are.
type Codec[V any] struct {
	Encode func(V) string
	Decode func(s string) (V, error)
}

// NewMemory returns an empty Memory store that sweeps expired entries
// every cleanup (no sweeping if cleanup <= 0; expired entries are then
// still never returned), keeping values through codec if it has an
// Encode.
func NewMemory[V any](cleanup time.Duration, codec Codec[V]) *Memory[V] {
	return &Memory[V]{c: gocache.New(gocache.NoExpiration, cleanup), codec: codec}
}

// Get implements Store.
func (m *Memory[V]) Get(_ context.Context, key string) (V, bool, error) {
	var zero V
	x, ok := m.c.Get(key)
	if !ok {
		return zero, false, nil
	}
	if m.codec.Encode == nil {
		return x.(V), true, nil
	}
	v, err := m.codec.Decode(x.(string))
	if err != nil {
		return zero, false, err
	}
	return v, true, nil
}

// Set implements Store.
func (m *Memory[V]) Set(_ context.Context, key string, v V, ttl time.Duration) error {
	if ttl <= 0 {
		m.c.Delete(key)
		return nil
	}
	if m.codec.Encode != nil {
		m.c.Set(key, m.codec.Encode(v), ttl)
		return nil
	}
	m.c.Set(key, v, ttl)
	return nil
}

// Delete implements Store.
func (m *Memory[V]) Delete(_ context.Context, key string) error {
	m.c.Delete(key)
	return nil
}

// Len returns the number of entries, expired ones not yet swept included.
func (m *Memory[V]) Len() int { return m.c.ItemCount() }

// Ping implements a health check; memory always answers.
func (m *Memory[V]) Ping(context.Context) error { return nil }
