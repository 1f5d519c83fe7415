package proxy

import (
	"net/http"
	"testing"
	"time"
)

// TestStrippedHeadersAreCanonical: rewrite deletes and sets header keys
// directly; a key not in canonical form would miss the caller's header.
func TestStrippedHeadersAreCanonical(t *testing.T) {
	keys := append([]string{RequestIDHeader, ReasonHeader, psuIPHeader, psuUserAgentHeader}, strippedHeaders...)
	for _, k := range keys {
		if c := http.CanonicalHeaderKey(k); c != k {
			t.Errorf("header key %q is not canonical (%q)", k, c)
		}
	}
}

func TestMillis(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0.000", 999 * time.Nanosecond: "0.000", 1234567 * time.Nanosecond: "1.234",
		250 * time.Millisecond: "250.000", 90 * time.Second: "90000.000", -time.Second: "0.000",
	} {
		if got := string(appendMillis(nil, d)); got != want {
			t.Errorf("appendMillis(%v) = %s, want %s", d, got, want)
		}
	}
}
