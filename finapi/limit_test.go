package finapi

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestLimiterClassesShare: no class takes more than half of the slots, so
// a class whose endpoint hangs leaves the others room; the whole never
// exceeds its size.
func TestLimiterClassesShare(t *testing.T) {
	l := NewLimiter(4)
	ctx := context.Background()
	var held []func()
	for range 2 {
		rel, err := l.acquire(ctx, classToken, "t")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, rel)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := l.acquire(short, classToken, "t"); !errors.Is(err, ErrUnavailable) || RetryAfter(err) <= 0 {
		t.Errorf("third token slot of 4: %v, want a refusal with Retry-After", err)
	}
	for range 2 {
		rel, err := l.acquire(ctx, classUser, "u")
		if err != nil {
			t.Fatalf("user class with the token class at its share: %v", err)
		}
		held = append(held, rel)
	}
	short2, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	if _, err := l.acquire(short2, classProcess, "p"); err == nil {
		t.Errorf("a fifth call got a slot of 4")
	}
	if l.InUse() != 4 {
		t.Errorf("InUse = %d, want 4", l.InUse())
	}
	for _, rel := range held {
		rel()
	}
	if l.InUse() != 0 || l.Waiting() != 0 {
		t.Errorf("after release: in use %d, waiting %d", l.InUse(), l.Waiting())
	}
}
