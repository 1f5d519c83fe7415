package finapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ParseRetryAfter reads a Retry-After header in either form RFC 9110
// section 10.2.3 allows: delta-seconds, or an HTTP date (taken relative to
// now). It returns 0 for an empty, malformed or past value.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if strings.Trim(v, "0123456789") == "" { // delta-seconds: digits only
		secs, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil: // beyond int64
			return maxRetryAfter
		case secs <= 0:
			return 0
		}
		return time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}
