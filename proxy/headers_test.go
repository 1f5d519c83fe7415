package proxy

import (
	"net/http"
	"testing"
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
