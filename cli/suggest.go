package cli

import "strings"

// suggest returns the command (as usage spells it, e.g. "request list")
// that the unknown word under group most likely meant, or "" when none is
// close: "requests" → "request", "lst" → "request list". It checks a
// plural or singular form first, then the edit distance.
func suggest(group, word string) string {
	word = strings.ToLower(word)
	best, bestDist := "", 0
	for _, next := range nextWords(group) {
		full := strings.TrimSpace(group + " " + next)
		if word+"s" == next || next+"s" == word {
			return displayName(full)
		}
		d := editDistance(word, next)
		// Close enough to be a typo, and not so short that everything is.
		if d > 2 || 2*d >= len(next) {
			continue
		}
		if best == "" || d < bestDist {
			best, bestDist = full, d
		}
	}
	if best == "" {
		return ""
	}
	return displayName(best)
}

// nextWords lists the words that may follow group ("" for the top level),
// in the order of the command table.
func nextWords(group string) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range commands {
		rest, ok := c.name, group == ""
		if !ok {
			rest, ok = strings.CutPrefix(c.name, group+" ")
		}
		if !ok {
			continue
		}
		w, _, _ := strings.Cut(rest, " ")
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

// displayName is how usage spells the command or group name.
func displayName(name string) string {
	if c, ok := commandByName[name]; ok {
		return c.title()
	}
	return name
}

// editDistance is the edit distance between a and b in bytes (command
// names are ASCII), counting an insertion, a deletion, a substitution or a
// swap of two neighbours ("gte" for "get") as one edit: the optimal string
// alignment distance.
func editDistance(a, b string) int {
	// d[i][j] is the distance between a[:i] and b[:j].
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
