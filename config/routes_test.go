package config_test

import (
	"strings"
	"testing"

	"github.com/finproxy/finproxy/config"
)

func TestParseRoutes(t *testing.T) {
	type route struct{ prefix, url string }
	tests := []struct {
		name string
		in   string
		want []route
	}{
		{"empty", "", nil},
		{"only separators and spaces", " , ,", nil},
		{
			name: "one route",
			in:   "/di=https://di-sandbox.finapi.io",
			want: []route{{"/di", "https://di-sandbox.finapi.io"}},
		},
		{
			name: "contract example",
			in:   "/di=https://di-sandbox.finapi.io,/webform=https://webform-sandbox.finapi.io",
			want: []route{{"/webform", "https://webform-sandbox.finapi.io"}, {"/di", "https://di-sandbox.finapi.io"}},
		},
		{
			name: "longest prefix first",
			in:   "/a=http://one,/a/b/c=http://three,/a/b=http://two",
			want: []route{{"/a/b/c", "http://three"}, {"/a/b", "http://two"}, {"/a", "http://one"}},
		},
		{
			name: "spaces around items trimmed",
			in:   "  /di = https://di.example:8443/base/ , /x=http://x",
			want: []route{{"/di", "https://di.example:8443/base"}, {"/x", "http://x"}},
		},
		{
			name: "trailing slash of target path removed",
			in:   "/di=https://di.example/",
			want: []route{{"/di", "https://di.example"}},
		},
		{
			name: "equal length keeps the given order",
			in:   "/bb=http://b,/aa=http://a",
			want: []route{{"/bb", "http://b"}, {"/aa", "http://a"}},
		},
		{
			name: "prefix with unreserved characters",
			in:   "/a-b_c.d~e/V1=http://h",
			want: []route{{"/a-b_c.d~e/V1", "http://h"}},
		},
		{
			name: "prefix merely starting with proxy",
			in:   "/proxyish=http://h",
			want: []route{{"/proxyish", "http://h"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.ParseRoutes(tt.in)
			if err != nil {
				t.Fatalf("ParseRoutes(%q): %v", tt.in, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("ParseRoutes(%q) = %d routes, want %d: %v", tt.in, len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				if got[i].Prefix != w.prefix || got[i].URL.String() != w.url {
					t.Errorf("route %d = %s=%s, want %s=%s", i, got[i].Prefix, got[i].URL, w.prefix, w.url)
				}
			}
		})
	}
}

func TestParseRoutesRefuses(t *testing.T) {
	tests := []struct {
		name, in, wantInErr string
		mustNotContain      string
	}{
		{name: "no equals sign", in: "/di", wantInErr: "prefix=url"},
		{name: "ftp scheme", in: "/di=ftp://di.example", wantInErr: "http or https"},
		{name: "file scheme", in: "/di=file:///etc/passwd", wantInErr: "http or https"},
		{name: "relative URL", in: "/di=di.example/path", wantInErr: "http or https"},
		{name: "missing host", in: "/di=https://", wantInErr: "no host"},
		{name: "port without host", in: "/di=https://:443", wantInErr: "no host"},
		{name: "user info", in: "/di=https://user:hunter2@di.example", wantInErr: "credentials", mustNotContain: "hunter2"},
		{name: "query", in: "/di=https://di.example/?a=b", wantInErr: "query"},
		{name: "empty segment in the URL path", in: "/x=https://h.example/api//", wantInErr: "empty or dot segment"},
		{name: "dot segment in the URL path", in: "/x=https://h.example/api/../v2", wantInErr: "empty or dot segment"},
		{name: "empty query", in: "/di=https://di.example/?", wantInErr: "query"},
		{name: "fragment", in: "/di=https://di.example/#x", wantInErr: "fragment"},
		{name: "unparseable URL", in: "/di=http://[::1", wantInErr: "invalid URL"},
		{name: "empty prefix", in: "=http://h", wantInErr: "must start with /"},
		{name: "root prefix", in: "/=http://h", wantInErr: "must start with /"},
		{name: "prefix without leading slash", in: "di=http://h", wantInErr: "must start with /"},
		{name: "prefix with trailing slash", in: "/di/=http://h", wantInErr: "trailing /"},
		{name: "prefix with empty segment", in: "/a//b=http://h", wantInErr: "empty or dot segment"},
		{name: "prefix with dot segment", in: "/a/./b=http://h", wantInErr: "dot segment"},
		{name: "prefix with dot-dot segment", in: "/a/../b=http://h", wantInErr: "dot segment"},
		{name: "prefix that is dot-dot", in: "/..=http://h", wantInErr: "dot segment"},
		{name: "prefix with percent-encoding", in: "/a%2fb=http://h", wantInErr: "letters, digits"},
		{name: "prefix with space", in: "/a b=http://h", wantInErr: "letters, digits"},
		{name: "prefix with semicolon", in: "/a;b=http://h", wantInErr: "letters, digits"},
		{name: "proxy prefix", in: "/proxy=http://h", wantInErr: "/proxy"},
		{name: "prefix below proxy", in: "/proxy/v1=http://h", wantInErr: "/proxy"},
		{name: "duplicate prefix", in: "/di=http://a,/di=http://b", wantInErr: "twice"},
		{name: "duplicate prefix with spaces", in: "/di=http://a, /di =http://b", wantInErr: "twice"},
		{name: "one bad among good", in: "/a=http://a,/b=gopher://b,/c=http://c", wantInErr: "http or https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.ParseRoutes(tt.in)
			if err == nil {
				t.Fatalf("ParseRoutes(%q) = %v, want an error", tt.in, got)
			}
			if got != nil {
				t.Errorf("ParseRoutes(%q) returned routes with its error: %v", tt.in, got)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantInErr)
			}
			if tt.mustNotContain != "" && strings.Contains(err.Error(), tt.mustNotContain) {
				t.Errorf("error %q contains %q", err, tt.mustNotContain)
			}
		})
	}
}

// TestLoadRoutesProblem checks that a bad FINPROXY_ROUTES fails Load with a
// problem naming the variable.
func TestLoadRoutesProblem(t *testing.T) {
	_, err := config.Load(environ(map[string]string{"FINPROXY_ROUTES": "/proxy=http://h"}))
	ps := problems(t, err)
	if len(ps) != 1 || ps[0].Var != "FINPROXY_ROUTES" {
		t.Errorf("problems = %v, want one naming FINPROXY_ROUTES", err)
	}
}

func TestParseBaseURL(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"https://sandbox.finapi.io", "https://sandbox.finapi.io", true},
		{"http://127.0.0.1:8000/base", "http://127.0.0.1:8000/base", true},
		{"https://sandbox.finapi.io/", "https://sandbox.finapi.io/", true},
		{"HTTPS://sandbox.finapi.io", "https://sandbox.finapi.io", true},
		{"", "", false},
		{"sandbox.finapi.io", "", false},
		{"ws://sandbox.finapi.io", "", false},
		{"https://u@sandbox.finapi.io", "", false},
		{"https://sandbox.finapi.io?x", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := config.ParseBaseURL(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseBaseURL(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if tt.ok && u.String() != tt.want {
				t.Errorf("ParseBaseURL(%q) = %s, want %s", tt.in, u, tt.want)
			}
		})
	}
}
