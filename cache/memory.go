package cache

import (
	"context"
	"time"

	gocache "github.com/patrickmn/go-cache"
)

// Memory is a Store in this process's memory, backed by go-cache. Expired
// entries are swept every CleanupInterval.
type Memory[V any] struct {
	c *gocache.Cache
}

var _ Store[int] = (*Memory[int])(nil)

// NewMemory returns an empty Memory store that sweeps expired entries
// every cleanup (no sweeping if cleanup <= 0; expired entries are then
// still never returned).
func NewMemory[V any](cleanup time.Duration) *Memory[V] {
	return &Memory[V]{c: gocache.New(gocache.NoExpiration, cleanup)}
}

// Get implements Store.
func (m *Memory[V]) Get(_ context.Context, key string) (V, bool, error) {
	x, ok := m.c.Get(key)
	if !ok {
		var zero V
		return zero, false, nil
	}
	return x.(V), true, nil
}

// Set implements Store.
func (m *Memory[V]) Set(_ context.Context, key string, v V, ttl time.Duration) error {
	if ttl <= 0 {
		m.c.Delete(key)
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
