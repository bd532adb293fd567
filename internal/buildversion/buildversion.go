// Package buildversion names the build a Lockbox command runs, in the same
// words for lockbox and lockboxctl: their version commands printed
// "development build <commit>" and "dev" for the same checkout.
package buildversion

import (
	"regexp"
	"runtime/debug"
	"strings"
)

// Development starts the version of a build from a checkout.
const Development = "development build"

// Of is the version of a build: set, the version given at build time with
// -ldflags -X; else the module's version (go install ...@v1.2.3, or a
// tagged checkout's); else, for a build from a checkout (its version
// "(devel)" or a pseudo-version), Development and the commit it was built
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
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	v := bi.Main.Version
	if v != "" && v != "(devel)" {
		// Since Go 1.24, go build stamps a checkout's build with a
		// pseudo-version (v0.0.0-20261207101646-f89401b40e69, +dirty when
		// the checkout had changes) where it used to say "(devel)": that
		// is a development build too, not a release. A tagged commit's
		// version (v1.3.2) is printed as it is.
		pseudoRev, ok := pseudoVersionRevision(v)
		if !ok {
			return v
		}
		if rev == "" {
			rev = pseudoRev
		}
		if strings.HasSuffix(v, "+dirty") {
			modified = "true"
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

// pseudoVersion is a Go pseudo-version (go.dev/ref/mod#pseudo-versions),
// as golang.org/x/mod/module.IsPseudoVersion matches it: vX.0.0-, vX.Y.Z-pre.0.
// or vX.Y.Z-0. before a 14-digit UTC time and a revision, then maybe build
// metadata (+dirty, +incompatible). Lockbox does not depend on x/mod.
var pseudoVersion = regexp.MustCompile(`^v[0-9]+\.(0\.0-|[0-9]+\.[0-9]+-([^+]*\.)?0\.)[0-9]{14}-([A-Za-z0-9]+)(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

// pseudoVersionRevision returns the revision a pseudo-version names, and
// whether v is one.
func pseudoVersionRevision(v string) (string, bool) {
	m := pseudoVersion.FindStringSubmatch(v)
	if m == nil {
		return "", false
	}
	return m[3], true
}

// IsDevelopment reports whether v, a version Of returned, is a build's
// from a checkout.
func IsDevelopment(v string) bool { return strings.HasPrefix(v, Development) }
