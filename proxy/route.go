package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"unicode"
)

// AccessRoute is the route label of finAPI Access, the default upstream.
const AccessRoute = "/"

// A Route sends requests under Prefix to URL, with the prefix stripped
// and the rest appended to URL's own path.
type Route struct {
	// Prefix is a path of whole segments, e.g. "/di" or "/di/v1", sorted
	// longest first among the routes given; it never ends in a slash.
	Prefix string
	URL    *url.URL
}

// A route is one upstream with the path prefix that selects it.
type route struct {
	prefix string // "/" for Access
	target *url.URL
	// logged holds the prefix and the target's host as the request line
	// writes them (JSON strings), encoded once; empty when either would
	// need escaping, and the line is then built field by field.
	logged struct{ prefix, host string }
}

func newRoute(prefix string, target *url.URL) route {
	rt := route{prefix: prefix, target: target}
	if plainJSON(prefix) && plainJSON(target.Host) {
		rt.logged.prefix, rt.logged.host = `"`+prefix+`"`, `"`+target.Host+`"`
	}
	return rt
}

// router picks the upstream of a request: the longest configured prefix
// that matches whole path segments, else finAPI Access.
type router struct {
	routes []route // longest prefix first, Access last
}

func newRouter(access *url.URL, extra []Route) *router {
	r := &router{}
	for _, x := range extra {
		r.routes = append(r.routes, newRoute(x.Prefix, x.URL))
	}
	a := *access
	a.Path = strings.TrimSuffix(a.Path, "/")
	a.RawPath = ""
	r.routes = append(r.routes, newRoute(AccessRoute, &a))
	return r
}

// match returns the route of the escaped path and the escaped path that
// remains once the prefix is stripped (always starting with "/").
func (r *router) match(escaped string) (*route, string) {
	for i := range r.routes {
		rt := &r.routes[i]
		if rt.prefix == AccessRoute {
			return rt, escaped
		}
		if rest, ok := strings.CutPrefix(escaped, rt.prefix); ok && (rest == "" || rest[0] == '/') {
			if rest == "" {
				rest = "/"
			}
			return rt, rest
		}
	}
	return nil, ""
}

// checkPath refuses request paths that an upstream might read differently
// from finproxy: dot segments (also percent-encoded), empty segments ("//",
// which servlet containers merge), encoded slashes and backslashes, double
// encoding, path parameters (";"), control characters. A path that passes
// means the same to every server.
func checkPath(u *url.URL) error {
	esc := u.EscapedPath()
	if !strings.HasPrefix(esc, "/") {
		return errInvalidPath
	}
	lower := strings.ToLower(esc)
	for _, bad := range []string{"//", "%2f", "%5c", "%25", "%00", ";", "\\"} {
		if strings.Contains(lower, bad) {
			return errInvalidPath
		}
	}
	for seg := range strings.SplitSeq(u.Path, "/") {
		if seg == "." || seg == ".." {
			return errInvalidPath
		}
	}
	for i := 0; i < len(u.Path); i++ {
		if c := u.Path[i]; c < 0x20 || c == 0x7f {
			return errInvalidPath
		}
	}
	return nil
}

// denied reports whether a request needs finAPI's client token and so is
// never forwarded with a user's token (CONTRACT.md item 8). path is the
// decoded path, as the upstream will see it.
func denied(method, path string) bool {
	p := strings.ToLower(path)
	if deniedPlain(method, p) {
		return true
	}
	// Spellings a server may map to the same handler: suffix patterns
	// (/users.json), and segments with surrounding white space (Spring's
	// AntPathMatcher trimmed tokens by default until 4.3).
	if strings.Contains(p, ".") || strings.ContainsFunc(p, unicode.IsSpace) {
		t := trimSegments(p)
		return deniedPlain(method, t) || deniedPlain(method, stripSuffixes(p)) ||
			deniedPlain(method, stripSuffixes(t)) || deniedPlain(method, trimSegments(stripSuffixes(p)))
	}
	return false
}

// trimSegments trims white space around every segment.
func trimSegments(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = strings.TrimSpace(s)
	}
	return strings.Join(segs, "/")
}

// deniedPlain is denied for a lowercase path taken literally.
func deniedPlain(method, p string) bool {
	if under(p, "/oauth") {
		return true
	}
	for _, v := range []string{"/api/v2", "/api/v1"} {
		rest, ok := strings.CutPrefix(p, v)
		if !ok || rest != "" && rest[0] != '/' {
			continue
		}
		switch {
		case under(rest, "/oauth"),
			under(rest, "/clientconfiguration"),
			under(rest, "/mandatoradmin"),
			strings.HasPrefix(rest, "/tppcertificates"),
			strings.HasPrefix(rest, "/tppcredentials"),
			strings.HasPrefix(rest, "/users/") && rest != "/users/",
			(rest == "/users" || rest == "/users/") && method == http.MethodPost:
			return true
		}
	}
	return false
}

// stripSuffixes cuts every segment at its first dot, so that spellings a
// framework may map to the same handler (Spring's suffix patterns:
// /users.json for /users) are denied like the plain path.
func stripSuffixes(p string) string {
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if j := strings.IndexByte(seg, '.'); j >= 0 {
			segs[i] = seg[:j]
		}
	}
	return strings.Join(segs, "/")
}

// under reports whether p is prefix or a path below it.
func under(p, prefix string) bool {
	rest, ok := strings.CutPrefix(p, prefix)
	return ok && (rest == "" || rest[0] == '/')
}

// effectiveMethod is the method finAPI acts on: finAPI treats a POST with
// X-HTTP-Method-Override: PATCH or DELETE as that method.
func effectiveMethod(r *http.Request) string {
	if r.Method == http.MethodPost {
		switch o := strings.ToUpper(r.Header.Get("X-HTTP-Method-Override")); o {
		case http.MethodPatch, http.MethodDelete:
			return o
		}
	}
	return r.Method
}

func trimSlash(p string) string {
	if len(p) > 1 {
		return strings.TrimSuffix(p, "/")
	}
	return p
}
