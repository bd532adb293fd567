package config

import (
	"slices"
	"strings"
)

// otherVars are the LOCKBOX_ variables that other parts of the project
// read, which a server's environment may hold without being wrong: people
// source the dev env file, or use lockboxctl, in the shell that starts
// "lockbox serve". (This package imports no other Lockbox package, so the
// names are repeated here; TestOtherVarsComplete finds every LOCKBOX_ name
// in the tree's Go code and checks it is here or in Vars.)
var otherVars = []string{
	// lockboxctl (cli/).
	"LOCKBOX_ADDR", "LOCKBOX_TOKEN", "LOCKBOX_CA_FILE", "LOCKBOX_CLIENT_CERT_FILE", "LOCKBOX_CLIENT_KEY_FILE",
	"LOCKBOX_CONFIG_DIR", "LOCKBOX_INSECURE_HTTP",
	// The tokens "lockbox dev" writes to its env file (cmd/lockbox/dev.go).
	"LOCKBOX_OPERATOR_TOKEN", "LOCKBOX_OPERATOR2_TOKEN", "LOCKBOX_MANAGER_TOKEN", "LOCKBOX_ADMIN_TOKEN",
	"LOCKBOX_APPROVER_TOKEN", "LOCKBOX_AUDITOR_TOKEN", "LOCKBOX_LOCKBOX_ADMIN_TOKEN",
	// And the proxy's URL, which README's curl examples call (cmd/lockbox/dev.go).
	"LOCKBOX_PROXY_URL",
	// Benchmarks.
	"LOCKBOX_BENCH_AUDIT_RECORDS",
}

// otherPrefixes start variables that tests read (LOCKBOX_TEST_REDIS_URL,
// LOCKBOX_TEST_SCREENSHOTS); the Makefile keeps them when it clears the
// rest.
var otherPrefixes = []string{"LOCKBOX_TEST_"}

// UnknownVar is a LOCKBOX_ variable in the environment that nothing in
// Lockbox reads: most likely a misspelling, which would otherwise be
// ignored without a word (LOCKBOX_AUDIT_REPLICA=1 leaves the default 0).
type UnknownVar struct {
	Name string
	// Suggestion is the nearest variable Lockbox reads, or "" when none
	// is near enough to be a likely misspelling.
	Suggestion string
}

func (u UnknownVar) String() string {
	s := u.Name + " is not a Lockbox variable and is ignored"
	if u.Suggestion != "" {
		s += "; did you mean " + u.Suggestion + "?"
	}
	return s
}

// UnknownVars lists the LOCKBOX_ variables of environ that neither Config
// nor another part of the project reads, sorted by name. They are for a
// warning, not an error: a shell that started the server may hold others'
// variables.
func UnknownVars(environ map[string]string) []UnknownVar {
	known := map[string]bool{}
	for _, v := range Vars() {
		known[v.Name] = true
	}
	for _, v := range otherVars {
		known[v] = true
	}
	var out []UnknownVar
	for name := range environ {
		if !strings.HasPrefix(name, Prefix) {
			// Environment variables are case-sensitive: lockbox_redis_url,
			// or LOCKBX_REDIS_URL, is ignored as surely as a misspelt
			// name after the prefix. Such a name is warned of when it is
			// within two edits of a server variable, so that other
			// programs' variables (REDIS_URL) never are.
			if v := nearVar(name); v != "" {
				out = append(out, UnknownVar{Name: name, Suggestion: v})
			}
			continue
		}
		if known[name] || slices.ContainsFunc(otherPrefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		out = append(out, UnknownVar{Name: name, Suggestion: nearestVar(name)})
	}
	slices.SortFunc(out, func(a, b UnknownVar) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// nearestVar is the server variable nearest to name by edit distance, if it
// is near enough to be a likely misspelling: at most a third of the
// part after the prefix, and at least 1 edit allowed. Only Config's
// variables are suggested, since only those change what the server does.
// Case is not counted: LOCKBOX_redis_url means LOCKBOX_REDIS_URL.
func nearestVar(name string) string {
	rest := strings.ToUpper(strings.TrimPrefix(name, Prefix))
	limit := max(1, len(rest)/3)
	best, bestDist := "", limit+1
	for _, v := range Vars() {
		if d := editDistance(rest, strings.TrimPrefix(v.Name, Prefix)); d < bestDist {
			best, bestDist = v.Name, d
		}
	}
	return best
}

// nearVar is the server variable that name, without the LOCKBOX_ prefix,
// most likely means: the nearest within two edits of the whole name, case
// not counted; "" when none is that near.
func nearVar(name string) string {
	upper := strings.ToUpper(name)
	best, bestDist := "", 3
	for _, v := range Vars() {
		if d := editDistance(upper, v.Name); d < bestDist {
			best, bestDist = v.Name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes
// (variable names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
