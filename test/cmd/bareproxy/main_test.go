package main

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// TestMain checks, before any test maps it, that the -touch table is not
// on the heap of every bare engine: the baseline once carried it there,
// and its collector ran half as often as a real proxy's.
func TestMain(m *testing.M) {
	if table != nil {
		fmt.Fprintln(os.Stderr, "the -touch table exists before -touch asked for it: every bare engine carries it")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// BenchmarkTouch is what -touch 600 costs a request in isolation, with
// the table warm in this core's caches: the figure to set against what it
// costs under load (docs/performance.md).
func BenchmarkTouch(b *testing.B) {
	mapTable()
	for b.Loop() {
		touchTable(600)
	}
}

// TestSyntheticWork checks the two knobs do the work they claim: busy
// waits at least its duration, touchTable changes the table.
func TestSyntheticWork(t *testing.T) {
	start := time.Now()
	busy(2 * time.Millisecond)
	if d := time.Since(start); d < 2*time.Millisecond {
		t.Errorf("busy(2ms) returned after %v", d)
	}
	mapTable()
	before := touched.Load()
	touchTable(600)
	if touched.Load() == before {
		t.Error("touchTable(600) touched nothing")
	}
}
