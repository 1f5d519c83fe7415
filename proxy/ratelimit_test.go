package proxy

import (
	"fmt"
	"testing"
	"time"
)

func TestLimitersRateAndBurst(t *testing.T) {
	l := newLimiters(10, 3, 100)
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 3 {
		if ok, _ := l.allow("s", t0); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.allow("s", t0)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("past the burst: ok %v wait %v, want refused and 100ms", ok, wait)
	}
	if ok, wait := l.allow("s", t0.Add(60*time.Millisecond)); ok || wait != 40*time.Millisecond {
		t.Errorf("60ms later: ok %v wait %v, want refused and 40ms", ok, wait)
	}
	if ok, _ := l.allow("s", t0.Add(100*time.Millisecond)); !ok {
		t.Errorf("100ms later a token is back")
	}
	if ok, _ := l.allow("other", t0); !ok {
		t.Errorf("another key has its own bucket")
	}
	// A clock going backwards (a leap of the wall clock) neither adds
	// tokens nor panics.
	if ok, _ := l.allow("s", t0.Add(-time.Hour)); ok {
		t.Errorf("a clock step back refilled the bucket")
	}
	if ok, _ := l.allow("s", t0.Add(time.Hour)); !ok {
		t.Errorf("an hour later the bucket is full")
	}
}

// TestLimitersStayBounded: idle buckets (full again) are swept, and the
// table never holds more than its size, whatever the number of keys.
func TestLimitersStayBounded(t *testing.T) {
	l := newLimiters(100, 200, 1000)
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 5000 {
		l.allow(fmt.Sprint("k", i), t0)
		if n := l.len(); n > 1000 {
			t.Fatalf("%d buckets after %d keys, bound 1000", n, i+1)
		}
	}
	// Idle past the refill time and the sweep interval: a request of a
	// new key sweeps every idle bucket.
	later := t0.Add(max(l.idle, sweepEvery) + time.Second)
	l.allow("fresh", later)
	if n := l.len(); n != 1 {
		t.Errorf("%d buckets after the idle ones were swept, want 1", n)
	}
}
