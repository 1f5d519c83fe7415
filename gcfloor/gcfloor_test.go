package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name               string
		floor, live, roots uint64
		want               int
	}{
		{"small heap: the minimum heap puts the goal at the floor", 16 * mib, 2 * mib, 0, 400},
		{"larger heap: GOGC puts it there", 64 * mib, 8 * mib, 0, 700},
		{"roots count as scanned", 64 * mib, 4 * mib, 4 * mib, 750},
		{"half the floor live: the default", 16 * mib, 8 * mib, 0, BasePercent},
		{"more live than half the floor", 16 * mib, 12 * mib, 0, BasePercent},
		{"more live than the floor", 16 * mib, 64 * mib, 0, BasePercent},
		{"nothing measured yet", 16 * mib, 0, 0, BasePercent},
		{"nearly empty heap: the minimum heap's bound", 16 * mib, 1024, 0, 400},
		{"a huge floor: capped", 1 << 40, 1 * mib, 0, MaxPercent},
	} {
		if got := Percent(c.floor, c.live, c.roots); got != c.want {
			t.Errorf("%s: Percent(%d, %d, %d) = %d, want %d", c.name, c.floor, c.live, c.roots, got, c.want)
		}
	}
}

// gogc is the GOGC in force, as the runtime reports it.
func gogc(t *testing.T) int {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// eventually collects until cond holds: the tuning runs in the runtime's
// cleanup goroutine some moments after a cycle.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s of collections: %s (GOGC %d)", what, gogc(t))
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

var live []byte // what the test holds live

// TestFloorFollowsTheLiveHeap runs the tuner for real: GOGC high while the
// live heap is small, back to the default after one collection that finds
// a large one, high again once that is gone, and as before after stop.
func TestFloorFollowsTheLiveHeap(t *testing.T) {
	old := debug.SetGCPercent(150) // something other than the default, to see it restored
	defer debug.SetGCPercent(old)
	const floor = 256 << 20
	stop := Start(floor)
	t.Cleanup(stop) // when the test fails half way

	eventually(t, "GOGC raised for a small heap", func() bool { return gogc(t) > 1000 })
	goal := heapGoal()
	if goal < floor/2 || goal > floor*2 {
		t.Errorf("heap goal %d MiB with a %d MiB floor", goal>>20, floor>>20)
	}

	live = make([]byte, 200<<20) // more than half the floor
	for i := range live {
		live[i] = 1
	}
	eventually(t, "GOGC back to the default for a large heap", func() bool { return gogc(t) == BasePercent })

	live = nil
	eventually(t, "GOGC raised again once the heap is small", func() bool { return gogc(t) > 1000 })

	stop()
	if got := gogc(t); got != 150 {
		t.Errorf("after stop GOGC = %d, want 150 as before Start", got)
	}
	// Stopped: collections no longer change it.
	debug.SetGCPercent(120)
	for range 5 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if got := gogc(t); got != 120 {
		t.Errorf("a stopped floor still tunes: GOGC = %d, want 120", got)
	}
}

func heapGoal() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func TestStartReplacesAndSmallFloorsDoNothing(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)

	Start(MinFloor - 1)() // nothing to stop
	if got := gogc(t); got != 100 {
		t.Fatalf("a floor below MinFloor set GOGC %d", got)
	}

	stopA := Start(512 << 20)
	stopB := Start(1 << 30) // replaces A
	t.Cleanup(stopB)
	stopA() // no longer in force: must not end B
	eventually(t, "the second floor tunes", func() bool { return gogc(t) > 1000 })
	stopB()
	if got := gogc(t); got != 100 {
		t.Errorf("after both stops GOGC = %d, want 100", got)
	}
}
