package config

import (
	"bytes"
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/lockbox-oss/lockbox/grantsig"
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

// AssertionSecretFiles parses LOCKBOX_PROXY_ASSERTION_SECRET_FILES into
// service → file. A service is named once, and must be one of
// LOCKBOX_UPSTREAMS: a secret for no service is a typo that would leave
// the service it meant signing with the key the upstream no longer
// expects.
func (c Config) AssertionSecretFiles() (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(c.ProxyAssertionSecretFiles) == "" {
		return out, nil
	}
	for pair := range strings.SplitSeq(c.ProxyAssertionSecretFiles, ",") {
		svc, file, ok := strings.Cut(strings.TrimSpace(pair), "=")
		svc, file = strings.TrimSpace(svc), strings.TrimSpace(file)
		switch _, known := c.Upstreams[Service(svc)]; {
		case !ok || !serviceName.MatchString(svc) || file == "":
			return nil, varErr("ProxyAssertionSecretFiles", "%q is not service=file with a lower-case service name", pair)
		case out[svc] != "":
			return nil, varErr("ProxyAssertionSecretFiles", "service %s is listed twice", svc)
		case !known:
			return nil, varErr("ProxyAssertionSecretFiles", "service %s is not in LOCKBOX_UPSTREAMS", svc)
		}
		out[svc] = file
	}
	return out, nil
}

// LoadAssertionSecrets reads the files of LOCKBOX_PROXY_ASSERTION_SECRET_FILES,
// at start-up and in Validate, so that the secrets checked are the ones
// used. Each must be a usable secret (grantsig.CheckSecret) of its own:
// another service's would let either upstream make the other's
// assertions, and any other secret this process is given would hand the
// upstream what it guards (a token secret: operators' tokens; the Redis
// password: the store itself). Token secrets are judged as their files
// hold them.
func (c Config) LoadAssertionSecrets() (map[string][]byte, error) {
	return c.loadAssertionSecrets(c.otherSecrets(true), nil)
}

// ReloadAssertionSecrets reads the files again (SIGHUP), as
// LoadAssertionSecrets does, but judges them against the token secrets in
// use (tokenSecretOf names the issuer that verifies with a secret) rather
// than the token files as they are now: a token file changed since start-up
// is the token reload's to judge, and may just have been refused.
func (c Config) ReloadAssertionSecrets(tokenSecretOf func(secret []byte) (issuer string, ok bool)) (map[string][]byte, error) {
	return c.loadAssertionSecrets(c.otherSecrets(false), tokenSecretOf)
}

func (c Config) loadAssertionSecrets(taken map[string]string, tokenSecretOf func([]byte) (string, bool)) (map[string][]byte, error) {
	files, err := c.AssertionSecretFiles()
	if err != nil || len(files) == 0 {
		return nil, err
	}
	// White space around a secret counts for nothing (CheckSecret): one
	// that differs from another only by it is that other.
	out := make(map[string][]byte, len(files))
	for _, svc := range slices.Sorted(maps.Keys(files)) {
		secret, err := grantsig.LoadSecret(files[svc])
		if err != nil {
			return nil, varErr("ProxyAssertionSecretFiles", "%s: %w", svc, err)
		}
		key := string(bytes.TrimSpace(secret))
		whose, ok := taken[key]
		if !ok && tokenSecretOf != nil {
			if is, inUse := tokenSecretOf(secret); inUse {
				whose, ok = "the token secret of issuer "+is, true
			}
		}
		if ok {
			return nil, varErr("ProxyAssertionSecretFiles", "%s: %s holds the same secret as %s: the upstream could use it as that; give the service a secret of its own", svc, files[svc], whose)
		}
		taken[key] = "the assertion secret of " + svc
		out[svc] = secret
	}
	return out, nil
}

// otherSecrets are the other secrets this process is given, each by the
// setting that holds it: the secret files of its variables (Secret
// fields), the password in LOCKBOX_REDIS_URL, the admin center's client
// secrets and, with tokenFiles, the token secret files as they are now. A
// file that can't be read is left out: Validate reports it on its own.
func (c Config) otherSecrets(tokenFiles bool) map[string]string {
	out := map[string]string{}
	add := func(secret, whose string) {
		if s := strings.TrimSpace(secret); s != "" {
			out[s] = whose
		}
	}
	v := reflect.ValueOf(c)
	for _, f := range reflect.VisibleFields(v.Type()) {
		if f.Type == reflect.TypeFor[Secret]() {
			add(v.FieldByIndex(f.Index).String(), varName(f.Name))
		}
	}
	// A password may be in the URL instead of LOCKBOX_REDIS_PASSWORD_FILE.
	if u, err := url.Parse(c.RedisURL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			add(p, "the password in LOCKBOX_REDIS_URL")
		}
	}
	tokenFile := func(path, whose string) {
		// Bounded, as every secret file is read.
		if b, err := readSecretFile(path); err == nil && tokenFiles {
			add(string(b), whose)
		}
	}
	if c.JWTHMACSecretFile != "" {
		tokenFile(c.JWTHMACSecretFile, "LOCKBOX_JWT_HMAC_SECRET_FILE")
	}
	if c.IssuersFile != "" {
		if issuers, err := LoadIssuers(c.IssuersFile); err == nil {
			for _, is := range issuers {
				if is.HMACSecretFile != "" {
					tokenFile(is.HMACSecretFile, "the hmac_secret_file of issuer "+is.Issuer)
				}
				if is.Console != nil && is.Console.ClientSecretFile != "" {
					if s, err := ReadClientSecret(is.Console.ClientSecretFile); err == nil {
						add(s, "the client_secret_file of issuer "+is.Issuer)
					}
				}
			}
		}
	}
	return out
}

// assertionSecretErrors checks LOCKBOX_PROXY_ASSERTION_SECRET_FILES, for
// Validate, where the proxy runs: a replica without it (its upstreams
// unset) may share the deployment's variables.
func (c Config) assertionSecretErrors(mode Mode) []error {
	if mode == ModeServe && !c.Runs(ComponentProxy) {
		return nil
	}
	if mode == ModeDev && len(c.Upstreams) == 0 && strings.TrimSpace(c.ProxyAssertionSecretFiles) != "" {
		return []error{varErr("ProxyAssertionSecretFiles", "the demo services of %q check assertions with the signing key only; set LOCKBOX_UPSTREAMS to services of your own to key theirs with secrets", "lockbox dev")}
	}
	if _, err := c.LoadAssertionSecrets(); err != nil {
		return []error{err}
	}
	return nil
}
