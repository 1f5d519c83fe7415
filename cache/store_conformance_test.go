package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"
)

// testValue stands in for auth.Token: JSON-tagged fields, one of them a
// secret that must never be stored in plain text.
type testValue struct {
	Access string    `json:"access"`
	Secret string    `json:"secret,omitempty"`
	N      int       `json:"n"`
	At     time.Time `json:"at,omitzero"`
}

// testStore is the conformance suite every Store implementation passes,
// after oauth2-proxy's session-store tests: newStore returns an empty store
// of its own (keys of different calls do not meet).
func testStore(t *testing.T, newStore func(t *testing.T) Store[testValue]) {
	ctx := context.Background()
	v1 := testValue{Access: "access-1", Secret: "secret-1", N: 1, At: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	v2 := testValue{Access: "access-2", N: 2}

	mustGet := func(t *testing.T, s Store[testValue], key string, want testValue) {
		t.Helper()
		got, ok, err := s.Get(ctx, key)
		if err != nil || !ok || !got.At.Equal(want.At) || got.Access != want.Access || got.Secret != want.Secret || got.N != want.N {
			t.Fatalf("Get(%q) = %+v, %v, %v; want %+v, true, nil", key, got, ok, err, want)
		}
	}
	mustMiss := func(t *testing.T, s Store[testValue], key string) {
		t.Helper()
		got, ok, err := s.Get(ctx, key)
		if err != nil || ok || got != (testValue{}) {
			t.Fatalf("Get(%q) = %+v, %v, %v; want zero, false, nil", key, got, ok, err)
		}
	}
	mustSet := func(t *testing.T, s Store[testValue], key string, v testValue, ttl time.Duration) {
		t.Helper()
		if err := s.Set(ctx, key, v, ttl); err != nil {
			t.Fatalf("Set(%q): %v", key, err)
		}
	}

	t.Run("get missing", func(t *testing.T) {
		mustMiss(t, newStore(t), "a1")
	})
	t.Run("set then get", func(t *testing.T) {
		s := newStore(t)
		mustSet(t, s, "a1", v1, time.Minute)
		mustGet(t, s, "a1", v1)
	})
	t.Run("overwrite", func(t *testing.T) {
		s := newStore(t)
		mustSet(t, s, "a1", v1, time.Minute)
		mustSet(t, s, "a1", v2, time.Minute)
		mustGet(t, s, "a1", v2)
	})
	t.Run("delete", func(t *testing.T) {
		s := newStore(t)
		mustSet(t, s, "a1", v1, time.Minute)
		if err := s.Delete(ctx, "a1"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		mustMiss(t, s, "a1")
		if err := s.Delete(ctx, "a1"); err != nil {
			t.Fatalf("Delete of a missing key: %v", err)
		}
	})
	t.Run("ttl expiry", func(t *testing.T) {
		s := newStore(t)
		const ttl = 200 * time.Millisecond
		start := time.Now()
		mustSet(t, s, "a1", v1, ttl)
		mustGet(t, s, "a1", v1)
		for {
			_, ok, err := s.Get(ctx, "a1")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if !ok {
				break
			}
			if time.Since(start) > ttl+2*time.Second {
				t.Fatalf("entry still there %v after a ttl of %v", time.Since(start), ttl)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if d := time.Since(start); d < ttl/2 {
			t.Fatalf("entry gone after %v, before its ttl of %v", d, ttl)
		}
	})
	t.Run("non-positive ttl deletes", func(t *testing.T) {
		s := newStore(t)
		for _, ttl := range []time.Duration{0, -time.Second} {
			mustSet(t, s, "a1", v1, time.Minute)
			mustSet(t, s, "a1", v2, ttl)
			mustMiss(t, s, "a1")
			mustSet(t, s, "a2", v2, ttl)
			mustMiss(t, s, "a2")
		}
	})
	t.Run("keys isolated", func(t *testing.T) {
		s := newStore(t)
		mustSet(t, s, "a1", v1, time.Minute)
		mustSet(t, s, "a2", v2, time.Minute)
		mustGet(t, s, "a1", v1)
		mustGet(t, s, "a2", v2)
		if err := s.Delete(ctx, "a2"); err != nil {
			t.Fatal(err)
		}
		mustGet(t, s, "a1", v1)
		mustMiss(t, s, "a2")
		mustMiss(t, s, "a") // no prefix matching
	})
	t.Run("concurrent use", func(t *testing.T) {
		s := newStore(t)
		const workers, ops, keys = 16, 100, 4
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range ops {
					key := fmt.Sprintf("k%d", (w+i)%keys)
					switch i % 4 {
					case 0, 1:
						if err := s.Set(ctx, key, testValue{Access: key, N: i}, time.Minute); err != nil {
							t.Errorf("Set: %v", err)
						}
					case 2:
						got, ok, err := s.Get(ctx, key)
						if err != nil || ok && got.Access != key {
							t.Errorf("Get(%q) = %+v, %v, %v", key, got, ok, err)
						}
					case 3:
						if err := s.Delete(ctx, key); err != nil {
							t.Errorf("Delete: %v", err)
						}
					}
				}
			})
		}
		wg.Wait()
	})
}

func TestMemoryStore(t *testing.T) {
	testStore(t, func(t *testing.T) Store[testValue] { return NewMemory(time.Minute, Codec[testValue]{}) })
}

// TestMemoryStoreWithCodec: the same behaviour when values are kept as
// strings (a JSON codec here; auth.TokenCodec in production).
func TestMemoryStoreWithCodec(t *testing.T) {
	codec := Codec[testValue]{
		Encode: func(v testValue) string { b, _ := json.Marshal(v); return string(b) },
		Decode: func(s string) (v testValue, err error) { return v, json.Unmarshal([]byte(s), &v) },
	}
	testStore(t, func(t *testing.T) Store[testValue] { return NewMemory(time.Minute, codec) })
}

func TestRedisStore(t *testing.T) {
	client := newTestClient(t)
	testStore(t, func(t *testing.T) Store[testValue] {
		return newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: client}), Prefix: testPrefix(t, client)})
	})
}

// TestRedisStoreNoL1 runs the suite against Redis alone: every Get is a
// round trip.
func TestRedisStoreNoL1(t *testing.T) {
	client := newTestClient(t)
	testStore(t, func(t *testing.T) Store[testValue] {
		return newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: client}), Prefix: testPrefix(t, client), L1TTL: -1})
	})
}
