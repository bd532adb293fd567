// Package buildversion names the build a Lockbox command runs, in the same
// words for lockbox and lockboxctl: their version commands printed
// "development build <commit>" and "dev" for the same checkout.
package buildversion

import (
	"runtime/debug"
	"strings"
)

// Development starts the version of a build from a checkout.
const Development = "development build"

// Of is the version of a build: set, the version given at build time with
// -ldflags -X; else the module's version (go install ...@v1.2.3); else,
// for a build from a checkout, Development and the commit it was built
// from, marked when the checkout had changes. bi and ok are what
// debug.ReadBuildInfo returned. "dev", printed before, read like the name
// of "lockbox dev" and said nothing about which code was running.
func Of(set string, bi *debug.BuildInfo, ok bool) string {
	if set != "" {
		return set
	}
	if !ok || bi == nil {
		return Development
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return Development
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified == "true" {
		return Development + " " + rev + " (with uncommitted changes)"
	}
	return Development + " " + rev
}

// IsDevelopment reports whether v, a version Of returned, is a build's
// from a checkout.
func IsDevelopment(v string) bool { return strings.HasPrefix(v, Development) }
