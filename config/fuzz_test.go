package config

import (
	"strings"
	"testing"
)

// FuzzParseRoutes: FINPROXY_ROUTES either parses into routes whose
// prefixes pass the prefix rules, longest first, with http(s) URLs whose
// paths have no empty or dot segment, or is refused; it never panics.
func FuzzParseRoutes(f *testing.F) {
	for _, s := range []string{"", "/di=https://di.example", "/di=https://di.example/base,/di/v2=https://v2.example",
		"/x=https://h/api//", "/x=https://h/a/../b", "/proxy=https://h", "/a=ftp://h", "/a=https://u:p@h", "=,=,", "/a=https://h?q=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		routes, err := ParseRoutes(s)
		if err != nil {
			return
		}
		for i, r := range routes {
			if err := checkPrefix(r.Prefix); err != nil {
				t.Errorf("accepted prefix %q: %v", r.Prefix, err)
			}
			if i > 0 && len(r.Prefix) > len(routes[i-1].Prefix) {
				t.Errorf("routes not longest first: %q after %q", r.Prefix, routes[i-1].Prefix)
			}
			if r.URL.Scheme != "http" && r.URL.Scheme != "https" || r.URL.Host == "" || r.URL.User != nil || r.URL.RawQuery != "" {
				t.Errorf("accepted URL %s", r.URL.Redacted())
			}
			if p := r.URL.Path; p != "" {
				for _, seg := range strings.Split(p[1:], "/") {
					if seg == "" || seg == "." || seg == ".." {
						t.Errorf("accepted URL path %q", p)
					}
				}
			}
		}
	})
}
