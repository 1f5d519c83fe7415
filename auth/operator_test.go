package auth_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/finproxy/finproxy/auth"
)

// TestRefusedCallsAreBounded: calls refused before any action (no admin
// token, say) write at most 10 audit lines a second, whatever their rate;
// the next line after a full window says how many it left out.
func TestRefusedCallsAreBounded(t *testing.T) {
	var out bytes.Buffer
	log := zerolog.New(&out)
	clock := newClock()
	op := &auth.Operator{Audit: auth.Audit{Log: &log}, Now: clock.Now}
	for range 1000 {
		op.Refused(context.Background(), "admin_unauthorized", "")
	}
	if n := strings.Count(out.String(), `"event":"admin_refused"`); n != 10 {
		t.Fatalf("%d refused lines for 1000 calls within one second, want 10", n)
	}
	out.Reset()
	clock.Advance(time.Second)
	op.Refused(context.Background(), "admin_unauthorized", "")
	if !strings.Contains(out.String(), `"suppressed":990`) {
		t.Errorf("the first line of the next second does not count the 990 left out: %s", out.String())
	}
}
