package main

import (
	"bytes"
	"reflect"
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
		{name: "version", args: []string{"--version"}, wantStatus: 0, wantOut: []string{"finproxy "}},
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
		{name: "unknown flag", args: []string{"--bogus"}, wantStatus: 2, wantErr: []string{"bogus"}},
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
			for _, w := range tt.notIn {
				if strings.Contains(out.String()+errb.String(), w) {
					t.Errorf("output holds %q", w)
				}
			}
		})
	}
}

// TestHelpListsEveryVariable: --help names every variable Config reads.
func TestHelpListsEveryVariable(t *testing.T) {
	var out bytes.Buffer
	run([]string{"--help"}, nil, &out, &bytes.Buffer{})
	ty := reflect.TypeFor[config.Config]()
	for i := range ty.NumField() {
		name := config.Prefix + ty.Field(i).Tag.Get("env")
		if !strings.Contains(out.String(), name+" ") {
			t.Errorf("--help does not list %s", name)
		}
		if ty.Field(i).Tag.Get("help") == "" {
			t.Errorf("%s has no help text", name)
		}
	}
}
