package cli

import (
	"encoding/json"
	"runtime"
	"runtime/debug"
	"testing"
)

// TestVersionNamesTheBuild: "lockboxctl version" names the build in the
// words "lockbox version" uses. A development build printed "lockboxctl
// dev", which named no code and read like "lockbox dev", where lockbox
// printed "development build" and the commit.
func TestVersionNamesTheBuild(t *testing.T) {
	rev := "7710a1d0c3c1f2e4b5a6978877665544332211ff"
	checkout := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "true"},
	}}
	tests := []struct {
		name string
		set  string // Version, as -ldflags sets it
		bi   *debug.BuildInfo
		want string
	}{
		{"a checkout with changes", "", checkout, "development build 7710a1d0c3c1 (with uncommitted changes)"},
		{"a checkout, as Go 1.24 and later stamp it", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207101646-7710a1d0c3c1+dirty"}, Settings: checkout.Settings}, "development build 7710a1d0c3c1 (with uncommitted changes)"},
		{"no build information", "", nil, "development build"},
		{"the module's version", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.3.2"}}, "v1.3.2"},
		{"set at build time", "v1.4.0", checkout, "v1.4.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func(v string, read func() (*debug.BuildInfo, bool)) { Version, readBuildInfo = v, read }(Version, readBuildInfo)
			Version = tt.set
			readBuildInfo = func() (*debug.BuildInfo, bool) { return tt.bi, tt.bi != nil }
			r := run(t, []string{"version"}, nil, nil)
			if want := "lockboxctl " + tt.want + " (" + runtime.Version() + ")\n"; r.code != 0 || r.stdout != want {
				t.Errorf("exit %d, stdout %q, stderr %q; want %q", r.code, r.stdout, r.stderr, want)
			}
			r = run(t, []string{"version", "-o", "json"}, nil, nil)
			var got map[string]string
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got["version"] != tt.want {
				t.Errorf("-o json: %q (%v), want version %q", r.stdout, err, tt.want)
			}
		})
	}
}
