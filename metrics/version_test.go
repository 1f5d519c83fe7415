package metrics

import (
	"runtime/debug"
	"testing"
)

// TestVersionOf: the stamped version wins; without one the build info
// answers, and a build without a module version never reports "(devel)".
func TestVersionOf(t *testing.T) {
	info := func(version string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/finproxy/finproxy", Version: version}}
		for i := 0; i < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	tests := []struct {
		name    string
		stamped string
		bi      *debug.BuildInfo
		want    string
	}{
		{"stamped", "v1.2.3", info("v0.9.0", "vcs.revision", "abc"), "v1.2.3"},
		{"module version", "", info("v0.9.0", "vcs.revision", "abc"), "v0.9.0"},
		{"pseudo-version of a VCS build", "", info("v0.0.0-20261202003000-0123456789ab+dirty"), "v0.0.0-20261202003000-0123456789ab+dirty"},
		{"devel with a revision", "", info("(devel)", "vcs.revision", "0123456789abcdef", "vcs.modified", "false"), "0123456789abcdef"},
		{"devel with a modified tree", "", info("(devel)", "vcs.revision", "0123456789abcdef", "vcs.modified", "true"), "0123456789abcdef-dirty"},
		{"devel without VCS", "", info("(devel)"), "dev"},
		{"no build info", "", nil, "dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionOf(tt.stamped, tt.bi); got != tt.want {
				t.Errorf("versionOf = %q, want %q", got, tt.want)
			}
		})
	}
}
