package cache_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/finproxy/finproxy/cache"
)

var _ cache.Store[string] = (*cache.Memory[string])(nil)

func TestMemory(t *testing.T) {
	ctx := context.Background()
	type step struct {
		name   string
		do     func(m *cache.Memory[string]) error
		key    string
		want   string
		wantOK bool
	}
	set := func(k, v string, ttl time.Duration) func(m *cache.Memory[string]) error {
		return func(m *cache.Memory[string]) error { return m.Set(ctx, k, v, ttl) }
	}
	del := func(k string) func(m *cache.Memory[string]) error {
		return func(m *cache.Memory[string]) error { return m.Delete(ctx, k) }
	}
	steps := []step{
		{name: "missing key", key: "a"},
		{name: "set", do: set("a", "1", time.Hour), key: "a", want: "1", wantOK: true},
		{name: "other key unaffected", key: "b"},
		{name: "overwrite", do: set("a", "2", time.Hour), key: "a", want: "2", wantOK: true},
		{name: "zero ttl deletes", do: set("a", "3", 0), key: "a"},
		{name: "set again", do: set("a", "4", time.Hour), key: "a", want: "4", wantOK: true},
		{name: "negative ttl deletes", do: set("a", "5", -time.Second), key: "a"},
		{name: "set b", do: set("b", "6", time.Hour), key: "b", want: "6", wantOK: true},
		{name: "delete", do: del("b"), key: "b"},
		{name: "delete missing is no error", do: del("never"), key: "never"},
	}
	m := cache.NewMemory(0, cache.Codec[string]{})
	for _, s := range steps {
		if s.do != nil {
			if err := s.do(m); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
		v, ok, err := m.Get(ctx, s.key)
		if err != nil || ok != s.wantOK || v != s.want {
			t.Errorf("%s: Get(%q) = %q, %v, %v; want %q, %v, nil", s.name, s.key, v, ok, err, s.want, s.wantOK)
		}
	}
	if n := m.Len(); n != 0 {
		t.Errorf("Len = %d, want 0", n)
	}
	if err := m.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestMemoryConcurrent(t *testing.T) {
	ctx := context.Background()
	m := cache.NewMemory(time.Minute, cache.Codec[int]{})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			for j := range 100 {
				if err := m.Set(ctx, "k", i*1000+j, time.Hour); err != nil {
					t.Errorf("Set: %v", err)
				}
				if _, ok, err := m.Get(ctx, "k"); !ok || err != nil {
					t.Errorf("Get after Set = %v, %v", ok, err)
				}
			}
		})
	}
	wg.Wait()
	if n := m.Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
}

// TestMemoryForgetsExpired: the table stays bounded by the entries still
// alive; expired ones are swept, not only hidden.
func TestMemoryForgetsExpired(t *testing.T) {
	ctx := context.Background()
	m := cache.NewMemory(20*time.Millisecond, cache.Codec[int]{})
	for i := range 1000 {
		m.Set(ctx, fmt.Sprint(i), i, 10*time.Millisecond)
	}
	m.Set(ctx, "alive", 1, time.Hour)
	deadline := time.Now().Add(5 * time.Second)
	for m.Len() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := m.Len(); n != 1 {
		t.Errorf("%d entries held after expiry, want 1", n)
	}
}
