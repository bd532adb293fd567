package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCert writes a self-signed certificate and its key, PEM, and returns
// their paths.
func testCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "redis.internal"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})))
	return certFile, keyFile
}

// Each topology's variables are checked, and each problem names its
// variable; several problems are reported at once.
func TestRedisTopologyValidation(t *testing.T) {
	jwks := writeFile(t, "jwks.json", `{"keys":[]}`)
	pass := writeFile(t, "pass", "s3cret\n")
	empty := writeFile(t, "empty", "")
	notPEM := writeFile(t, "ca.pem", "not a certificate")
	cert, key := testCert(t)
	missing := filepath.Join(t.TempDir(), "missing")
	base := func(kv ...string) map[string]string {
		env := map[string]string{"LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_SERVE": "api,jobs"}
		for i := 0; i+1 < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return env
	}
	const sentinels, cluster = "10.0.0.1:26379, 10.0.0.2:26379,10.0.0.3:26379", "10.0.1.1:6379,10.0.1.2:6379"
	tests := []struct {
		name string
		env  map[string]string
		want []string // substrings of the error; none means valid
	}{
		{"url", base("LOCKBOX_REDIS_URL", "redis://r:6379/0"), nil},
		{"sentinel", base("LOCKBOX_REDIS_SENTINEL_ADDRS", sentinels, "LOCKBOX_REDIS_SENTINEL_MASTER", "lockbox",
			"LOCKBOX_REDIS_PASSWORD_FILE", pass, "LOCKBOX_REDIS_SENTINEL_PASSWORD_FILE", pass, "LOCKBOX_REDIS_USERNAME", "lockbox"), nil},
		{"cluster", base("LOCKBOX_REDIS_CLUSTER_ADDRS", cluster, "LOCKBOX_REDIS_PASSWORD_FILE", pass), nil},
		{"cluster over TLS", base("LOCKBOX_REDIS_CLUSTER_ADDRS", cluster, "LOCKBOX_REDIS_TLS_CA_FILE", cert,
			"LOCKBOX_REDIS_TLS_CERT_FILE", cert, "LOCKBOX_REDIS_TLS_KEY_FILE", key), nil},
		{"url over TLS", base("LOCKBOX_REDIS_URL", "rediss://r:6380/0", "LOCKBOX_REDIS_TLS_CA_FILE", cert), nil},
		{"none", base(), []string{`LOCKBOX_REDIS_URL: required by "lockbox serve" (or LOCKBOX_REDIS_SENTINEL_ADDRS, or LOCKBOX_REDIS_CLUSTER_ADDRS)`}},
		{"two topologies", base("LOCKBOX_REDIS_URL", "redis://r:6379/0", "LOCKBOX_REDIS_CLUSTER_ADDRS", cluster),
			[]string{"LOCKBOX_REDIS_URL, LOCKBOX_REDIS_CLUSTER_ADDRS: set only one"}},
		{"three topologies", base("LOCKBOX_REDIS_URL", "redis://r:6379/0", "LOCKBOX_REDIS_CLUSTER_ADDRS", cluster,
			"LOCKBOX_REDIS_SENTINEL_ADDRS", sentinels, "LOCKBOX_REDIS_SENTINEL_MASTER", "m"),
			[]string{"LOCKBOX_REDIS_URL, LOCKBOX_REDIS_SENTINEL_ADDRS, LOCKBOX_REDIS_CLUSTER_ADDRS: set only one"}},
		{"sentinel without master", base("LOCKBOX_REDIS_SENTINEL_ADDRS", sentinels),
			[]string{"LOCKBOX_REDIS_SENTINEL_MASTER: required with LOCKBOX_REDIS_SENTINEL_ADDRS"}},
		{"master without sentinels", base("LOCKBOX_REDIS_URL", "redis://r:6379/0", "LOCKBOX_REDIS_SENTINEL_MASTER", "m"),
			[]string{"LOCKBOX_REDIS_SENTINEL_MASTER: needs LOCKBOX_REDIS_SENTINEL_ADDRS"}},
		{"sentinel password without sentinels", base("LOCKBOX_REDIS_CLUSTER_ADDRS", cluster, "LOCKBOX_REDIS_SENTINEL_PASSWORD_FILE", pass),
			[]string{"LOCKBOX_REDIS_SENTINEL_PASSWORD_FILE: needs LOCKBOX_REDIS_SENTINEL_ADDRS"}},
		{"bad sentinel address", base("LOCKBOX_REDIS_SENTINEL_ADDRS", "10.0.0.1:26379,10.0.0.2", "LOCKBOX_REDIS_SENTINEL_MASTER", "m"),
			[]string{`LOCKBOX_REDIS_SENTINEL_ADDRS: "10.0.0.2" is not host:port`}},
		{"empty cluster list", base("LOCKBOX_REDIS_CLUSTER_ADDRS", " , "), []string{"LOCKBOX_REDIS_CLUSTER_ADDRS: no host:port given"}},
		{"cluster address without host", base("LOCKBOX_REDIS_CLUSTER_ADDRS", ":6379"), []string{`LOCKBOX_REDIS_CLUSTER_ADDRS: ":6379" has no host`}},
		{"cluster port", base("LOCKBOX_REDIS_CLUSTER_ADDRS", "r:70000"), []string{"LOCKBOX_REDIS_CLUSTER_ADDRS: ", "port"}},
		{"two users", base("LOCKBOX_REDIS_URL", "redis://u:p@r:6379/0", "LOCKBOX_REDIS_USERNAME", "v"),
			[]string{"LOCKBOX_REDIS_USERNAME: LOCKBOX_REDIS_URL names a user already"}},
		{"two passwords", base("LOCKBOX_REDIS_URL", "redis://:p@r:6379/0", "LOCKBOX_REDIS_PASSWORD_FILE", pass),
			[]string{"LOCKBOX_REDIS_PASSWORD_FILE: LOCKBOX_REDIS_URL carries a password already"}},
		{"TLS files with redis://", base("LOCKBOX_REDIS_URL", "redis://r:6379/0", "LOCKBOX_REDIS_TLS_CA_FILE", cert),
			[]string{"LOCKBOX_REDIS_TLS_CA_FILE: LOCKBOX_REDIS_URL does not use TLS: make it rediss://"}},
		{"TLS with redis://", base("LOCKBOX_REDIS_URL", "redis://r:6379/0", "LOCKBOX_REDIS_TLS", "true"),
			[]string{"LOCKBOX_REDIS_TLS: LOCKBOX_REDIS_URL does not use TLS"}},
		{"cert without key", base("LOCKBOX_REDIS_CLUSTER_ADDRS", cluster, "LOCKBOX_REDIS_TLS_CERT_FILE", cert),
			[]string{"LOCKBOX_REDIS_TLS_KEY_FILE: required with LOCKBOX_REDIS_TLS_CERT_FILE"}},
		{"key without cert", base("LOCKBOX_REDIS_CLUSTER_ADDRS", cluster, "LOCKBOX_REDIS_TLS_KEY_FILE", key),
			[]string{"LOCKBOX_REDIS_TLS_CERT_FILE: required with LOCKBOX_REDIS_TLS_KEY_FILE"}},
		{"key that is no key", base("LOCKBOX_REDIS_CLUSTER_ADDRS", cluster, "LOCKBOX_REDIS_TLS_CERT_FILE", cert, "LOCKBOX_REDIS_TLS_KEY_FILE", cert),
			[]string{"LOCKBOX_REDIS_TLS_CERT_FILE: with LOCKBOX_REDIS_TLS_KEY_FILE: "}},
		{"CA that is no certificate", base("LOCKBOX_REDIS_CLUSTER_ADDRS", cluster, "LOCKBOX_REDIS_TLS_CA_FILE", notPEM),
			[]string{"LOCKBOX_REDIS_TLS_CA_FILE: ", "holds no PEM certificate"}},
		{"missing password file", base("LOCKBOX_REDIS_CLUSTER_ADDRS", cluster, "LOCKBOX_REDIS_PASSWORD_FILE", missing),
			[]string{"LOCKBOX_REDIS_PASSWORD_FILE: ", "no such file"}},
		{"empty sentinel password", base("LOCKBOX_REDIS_SENTINEL_ADDRS", sentinels, "LOCKBOX_REDIS_SENTINEL_MASTER", "m",
			"LOCKBOX_REDIS_SENTINEL_PASSWORD_FILE", empty), []string{"LOCKBOX_REDIS_SENTINEL_PASSWORD_FILE: ", "is empty"}},
		{"password file but no Redis", base("LOCKBOX_REDIS_PASSWORD_FILE", pass),
			[]string{"LOCKBOX_REDIS_PASSWORD_FILE: set, but no Redis is", `LOCKBOX_REDIS_URL: required by "lockbox serve"`}},
		{"everything wrong at once", base("LOCKBOX_REDIS_SENTINEL_ADDRS", "nohost", "LOCKBOX_REDIS_CLUSTER_ADDRS", ":1",
			"LOCKBOX_REDIS_TLS_CERT_FILE", cert, "LOCKBOX_REDIS_SENTINEL_PASSWORD_FILE", missing),
			[]string{"LOCKBOX_REDIS_SENTINEL_ADDRS, LOCKBOX_REDIS_CLUSTER_ADDRS: set only one", "LOCKBOX_REDIS_SENTINEL_ADDRS: ",
				"LOCKBOX_REDIS_SENTINEL_MASTER: required", "LOCKBOX_REDIS_CLUSTER_ADDRS: ", "LOCKBOX_REDIS_TLS_KEY_FILE: required",
				"LOCKBOX_REDIS_SENTINEL_PASSWORD_FILE: "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadFor(tc.env, ModeServe)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error shows a password:\n%v", err)
			}
			for line := range strings.Lines(err.Error()) {
				if !strings.HasPrefix(line, "LOCKBOX_") {
					t.Errorf("a line names no variable: %q", line)
				}
			}
		})
	}
}

// RedisOptions gives each topology its options, with the secrets from
// their files and TLS from the TLS files.
func TestRedisOptions(t *testing.T) {
	pass := writeFile(t, "pass", "s3cret\n")
	spass := writeFile(t, "spass", "sentinel-secret")
	cert, key := testCert(t)
	load := func(env map[string]string) RedisOptions {
		t.Helper()
		c, err := Load(env)
		if err != nil {
			t.Fatal(err)
		}
		o, err := c.RedisOptions()
		if err != nil {
			t.Fatal(err)
		}
		return o
	}

	o := load(map[string]string{"LOCKBOX_REDIS_URL": "rediss://r.internal:6380/3", "LOCKBOX_REDIS_USERNAME": "lockbox",
		"LOCKBOX_REDIS_PASSWORD_FILE": pass, "LOCKBOX_REDIS_TLS_CA_FILE": cert})
	if s := o.Single; s == nil || o.Failover != nil || o.Cluster != nil || s.Addr != "r.internal:6380" || s.DB != 3 ||
		s.Username != "lockbox" || s.Password != "s3cret" || s.TLSConfig == nil || s.TLSConfig.RootCAs == nil ||
		s.TLSConfig.ServerName != "r.internal" {
		t.Errorf("url: %+v", o)
	}

	o = load(map[string]string{"LOCKBOX_REDIS_SENTINEL_ADDRS": "s1:26379, s2:26379", "LOCKBOX_REDIS_SENTINEL_MASTER": "lockbox",
		"LOCKBOX_REDIS_PASSWORD_FILE": pass, "LOCKBOX_REDIS_SENTINEL_PASSWORD_FILE": spass})
	if f := o.Failover; f == nil || o.Single != nil || f.MasterName != "lockbox" || strings.Join(f.SentinelAddrs, ",") != "s1:26379,s2:26379" ||
		f.Password != "s3cret" || f.SentinelPassword != "sentinel-secret" || f.TLSConfig != nil {
		t.Errorf("sentinel: %+v", o.Failover)
	}

	o = load(map[string]string{"LOCKBOX_REDIS_CLUSTER_ADDRS": "n1:6379,n2:6379,n3:6379", "LOCKBOX_REDIS_TLS_CERT_FILE": cert,
		"LOCKBOX_REDIS_TLS_KEY_FILE": key})
	if c := o.Cluster; c == nil || o.Single != nil || len(c.Addrs) != 3 || c.TLSConfig == nil || len(c.TLSConfig.Certificates) != 1 ||
		c.TLSConfig.RootCAs != nil {
		t.Errorf("cluster: %+v", o.Cluster)
	}

	o = load(map[string]string{"LOCKBOX_REDIS_CLUSTER_ADDRS": "n1:6379", "LOCKBOX_REDIS_TLS": "true"})
	if c := o.Cluster; c == nil || c.TLSConfig == nil || c.TLSConfig.RootCAs != nil {
		t.Errorf("cluster with system roots: %+v", o.Cluster)
	}
}

// LOCKBOX_REDIS_URL's skip_verify option turns off the verification of
// Redis's certificate, so that anyone on the path can read and change
// every grant and audit record; it is refused, naming the way to trust a
// private CA instead. skip_verify=false, which changes nothing, is not.
func TestRedisURLSkipVerifyIsRefused(t *testing.T) {
	for _, u := range []string{
		"rediss://redis.internal:6380?skip_verify=true",
		"rediss://redis.internal:6380/0?skip_verify=1",
		"rediss://:s3cret@redis.internal:6380/0?dial_timeout=1s&skip_verify=true",
	} {
		_, err := Load(map[string]string{"LOCKBOX_REDIS_URL": u})
		if err == nil || !strings.Contains(err.Error(), "LOCKBOX_REDIS_URL: ") || !strings.Contains(err.Error(), "LOCKBOX_REDIS_TLS_CA_FILE") {
			t.Errorf("%s: %v, want LOCKBOX_REDIS_URL refused, naming LOCKBOX_REDIS_TLS_CA_FILE", u, err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
	if _, err := Load(map[string]string{"LOCKBOX_REDIS_URL": "rediss://redis.internal:6380?skip_verify=false"}); err != nil {
		t.Errorf("skip_verify=false: %v", err)
	}
}

// LOCKBOX_REDIS_URL's options that Lockbox replaces when it connects (the
// socket timeouts, which LOCKBOX_REDIS_TIMEOUT sets, and max_retries,
// which is always "never": a command retried after a broken connection
// may have run twice) would be ignored without a word; they are refused,
// each named. The options Lockbox leaves alone are taken.
func TestRedisURLOptionsLockboxReplacesAreRefused(t *testing.T) {
	for opt, want := range map[string]string{
		"dial_timeout=10s":  "LOCKBOX_REDIS_TIMEOUT",
		"read_timeout=10s":  "LOCKBOX_REDIS_TIMEOUT",
		"write_timeout=10s": "LOCKBOX_REDIS_TIMEOUT",
		"max_retries=3":     "once",
	} {
		for _, u := range []string{"redis://:s3cret@redis.internal:6379/0?" + opt, "unix:///run/redis.sock?db=1&" + opt} {
			_, err := Load(map[string]string{"LOCKBOX_REDIS_URL": u})
			name, _, _ := strings.Cut(opt, "=")
			if err == nil || !strings.Contains(err.Error(), "LOCKBOX_REDIS_URL: ") || !strings.Contains(err.Error(), name) ||
				!strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v, want LOCKBOX_REDIS_URL refused, naming %s and %q", u, err, name, want)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error leaks the password: %v", err)
			}
		}
	}
	if _, err := Load(map[string]string{"LOCKBOX_REDIS_URL": "redis://redis.internal:6379/2?pool_size=50&client_name=lockbox"}); err != nil {
		t.Errorf("options Lockbox leaves alone: %v", err)
	}
}

// A host:port setting given a URL or user info (the sentinels or cluster
// nodes written as redis://:password@host:port, as LOCKBOX_REDIS_URL takes
// them) is refused without being quoted, naming the variable: the
// password would otherwise go to the logs with the error, or, where the
// address still split into a host and a port, be taken as part of a host
// name and logged with the configuration.
func TestAddressErrorsHideCredentials(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"LOCKBOX_REDIS_SENTINEL_ADDRS", "user:s3cret@10.0.0.1:26379"},
		{"LOCKBOX_REDIS_SENTINEL_ADDRS", "10.0.0.2:26379,redis://:s3cret@10.0.0.1:26379"},
		{"LOCKBOX_REDIS_CLUSTER_ADDRS", "s3cret@10.0.0.1:6379"},
		{"LOCKBOX_REDIS_CLUSTER_ADDRS", "redis://u:s3cret@10.0.0.1:6379/0"},
		{"LOCKBOX_SMTP_ADDR", "lockbox:s3cret@mail.example:587"},
		{"LOCKBOX_SMTP_ADDR", "s3cret@mail.example:587"},
	} {
		env := map[string]string{tc.name: tc.value}
		switch tc.name {
		case "LOCKBOX_REDIS_SENTINEL_ADDRS":
			env["LOCKBOX_REDIS_SENTINEL_MASTER"] = "mymaster"
		case "LOCKBOX_SMTP_ADDR":
			env["LOCKBOX_SMTP_FROM"] = "lockbox@provider.example"
		}
		_, err := Load(env)
		if err == nil || !strings.Contains(err.Error(), tc.name+": ") {
			t.Errorf("%s=%s: %v, want it refused", tc.name, tc.value, err)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error leaks the password: %v", tc.name, err)
		}
	}
}

// A Redis that refuses Lockbox's credentials is answered with the
// variables that hold them: the URL, or the variables of their own.
func TestRedisCredentialVars(t *testing.T) {
	jwks := writeFile(t, "jwks.json", `{"keys":[]}`)
	pass := writeFile(t, "pass", "s3cret\n")
	const sentinels, cluster = "10.0.0.1:26379", "10.0.1.1:6379,10.0.1.2:6379"
	tests := []struct {
		name               string
		env                map[string]string
		wantPass, wantUser string
	}{
		{"none", map[string]string{"LOCKBOX_REDIS_URL": "redis://redis:6379/0"}, "", ""},
		{"the password in the URL", map[string]string{"LOCKBOX_REDIS_URL": "redis://:pw@redis:6379/0"}, "LOCKBOX_REDIS_URL", ""},
		{"user and password in the URL", map[string]string{"LOCKBOX_REDIS_URL": "redis://lockbox:pw@redis:6379/0"}, "LOCKBOX_REDIS_URL", "LOCKBOX_REDIS_URL"},
		{"the password in its file", map[string]string{"LOCKBOX_REDIS_URL": "redis://redis:6379/0", "LOCKBOX_REDIS_PASSWORD_FILE": pass}, "LOCKBOX_REDIS_PASSWORD_FILE", ""},
		{"the user in its variable, the password in the URL", map[string]string{"LOCKBOX_REDIS_URL": "redis://:pw@redis:6379/0", "LOCKBOX_REDIS_USERNAME": "lockbox"}, "LOCKBOX_REDIS_URL", "LOCKBOX_REDIS_USERNAME"},
		{"sentinels", map[string]string{"LOCKBOX_REDIS_SENTINEL_ADDRS": sentinels, "LOCKBOX_REDIS_SENTINEL_MASTER": "mymaster", "LOCKBOX_REDIS_USERNAME": "lockbox", "LOCKBOX_REDIS_PASSWORD_FILE": pass}, "LOCKBOX_REDIS_PASSWORD_FILE", "LOCKBOX_REDIS_USERNAME"},
		{"a cluster without a password", map[string]string{"LOCKBOX_REDIS_CLUSTER_ADDRS": cluster}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["LOCKBOX_JWT_JWKS_FILE"] = jwks
			tt.env["LOCKBOX_SERVE"] = "api,jobs"
			c, err := Load(tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if p, u := c.RedisCredentialVars(); p != tt.wantPass || u != tt.wantUser {
				t.Errorf("RedisCredentialVars() = %q, %q; want %q, %q", p, u, tt.wantPass, tt.wantUser)
			}
		})
	}
}
