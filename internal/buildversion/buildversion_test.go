package buildversion

import (
	"runtime/debug"
	"strings"
	"testing"
)

// TestOf: the version commands name the build: the version set at build
// time, the module's version, or the commit a development build came
// from. "lockbox version" printed "lockbox dev", which read like the dev
// command and named no code.
func TestOf(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var out []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			out = append(out, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	rev := "7710a1d0c3c1f2e4b5a6978877665544332211ff"
	tests := []struct {
		name string
		set  string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{"set at build time", "v1.4.0", &debug.BuildInfo{Main: debug.Module{Version: "v9.9.9"}}, true, "v1.4.0"},
		{"module version", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.3.2"}}, true, "v1.3.2"},
		{"checkout", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("vcs.revision", rev, "vcs.modified", "false")}, true, "development build 7710a1d0c3c1"},
		{"checkout with changes", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("vcs.revision", rev, "vcs.modified", "true")}, true, "development build 7710a1d0c3c1 (with uncommitted changes)"},
		{"no vcs", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true, "development build"},
		// Since Go 1.24, go build stamps a checkout's build with a
		// pseudo-version, and "version" printed it instead of
		// "development build" and the commit.
		{"checkout, pseudo-version", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207101646-7710a1d0c3c1"}, Settings: vcs("vcs.revision", rev, "vcs.modified", "false")}, true, "development build 7710a1d0c3c1"},
		{"checkout with changes, pseudo-version", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207101646-7710a1d0c3c1+dirty"}, Settings: vcs("vcs.revision", rev, "vcs.modified", "true")}, true, "development build 7710a1d0c3c1 (with uncommitted changes)"},
		{"pseudo-version +dirty, no vcs settings", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207101646-7710a1d0c3c1+dirty"}}, true, "development build 7710a1d0c3c1 (with uncommitted changes)"},
		{"pseudo-version after a tag", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.3.3-0.20261207101646-7710a1d0c3c1"}}, true, "development build 7710a1d0c3c1"},
		{"pseudo-version after a pre-release", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0-rc.1.0.20261207101646-7710a1d0c3c1"}}, true, "development build 7710a1d0c3c1"},
		{"tagged checkout", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.3.2"}, Settings: vcs("vcs.revision", rev, "vcs.modified", "false")}, true, "v1.3.2"},
		{"pre-release", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0-rc.1"}}, true, "v1.4.0-rc.1"},
		{"pre-release named like a date", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0-20261207"}}, true, "v1.4.0-20261207"},
		{"no build info", "", nil, false, "development build"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Of(tt.set, tt.bi, tt.ok)
			if got != tt.want {
				t.Errorf("Of = %q, want %q", got, tt.want)
			}
			if IsDevelopment(got) != strings.HasPrefix(tt.want, "development build") {
				t.Errorf("IsDevelopment(%q) = %v", got, IsDevelopment(got))
			}
		})
	}
}
