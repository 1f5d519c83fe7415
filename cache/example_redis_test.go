package cache_test

import (
	"context"
	"log"
	"time"

	"github.com/finproxy/finproxy/cache"
)

// Wiring a Redis store and its lock for several replicas. The storage key
// comes from auth.Keys.StorageKey (HKDF of FINPROXY_IDENTITY_SECRET); a
// rotated secret's key goes in as a previous key until its entries expire.
func ExampleNewRedis() {
	client, err := cache.ParseRedisURL("redis://127.0.0.1:6379/0") // FINPROXY_REDIS_URL
	if err != nil {
		log.Fatal(err) // never shows the password
	}
	defer client.Close()
	storageKey := make([]byte, 32) // keys.StorageKey()
	sealer, err := cache.NewSealer(storageKey)
	if err != nil {
		log.Fatal(err)
	}
	store := cache.NewRedis[string](cache.RedisConfig{Conn: cache.NewConn(cache.ConnConfig{Client: client}), Sealer: sealer})
	defer store.Close()
	locker := &cache.RedisLocker{Conn: cache.NewConn(cache.ConnConfig{Client: client})}

	ctx := context.Background()
	unlock, err := locker.Lock(ctx, "5f2b…") // the session hash
	switch {
	case err == nil:
		defer unlock()
	default: // ErrLockUnavailable: go on without the lock (degraded); ErrLockTimeout: give up
		log.Print(err)
	}
	if _, ok, _ := store.Get(ctx, "5f2b…"); !ok { // re-read: the winner may have stored it
		_ = store.Set(ctx, "5f2b…", "token", time.Hour)
	}
}
