// Package cache stores finproxy's tokens: in process (memory) or, for
// several replicas, shared.
//
// Keys are always keyed hashes of a session, never raw session values; the
// stores do not hash themselves.
package cache

import (
	"context"
	"time"
)

// A Store holds values under keys until their time to live passes.
// Implementations must be safe for concurrent use.
type Store[V any] interface {
	// Get returns the value stored under key. A missing or expired
	// entry is (zero, false, nil); err reports a store that could not
	// answer.
	Get(ctx context.Context, key string) (v V, ok bool, err error)
	// Set stores v under key for ttl. A ttl <= 0 stores nothing and
	// deletes an existing entry.
	Set(ctx context.Context, key string, v V, ttl time.Duration) error
	// Delete removes the entry under key; a missing entry is no error.
	Delete(ctx context.Context, key string) error
}
