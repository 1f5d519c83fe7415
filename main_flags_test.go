package main

import (
	"bytes"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/finproxy/finproxy/config"
)

var validEnv = []string{
	"FINPROXY_CLIENT_ID=id", "FINPROXY_CLIENT_SECRET=flags-test-client-secret",
	"FINPROXY_IDENTITY_SECRET=flags-test-identity-secret-0123456789abcdef",
	"FINPROXY_LISTEN_ADDR=127.0.0.1:1", "FINPROXY_ADMIN_ADDR=127.0.0.1:2",
}

// TestFlags: --version, --help and --check answer without listening
// (the listen addresses above are not even free), with the statuses the
// contract names.
func TestFlags(t *testing.T) {
	tests := []struct {
		name       string
		args, env  []string
		wantStatus int
		wantOut    []string // each must appear in stdout
		wantErr    []string // each must appear in stderr
		notIn      []string // must appear nowhere
	}{
		{name: "version", args: []string{"--version"}, wantStatus: 0, wantOut: []string{"finproxy ", runtime.Version()}, notIn: []string{"(devel)"}},
		{name: "help", args: []string{"--help"}, wantStatus: 0, wantOut: []string{"--check", "FINPROXY_CLIENT_SECRET (or FINPROXY_CLIENT_SECRET_FILE)", "FINPROXY_FINAPI_CONCURRENCY", "32"}},
		{name: "check valid", args: []string{"--check"}, env: validEnv, wantStatus: 0,
			wantOut: []string{"configuration valid", "mode=user", "store=memory"}, notIn: []string{"flags-test-client-secret", "flags-test-identity-secret"}},
		{name: "check invalid", args: []string{"--check"}, env: []string{"FINPROXY_MODE=nope"}, wantStatus: 2,
			wantErr: []string{"FINPROXY_CLIENT_ID:", "FINPROXY_MODE:", "FINPROXY_IDENTITY_SECRET:"}},
		{name: "check redis URL", args: []string{"--check"},
			env:        append([]string{"FINPROXY_STORE=redis", "FINPROXY_REDIS_URL=redis://:hunter2-secret@127.0.0.1:6379/0?foo=bar"}, validEnv...),
			wantStatus: 2, wantErr: []string{"FINPROXY_REDIS_URL:"}, notIn: []string{"hunter2-secret"}},
		{name: "check redis URL of another scheme", args: []string{"--check"},
			env:        append([]string{"FINPROXY_STORE=redis", "FINPROXY_REDIS_URL=http://127.0.0.1:6379"}, validEnv...),
			wantStatus: 2, wantErr: []string{"FINPROXY_REDIS_URL:"}},
		{name: "check unparsable listen address", args: []string{"--check"}, env: append(validEnv, "FINPROXY_LISTEN_ADDR=:99999"),
			wantStatus: 2, wantErr: []string{"FINPROXY_LISTEN_ADDR:", ":99999"}},
		{name: "check admin address without a port", args: []string{"--check"}, env: append(validEnv, "FINPROXY_ADMIN_ADDR=nonsense"),
			wantStatus: 2, wantErr: []string{"FINPROXY_ADMIN_ADDR:", "nonsense"}},
		{name: "check placeholder secret", args: []string{"--check"},
			env:        append(validEnv, "FINPROXY_IDENTITY_SECRET=REPLACE_ME_with_output_of_openssl_rand_base64_48"),
			wantStatus: 2, wantErr: []string{"FINPROXY_IDENTITY_SECRET:", "placeholder"}, notIn: []string{"with_output_of"}},
		{name: "check demo secrets outside demo mode", args: []string{"--check"},
			env:        append(validEnv, "FINPROXY_CLIENT_SECRET=demo-secret", "FINPROXY_IDENTITY_SECRET=demo-identity-secret-not-for-production-use"),
			wantStatus: 2, wantErr: []string{"FINPROXY_CLIENT_SECRET:", "FINPROXY_IDENTITY_SECRET:", "FINPROXY_DEMO=true"}, notIn: []string{"demo-secret", "not-for-production"}},
		{name: "check demo secrets in demo mode", args: []string{"--check"},
			env: append(validEnv, "FINPROXY_CLIENT_SECRET=demo-secret", "FINPROXY_IDENTITY_SECRET=demo-identity-secret-not-for-production-use",
				"FINPROXY_DEMO=true", "FINPROXY_ACCESS_URL=http://127.0.0.1:18081", "FINPROXY_PROCESSCTL_URL=http://127.0.0.1:18082"),
			wantStatus: 0, wantOut: []string{"configuration valid", "demo=true"}, notIn: []string{"demo-secret", "not-for-production"}},
		{name: "check demo mode against finAPI", args: []string{"--check"}, env: append(validEnv, "FINPROXY_DEMO=true"),
			wantStatus: 2, wantErr: []string{"FINPROXY_DEMO:", "FINPROXY_ACCESS_URL", "sandbox.finapi.io"}},
		{name: "unknown flag", args: []string{"--bogus"}, wantStatus: 2, wantErr: []string{"bogus", "see finproxy --help"}},
		{name: "stray argument", args: []string{"serve"}, wantStatus: 2, wantErr: []string{"serve"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if got := run(tt.args, tt.env, &out, &errb); got != tt.wantStatus {
				t.Errorf("status %d, want %d\nstdout: %s\nstderr: %s", got, tt.wantStatus, out.String(), errb.String())
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb.String())
				}
			}
			if tt.wantStatus == 0 && errb.Len() > 0 {
				t.Errorf("stderr of a successful %v is not empty:\n%s", tt.args, errb.String())
			}
			if strings.Count(out.String()+errb.String(), "Usage: finproxy") > 1 {
				t.Errorf("the usage printed more than once")
			}
			for _, w := range tt.notIn {
				if strings.Contains(out.String()+errb.String(), w) {
					t.Errorf("output holds %q", w)
				}
			}
		})
	}
}

// TestHelpListsEveryVariable: --help names every variable Config reads,
// on a line of its own with its default and its help text, so the two
// cannot drift apart.
func TestHelpListsEveryVariable(t *testing.T) {
	var out bytes.Buffer
	if status := run([]string{"--help"}, nil, &out, &bytes.Buffer{}); status != 0 {
		t.Fatalf("--help: status %d", status)
	}
	lines := map[string]string{} // variable -> its line
	for l := range strings.SplitSeq(out.String(), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(f[0], config.Prefix) {
			lines[f[0]] = l
		}
	}
	ty := reflect.TypeFor[config.Config]()
	for i := range ty.NumField() {
		f := ty.Field(i)
		name := config.Prefix + f.Tag.Get("env")
		line, ok := lines[name]
		if !ok {
			t.Errorf("--help does not list %s", name)
			continue
		}
		if f.Tag.Get("help") == "" || !strings.Contains(line, f.Tag.Get("help")) {
			t.Errorf("%s: help text %q missing from %q", name, f.Tag.Get("help"), line)
		}
		if def := f.Tag.Get("envDefault"); def != "" && !strings.Contains(line, " "+def+" ") {
			t.Errorf("%s: default %q missing from %q", name, def, line)
		}
		if f.Tag.Get("file") == "true" && !strings.Contains(line, name+"_FILE") {
			t.Errorf("%s: _FILE variant missing from %q", name, line)
		}
	}
	if _, ok := lines[config.Prefix+"DEMO"]; !ok {
		t.Errorf("--help does not list FINPROXY_DEMO")
	}
}

// Allocations are sampled for heap profiles only when net/http/pprof can
// serve them; a value that does not parse keeps the default (the start
// fails on it).
func TestMemProfileRateFollowsPprof(t *testing.T) {
	def := runtime.MemProfileRate
	if def == 0 {
		t.Fatal("the test binary runs without memory profiling: nothing to compare with")
	}
	for v, want := range map[string]int{"": 0, "false": 0, "0": 0, "true": def, "1": def, "yes-please": def} {
		got := memProfileRate(func(k string) string {
			if k != "FINPROXY_PPROF" {
				t.Errorf("read %s, want only FINPROXY_PPROF", k)
			}
			return v
		})
		if got != want {
			t.Errorf("FINPROXY_PPROF=%q: rate %d, want %d", v, got, want)
		}
	}
}
