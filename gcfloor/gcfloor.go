// Package gcfloor keeps the Go garbage collector from running more often
// than a heap of a given size needs: a floor under the heap goal.
//
// With the default GOGC=100 the collector starts a cycle whenever the heap
// has grown to twice what the last cycle found live, but never below 4 MiB.
// A proxy's live heap is small (a few MiB until it holds many sessions), and
// every request allocates a few KiB, so at thousands of requests per second
// it collects dozens of times a second, each cycle marking the whole live
// heap again: on a 2-core machine several microseconds of CPU per request.
// The floor raises GOGC while the live heap is small, so that the goal is
// about Floor bytes, and gives it back (GOGC=100) once twice the live heap
// is above the floor: a large heap (many cached sessions) is collected as
// the runtime's default would, with the memory that costs (twice the live
// heap) and no more.
//
// The setting is recomputed after every collection, from the live heap that
// collection found (runtime/metrics), by a cleanup the collector itself
// runs: a heap that grows at once is back at GOGC=100 right after the first
// cycle that sees it. A memory limit (GOMEMLIMIT) still caps the heap.
//
// GOGC is process-wide: one floor at a time (Start replaces the one
// before).
package gcfloor

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// BasePercent is GOGC where the floor does not apply: the runtime's default.
const BasePercent = 100

// MaxPercent bounds GOGC whatever the floor: a heap goal of at most 51
// times the live heap.
const MaxPercent = 5000

// MinFloor is the smallest floor that changes anything: the runtime's own
// minimum heap goal at GOGC=100.
const MinFloor = 4 << 20

// Percent returns the GOGC that puts the heap goal at floor for a live heap
// of live bytes and roots bytes of stacks and globals, between BasePercent
// and MaxPercent. The runtime's goal is live + (live + roots) × GOGC/100,
// but at least its minimum heap, which grows with GOGC too (MinFloor ×
// GOGC/100): for a heap that small the minimum is what puts the goal at
// the floor.
func Percent(floor, live, roots uint64) int {
	scanned := live + roots
	if floor <= live || scanned == 0 {
		return BasePercent
	}
	p := math.Min(float64(floor-live)/float64(scanned), float64(floor)/MinFloor) * 100
	return int(math.Max(BasePercent, math.Min(p, MaxPercent)))
}

// Start puts a floor of floor bytes under the heap goal until the returned
// function is called, which gives GOGC back as it was. A floor below
// MinFloor changes nothing and starts nothing.
func Start(floor uint64) (stop func()) {
	if floor < MinFloor {
		return func() {}
	}
	mu.Lock()
	defer mu.Unlock()
	if current == nil {
		before = debug.SetGCPercent(BasePercent)
	}
	f := &tuner{floor: floor, percent: BasePercent}
	current = f
	f.tune()
	f.arm()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		if current != f {
			return // replaced by a later Start
		}
		current = nil
		debug.SetGCPercent(before)
	}
}

var (
	mu      sync.Mutex
	current *tuner // the floor in force, nil without one
	before  int    // GOGC before the first Start
)

// A tuner is one floor: after every collection it sets GOGC for the live
// heap that collection found.
type tuner struct {
	floor   uint64
	percent int // the GOGC it set last; guarded by mu
}

// sentinel is what the collector frees once per cycle: a fresh one is
// allocated after each cycle, and its cleanup runs after the next. It holds
// a pointer so that it is never batched with other tiny objects (whose
// cleanups might never run).
type sentinel struct {
	_ *tuner
	_ [8]byte
}

// arm allocates the sentinel whose cleanup tunes again after the next
// collection.
func (f *tuner) arm() {
	runtime.AddCleanup(new(sentinel), afterCycle, f)
}

// afterCycle runs in the runtime's cleanup goroutine after a collection.
func afterCycle(f *tuner) {
	mu.Lock()
	defer mu.Unlock()
	if current != f {
		return // stopped or replaced: no more tuning, no new sentinel
	}
	f.tune()
	f.arm()
}

// samples are the runtime metrics Percent needs; reused under mu.
var samples = []metrics.Sample{
	{Name: "/gc/heap/live:bytes"},
	{Name: "/gc/scan/stack:bytes"},
	{Name: "/gc/scan/globals:bytes"},
}

// tune sets GOGC for the live heap the last collection found. Changes of
// less than a tenth are left alone: every SetGCPercent recomputes the
// runtime's pacing.
func (f *tuner) tune() {
	metrics.Read(samples)
	var v [3]uint64
	for i, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	p := Percent(f.floor, v[0], v[1]+v[2])
	if p == f.percent || p != BasePercent && math.Abs(float64(p-f.percent)) < float64(f.percent)/10 {
		return
	}
	f.percent = p
	debug.SetGCPercent(p)
}
