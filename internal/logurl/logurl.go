// Package logurl shows a URL the way Lockbox's logs may: without its user
// name and password, and with its query's values redacted. An identity
// provider's URLs (a JWKS URL, say) are the operator's or a tenant's to
// write, and some carry a credential in their query (an API key, a signed
// parameter) or their user info; the logs are read by more people than the
// configuration is. The query's names stay, so that two URLs that differ
// in them can still be told apart.
//
// The package imports no other Lockbox package, nor net/http: identity
// uses it.
package logurl

import (
	"net/url"
	"strconv"
	"strings"
)

// Redacted is the value each query parameter is shown with.
const Redacted = "REDACTED"

// Show is u as a log may show it: its user info and fragment dropped, each
// query value replaced by Redacted. A URL that does not parse is not shown.
func Show(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return "(a URL that does not parse, not shown)"
	}
	pu.User, pu.Fragment, pu.RawFragment = nil, "", ""
	if pu.RawQuery != "" {
		parts := strings.Split(pu.RawQuery, "&")
		for i, p := range parts {
			if name, _, ok := strings.Cut(p, "="); ok {
				parts[i] = name + "=" + Redacted
			}
		}
		pu.RawQuery = strings.Join(parts, "&")
	}
	pu.ForceQuery = false
	return pu.String()
}

// Replace is s with every occurrence of u, as written or as Go quotes it
// (%q), replaced by Show(u): for an error text some library wrote that
// names the URL.
func Replace(s, u string) string {
	if u == "" {
		return s
	}
	shown := Show(u)
	s = strings.ReplaceAll(s, u, shown)
	if q := strconv.Quote(u); q[1:len(q)-1] != u {
		s = strings.ReplaceAll(s, q[1:len(q)-1], shown)
	}
	return s
}
