package test

import (
	"strings"
	"testing"
	"time"

	"github.com/finproxy/finproxy/test/emulator"
)

// TestGCHeapFloor: by default finproxy raises GOGC while its heap is small
// (FINPROXY_GC_HEAP_FLOOR_BYTES, 16 MiB); 0 or a GOGC of the operator's
// leave the runtime's pacing alone. What it set shows in
// go_gc_gogc_percent. Scrapes allocate, so scraping until a few collections
// ran is what lets the floor act.
func TestGCHeapFloor(t *testing.T) {
	f := newFinAPI(t, emulator.Config{})
	for _, c := range []struct {
		name   string
		env    map[string]string
		raised bool
		log    string
	}{
		{"default", nil, true, ""},
		{"off", map[string]string{"FINPROXY_GC_HEAP_FLOOR_BYTES": "0"}, false, ""},
		{"GOGC set", map[string]string{"GOGC": "100"}, false, "GOGC is set: no heap floor"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := proxyEnv(f)
			for k, v := range c.env {
				env[k] = v
			}
			p := startProxy(t, f, env)
			var gogc, cycles float64
			for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
				m := scrape(t, p)
				gogc, cycles = m["go_gc_gogc_percent"], m["go_gc_duration_seconds_count"]
				if cycles >= 2 && (gogc > 100 || !c.raised) {
					break
				}
			}
			switch {
			case cycles < 2:
				t.Fatalf("only %v collections after 15 s of scrapes", cycles)
			case c.raised && gogc <= 100:
				t.Errorf("GOGC %v after %v collections, want it raised by the floor", gogc, cycles)
			case !c.raised && gogc != 100:
				t.Errorf("GOGC %v after %v collections, want the runtime's 100", gogc, cycles)
			}
			if c.log != "" && !strings.Contains(p.out.String(), c.log) {
				t.Errorf("no %q line in the log:\n%s", c.log, p.out.String())
			}
		})
	}
}
