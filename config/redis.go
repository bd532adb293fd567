package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RedisTopology is how Lockbox reaches Redis.
type RedisTopology string

// The topologies: one of LOCKBOX_REDIS_URL, LOCKBOX_REDIS_SENTINEL_ADDRS
// (with LOCKBOX_REDIS_SENTINEL_MASTER) and LOCKBOX_REDIS_CLUSTER_ADDRS.
const (
	RedisNone     RedisTopology = ""
	RedisSingle   RedisTopology = "single"
	RedisSentinel RedisTopology = "sentinel"
	RedisCluster  RedisTopology = "cluster"
)

// RedisTopology says which Redis is configured (the first set, when
// Validate would refuse several).
func (c Config) RedisTopology() RedisTopology {
	switch {
	case c.RedisURL != "":
		return RedisSingle
	case c.RedisSentinelAddrs != "":
		return RedisSentinel
	case c.RedisClusterAddrs != "":
		return RedisCluster
	}
	return RedisNone
}

// RedisConfigured reports whether any Redis is configured; "lockbox dev"
// runs an embedded store when none is.
func (c Config) RedisConfigured() bool { return c.RedisTopology() != RedisNone }

// RedisVar is the variable that names the configured Redis, for messages
// about it ("LOCKBOX_REDIS_CLUSTER_ADDRS: the cluster does not answer").
func (c Config) RedisVar() string {
	switch c.RedisTopology() {
	case RedisSentinel:
		return varName("RedisSentinelAddrs")
	case RedisCluster:
		return varName("RedisClusterAddrs")
	}
	return varName("RedisURL")
}

// RedisCredentialVars name the variables that hold the user and the
// password of Lockbox's data connections, as RedisOptions reads them, for
// a Redis that refuses them (WRONGPASS, NOAUTH): LOCKBOX_REDIS_USERNAME
// and LOCKBOX_REDIS_PASSWORD_FILE, or else LOCKBOX_REDIS_URL; "" for one
// that none sets (Redis's default user, no password).
func (c Config) RedisCredentialVars() (pass, user string) {
	var inURL *url.Userinfo
	if c.RedisTopology() == RedisSingle {
		if u, err := url.Parse(c.RedisURL); err == nil {
			inURL = u.User
		}
	}
	if c.RedisPassword.Value() != "" {
		pass = varName("RedisPassword")
	} else if p, ok := inURL.Password(); ok && p != "" {
		pass = varName("RedisURL")
	}
	switch {
	case c.RedisUsername != "":
		user = varName("RedisUsername")
	case inURL != nil && inURL.Username() != "":
		user = varName("RedisURL")
	}
	return pass, user
}

// RedisOptions are the go-redis options of the configured Redis: exactly one
// field is set, by topology. Timeouts are left to the caller.
type RedisOptions struct {
	Single   *redis.Options
	Failover *redis.FailoverOptions
	Cluster  *redis.ClusterOptions
}

// RedisOptions reads the TLS files and returns the options of the
// configured Redis. Every error names its variable; the contents of the
// files never appear in one.
func (c Config) RedisOptions() (RedisOptions, error) {
	user, pass := c.RedisUsername, c.RedisPassword.Value()
	tlsConfig, err := c.redisTLS()
	if err != nil {
		return RedisOptions{}, err
	}
	switch c.RedisTopology() {
	case RedisSingle:
		o, err := redis.ParseURL(c.RedisURL)
		if err != nil {
			return RedisOptions{}, varErr("RedisURL", "not a redis://, rediss:// or unix:// URL: %w", redisURLError(c.RedisURL, err))
		}
		if user != "" {
			o.Username = user
		}
		if pass != "" {
			o.Password = pass
		}
		if o.TLSConfig != nil && tlsConfig != nil {
			// rediss:// set the server name from the URL; keep it.
			o.TLSConfig.RootCAs, o.TLSConfig.Certificates = tlsConfig.RootCAs, tlsConfig.Certificates
		}
		return RedisOptions{Single: o}, nil
	case RedisSentinel:
		o := &redis.FailoverOptions{
			MasterName: c.RedisSentinelMaster, SentinelAddrs: splitAddrs(c.RedisSentinelAddrs),
			Username: user, Password: pass, TLSConfig: tlsConfig,
		}
		o.SentinelPassword = c.RedisSentinelPassword.Value()
		return RedisOptions{Failover: o}, nil
	case RedisCluster:
		return RedisOptions{Cluster: &redis.ClusterOptions{
			Addrs: splitAddrs(c.RedisClusterAddrs), Username: user, Password: pass, TLSConfig: tlsConfig,
		}}, nil
	}
	return RedisOptions{}, varErr("RedisURL", "no Redis is configured (or LOCKBOX_REDIS_SENTINEL_ADDRS, or LOCKBOX_REDIS_CLUSTER_ADDRS)")
}

// redisTLS returns the TLS configuration the TLS variables ask for, or nil
// when they ask for none. LOCKBOX_REDIS_URL asks for TLS with rediss://;
// the file variables then only add roots and a client certificate.
func (c Config) redisTLS() (*tls.Config, error) {
	if !c.RedisTLS && c.RedisTLSCAFile == "" && c.RedisTLSCertFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.RedisTLSCAFile != "" {
		pem, err := os.ReadFile(c.RedisTLSCAFile)
		if err != nil {
			return nil, &VarError{Var: varName("RedisTLSCAFile"), Err: err}
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, varErr("RedisTLSCAFile", "%s holds no PEM certificate", c.RedisTLSCAFile)
		}
	}
	if c.RedisTLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.RedisTLSCertFile, c.RedisTLSKeyFile)
		if err != nil {
			return nil, varErr("RedisTLSCertFile", "with LOCKBOX_REDIS_TLS_KEY_FILE: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// checkRedis checks the Redis variables without the file system: at most
// one topology, well-formed addresses, and settings that belong together.
func (c Config) checkRedis() []error {
	var errs []error
	var set []string
	for _, f := range []struct{ field, v string }{
		{"RedisURL", c.RedisURL}, {"RedisSentinelAddrs", c.RedisSentinelAddrs}, {"RedisClusterAddrs", c.RedisClusterAddrs},
	} {
		if f.v != "" {
			set = append(set, varName(f.field))
		}
	}
	if len(set) > 1 {
		errs = append(errs, fmt.Errorf("%s: set only one: each names the whole Redis deployment", strings.Join(set, ", ")))
	}
	tlsFiles := c.RedisTLSCAFile != "" || c.RedisTLSCertFile != ""
	if c.RedisURL != "" {
		u, err := redis.ParseURL(c.RedisURL)
		if err != nil {
			errs = append(errs, varErr("RedisURL", "not a redis://, rediss:// or unix:// URL: %w", redisURLError(c.RedisURL, err)))
		} else {
			if u.TLSConfig != nil && u.TLSConfig.InsecureSkipVerify {
				// go-redis's skip_verify option: anyone on the path could
				// then read and change every grant and audit record.
				errs = append(errs, varErr("RedisURL", "skip_verify turns off the verification of Redis's certificate: remove it, and give the CA that issued the certificate in LOCKBOX_REDIS_TLS_CA_FILE"))
			}
			errs = append(errs, replacedRedisURLOptions(c.RedisURL)...)
			if u.Username != "" && c.RedisUsername != "" {
				errs = append(errs, varErr("RedisUsername", "LOCKBOX_REDIS_URL names a user already; set it in one place"))
			}
			if u.Password != "" && c.RedisPassword != "" {
				errs = append(errs, varErr("RedisPassword", "LOCKBOX_REDIS_URL carries a password already; set it in one place"))
			}
			if u.TLSConfig == nil && (c.RedisTLS || tlsFiles) {
				field := "RedisTLS"
				if c.RedisTLSCAFile != "" {
					field = "RedisTLSCAFile"
				} else if c.RedisTLSCertFile != "" {
					field = "RedisTLSCertFile"
				}
				errs = append(errs, varErr(field, "LOCKBOX_REDIS_URL does not use TLS: make it rediss://"))
			}
		}
	}
	if c.RedisSentinelAddrs != "" {
		if err := checkAddrList(c.RedisSentinelAddrs); err != nil {
			errs = append(errs, &VarError{Var: varName("RedisSentinelAddrs"), Err: err})
		}
		if strings.TrimSpace(c.RedisSentinelMaster) == "" {
			errs = append(errs, varErr("RedisSentinelMaster", "required with LOCKBOX_REDIS_SENTINEL_ADDRS"))
		}
	} else {
		if c.RedisSentinelMaster != "" {
			errs = append(errs, varErr("RedisSentinelMaster", "needs LOCKBOX_REDIS_SENTINEL_ADDRS"))
		}
		if c.RedisSentinelPassword != "" {
			errs = append(errs, varErr("RedisSentinelPassword", "needs LOCKBOX_REDIS_SENTINEL_ADDRS"))
		}
	}
	if c.RedisClusterAddrs != "" {
		if err := checkAddrList(c.RedisClusterAddrs); err != nil {
			errs = append(errs, &VarError{Var: varName("RedisClusterAddrs"), Err: err})
		}
	}
	if c.RedisTLSCertFile != "" && c.RedisTLSKeyFile == "" {
		errs = append(errs, varErr("RedisTLSKeyFile", "required with LOCKBOX_REDIS_TLS_CERT_FILE"))
	}
	if c.RedisTLSKeyFile != "" && c.RedisTLSCertFile == "" {
		errs = append(errs, varErr("RedisTLSCertFile", "required with LOCKBOX_REDIS_TLS_KEY_FILE"))
	}
	if !c.RedisConfigured() {
		// In "lockbox dev" the embedded store takes none of these;
		// "lockbox serve" reports the missing Redis itself.
		for _, f := range []struct {
			field string
			set   bool
		}{
			{"RedisUsername", c.RedisUsername != ""}, {"RedisPassword", c.RedisPassword != ""}, {"RedisTLS", c.RedisTLS},
			{"RedisTLSCAFile", c.RedisTLSCAFile != ""}, {"RedisTLSCertFile", c.RedisTLSCertFile != ""},
		} {
			if f.set {
				errs = append(errs, varErr(f.field, "set, but no Redis is: set LOCKBOX_REDIS_URL, LOCKBOX_REDIS_SENTINEL_ADDRS or LOCKBOX_REDIS_CLUSTER_ADDRS"))
			}
		}
	}
	return errs
}

// validateRedisFiles checks that the TLS files can be read and hold what
// they should. (The password files were read by Load.)
func (c Config) validateRedisFiles() []error {
	var errs []error
	for _, f := range []struct{ field, path string }{
		{"RedisTLSCAFile", c.RedisTLSCAFile}, {"RedisTLSCertFile", c.RedisTLSCertFile}, {"RedisTLSKeyFile", c.RedisTLSKeyFile},
	} {
		if f.path == "" {
			continue
		}
		if err := readableFile(f.path); err != nil {
			errs = append(errs, &VarError{Var: varName(f.field), Err: err})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	if (c.RedisTLSCertFile == "") == (c.RedisTLSKeyFile == "") {
		if _, err := c.redisTLS(); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// replacedRedisURLOptions refuses the options of a LOCKBOX_REDIS_URL
// (one that parses) that the server replaces when it connects, which would
// otherwise be ignored without a word.
func replacedRedisURLOptions(raw string) []error {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	var errs []error
	q := u.Query()
	for _, opt := range []string{"dial_timeout", "read_timeout", "write_timeout"} {
		if q.Has(opt) {
			errs = append(errs, varErr("RedisURL", "its %s option is not used: LOCKBOX_REDIS_TIMEOUT sets the deadline of each Redis call", opt))
		}
	}
	if q.Has("max_retries") {
		// A command retried after its connection broke may have run
		// already: an audit record or an outbox entry written twice.
		errs = append(errs, varErr("RedisURL", "its max_retries option is not used: Lockbox sends each Redis command once"))
	}
	return errs
}

// checkAddrList checks a comma-separated list of host:port.
func checkAddrList(list string) error {
	addrs := splitAddrs(list)
	if len(addrs) == 0 {
		return errors.New("no host:port given")
	}
	for _, a := range addrs {
		if err := checkAddr(a); err != nil {
			return err
		}
		if host, _, _ := strings.Cut(a, ":"); host == "" {
			return fmt.Errorf("%q has no host", a)
		}
	}
	return nil
}

// splitAddrs splits a comma-separated list, dropping blanks.
func splitAddrs(list string) []string {
	var out []string
	for a := range strings.SplitSeq(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// redisURLError is why LOCKBOX_REDIS_URL does not parse, in words that
// quote none of its user info. The parsers' own errors can: a password
// that is not percent-encoded ends the authority early at a /, ? or #, and
// its first part is then quoted as the port ("invalid port \":s3cret\""),
// the rest as the database number; a % in it is quoted as a bad escape.
// So the URL is parsed again without everything between "://" and its
// last "@": an error there is about the rest of the URL, and none means
// the user info is what does not parse.
func redisURLError(raw string, err error) error {
	scheme, rest, ok := strings.Cut(raw, "://")
	at := strings.LastIndex(rest, "@")
	if !ok || at < 0 {
		return redactErr(err)
	}
	if _, err := redis.ParseURL(scheme + "://" + rest[at+1:]); err != nil {
		return redactErr(err)
	}
	return errors.New("its user name or password (before the last @) does not parse: percent-encode any /, ?, #, % or @ in them")
}

// redactErr drops the URL from a url.Error: it quotes the whole URL,
// password included.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
