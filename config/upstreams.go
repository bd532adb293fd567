package config

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Service names a proxied service: a key of LOCKBOX_UPSTREAMS.
type Service string

var serviceName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// serviceParser parses the keys of one LOCKBOX_UPSTREAMS value for
// caarlos0/env's map parsing (service=URL pairs, comma-separated). It
// refuses a service listed twice, which a map would otherwise keep
// quietly as its last URL; so each parse needs its own.
func serviceParser() func(string) (any, error) {
	seen := map[Service]bool{}
	return func(v string) (any, error) {
		s := Service(strings.TrimSpace(v))
		if !serviceName.MatchString(string(s)) {
			return nil, fmt.Errorf("%q is not service=URL with a lower-case service name", v)
		}
		if seen[s] {
			return nil, fmt.Errorf("service %s is listed twice", s)
		}
		seen[s] = true
		return s, nil
	}
}

// UpstreamURLs parses LOCKBOX_UPSTREAMS into service → base URL. Each URL
// must be absolute http or https with a host and without credentials, query
// or fragment: the proxy builds every outbound URL from it.
func (c Config) UpstreamURLs() (map[string]*url.URL, error) {
	out := make(map[string]*url.URL, len(c.Upstreams))
	// In name order, so the same configuration always names the same
	// problem first.
	for _, svc := range slices.Sorted(maps.Keys(c.Upstreams)) {
		raw := strings.TrimSpace(c.Upstreams[svc])
		if !serviceName.MatchString(string(svc)) {
			return nil, varErr("Upstreams", "%q is not a lower-case service name", svc)
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
			// Not quoted: the credentials or the query it must not have
			// may hold a secret, and this message goes to logs.
			return nil, varErr("Upstreams", "%s: %s is not an http(s) base URL without credentials, query or fragment", svc, redactWebhookURL(raw))
		}
		if badPort(u) {
			return nil, varErr("Upstreams", "%s: %s: port %s is not a TCP port from 1 to 65535", svc, redactWebhookURL(raw), u.Port())
		}
		out[string(svc)] = u
	}
	return out, nil
}
