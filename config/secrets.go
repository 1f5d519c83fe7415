package config

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"
)

// placeholderMarker marks a value the deployment manifests leave for the
// operator to set (REPLACE_ME_with_output_of_openssl_rand_base64_48). A
// secret containing it, in any case, is refused even in demo mode.
const placeholderMarker = "REPLACE_ME"

// oldPlaceholders are placeholder secrets of earlier manifests, refused like
// the marker.
var oldPlaceholders = []string{"replace-with-at-least-32-random-bytes"}

// demoSecrets are the secrets make demo and the README's walk-throughs use
// with the local emulator (the last one is the JWT walk-through's HS256
// key). They are published, so they are accepted only with
// FINPROXY_DEMO=true.
var demoSecrets = []string{"demo-secret", "demo-identity-secret-not-for-production-use", "demo-jwt-hmac-secret-not-for-production-use"}

// checkSecrets refuses placeholder and demo secrets: one problem per
// variable, naming why, never the value. Every variable with a _FILE
// variant (file:"true") is checked, so a secret added later is too.
func (c *Config) checkSecrets() []error {
	var p []error
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Tag.Get("file") != "true" || f.Type.Kind() != reflect.String {
			continue
		}
		name := Prefix + f.Tag.Get("env")
		switch val := v.Field(i).String(); {
		case strings.Contains(strings.ToUpper(val), placeholderMarker):
			p = append(p, &Error{name, "holds the placeholder " + placeholderMarker + ": set the real value (refused even with " + Prefix + "DEMO)"})
		case containsFold(oldPlaceholders, val):
			p = append(p, &Error{name, "is the placeholder of an old manifest: set a secret of your own, e.g. openssl rand -base64 48"})
		case !c.Demo && containsFold(demoSecrets, val):
			p = append(p, &Error{name, "is the demo's published value: accepted only with " + Prefix + "DEMO=true against the local emulator; set a secret of your own"})
		}
	}
	if c.Demo {
		// The Process Controller counts only in process mode: in user mode
		// its default (finAPI's sandbox) is never called.
		urls := []struct{ name, raw string }{{"ACCESS_URL", c.AccessURL}}
		if c.Mode == ModeProcess {
			urls = append(urls, struct{ name, raw string }{"PROCESSCTL_URL", c.ProcessCtlURL})
		}
		routes, _ := ParseRoutes(c.Routes) // its problems are reported by validate
		for _, r := range routes {
			urls = append(urls, struct{ name, raw string }{"ROUTES", r.URL.String()})
		}
		for _, u := range urls {
			if host := hostOf(u.raw); isFinAPIHost(host) {
				p = append(p, &Error{Prefix + "DEMO", fmt.Sprintf("demo mode is for the local emulator, but %s%s points at finAPI (%s)", Prefix, u.name, host)})
			}
		}
	}
	return p
}

func containsFold(list []string, s string) bool {
	for _, l := range list {
		if strings.EqualFold(l, s) {
			return true
		}
	}
	return false
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
}

// isFinAPIHost reports whether host is finAPI's: finapi.io or below it.
func isFinAPIHost(host string) bool {
	return host == "finapi.io" || strings.HasSuffix(host, ".finapi.io")
}
