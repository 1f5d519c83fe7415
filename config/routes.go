package config

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// A Route sends requests under Prefix to URL, with the prefix stripped.
type Route struct {
	// Prefix is a path of whole segments, e.g. "/di" or "/di/v1"; it
	// never ends in a slash.
	Prefix string
	URL    *url.URL
}

// ParseRoutes parses FINPROXY_ROUTES: comma-separated "prefix=url" pairs.
// The result is sorted longest prefix first, so the first match wins.
func ParseRoutes(s string) ([]Route, error) {
	var routes []Route
	seen := map[string]bool{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		prefix, raw, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not prefix=url", item)
		}
		prefix, raw = strings.TrimSpace(prefix), strings.TrimSpace(raw)
		if err := checkPrefix(prefix); err != nil {
			return nil, err
		}
		if seen[prefix] {
			return nil, fmt.Errorf("prefix %q appears twice", prefix)
		}
		seen[prefix] = true
		u, err := ParseBaseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", prefix, err)
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		u.RawPath = ""
		// The upstream receives this path joined with the rest; denial
		// judges the joined path, so it must mean one thing to every
		// server: no empty or dot segments (Spring merges "//").
		if u.Path != "" {
			for seg := range strings.SplitSeq(u.Path[1:], "/") {
				if seg == "" || seg == "." || seg == ".." {
					return nil, fmt.Errorf("route %s: the URL path %q has an empty or dot segment", prefix, u.Path)
				}
			}
		}
		routes = append(routes, Route{Prefix: prefix, URL: u})
	}
	sort.SliceStable(routes, func(i, j int) bool { return len(routes[i].Prefix) > len(routes[j].Prefix) })
	return routes, nil
}

// checkPrefix accepts "/seg[/seg…]" where each segment is plain unreserved
// characters: no dot segments, no percent-encoding, nothing that a client
// could spell two ways.
func checkPrefix(p string) error {
	if !strings.HasPrefix(p, "/") || p == "/" || strings.HasSuffix(p, "/") {
		return fmt.Errorf("prefix %q must start with / and name at least one segment, without a trailing /", p)
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("prefix %q has an empty or dot segment", p)
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == '~') {
				return fmt.Errorf("prefix %q may only use letters, digits and -._~", p)
			}
		}
	}
	if p == "/proxy" || strings.HasPrefix(p, "/proxy/") {
		return fmt.Errorf("prefix %q would hide finproxy's own /proxy endpoints", p)
	}
	return nil
}
