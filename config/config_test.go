package config

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	got, err := Load(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		APIAddr:              "127.0.0.1:8080",
		ProxyAddr:            "127.0.0.1:8081",
		MetricsAddr:          "127.0.0.1:8082",
		TLSListeners:         "proxy,api,metrics",
		RedisTimeout:         2 * time.Second,
		JWTIssuer:            "lockbox",
		JWTAudience:          "lockbox",
		JWTSubjectClaim:      "sub",
		JWTLeeway:            30 * time.Second,
		JWKSRefresh:          5 * time.Minute,
		JWKSMaxAge:           24 * time.Hour,
		DevDir:               ".lockbox-dev",
		LogLevel:             "info",
		LogFormat:            "text",
		SweepInterval:        5 * time.Second,
		JobsRescanInterval:   time.Hour,
		ShutdownTimeout:      10 * time.Second,
		GrantTimeout:         300 * time.Millisecond,
		CacheMaxAge:          time.Second,
		AuditTimeout:         2 * time.Second,
		PolicyReloadInterval: time.Second,
		AuditRetention:       0,
		AuditSealInterval:    time.Minute,
		RequestRetention:     0,
		SIEMSink:             "stdout",
		SIEMFormat:           "json",
		SIEMClaimAfter:       time.Minute,
		SMTPStartTLS:         "opportunistic",
		WebhookSignatures:    "v1",
		Serve:                "proxy,api,jobs",
		OIDCScopes:           "profile email",
		OIDCSubjectClaim:     "sub",
		OIDCRolesClaim:       "roles",
		OIDCTenantClaim:      "tid",
		ConsoleIdleTimeout:   30 * time.Minute,
		ConsoleSessionMax:    8 * time.Hour,
		ConsoleReverify:      15 * time.Minute,
		NotifyExpiryWarning:  15 * time.Minute,
		ProxyAssertionTTL:    30 * time.Second,
		ProxyAssertionIssuer: "lockbox",
		ProxyBodyBufferBytes: 64 << 20,
		AuditReadsPerCaller:  2,
		AuditReads:           16,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
	if err := got.Validate(ModeDev); err != nil {
		t.Errorf("defaults must be valid for dev: %v", err)
	}
}

// Load(nil) must not fall back to the process environment, or a developer's
// shell would change test results.
func TestLoadNilIsEmptyEnvironment(t *testing.T) {
	t.Setenv("LOCKBOX_API_ADDR", "127.0.0.1:9999")
	c, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.APIAddr != "127.0.0.1:8080" {
		t.Errorf("Load(nil) read the process environment: APIAddr = %q", c.APIAddr)
	}
}

func TestFromOS(t *testing.T) {
	t.Setenv("LOCKBOX_API_ADDR", "127.0.0.1:9999")
	c, err := FromOS()
	if err != nil {
		t.Fatal(err)
	}
	if c.APIAddr != "127.0.0.1:9999" {
		t.Errorf("APIAddr = %q", c.APIAddr)
	}
}

func TestManagerAddresses(t *testing.T) {
	c, err := Load(map[string]string{"LOCKBOX_NOTIFY_MANAGER_ADDRESSES": " mary@provider.example, leads@provider.example,,mary@provider.example",
		"LOCKBOX_NOTIFY_EXPIRY_WARNING": "0"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.ManagerAddresses()
	if err != nil || strings.Join(got, ",") != "mary@provider.example,leads@provider.example" {
		t.Errorf("ManagerAddresses() = %q, %v", got, err)
	}
	if c.NotifyExpiryWarning != 0 {
		t.Errorf("NotifyExpiryWarning = %s, want 0 (off)", c.NotifyExpiryWarning)
	}
}

// TestTrustedProxies: LOCKBOX_TRUSTED_PROXIES takes ranges and single
// addresses, comma-separated, and is empty (nothing trusted) by default.
func TestTrustedProxies(t *testing.T) {
	c, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.TrustedProxyRanges(); err != nil || len(got) != 0 {
		t.Errorf("default TrustedProxyRanges() = %v, %v; want none", got, err)
	}
	c, err = Load(map[string]string{"LOCKBOX_TRUSTED_PROXIES": " 10.0.0.0/8, 192.0.2.1,,2001:db8:ffff::/48 ,::ffff:172.16.0.0/108, 10.1.2.3/16"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.TrustedProxyRanges()
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("2001:db8:ffff::/48"),
		// Addresses are compared unmapped; host bits are dropped.
		netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("10.1.0.0/16"),
	}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("TrustedProxyRanges() = %v, %v; want %v", got, err, want)
	}
}

// TestTrustedProxiesWideButNotEverything: ranges that are wide, or that
// together nearly cover a family, are accepted; only a list that trusts
// every address of IPv4 or of IPv6 is refused.
func TestTrustedProxiesWideButNotEverything(t *testing.T) {
	for _, list := range []string{
		"10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7",
		// Half of each family: neither family is covered.
		"0.0.0.0/1, 8000::/1",
		// Every IPv4 address but 255.255.255.255.
		everyIPv4But255(),
	} {
		c, err := Load(map[string]string{"LOCKBOX_TRUSTED_PROXIES": list})
		if err != nil {
			t.Errorf("LOCKBOX_TRUSTED_PROXIES=%q refused: %v", list, err)
			continue
		}
		if got, err := c.TrustedProxyRanges(); err != nil || len(got) != len(strings.Split(list, ",")) {
			t.Errorf("TrustedProxyRanges() of %q = %v, %v", list, got, err)
		}
	}
}

// everyIPv4But255 is 0.0.0.0/1, 128.0.0.0/2, ... 255.255.255.254/32: every
// IPv4 address except 255.255.255.255.
func everyIPv4But255() string {
	var parts []string
	for bits := 1; bits <= 32; bits++ {
		// The first address of the half left uncovered so far.
		a := uint32(0xffffffff) << (33 - bits)
		parts = append(parts, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), bits).String())
	}
	return strings.Join(parts, ",")
}

// everyIPv6ButMapped is the ranges that hold every IPv6 address except
// those of ::ffff:0:0/96: for each bit of that prefix, the sibling range
// that differs from it at that bit.
func everyIPv6ButMapped() string {
	mapped := netip.MustParsePrefix("::ffff:0:0/96")
	b := mapped.Addr().As16()
	var parts []string
	for bits := 1; bits <= 96; bits++ {
		s := b
		s[(bits-1)/8] ^= 0x80 >> ((bits - 1) % 8)
		parts = append(parts, netip.PrefixFrom(netip.AddrFrom16(s), bits).Masked().String())
	}
	return strings.Join(parts, ",")
}

// TestJWTTokenTypes: LOCKBOX_JWT_TOKEN_TYPES is the single issuer's list
// of token types, its entries trimmed; unset, the issuer has none (the
// verifier's defaults).
func TestJWTTokenTypes(t *testing.T) {
	for v, want := range map[string][]string{"": nil, "at+jwt": {"at+jwt"}, " at+jwt , application/jwt": {"at+jwt", "application/jwt"}} {
		c, err := Load(map[string]string{"LOCKBOX_JWT_TOKEN_TYPES": v})
		if err != nil {
			t.Errorf("LOCKBOX_JWT_TOKEN_TYPES=%q refused: %v", v, err)
			continue
		}
		if got := c.ShorthandIssuer().TokenTypes; !slices.Equal(got, want) {
			t.Errorf("LOCKBOX_JWT_TOKEN_TYPES=%q: the issuer's token types are %q, want %q", v, got, want)
		}
	}
}

// TestJWTSubjectClaim: LOCKBOX_JWT_SUBJECT_CLAIM is the claim the single
// issuer's tokens carry the user id in, as claims.subject is an issuers
// file entry's; sub unless set.
func TestJWTSubjectClaim(t *testing.T) {
	for v, want := range map[string]string{"": "sub", "oid": "oid", "preferred_username": "preferred_username"} {
		c, err := Load(map[string]string{"LOCKBOX_JWT_SUBJECT_CLAIM": v})
		if err != nil {
			t.Errorf("LOCKBOX_JWT_SUBJECT_CLAIM=%q refused: %v", v, err)
			continue
		}
		if got := c.ShorthandIssuer().Claims.Subject; got != want {
			t.Errorf("LOCKBOX_JWT_SUBJECT_CLAIM=%q: the issuer's subject claim is %q, want %q", v, got, want)
		}
	}
}

// TestJWTLeewayZero: LOCKBOX_JWT_LEEWAY=0 is a strict choice, not a
// mistake: tokens are checked to the second.
func TestJWTLeewayZero(t *testing.T) {
	for _, v := range []string{"0", "0s"} {
		c, err := Load(map[string]string{"LOCKBOX_JWT_LEEWAY": v})
		if err != nil {
			t.Errorf("LOCKBOX_JWT_LEEWAY=%s refused: %v", v, err)
			continue
		}
		if c.JWTLeeway != 0 {
			t.Errorf("LOCKBOX_JWT_LEEWAY=%s: JWTLeeway = %s, want 0", v, c.JWTLeeway)
		}
	}
}

func TestLoadValues(t *testing.T) {
	c, err := Load(map[string]string{
		"LOCKBOX_API_ADDR":       ":9000",
		"LOCKBOX_REDIS_URL":      "rediss://user:pw@redis.internal:6380/2",
		"LOCKBOX_REDIS_TIMEOUT":  "750ms",
		"LOCKBOX_LOG_LEVEL":      "debug",
		"LOCKBOX_LOG_FORMAT":     "json",
		"LOCKBOX_SWEEP_INTERVAL": "1m",
		"REDIS_URL":              "redis://unprefixed:6379", // not ours
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.APIAddr != ":9000" || c.RedisURL != "rediss://user:pw@redis.internal:6380/2" ||
		c.RedisTimeout != 750*time.Millisecond || c.LogLevel != "debug" || c.LogFormat != "json" ||
		c.SweepInterval != time.Minute {
		t.Errorf("got %+v", c)
	}
}

// LOCKBOX_PROXY_BODY_BUFFER_BYTES may be as small as one body at the limit.
func TestProxyBodyBufferAtTheBodyLimit(t *testing.T) {
	c, err := Load(map[string]string{"LOCKBOX_PROXY_BODY_BUFFER_BYTES": "10485760"})
	if err != nil {
		t.Fatal(err)
	}
	if c.ProxyBodyBufferBytes != ProxyMaxBodyBytes {
		t.Errorf("ProxyBodyBufferBytes = %d", c.ProxyBodyBufferBytes)
	}
}

// Each bad value is refused by Load with an error that names the variable.
func TestLoadInvalidNamesVariable(t *testing.T) {
	tests := []struct {
		name, key, value string
		want             string // also in the message
	}{
		{"duration syntax", "LOCKBOX_REDIS_TIMEOUT", "soon", "soon"},
		{"duration syntax leeway", "LOCKBOX_JWT_LEEWAY", "30", "30"},
		{"duration syntax sweep", "LOCKBOX_SWEEP_INTERVAL", "5 s", ""},
		{"duration syntax shutdown", "LOCKBOX_SHUTDOWN_TIMEOUT", "x", ""},
		{"zero duration", "LOCKBOX_REDIS_TIMEOUT", "0s", "positive"},
		{"negative duration", "LOCKBOX_SWEEP_INTERVAL", "-1s", "positive"},
		{"zero shutdown", "LOCKBOX_SHUTDOWN_TIMEOUT", "0", "positive"},
		{"negative shutdown delay", "LOCKBOX_SHUTDOWN_DELAY", "-1s", "must not be negative"},
		{"duration syntax shutdown delay", "LOCKBOX_SHUTDOWN_DELAY", "5", "5"},
		{"negative leeway", "LOCKBOX_JWT_LEEWAY", "-1s", "must not be negative"},
		{"huge leeway", "LOCKBOX_JWT_LEEWAY", "1h", "5m0s"},
		{"cache kept over a second", "LOCKBOX_CACHE_MAX_AGE", "2s", "from 0 to 1s"},
		{"negative cache age", "LOCKBOX_CACHE_MAX_AGE", "-1s", "from 0 to 1s"},
		{"negative audit replicas", "LOCKBOX_AUDIT_REPLICAS", "-1", "must not be negative"},
		{"negative request retention", "LOCKBOX_REQUEST_RETENTION", "-24h", "must not be negative"},
		{"request retention under a day", "LOCKBOX_REQUEST_RETENTION", "23h", "at least 24h0m0s"},
		{"request retention syntax", "LOCKBOX_REQUEST_RETENTION", "1y", "1y"},
		{"no audit reads per caller", "LOCKBOX_AUDIT_READS_PER_CALLER", "0", "must be at least 1, got 0"},
		{"negative audit reads per caller", "LOCKBOX_AUDIT_READS_PER_CALLER", "-2", "at least 1"},
		{"no audit reads", "LOCKBOX_AUDIT_READS", "0", "must be at least 1, got 0"},
		{"audit reads under one caller's", "LOCKBOX_AUDIT_READS", "1", "at least LOCKBOX_AUDIT_READS_PER_CALLER (2)"},
		{"addr without port", "LOCKBOX_API_ADDR", "localhost", "host:port"},
		{"addr bad port", "LOCKBOX_PROXY_ADDR", "127.0.0.1:http", "port"},
		{"addr port too big", "LOCKBOX_METRICS_ADDR", "127.0.0.1:70000", "port"},
		{"metrics on proxy addr", "LOCKBOX_METRICS_ADDR", "127.0.0.1:8081", "LOCKBOX_PROXY_ADDR"},
		{"redis scheme", "LOCKBOX_REDIS_URL", "http://localhost:6379", "scheme"},
		{"redis no scheme", "LOCKBOX_REDIS_URL", "localhost:6379", ""},
		{"redis db", "LOCKBOX_REDIS_URL", "redis://localhost:6379/x", "database"},
		{"log level", "LOCKBOX_LOG_LEVEL", "verbose", "debug, info, warn, error"},
		{"log level case", "LOCKBOX_LOG_LEVEL", "INFO", ""},
		{"log format", "LOCKBOX_LOG_FORMAT", "xml", "text, json"},
		{"token types with a gap", "LOCKBOX_JWT_TOKEN_TYPES", "at+jwt,,JWT", `"" is not a token type`},
		{"token types separated by spaces", "LOCKBOX_JWT_TOKEN_TYPES", "at+jwt JWT", `"at+jwt JWT" is not a token type`},
		{"token type prefix alone", "LOCKBOX_JWT_TOKEN_TYPES", "application/", `"application/" is not a token type`},
		{"console url with a path", "LOCKBOX_CONSOLE_URL", "https://lockbox.example.com/admin", "scheme and host only"},
		{"console url ftp", "LOCKBOX_CONSOLE_URL", "ftp://lockbox.example.com", "http(s)"},
		{"console url without scheme", "LOCKBOX_CONSOLE_URL", "lockbox.example.com", "http(s)"},
		{"console url without host", "LOCKBOX_CONSOLE_URL", "https://", "http(s)"},
		{"console url with a query", "LOCKBOX_CONSOLE_URL", "https://lockbox.example.com?next=/", "scheme and host only"},
		{"console url with a fragment", "LOCKBOX_CONSOLE_URL", "https://lockbox.example.com#top", "scheme and host only"},
		{"console url with an empty query", "LOCKBOX_CONSOLE_URL", "https://lockbox.example.com?", "scheme and host only"},
		{"console url with credentials", "LOCKBOX_CONSOLE_URL", "https://admin:pw@lockbox.example.com", "scheme and host only"},
		{"zero idle timeout", "LOCKBOX_CONSOLE_IDLE_TIMEOUT", "0s", "positive"},
		{"negative idle timeout", "LOCKBOX_CONSOLE_IDLE_TIMEOUT", "-30m", "positive"},
		{"idle timeout syntax", "LOCKBOX_CONSOLE_IDLE_TIMEOUT", "30", ""},
		{"zero session max", "LOCKBOX_CONSOLE_SESSION_MAX", "0", "positive"},
		{"negative session max", "LOCKBOX_CONSOLE_SESSION_MAX", "-8h", "positive"},
		{"zero reverify", "LOCKBOX_CONSOLE_REVERIFY", "0s", "positive"},
		{"negative reverify", "LOCKBOX_CONSOLE_REVERIFY", "-15m", "positive"},
		{"manager address with a name", "LOCKBOX_NOTIFY_MANAGER_ADDRESSES", "mary@provider.example,Mary <mary@provider.example>", "plain e-mail address"},
		{"manager address not an address", "LOCKBOX_NOTIFY_MANAGER_ADDRESSES", "support-managers", "plain e-mail address"},
		{"manager address outside ASCII", "LOCKBOX_NOTIFY_MANAGER_ADDRESSES", "mary@provider.example,jörg@provider.example", "not an ASCII address"},
		{"negative expiry warning", "LOCKBOX_NOTIFY_EXPIRY_WARNING", "-1m", "under 4h"},
		{"expiry warning past every window", "LOCKBOX_NOTIFY_EXPIRY_WARNING", "4h", "under 4h"},
		{"body buffer under the body limit", "LOCKBOX_PROXY_BODY_BUFFER_BYTES", "10485759", "must be at least 10485760 bytes, the limit on one call's body; got 10485759"},
		{"no body buffer", "LOCKBOX_PROXY_BODY_BUFFER_BYTES", "0", "at least 10485760"},
		{"negative body buffer", "LOCKBOX_PROXY_BODY_BUFFER_BYTES", "-1", "at least 10485760"},
		{"body buffer with a unit", "LOCKBOX_PROXY_BODY_BUFFER_BYTES", "64MiB", "64MiB"},
		{"unknown webhook signature", "LOCKBOX_WEBHOOK_SIGNATURES", "v3", `"v3" is not one of v1, v2`},
		{"webhook signature in upper case", "LOCKBOX_WEBHOOK_SIGNATURES", "V2", `"V2" is not one of v1, v2`},
		{"webhook signature of the old scheme", "LOCKBOX_WEBHOOK_SIGNATURES", "sha256", "not one of v1, v2"},
		{"webhook signature twice", "LOCKBOX_WEBHOOK_SIGNATURES", "v2,v2", "v2 twice"},
		{"webhook signatures with a gap", "LOCKBOX_WEBHOOK_SIGNATURES", "v1,,v2", "empty"},
		{"webhook signatures separated by spaces", "LOCKBOX_WEBHOOK_SIGNATURES", "v1 v2", "not one of v1, v2"},
		{"webhook signatures, none", "LOCKBOX_WEBHOOK_SIGNATURES", ",", "empty"},
		{"trusted proxy not a range", "LOCKBOX_TRUSTED_PROXIES", "10.0.0.0/8,ingress.internal", `"ingress.internal" is not a CIDR or an IP address`},
		{"trusted proxy bad prefix length", "LOCKBOX_TRUSTED_PROXIES", "10.0.0.0/33", `"10.0.0.0/33"`},
		{"trusted proxy with a port", "LOCKBOX_TRUSTED_PROXIES", "10.0.0.1:443", "not a CIDR or an IP address"},
		{"every IPv4 address trusted", "LOCKBOX_TRUSTED_PROXIES", "0.0.0.0/0", "would let every client choose its IP"},
		{"every IPv6 address trusted", "LOCKBOX_TRUSTED_PROXIES", "10.0.0.0/8, ::/0", "would let every client choose its IP"},
		{"every mapped IPv4 address trusted", "LOCKBOX_TRUSTED_PROXIES", "::ffff:0.0.0.0/96", "would let every client choose its IP"},
		{"every IPv4 address trusted in two halves", "LOCKBOX_TRUSTED_PROXIES", "0.0.0.0/1,128.0.0.0/1", "would let every client choose its IP"},
		{"every IPv4 address trusted in uneven parts", "LOCKBOX_TRUSTED_PROXIES", "10.0.0.0/8, 128.0.0.0/1, 0.0.0.0/2, 64.0.0.0/3, 96.0.0.0/3", "would let every client choose its IP"},
		{"every IPv6 address trusted in two halves", "LOCKBOX_TRUSTED_PROXIES", "::/1, 8000::/1", "would let every client choose its IP"},
		{"every IPv4 address trusted in mapped halves", "LOCKBOX_TRUSTED_PROXIES", "::ffff:0.0.0.0/97,::ffff:128.0.0.0/97", "would let every client choose its IP"},
		{"every IPv4 address trusted, half of it mapped", "LOCKBOX_TRUSTED_PROXIES", "::ffff:0.0.0.0/97, 128.0.0.0/1", "would let every client choose its IP"},
		// Peers are compared unmapped, so no peer is in ::ffff:0:0/96:
		// the rest of IPv6 is all of it.
		{"every IPv6 address trusted but the mapped ones", "LOCKBOX_TRUSTED_PROXIES", everyIPv6ButMapped(), "would let every client choose its IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(map[string]string{tt.key: tt.value})
			if err == nil {
				t.Fatalf("%s=%q: no error", tt.key, tt.value)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tt.key+": ") {
				t.Errorf("error does not start with %s: %q", tt.key, msg)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not mention %q", msg, tt.want)
			}
			if strings.Contains(msg, `field "`) {
				t.Errorf("error names a Go field, not the variable: %q", msg)
			}
		})
	}
}

// TestDeadlinesAreBounded: each deadline of a wait on Redis has a longest
// value, so that a Redis that hangs is a 503 the client still waits for,
// never a deadline longer than the listener gives the answer. The bound
// itself is accepted; past it, Load refuses in one line that names the
// variable, the bound and the value, as ErrInvalid (exit 78), and every
// variable past its bound is named.
func TestDeadlinesAreBounded(t *testing.T) {
	tests := []struct {
		name, key, value string
		want             string // "" when accepted; else the refusal's line starts with it
	}{
		{"redis at its bound", "LOCKBOX_REDIS_TIMEOUT", "5s", ""},
		{"redis just past its bound", "LOCKBOX_REDIS_TIMEOUT", "5001ms", "LOCKBOX_REDIS_TIMEOUT: must be at most 5s, got 5.001s: "},
		{"redis for an hour", "LOCKBOX_REDIS_TIMEOUT", "1h", "LOCKBOX_REDIS_TIMEOUT: must be at most 5s, got 1h0m0s: "},
		{"grant at its bound", "LOCKBOX_GRANT_TIMEOUT", "5s", ""},
		{"grant just past its bound", "LOCKBOX_GRANT_TIMEOUT", "5001ms", "LOCKBOX_GRANT_TIMEOUT: must be at most 5s, got 5.001s: "},
		{"grant for an hour", "LOCKBOX_GRANT_TIMEOUT", "1h", "LOCKBOX_GRANT_TIMEOUT: must be at most 5s, got 1h0m0s: "},
		{"audit at its bound", "LOCKBOX_AUDIT_TIMEOUT", "10s", ""},
		{"audit just past its bound", "LOCKBOX_AUDIT_TIMEOUT", "10001ms", "LOCKBOX_AUDIT_TIMEOUT: must be at most 10s, got 10.001s: "},
		{"audit for an hour", "LOCKBOX_AUDIT_TIMEOUT", "1h", "LOCKBOX_AUDIT_TIMEOUT: must be at most 10s, got 1h0m0s: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(map[string]string{tt.key: tt.value})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("%s=%s: %v", tt.key, tt.value, err)
				}
				want, _ := time.ParseDuration(tt.value)
				if got := map[string]time.Duration{
					"LOCKBOX_REDIS_TIMEOUT": c.RedisTimeout, "LOCKBOX_GRANT_TIMEOUT": c.GrantTimeout, "LOCKBOX_AUDIT_TIMEOUT": c.AuditTimeout,
				}[tt.key]; got != want {
					t.Errorf("%s=%s loaded as %s", tt.key, tt.value, got)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s=%s: no error", tt.key, tt.value)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("%s=%s: error %q is not one line starting %q", tt.key, tt.value, msg, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s=%s: error is not ErrInvalid", tt.key, tt.value)
			}
		})
	}
	_, err := Load(map[string]string{"LOCKBOX_REDIS_TIMEOUT": "1m", "LOCKBOX_GRANT_TIMEOUT": "1m", "LOCKBOX_AUDIT_TIMEOUT": "1m"})
	for _, v := range []string{"LOCKBOX_REDIS_TIMEOUT: ", "LOCKBOX_GRANT_TIMEOUT: ", "LOCKBOX_AUDIT_TIMEOUT: "} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("three deadlines of a minute: %v; want a line starting %q", err, v)
		}
	}
}

// TestAuditRetentionFloor: an audit retention shorter than a request's
// life (12 hours at each approval stage, 4 of access), a typo such as
// "1ns" above all, would trim the records of access still going on at the
// next sweep; it is refused, and 0 still keeps records forever.
func TestAuditRetentionFloor(t *testing.T) {
	for _, v := range []string{"1ns", "1h", "16h", "24h", "27h59m59s"} {
		_, err := Load(map[string]string{"LOCKBOX_AUDIT_RETENTION": v})
		if err == nil || !strings.HasPrefix(err.Error(), "LOCKBOX_AUDIT_RETENTION: must be at least 28h0m0s (or 0, to keep audit records forever)") {
			t.Errorf("LOCKBOX_AUDIT_RETENTION=%s: %v, want refused below 28h", v, err)
		}
	}
	for v, want := range map[string]time.Duration{"0": 0, "28h": 28 * time.Hour, "8760h": 8760 * time.Hour} {
		c, err := Load(map[string]string{"LOCKBOX_AUDIT_RETENTION": v})
		if err != nil {
			t.Errorf("LOCKBOX_AUDIT_RETENTION=%s: %v", v, err)
		} else if c.AuditRetention != want {
			t.Errorf("LOCKBOX_AUDIT_RETENTION=%s: %v, want %v", v, c.AuditRetention, want)
		}
	}
}

// TestAuditRetentionShortest: after a retention raised or turned off,
// anchors are judged by the shortest one trimmed with; it is a retention
// (at least 28h) and can't be longer than one in force, which trims
// shorter.
func TestAuditRetentionShortest(t *testing.T) {
	for _, c := range []struct {
		retention, shortest string
		want                time.Duration
		err                 string
	}{
		{"8760h", "", 8760 * time.Hour, ""},
		{"0", "", 0, ""},
		{"61320h", "8760h", 8760 * time.Hour, ""},
		{"0", "720h", 720 * time.Hour, ""},
		{"8760h", "8760h", 8760 * time.Hour, ""},
		{"720h", "8760h", 0, "LOCKBOX_AUDIT_RETENTION_SHORTEST: 8760h0m0s is longer than LOCKBOX_AUDIT_RETENTION (720h0m0s)"},
		{"0", "1h", 0, "LOCKBOX_AUDIT_RETENTION_SHORTEST: must be at least 28h0m0s"},
		{"0", "-1h", 0, "LOCKBOX_AUDIT_RETENTION_SHORTEST: must not be negative"},
	} {
		env := map[string]string{"LOCKBOX_AUDIT_RETENTION": c.retention}
		if c.shortest != "" {
			env["LOCKBOX_AUDIT_RETENTION_SHORTEST"] = c.shortest
		}
		cfg, err := Load(env)
		switch {
		case c.err != "" && (err == nil || !strings.HasPrefix(err.Error(), c.err)):
			t.Errorf("%v: %v, want %q", env, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%v: %v", env, err)
		case c.err == "" && cfg.AnchorRetention() != c.want:
			t.Errorf("%v: anchors judged by %s, want %s", env, cfg.AnchorRetention(), c.want)
		}
	}
}

// TestRequestRetentionNotShorterThanAuditRetention: requests are kept at
// least as long as the audit records that name them, and the refusal
// names both variables; as long, or longer, is accepted.
func TestRequestRetentionNotShorterThanAuditRetention(t *testing.T) {
	_, err := Load(map[string]string{"LOCKBOX_AUDIT_RETENTION": "8760h", "LOCKBOX_REQUEST_RETENTION": "720h"})
	if err == nil {
		t.Fatal("request retention shorter than audit retention: no error")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "LOCKBOX_REQUEST_RETENTION: ") || !strings.Contains(msg, "LOCKBOX_AUDIT_RETENTION (8760h0m0s)") {
		t.Errorf("error %q does not name both variables", msg)
	}
	for _, req := range []string{"8760h", "17520h"} {
		c, err := Load(map[string]string{"LOCKBOX_AUDIT_RETENTION": "8760h", "LOCKBOX_REQUEST_RETENTION": req})
		if err != nil {
			t.Errorf("LOCKBOX_REQUEST_RETENTION=%s with LOCKBOX_AUDIT_RETENTION=8760h: %v", req, err)
			continue
		}
		if want, _ := time.ParseDuration(req); c.RequestRetention != want {
			t.Errorf("RequestRetention = %s, want %s", c.RequestRetention, want)
		}
	}
}

// TestRequestRetentionNeedsAuditRetention: without LOCKBOX_AUDIT_RETENTION
// audit records are kept for good, so any request retention is shorter
// than theirs and would leave records naming deleted requests: start-up
// refuses it, in one line naming both variables. Neither set, the
// default, keeps both for good.
func TestRequestRetentionNeedsAuditRetention(t *testing.T) {
	for _, audit := range []string{"", "0s"} {
		env := map[string]string{"LOCKBOX_REQUEST_RETENTION": "8760h"}
		if audit != "" {
			env["LOCKBOX_AUDIT_RETENTION"] = audit
		}
		_, err := Load(env)
		if err == nil {
			t.Errorf("LOCKBOX_REQUEST_RETENTION=8760h with LOCKBOX_AUDIT_RETENTION=%q: no error", audit)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "LOCKBOX_REQUEST_RETENTION: ") || !strings.Contains(msg, "LOCKBOX_AUDIT_RETENTION") || strings.Contains(msg, "\n") {
			t.Errorf("error %q is not one line naming both variables", msg)
		}
	}
	c, err := Load(map[string]string{})
	if err != nil || c.RequestRetention != 0 || c.AuditRetention != 0 {
		t.Errorf("neither retention set: request %s, audit %s, %v; want both 0", c.RequestRetention, c.AuditRetention, err)
	}
}

// A bad REDIS_URL must not echo its password into logs.
func TestRedisURLErrorHidesPassword(t *testing.T) {
	for _, u := range []string{
		"redis://user:s3cret@host:6379/x",
		"redis://user:s3cret@host:6379/%zz",
		"rediz://user:s3cret@host:6379",
		// A password that is not percent-encoded: /, ? and # end the
		// URL's authority early, so the parser reads part of the password
		// as a port, a path or a database number, and quotes it.
		"redis://:s3cret/x@host:6379/0",
		"redis://user:s3cret/x@host:6379/0",
		"redis://user:s3cret?x@host:6379",
		"redis://user:s3cret#x@host:6379",
		"redis://:6379/s3cret@host:6379",
		"rediss://user:pa%s3cret@host:6379",
	} {
		_, err := Load(map[string]string{"LOCKBOX_REDIS_URL": u})
		if err == nil {
			t.Errorf("%s: no error", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "%s3") {
			t.Errorf("error leaks the password: %v", err)
		}
		if !strings.Contains(err.Error(), "LOCKBOX_REDIS_URL") {
			t.Errorf("error does not name the variable: %v", err)
		}
	}
}

// A bad LOCKBOX_UPSTREAMS URL is refused, naming the variable and the
// service, without echoing a credential it may carry (in its user info or
// its query) into logs; and an empty query ("?"), which the proxy refuses
// later without naming the variable, is refused here.
func TestUpstreamURLErrorsHideCredentials(t *testing.T) {
	for _, u := range []string{
		"https://svc:s3cret@exchange.internal",
		"https://s3cret@exchange.internal",
		"https://exchange.internal/api?key=s3cret",
		"https://exchange.internal/#s3cret",
		"https://svc:s3cr/et@exchange.internal",
		"https://exchange.internal/?",
	} {
		_, err := Load(map[string]string{"LOCKBOX_UPSTREAMS": "exchange=" + u})
		if err == nil {
			t.Errorf("%s: no error", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cr") {
			t.Errorf("error leaks the credential: %v", err)
		}
		if !strings.Contains(err.Error(), "LOCKBOX_UPSTREAMS: exchange: ") {
			t.Errorf("error does not name the variable and the service: %v", err)
		}
	}
}

// All problems are reported at once, each as a *VarError.
func TestLoadReportsEveryProblem(t *testing.T) {
	_, err := Load(map[string]string{
		"LOCKBOX_LOG_LEVEL":  "loud",
		"LOCKBOX_LOG_FORMAT": "yaml",
		"LOCKBOX_API_ADDR":   "nowhere",
	})
	for _, name := range []string{"LOCKBOX_LOG_LEVEL", "LOCKBOX_LOG_FORMAT", "LOCKBOX_API_ADDR"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
	var ve *VarError
	if !errors.As(err, &ve) {
		t.Errorf("error %v is not a *VarError", err)
	}
}

// Values that don't parse and values that fail a check are reported
// together, one per line, each line naming its variable; a variable that
// didn't parse is not also reported as zero.
func TestLoadReportsParseAndCheckErrorsTogether(t *testing.T) {
	_, err := Load(map[string]string{
		"LOCKBOX_API_ADDR":      "bogus",
		"LOCKBOX_REDIS_TIMEOUT": "5",
		"LOCKBOX_JWT_LEEWAY":    "soon",
		"LOCKBOX_LOG_LEVEL":     "loud",
	})
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{"LOCKBOX_REDIS_TIMEOUT: ", "LOCKBOX_JWT_LEEWAY: ", "LOCKBOX_API_ADDR: ", "LOCKBOX_LOG_LEVEL: "}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%v", len(lines), len(want), err)
	}
	for i, prefix := range want {
		if !strings.HasPrefix(lines[i], prefix) {
			t.Errorf("line %d = %q, want it to start with %q", i, lines[i], prefix)
		}
	}
	if !strings.Contains(lines[0], "with a unit, such as 2s") || !strings.Contains(lines[0], `"5"`) {
		t.Errorf("parse error gives no hint: %q", lines[0])
	}
	if strings.Contains(err.Error(), "positive") {
		t.Errorf("a variable that didn't parse is also reported as zero:\n%v", err)
	}
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		if _, ok := e.(*VarError); !ok {
			t.Errorf("%v (%T) is not a *VarError", e, e)
		}
	}
}

// LoadFor adds what the mode requires to what Load finds, in one error.
func TestLoadForReportsEverything(t *testing.T) {
	_, err := LoadFor(map[string]string{
		"LOCKBOX_API_ADDR":      "bogus",
		"LOCKBOX_REDIS_TIMEOUT": "5",
	}, ModeServe)
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"LOCKBOX_API_ADDR: ", "LOCKBOX_REDIS_TIMEOUT: ", "LOCKBOX_REDIS_URL: ", "LOCKBOX_UPSTREAMS: ", "LOCKBOX_PROXY_SIGNING_KEY_FILE: "} {
		if n := strings.Count(err.Error(), name); n != 1 {
			t.Errorf("%s named %d times, want once:\n%v", name, n, err)
		}
	}
	for line := range strings.Lines(err.Error()) {
		if !strings.HasPrefix(line, "LOCKBOX_") {
			t.Errorf("line %q does not start with a variable", line)
		}
	}
	if strings.Contains(err.Error(), "positive") {
		t.Errorf("a variable that didn't parse is also reported as zero:\n%v", err)
	}
	// A good configuration loads, and is what Load and Validate make of it.
	good := map[string]string{"LOCKBOX_REDIS_URL": "redis://127.0.0.1:6379", "LOCKBOX_SERVE": "api,jobs",
		"LOCKBOX_JWT_HMAC_SECRET_FILE": writeFile(t, "hmac", strings.Repeat("k", 32))}
	c, err := LoadFor(good, ModeServe)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Load(good)
	if !reflect.DeepEqual(c, want) {
		t.Errorf("LoadFor = %+v, want %+v", c, want)
	}
}

func TestLoadParseErrorIsVarError(t *testing.T) {
	_, err := Load(map[string]string{"LOCKBOX_REDIS_TIMEOUT": "2 seconds"})
	var ve *VarError
	if !errors.As(err, &ve) || ve.Var != "LOCKBOX_REDIS_TIMEOUT" {
		t.Fatalf("got %v, want a *VarError for LOCKBOX_REDIS_TIMEOUT", err)
	}
}

// Port 0 means "any free port", so two listeners may both ask for it.
func TestPortZeroMayRepeat(t *testing.T) {
	_, err := Load(map[string]string{
		"LOCKBOX_API_ADDR":     "127.0.0.1:0",
		"LOCKBOX_PROXY_ADDR":   "127.0.0.1:0",
		"LOCKBOX_METRICS_ADDR": "127.0.0.1:0",
	})
	if err != nil {
		t.Fatal(err)
	}
}

// LOCKBOX_OIDC_ISSUER turns on OpenID Connect sign-in, which needs the
// client's id and secret and the console's URL (the redirect URI): each one
// missing is named.
func TestOIDCNeedsItsSettings(t *testing.T) {
	full := map[string]string{
		"LOCKBOX_OIDC_ISSUER":             "https://login.example.com/tenant/v2.0",
		"LOCKBOX_OIDC_CLIENT_ID":          "lockbox-console",
		"LOCKBOX_OIDC_CLIENT_SECRET_FILE": writeFile(t, "oidc", "s3cret\n"),
		"LOCKBOX_CONSOLE_URL":             "https://lockbox.example.com",
	}
	c, err := Load(full)
	if err != nil {
		t.Fatalf("complete OIDC settings: %v", err)
	}
	if c.OIDCIssuer != full["LOCKBOX_OIDC_ISSUER"] || c.OIDCClientID != "lockbox-console" || c.OIDCClientSecret.Value() != "s3cret" || c.ConsoleURL != "https://lockbox.example.com" {
		t.Errorf("loaded %+v", c)
	}
	const required = ": required with LOCKBOX_OIDC_ISSUER"
	for _, missing := range []string{"LOCKBOX_OIDC_CLIENT_ID", "LOCKBOX_OIDC_CLIENT_SECRET_FILE", "LOCKBOX_CONSOLE_URL"} {
		t.Run(missing, func(t *testing.T) {
			env := maps.Clone(full)
			delete(env, missing)
			_, err := Load(env)
			if err == nil || err.Error() != missing+required {
				t.Errorf("without %s: got %v, want %q", missing, err, missing+required)
			}
			var ve *VarError
			if !errors.As(err, &ve) || ve.Var != missing {
				t.Errorf("error %v is not a *VarError for %s", err, missing)
			}
		})
	}
	t.Run("issuer alone", func(t *testing.T) {
		_, err := Load(map[string]string{"LOCKBOX_OIDC_ISSUER": full["LOCKBOX_OIDC_ISSUER"]})
		for _, name := range []string{"LOCKBOX_OIDC_CLIENT_ID", "LOCKBOX_OIDC_CLIENT_SECRET_FILE", "LOCKBOX_CONSOLE_URL"} {
			if err == nil || !strings.Contains(err.Error(), name+required) {
				t.Errorf("error %v does not name %s", err, name)
			}
		}
	})
	t.Run("issuer not a URL", func(t *testing.T) {
		for _, issuer := range []string{"login.example.com", "ftp://login.example.com", "https://"} {
			env := maps.Clone(full)
			env["LOCKBOX_OIDC_ISSUER"] = issuer
			if _, err := Load(env); err == nil || !strings.HasPrefix(err.Error(), "LOCKBOX_OIDC_ISSUER: ") {
				t.Errorf("issuer %q: got %v", issuer, err)
			}
		}
	})
	t.Run("issuer in the clear", func(t *testing.T) {
		// Discovery, the ID tokens' keys and the code exchange would
		// travel in the clear; a local identity provider may use http.
		env := maps.Clone(full)
		env["LOCKBOX_OIDC_ISSUER"] = "http://idp.corp.example"
		if _, err := Load(env); err == nil || !strings.HasPrefix(err.Error(), "LOCKBOX_OIDC_ISSUER: ") || !strings.Contains(err.Error(), "must be https") {
			t.Errorf("http issuer: got %v", err)
		}
		env["LOCKBOX_OIDC_ISSUER"] = "http://127.0.0.1:5556/dex"
		if _, err := Load(env); err != nil {
			t.Errorf("http issuer on loopback: %v", err)
		}
	})
	t.Run("no issuer needs nothing", func(t *testing.T) {
		// The dev identities, or no sign-in at all: the client settings
		// alone are not an error.
		if _, err := Load(map[string]string{"LOCKBOX_OIDC_CLIENT_ID": "x"}); err != nil {
			t.Error(err)
		}
	})
	t.Run("console url error hides its password", func(t *testing.T) {
		_, err := Load(map[string]string{"LOCKBOX_CONSOLE_URL": "https://admin:s3cret@lockbox.example.com"})
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("console url forms", func(t *testing.T) {
		for _, u := range []string{"https://lockbox.example.com", "https://lockbox.example.com/", "http://127.0.0.1:8080", "https://[::1]:8443"} {
			if _, err := Load(map[string]string{"LOCKBOX_CONSOLE_URL": u}); err != nil {
				t.Errorf("%s: %v", u, err)
			}
		}
	})
	t.Run("claims and timeouts", func(t *testing.T) {
		c, err := Load(map[string]string{
			"LOCKBOX_OIDC_SCOPES": "profile email groups", "LOCKBOX_OIDC_SUBJECT_CLAIM": "preferred_username",
			"LOCKBOX_OIDC_ROLES_CLAIM": "groups", "LOCKBOX_OIDC_TENANT_CLAIM": "org",
			"LOCKBOX_CONSOLE_IDLE_TIMEOUT": "15m", "LOCKBOX_CONSOLE_SESSION_MAX": "12h",
		})
		if err != nil {
			t.Fatal(err)
		}
		if c.OIDCScopes != "profile email groups" || c.OIDCSubjectClaim != "preferred_username" || c.OIDCRolesClaim != "groups" ||
			c.OIDCTenantClaim != "org" || c.ConsoleIdleTimeout != 15*time.Minute || c.ConsoleSessionMax != 12*time.Hour {
			t.Errorf("loaded %+v", c)
		}
	})
}

// TestOneUserIDAtOneIssuer: where the admin center signs users in
// through the issuer whose tokens the API takes, both read the user id
// from one claim; otherwise one person has two ids, files a request
// through the API under one and approves it in the admin center under the
// other. Start-up stops on one line naming both variables. An admin center
// issuer the API takes no tokens from, or one claim named on both sides,
// starts.
func TestOneUserIDAtOneIssuer(t *testing.T) {
	const iss = "https://login.example.com/tenant/v2.0"
	secret := writeFile(t, "oidc", "s3cret\n")
	tests := []struct {
		name                  string
		jwtIssuer, oidcIssuer string
		jwtClaim, oidcClaim   string // unset when empty
		refused               bool
	}{
		{"sub on both sides", iss, iss, "", "", false},
		{"one claim named on both sides", iss, iss, "preferred_username", "preferred_username", false},
		{"oid on both sides", iss, iss, "oid", "oid", false},
		{"the admin center reads another claim", iss, iss, "", "preferred_username", true},
		{"the API reads another claim", iss, iss, "oid", "", true},
		{"the admin center names sub, the API another claim", iss, iss, "oid", "sub", true},
		{"the same issuer with a trailing slash", iss, iss + "/", "", "email", true},
		{"the same issuer in another case", iss, "https://LOGIN.example.com/tenant/v2.0", "", "email", true},
		{"another issuer signs in to the admin center", "https://tokens.example.com/", iss, "", "preferred_username", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{
				"LOCKBOX_JWT_ISSUER":              tc.jwtIssuer,
				"LOCKBOX_OIDC_ISSUER":             tc.oidcIssuer,
				"LOCKBOX_OIDC_CLIENT_ID":          "lockbox-console",
				"LOCKBOX_OIDC_CLIENT_SECRET_FILE": secret,
				"LOCKBOX_CONSOLE_URL":             "https://lockbox.example.com",
			}
			if tc.jwtClaim != "" {
				env["LOCKBOX_JWT_SUBJECT_CLAIM"] = tc.jwtClaim
			}
			if tc.oidcClaim != "" {
				env["LOCKBOX_OIDC_SUBJECT_CLAIM"] = tc.oidcClaim
			}
			_, err := Load(env)
			if !tc.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ve *VarError
			if err == nil || !errors.As(err, &ve) || ve.Var != "LOCKBOX_OIDC_SUBJECT_CLAIM" {
				t.Fatalf("got %v, want a LOCKBOX_OIDC_SUBJECT_CLAIM error", err)
			}
			msg := err.Error()
			for _, want := range []string{"LOCKBOX_JWT_SUBJECT_CLAIM", "two-person rule"} {
				if !strings.Contains(msg, want) {
					t.Errorf("the error does not say %q: %s", want, msg)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("the error is more than one line: %q", msg)
			}
		})
	}
}

// TestOneTenantAtOneIssuer: where the admin center signs users in through
// the issuer whose tokens the API takes, the admin center reads the tenant
// from the claim the API reads it from, "tid"; otherwise a tenant's user
// whose access token names the tenant in the admin center's claim only is
// the provider's staff in the API, with the token's roles. Start-up stops
// on one line naming the variable. An admin center issuer the API takes no
// tokens from may read another claim.
func TestOneTenantAtOneIssuer(t *testing.T) {
	const iss = "https://login.example.com/"
	secret := writeFile(t, "oidc", "s3cret\n")
	tests := []struct {
		name                  string
		jwtIssuer, oidcIssuer string
		claim                 string // LOCKBOX_OIDC_TENANT_CLAIM; unset when empty
		refused               bool
	}{
		{"tid by default", iss, iss, "", false},
		{"tid named", iss, iss, "tid", false},
		{"the admin center reads another claim", iss, iss, "org_id", true},
		{"the same issuer without its trailing slash", iss, "https://login.example.com", "org_id", true},
		{"another issuer signs in to the admin center", "https://tokens.example.com/", iss, "org_id", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{
				"LOCKBOX_JWT_ISSUER":              tc.jwtIssuer,
				"LOCKBOX_OIDC_ISSUER":             tc.oidcIssuer,
				"LOCKBOX_OIDC_CLIENT_ID":          "lockbox-console",
				"LOCKBOX_OIDC_CLIENT_SECRET_FILE": secret,
				"LOCKBOX_CONSOLE_URL":             "https://lockbox.example.com",
			}
			if tc.claim != "" {
				env["LOCKBOX_OIDC_TENANT_CLAIM"] = tc.claim
			}
			_, err := Load(env)
			if !tc.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ve *VarError
			if err == nil || !errors.As(err, &ve) || ve.Var != "LOCKBOX_OIDC_TENANT_CLAIM" {
				t.Fatalf("got %v, want a LOCKBOX_OIDC_TENANT_CLAIM error", err)
			}
			msg := err.Error()
			for _, want := range []string{`"org_id"`, `"tid"`, "LOCKBOX_ISSUERS_FILE"} {
				if !strings.Contains(msg, want) {
					t.Errorf("the error does not say %q: %s", want, msg)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("the error is more than one line: %q", msg)
			}
		})
	}
}

// TestOneRolesClaimAtOneIssuer: where the admin center signs users in
// through the issuer whose tokens the API takes, the admin center reads
// the roles from the claim the API reads them from, "roles"; otherwise one
// person holds one set of roles in the admin center and another in the
// API, and a role removed in one claim stays in force through the other.
// Start-up stops on one line naming the variable. An admin center issuer
// the API takes no tokens from may read another claim.
func TestOneRolesClaimAtOneIssuer(t *testing.T) {
	const iss = "https://login.example.com/"
	secret := writeFile(t, "oidc", "s3cret\n")
	tests := []struct {
		name                  string
		jwtIssuer, oidcIssuer string
		claim                 string // LOCKBOX_OIDC_ROLES_CLAIM; unset when empty
		refused               bool
	}{
		{"roles by default", iss, iss, "", false},
		{"roles named", iss, iss, "roles", false},
		{"the admin center reads another claim", iss, iss, "groups", true},
		{"the same issuer in another case", iss, "https://LOGIN.example.com", "groups", true},
		{"another issuer signs in to the admin center", "https://tokens.example.com/", iss, "groups", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{
				"LOCKBOX_JWT_ISSUER":              tc.jwtIssuer,
				"LOCKBOX_OIDC_ISSUER":             tc.oidcIssuer,
				"LOCKBOX_OIDC_CLIENT_ID":          "lockbox-console",
				"LOCKBOX_OIDC_CLIENT_SECRET_FILE": secret,
				"LOCKBOX_CONSOLE_URL":             "https://lockbox.example.com",
			}
			if tc.claim != "" {
				env["LOCKBOX_OIDC_ROLES_CLAIM"] = tc.claim
			}
			c, err := Load(env)
			if !tc.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if want := cmp.Or(tc.claim, "roles"); c.OIDCRolesClaim != want {
					t.Errorf("the admin center reads roles from %q, want %q", c.OIDCRolesClaim, want)
				}
				return
			}
			var ve *VarError
			if err == nil || !errors.As(err, &ve) || ve.Var != "LOCKBOX_OIDC_ROLES_CLAIM" {
				t.Fatalf("got %v, want a LOCKBOX_OIDC_ROLES_CLAIM error", err)
			}
			msg := err.Error()
			for _, want := range []string{`"groups"`, `"roles"`, "LOCKBOX_ISSUERS_FILE"} {
				if !strings.Contains(msg, want) {
					t.Errorf("the error does not say %q: %s", want, msg)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("the error is more than one line: %q", msg)
			}
		})
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateServe(t *testing.T) {
	jwks := writeFile(t, "jwks.json", `{"keys":[]}`)
	secret := writeFile(t, "hmac", "0123456789abcdef0123456789abcdef")
	empty := writeFile(t, "empty", "")
	missing := filepath.Join(t.TempDir(), "missing")
	dir := t.TempDir()
	const redisURL = "redis://127.0.0.1:6379/0"
	issuers := writeFile(t, "issuers.yaml", "issuers:\n- issuer: https://login.provider.example\n  audience: lockbox\n  scope: provider\n  jwks_url: https://login.provider.example/keys\n")
	consoleIssuers := writeFile(t, "console.yaml", "issuers:\n- issuer: https://login.provider.example\n  audience: lockbox\n  scope: provider\n  jwks_file: "+jwks+
		"\n  console:\n    client_id: lockbox\n    client_secret_file: "+secret+"\n")
	// A sidecar's view of the shared issuers file: the console's client
	// secret is not mounted in its pod.
	sidecarIssuers := writeFile(t, "sidecar.yaml", "issuers:\n- issuer: https://login.provider.example\n  audience: lockbox\n  scope: provider\n  jwks_file: "+jwks+
		"\n  console:\n    client_id: lockbox\n    client_secret_file: "+missing+"\n")
	// The same, its issuer URL with a query.
	queryIssuers := writeFile(t, "query.yaml", "issuers:\n- issuer: https://login.provider.example/?key=s3cr3t\n  audience: lockbox\n  scope: provider\n  jwks_file: "+jwks+
		"\n  console:\n    client_id: lockbox\n    client_secret_file: "+missing+"\n")
	newline := writeFile(t, "newline", "\r\n")
	newlineIssuers := writeFile(t, "newline.yaml", "issuers:\n- issuer: https://login.provider.example\n  audience: lockbox\n  scope: provider\n  jwks_file: "+jwks+
		"\n  console:\n    client_id: lockbox\n    client_secret_file: "+newline+"\n")
	emptyIssuers := writeFile(t, "empty.yaml", "issuers:\n- issuer: https://login.provider.example\n  audience: lockbox\n  scope: provider\n  jwks_file: "+jwks+
		"\n  console:\n    client_id: lockbox\n    client_secret_file: "+empty+"\n")

	tests := []struct {
		name string
		env  map[string]string
		want []string // substrings of the error; none means valid
	}{
		{"jwks", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks}, nil},
		{"hmac", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_HMAC_SECRET_FILE": secret}, nil},
		{"policy dir", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_POLICY_DIR": dir}, nil},
		{"no redis", map[string]string{"LOCKBOX_JWT_JWKS_FILE": jwks},
			[]string{`LOCKBOX_REDIS_URL: required by "lockbox serve"`}},
		{"jwks url", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_URL": "https://login.provider.example/keys"}, nil},
		{"jwks url on localhost", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_URL": "http://127.0.0.1:8900/keys"}, nil},
		{"jwks url in the clear", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_URL": "http://login.provider.example/keys"},
			[]string{"LOCKBOX_JWT_JWKS_URL: ", "must be https"}},
		{"issuers file", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_ISSUERS_FILE": issuers}, nil},
		{"no key", map[string]string{"LOCKBOX_REDIS_URL": redisURL},
			[]string{`LOCKBOX_JWT_JWKS_URL, LOCKBOX_JWT_JWKS_FILE, LOCKBOX_JWT_HMAC_SECRET_FILE or LOCKBOX_ISSUERS_FILE: one is required by "lockbox serve"`}},
		{"both keys", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_JWT_HMAC_SECRET_FILE": secret},
			[]string{"LOCKBOX_JWT_JWKS_URL, LOCKBOX_JWT_JWKS_FILE, LOCKBOX_JWT_HMAC_SECRET_FILE and LOCKBOX_ISSUERS_FILE: set only one"}},
		{"url and issuers file", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_URL": "https://idp.example/keys", "LOCKBOX_ISSUERS_FILE": issuers},
			[]string{"set only one"}},
		{"issuers file and OIDC", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_ISSUERS_FILE": issuers, "LOCKBOX_OIDC_ISSUER": "https://idp.example.com",
			"LOCKBOX_OIDC_CLIENT_ID": "lockbox", "LOCKBOX_OIDC_CLIENT_SECRET_FILE": secret, "LOCKBOX_CONSOLE_URL": "https://lockbox.example.com"},
			[]string{"LOCKBOX_OIDC_ISSUER: not with LOCKBOX_ISSUERS_FILE"}},
		{"issuers file and JWT issuer", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_ISSUERS_FILE": issuers, "LOCKBOX_JWT_ISSUER": "https://login.provider.example"},
			[]string{"LOCKBOX_JWT_ISSUER: not with LOCKBOX_ISSUERS_FILE"}},
		{"issuers file and JWT audience", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_ISSUERS_FILE": issuers, "LOCKBOX_JWT_AUDIENCE": "lockbox"},
			[]string{"LOCKBOX_JWT_AUDIENCE: not with LOCKBOX_ISSUERS_FILE"}},
		{"issuers file and JWT token types", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_ISSUERS_FILE": issuers, "LOCKBOX_JWT_TOKEN_TYPES": "at+jwt"},
			[]string{"LOCKBOX_JWT_TOKEN_TYPES: not with LOCKBOX_ISSUERS_FILE"}},
		{"issuers file and JWT subject claim", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_ISSUERS_FILE": issuers, "LOCKBOX_JWT_SUBJECT_CLAIM": "oid"},
			[]string{"LOCKBOX_JWT_SUBJECT_CLAIM: not with LOCKBOX_ISSUERS_FILE"}},
		{"issuers file and OIDC claims", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_ISSUERS_FILE": issuers, "LOCKBOX_OIDC_SCOPES": "profile",
			"LOCKBOX_OIDC_SUBJECT_CLAIM": "upn", "LOCKBOX_OIDC_ROLES_CLAIM": "groups", "LOCKBOX_OIDC_TENANT_CLAIM": "org", "LOCKBOX_OIDC_CLIENT_ID": "x"},
			[]string{"LOCKBOX_OIDC_SCOPES: not with LOCKBOX_ISSUERS_FILE", "LOCKBOX_OIDC_SUBJECT_CLAIM: not with", "LOCKBOX_OIDC_ROLES_CLAIM: not with",
				"LOCKBOX_OIDC_TENANT_CLAIM: not with", "LOCKBOX_OIDC_CLIENT_ID: not with"}},
		{"issuers file and OIDC secret", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_ISSUERS_FILE": issuers, "LOCKBOX_OIDC_CLIENT_SECRET_FILE": secret},
			[]string{"LOCKBOX_OIDC_CLIENT_SECRET_FILE: not with LOCKBOX_ISSUERS_FILE"}},
		{"JWT issuer without issuers file", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_JWT_ISSUER": "https://login.provider.example",
			"LOCKBOX_JWT_AUDIENCE": "lockbox"}, nil},
		{"bad issuers file", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_ISSUERS_FILE": writeFile(t, "bad.yaml", "issuers:\n- issuer: x\n  audiance: y\n")},
			[]string{"LOCKBOX_ISSUERS_FILE: ", "field audiance not found"}},
		{"issuers file with console needs the console URL", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_ISSUERS_FILE": consoleIssuers},
			[]string{"LOCKBOX_CONSOLE_URL: required with a console section in LOCKBOX_ISSUERS_FILE"}},
		{"issuers file with console", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_ISSUERS_FILE": consoleIssuers, "LOCKBOX_CONSOLE_URL": "https://lockbox.example.com"}, nil},
		{"console client secret missing", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_ISSUERS_FILE": sidecarIssuers, "LOCKBOX_CONSOLE_URL": "https://lockbox.example.com"},
			[]string{"LOCKBOX_ISSUERS_FILE: ", "issuer 1 (https://login.provider.example): console: client_secret_file: ", "no such file"}},
		// An OpenID Connect issuer has no query; named by its URL as logs
		// show it, the query's values are not shown.
		{"console issuer with a query", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_CONSOLE_URL": "https://lockbox.example.com",
			"LOCKBOX_ISSUERS_FILE": queryIssuers},
			[]string{`issuer 1 (https://login.provider.example/?key=REDACTED): console: the issuer "https://login.provider.example/?key=REDACTED" has a query`}},
		{"sidecar ignores console sections", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_ISSUERS_FILE": sidecarIssuers, "LOCKBOX_SERVE": "proxy"}, nil},
		{"proxy and jobs ignore console sections", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_ISSUERS_FILE": sidecarIssuers, "LOCKBOX_SERVE": "proxy,jobs"}, nil},
		{"control plane needs the console URL", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_ISSUERS_FILE": consoleIssuers, "LOCKBOX_SERVE": "api"},
			[]string{"LOCKBOX_CONSOLE_URL: required with a console section in LOCKBOX_ISSUERS_FILE"}},
		{"max age below refresh", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_JWT_JWKS_REFRESH": "10m", "LOCKBOX_JWT_JWKS_MAX_AGE": "10m"},
			[]string{"LOCKBOX_JWT_JWKS_MAX_AGE: must be more than LOCKBOX_JWT_JWKS_REFRESH"}},
		{"max age unbounded", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_JWT_JWKS_MAX_AGE": "8760h"},
			[]string{"LOCKBOX_JWT_JWKS_MAX_AGE: ", "at most 720h"}},
		// A refresh every millisecond would have Lockbox hammer the
		// identity provider; the floor is the unknown-kid rate limit's.
		{"jwks refresh too often", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_JWT_JWKS_REFRESH": "1ms"},
			[]string{"LOCKBOX_JWT_JWKS_REFRESH: must be at least 30s, got 1ms"}},
		{"jwks refresh just under the floor", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_JWT_JWKS_REFRESH": "29s"},
			[]string{"LOCKBOX_JWT_JWKS_REFRESH: must be at least 30s, got 29s"}},
		{"jwks refresh at the floor", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_JWT_JWKS_REFRESH": "30s"}, nil},
		{"nothing", map[string]string{},
			[]string{"LOCKBOX_REDIS_URL: required", "LOCKBOX_JWT_JWKS_FILE, LOCKBOX_JWT_HMAC_SECRET_FILE or LOCKBOX_ISSUERS_FILE"}},
		{"missing jwks", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": missing},
			[]string{"LOCKBOX_JWT_JWKS_FILE: ", "no such file"}},
		{"jwks is a dir", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": dir},
			[]string{"LOCKBOX_JWT_JWKS_FILE: ", "not a regular file"}},
		{"empty secret", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_HMAC_SECRET_FILE": empty},
			[]string{"LOCKBOX_JWT_HMAC_SECRET_FILE: ", "is empty"}},
		{"missing policy dir", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_POLICY_DIR": missing},
			[]string{"LOCKBOX_POLICY_DIR: ", "no such file"}},
		{"policy dir is a file", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_POLICY_DIR": jwks},
			[]string{"LOCKBOX_POLICY_DIR: ", "not a directory"}},
		{"no upstreams", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_UPSTREAMS": ""},
			[]string{`LOCKBOX_UPSTREAMS: required by "lockbox serve"`}},
		{"control plane needs no upstream", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_UPSTREAMS": "",
			"LOCKBOX_PROXY_SIGNING_KEY_FILE": "", "LOCKBOX_SERVE": "api,jobs"}, nil},
		{"sidecar needs its upstream", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_UPSTREAMS": "",
			"LOCKBOX_SERVE": "proxy"}, []string{`LOCKBOX_UPSTREAMS: required by "lockbox serve" with the proxy`}},
		{"unknown component", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_SERVE": "proxy,console"},
			[]string{`LOCKBOX_SERVE: "console" is not one of proxy, api, jobs`}},
		{"nothing to serve", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_SERVE": " , "},
			[]string{"LOCKBOX_SERVE: names nothing to run"}},
		{"upstream with a query", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_UPSTREAMS": "exchange=http://h:1/?x=1"},
			[]string{"LOCKBOX_UPSTREAMS: exchange: "}},
		{"upstream not http", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_UPSTREAMS": "exchange=ftp://h"},
			[]string{"LOCKBOX_UPSTREAMS: exchange: "}},
		{"upstream without service", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_UPSTREAMS": "http://h:1"},
			[]string{`LOCKBOX_UPSTREAMS: "http://h:1" should be in "key=value" format`}},
		{"upstream twice", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_UPSTREAMS": "exchange=http://a,exchange=http://b"},
			[]string{"LOCKBOX_UPSTREAMS: service exchange is listed twice"}},
		{"no signing key", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_PROXY_SIGNING_KEY_FILE": ""},
			[]string{`LOCKBOX_PROXY_SIGNING_KEY_FILE: required by "lockbox serve"`}},
		{"missing signing key", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_PROXY_SIGNING_KEY_FILE": missing},
			[]string{"LOCKBOX_PROXY_SIGNING_KEY_FILE: ", "no such file"}},
		{"published keys", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks,
			"LOCKBOX_PROXY_PUBLISHED_KEY_FILES": jwks + ", " + secret}, nil},
		{"missing published key", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks,
			"LOCKBOX_PROXY_PUBLISHED_KEY_FILES": jwks + "," + missing}, []string{"LOCKBOX_PROXY_PUBLISHED_KEY_FILES: ", "no such file"}},
		{"assertion TTL too long", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_PROXY_ASSERTION_TTL": "61s"},
			[]string{"LOCKBOX_PROXY_ASSERTION_TTL: must be from 1s to 1m0s, got 1m1s"}},
		{"assertion TTL too short", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_PROXY_ASSERTION_TTL": "500ms"},
			[]string{"LOCKBOX_PROXY_ASSERTION_TTL: must be from 1s"}},
		{"no assertion issuer", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_PROXY_ASSERTION_ISSUER": " "},
			[]string{"LOCKBOX_PROXY_ASSERTION_ISSUER: must not be empty"}},
		{"oidc", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_OIDC_ISSUER": "https://idp.example.com",
			"LOCKBOX_OIDC_CLIENT_ID": "lockbox", "LOCKBOX_OIDC_CLIENT_SECRET_FILE": secret, "LOCKBOX_CONSOLE_URL": "https://lockbox.example.com"}, nil},
		{"oidc secret missing", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_OIDC_ISSUER": "https://idp.example.com",
			"LOCKBOX_OIDC_CLIENT_ID": "lockbox", "LOCKBOX_OIDC_CLIENT_SECRET_FILE": missing, "LOCKBOX_CONSOLE_URL": "https://lockbox.example.com"},
			[]string{"LOCKBOX_OIDC_CLIENT_SECRET_FILE: ", "no such file"}},
		{"oidc secret empty", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_OIDC_ISSUER": "https://idp.example.com",
			"LOCKBOX_OIDC_CLIENT_ID": "lockbox", "LOCKBOX_OIDC_CLIENT_SECRET_FILE": empty, "LOCKBOX_CONSOLE_URL": "https://lockbox.example.com"},
			[]string{"LOCKBOX_OIDC_CLIENT_SECRET_FILE: ", "is empty"}},
		{"oidc secret only a line ending", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_OIDC_ISSUER": "https://idp.example.com",
			"LOCKBOX_OIDC_CLIENT_ID": "lockbox", "LOCKBOX_OIDC_CLIENT_SECRET_FILE": newline, "LOCKBOX_CONSOLE_URL": "https://lockbox.example.com"},
			[]string{"LOCKBOX_OIDC_CLIENT_SECRET_FILE: ", "is empty"}},
		// The issuers file's client secrets are refused as the variables'
		// are: a file holding only a line ending (echo > file) is no
		// secret, and the admin center would start, to fail every sign-in.
		{"console client secret only a line ending", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_ISSUERS_FILE": newlineIssuers, "LOCKBOX_CONSOLE_URL": "https://lockbox.example.com"},
			[]string{"LOCKBOX_ISSUERS_FILE: ", "issuer 1 (https://login.provider.example): console: client_secret_file: ", "is empty"}},
		{"console client secret empty", map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_ISSUERS_FILE": emptyIssuers, "LOCKBOX_CONSOLE_URL": "https://lockbox.example.com"},
			[]string{"LOCKBOX_ISSUERS_FILE: ", "issuer 1 (https://login.provider.example): console: client_secret_file: ", "is empty"}},
	}
	signing := writeFile(t, "signing.pem", "-----BEGIN PRIVATE KEY-----")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := maps.Clone(tt.env)
			// The proxy's settings, unless the case is about them.
			if tt.name != "nothing" {
				if _, ok := env["LOCKBOX_UPSTREAMS"]; !ok {
					env["LOCKBOX_UPSTREAMS"] = "exchange=http://127.0.0.1:9001,sharepoint=https://sp.example/base"
				}
				if _, ok := env["LOCKBOX_PROXY_SIGNING_KEY_FILE"]; !ok {
					env["LOCKBOX_PROXY_SIGNING_KEY_FILE"] = signing
				}
			}
			// Load already refuses what no mode accepts.
			c, err := Load(env)
			if err == nil {
				err = c.Validate(ModeServe)
			}
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestValidateUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads files whatever their mode")
	}
	p := writeFile(t, "jwks.json", `{"keys":[]}`)
	if err := os.Chmod(p, 0); err != nil {
		t.Fatal(err)
	}
	c, err := Load(map[string]string{"LOCKBOX_REDIS_URL": "redis://127.0.0.1:6379", "LOCKBOX_JWT_JWKS_FILE": p})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(ModeServe); err == nil || !strings.Contains(err.Error(), "LOCKBOX_JWT_JWKS_FILE: ") {
		t.Errorf("got %v, want an error naming LOCKBOX_JWT_JWKS_FILE", err)
	}
}

// Dev mode needs no Redis and no keys, but still checks what is given.
func TestValidateDev(t *testing.T) {
	c, _ := Load(map[string]string{})
	if err := c.Validate(ModeDev); err != nil {
		t.Errorf("empty config in dev: %v", err)
	}
	c, _ = Load(map[string]string{"LOCKBOX_JWT_HMAC_SECRET_FILE": filepath.Join(t.TempDir(), "missing")})
	if err := c.Validate(ModeDev); err == nil || !strings.Contains(err.Error(), "LOCKBOX_JWT_HMAC_SECRET_FILE: ") {
		t.Errorf("missing secret file in dev: got %v", err)
	}
}

// Validate re-checks what Load checks, for a Config built by hand.
func TestValidateChecksHandBuiltConfig(t *testing.T) {
	c, _ := Load(map[string]string{})
	c.RedisTimeout = 0
	if err := c.Validate(ModeDev); err == nil || !strings.Contains(err.Error(), "LOCKBOX_REDIS_TIMEOUT: ") {
		t.Errorf("got %v", err)
	}
	if err := c.Validate(Mode(42)); err == nil {
		t.Error("unknown mode accepted")
	}
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	c, _ := Load(map[string]string{"LOCKBOX_LOG_LEVEL": "warn", "LOCKBOX_LOG_FORMAT": "json"})
	log := c.Logger(&buf)
	log.Info("hidden")
	log.Warn("shown", "k", "v")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not one JSON record: %q", buf.String())
	}
	if rec["msg"] != "shown" || rec["k"] != "v" {
		t.Errorf("record %v", rec)
	}

	buf.Reset()
	c, _ = Load(map[string]string{"LOCKBOX_LOG_LEVEL": "debug"})
	c.Logger(&buf).Debug("dbg")
	if !strings.Contains(buf.String(), "level=DEBUG msg=dbg") {
		t.Errorf("text debug record: %q", buf.String())
	}
}

func TestLogValueRedactsRedisPassword(t *testing.T) {
	var buf bytes.Buffer
	c, _ := Load(map[string]string{"LOCKBOX_REDIS_URL": "redis://app:s3cret@redis:6379/0"})
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "config", c)
	out := buf.String()
	if strings.Contains(out, "s3cret") {
		t.Errorf("password logged: %s", out)
	}
	if !strings.Contains(out, "config.LOCKBOX_REDIS_URL=redis://app:xxxxx@redis:6379/0") ||
		!strings.Contains(out, "config.LOCKBOX_REDIS_TIMEOUT=2s") {
		t.Errorf("unexpected log: %s", out)
	}
}

// A webhook receiver's URL may carry its credential in the path, query or
// user info: neither the logged configuration nor a refusal shows it.
func TestWebhookURLsNeverShowTheirCredential(t *testing.T) {
	const token = "T0KEN"
	urls := "https://hooks.example.com/services/" + token + ",https://u:" + token + "@x.example?k=" + token
	var buf bytes.Buffer
	c, err := Load(map[string]string{"LOCKBOX_WEBHOOK_URLS": urls, "LOCKBOX_WEBHOOK_SECRET_FILE": writeFile(t, "secret", "k")})
	if err != nil {
		t.Fatal(err)
	}
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "config", c)
	if out := buf.String(); strings.Contains(out, token) || !strings.Contains(out, "https://hooks.example.com/…,https://x.example/…") {
		t.Errorf("logged configuration: %s", out)
	}
	_, err = Load(map[string]string{"LOCKBOX_WEBHOOK_URLS": "hooks.example.com/services/" + token, "LOCKBOX_WEBHOOK_SECRET_FILE": writeFile(t, "secret", "k")})
	if err == nil || strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), "LOCKBOX_WEBHOOK_URLS") {
		t.Errorf("refusal of a URL without a scheme: %v", err)
	}
}

// A URL refused for its scheme was quoted with the scheme lower-cased, as
// url.Parse keeps it: "HTTP://x" came back as "http://x: write the scheme
// in lower case", the very form asked for, so the user could not see what
// was wrong. The refusal quotes the scheme as written, still without the
// path that may hold a credential.
func TestRefusedURLsQuoteTheSchemeAsWritten(t *testing.T) {
	secret := writeFile(t, "secret", "k")
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"LOCKBOX_WEBHOOK_URLS": "HTTP://x", "LOCKBOX_WEBHOOK_SECRET_FILE": secret},
			"LOCKBOX_WEBHOOK_URLS: HTTP://x: write the scheme in lower case (http://)"},
		{map[string]string{"LOCKBOX_WEBHOOK_URLS": "https://ok.example,Https://hooks.example/services/T0KEN", "LOCKBOX_WEBHOOK_SECRET_FILE": secret},
			"LOCKBOX_WEBHOOK_URLS: Https://hooks.example/…: write the scheme in lower case (https://)"},
		{map[string]string{"LOCKBOX_WEBHOOK_URLS": "FTP://hooks.example/T0KEN", "LOCKBOX_WEBHOOK_SECRET_FILE": secret},
			"LOCKBOX_WEBHOOK_URLS: FTP://hooks.example/… is not an http(s) URL with a host"},
		{map[string]string{"LOCKBOX_UPSTREAMS": "exchange=FTP://up.example/T0KEN"},
			"LOCKBOX_UPSTREAMS: exchange: FTP://up.example/… is not an http(s) base URL without credentials, query or fragment"},
	} {
		_, err := Load(tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "T0KEN") {
			t.Errorf("%v: %v\nwant it to hold %q", tc.env, err, tc.want)
		}
	}
}

func TestVars(t *testing.T) {
	docs := Vars()
	if n := reflect.TypeFor[Config]().NumField(); len(docs) != n {
		t.Fatalf("Vars() has %d entries for %d fields", len(docs), n)
	}
	seen := map[string]bool{}
	for _, d := range docs {
		if !strings.HasPrefix(d.Name, "LOCKBOX_") || d.Name == "LOCKBOX_" {
			t.Errorf("bad name %q", d.Name)
		}
		if seen[d.Name] {
			t.Errorf("duplicate name %s", d.Name)
		}
		seen[d.Name] = true
		if strings.TrimSpace(d.Description) == "" {
			t.Errorf("%s has no desc tag", d.Name)
		}
	}
	want := VarDoc{Name: "LOCKBOX_REDIS_TIMEOUT", Default: "2s", Description: "deadline of each control-plane Redis call, and the longest any one Redis command waits, the proxy's too (the dial, read and write timeout of every connection); more than 0 and at most 5s, half an API call's 10s deadline, so that a Redis that does not answer is a 503 well within it"}
	found := false
	for _, d := range docs {
		if d == want {
			found = true
		}
	}
	if !found {
		t.Errorf("Vars() lacks %+v", want)
	}
}

// LOCKBOX_WEBHOOK_SIGNATURES takes v1, v2 or both in either order, and
// hands them on in the order they are sent, v1 first.
func TestWebhookSignatures(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"v1", "v1"}, {"v2", "v2"}, {"v1,v2", "v1,v2"}, {"v2,v1", "v1,v2"}, {" v2 , v1 ", "v1,v2"},
	} {
		c, err := Load(map[string]string{"LOCKBOX_WEBHOOK_SIGNATURES": tc.value})
		if err != nil {
			t.Errorf("%q: %v", tc.value, err)
			continue
		}
		if got := strings.Join(c.WebhookSchemes(), ","); got != tc.want {
			t.Errorf("%q: WebhookSchemes() = %q, want %q", tc.value, got, tc.want)
		}
	}
	// The zero Config, as tests and tools build it, signs as the default.
	if got := strings.Join(Config{}.WebhookSchemes(), ","); got != "v1" {
		t.Errorf("zero Config: WebhookSchemes() = %q, want v1", got)
	}
}

// A JWKS URL or an OIDC issuer with user info is refused without echoing
// it: the password in it would go to the logs with the error, as a
// refused LOCKBOX_REDIS_URL's or LOCKBOX_UPSTREAMS URL's would.
func TestFetchURLErrorsHideCredentials(t *testing.T) {
	for _, u := range []string{
		"https://user:s3cret@idp.example/keys",
		"https://s3cret@idp.example/keys",
		"http://user:s3cret@localhost:8080/keys",
		"https://user:s3cret@idp.example/keys#frag",
		// Not percent-encoded, the / ends the authority early, and the
		// parser quotes the password's first part as a port.
		"https://user:s3c/ret@idp.example/keys",
	} {
		for _, name := range []string{"LOCKBOX_JWT_JWKS_URL", "LOCKBOX_OIDC_ISSUER"} {
			_, err := Load(map[string]string{name: u})
			if err == nil {
				t.Errorf("%s=%s: no error", name, u)
				continue
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("%s: error leaks the credential: %v", name, err)
			}
			if !strings.Contains(err.Error(), name+": ") {
				t.Errorf("error does not name %s: %v", name, err)
			}
		}
		doc := "issuers:\n  - issuer: https://idp.example\n    audience: lockbox\n    scope: provider\n    jwks_url: " + u + "\n"
		if _, err := LoadIssuers(writeFile(t, "issuers.yaml", doc)); err == nil || strings.Contains(err.Error(), "s3cret") ||
			!strings.Contains(err.Error(), "JWKS URL") {
			t.Errorf("issuers file jwks_url %s: %v", u, err)
		}
	}
}

// A fetch URL's query may hold a credential too (an API key, a signed
// parameter), and identity and console log such URLs with each query
// value redacted: a start-up error about the URL shows it the same way,
// keeping the variable, the query's names and what is wrong.
func TestFetchURLErrorsRedactQuery(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"http://idp.example/keys?api_key=s3cr3t", "must be https"},
		{"https://idp.example:70000/keys?api_key=s3cr3t", "not a TCP port"},
		{"https:///keys?api_key=s3cr3t", "not an absolute URL"},
		{"https://user:pw@idp.example/keys?api_key=s3cr3t", "must not carry a user name or password"},
	} {
		for _, name := range []string{"LOCKBOX_JWT_JWKS_URL", "LOCKBOX_OIDC_ISSUER"} {
			_, err := Load(map[string]string{name: tc.url})
			if err == nil {
				t.Errorf("%s=%s: no error", name, tc.url)
				continue
			}
			msg := err.Error()
			if strings.Contains(msg, "s3cr3t") {
				t.Errorf("%s: error leaks the query's value: %v", name, err)
			}
			if !strings.Contains(msg, name+": ") || !strings.Contains(msg, tc.want) || !strings.Contains(msg, "api_key=REDACTED") {
				t.Errorf("%s=%s: %v, want it to name the variable, say %q and show api_key=REDACTED", name, tc.url, err, tc.want)
			}
		}
		doc := "issuers:\n  - issuer: https://idp.example\n    audience: lockbox\n    scope: provider\n    jwks_url: " + tc.url + "\n"
		if _, err := LoadIssuers(writeFile(t, "issuers.yaml", doc)); err == nil || strings.Contains(err.Error(), "s3cr3t") ||
			!strings.Contains(err.Error(), tc.want) {
			t.Errorf("issuers file jwks_url %s: %v", tc.url, err)
		}
	}
}

// SMTP AUTH with LOCKBOX_SMTP_STARTTLS=none would send the password in
// the clear, which the SMTP client refuses to do to anything but a
// loopback relay: every e-mail would fail at its first send. The pair is
// refused at start-up instead, naming both settings; a loopback relay, or
// none without AUTH, is taken.
func TestSMTPAuthWithoutTLSIsRefused(t *testing.T) {
	pass := writeFile(t, "smtp", "pa55\n")
	env := func(addr, starttls, user string) map[string]string {
		m := map[string]string{"LOCKBOX_SMTP_ADDR": addr, "LOCKBOX_SMTP_FROM": "lockbox@provider.example", "LOCKBOX_SMTP_STARTTLS": starttls}
		if user != "" {
			m["LOCKBOX_SMTP_USERNAME"], m["LOCKBOX_SMTP_PASSWORD_FILE"] = user, pass
		}
		return m
	}
	for _, addr := range []string{"mail.example:587", "10.0.0.25:25", "[2001:db8::25]:25"} {
		_, err := Load(env(addr, "none", "lockbox"))
		if err == nil || !strings.Contains(err.Error(), "LOCKBOX_SMTP_STARTTLS: ") || !strings.Contains(err.Error(), "LOCKBOX_SMTP_USERNAME") {
			t.Errorf("%s: %v, want LOCKBOX_SMTP_STARTTLS refused with LOCKBOX_SMTP_USERNAME", addr, err)
		}
	}
	for _, e := range []map[string]string{
		env("127.0.0.1:25", "none", "lockbox"), env("localhost:25", "none", "lockbox"), env("[::1]:25", "none", "lockbox"),
		env("mail.example:25", "none", ""), env("mail.example:587", "mandatory", "lockbox"), env("mail.example:587", "opportunistic", "lockbox"),
	} {
		if _, err := Load(e); err != nil {
			t.Errorf("%v: %v", e, err)
		}
	}
}

// A LOCKBOX_UPSTREAMS URL whose port is no TCP port (0, or past 65535)
// parses as a URL, and every call to its service would then fail to
// connect; it is refused at start-up, naming the variable and the service.
func TestUpstreamURLPortOutOfRange(t *testing.T) {
	for _, u := range []string{"http://exchange.internal:99999", "https://exchange.internal:65536/api", "http://exchange.internal:0"} {
		_, err := Load(map[string]string{"LOCKBOX_UPSTREAMS": "exchange=" + u})
		if err == nil || !strings.Contains(err.Error(), "LOCKBOX_UPSTREAMS: exchange: ") || !strings.Contains(err.Error(), "port") {
			t.Errorf("%s: %v, want LOCKBOX_UPSTREAMS: exchange: refused for its port", u, err)
		}
	}
	for _, u := range []string{"http://exchange.internal:65535", "https://exchange.internal", "http://[::1]:9001/api"} {
		if _, err := Load(map[string]string{"LOCKBOX_UPSTREAMS": "exchange=" + u}); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// The SMTP settings beside LOCKBOX_SMTP_ADDR do nothing without it: no
// e-mail is sent, each is only logged, and the managers and approvers
// are never told of a request. Set without it, each is refused, naming
// LOCKBOX_SMTP_ADDR, rather than ignored.
func TestSMTPSettingsNeedTheServer(t *testing.T) {
	pass := writeFile(t, "smtp", "pa55\n")
	_, err := Load(map[string]string{
		"LOCKBOX_SMTP_FROM":          "lockbox@provider.example",
		"LOCKBOX_SMTP_USERNAME":      "lockbox",
		"LOCKBOX_SMTP_PASSWORD_FILE": pass,
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"LOCKBOX_SMTP_FROM", "LOCKBOX_SMTP_USERNAME", "LOCKBOX_SMTP_PASSWORD_FILE"} {
		if !strings.Contains(err.Error(), name+": set, but LOCKBOX_SMTP_ADDR is not") {
			t.Errorf("%s not refused for the missing LOCKBOX_SMTP_ADDR:\n%v", name, err)
		}
	}
	if _, err := Load(map[string]string{"LOCKBOX_SMTP_ADDR": "mail.example:587", "LOCKBOX_SMTP_FROM": "lockbox@provider.example",
		"LOCKBOX_SMTP_USERNAME": "lockbox", "LOCKBOX_SMTP_PASSWORD_FILE": pass}); err != nil {
		t.Errorf("with LOCKBOX_SMTP_ADDR: %v", err)
	}
}

// LOCKBOX_SMTP_FROM is parsed as the sender of every e-mail: a value that
// is no address (a name alone, a list, an address outside ASCII, which a
// server without SMTPUTF8 refuses) would let the server start and then
// fail every notification, retried for two hours and dead-lettered, with
// nobody told of a request. It is refused at start-up, naming the variable.
func TestSMTPFromMustBeAnAddress(t *testing.T) {
	for _, from := range []string{"lockbox", "lockbox@", "Lockbox", "a@provider.example, b@provider.example",
		"lockbox@prövider.example", "Lockbox <lockbox>", "lockbox@provider.example\r\nBcc: x@y.example"} {
		_, err := Load(map[string]string{"LOCKBOX_SMTP_ADDR": "mail.example:587", "LOCKBOX_SMTP_FROM": from})
		if err == nil {
			t.Errorf("LOCKBOX_SMTP_FROM=%q accepted", from)
			continue
		}
		if !strings.HasPrefix(err.Error(), "LOCKBOX_SMTP_FROM: ") {
			t.Errorf("LOCKBOX_SMTP_FROM=%q: error does not name it: %v", from, err)
		}
	}
	for _, from := range []string{"lockbox@provider.example", "Lockbox <lockbox@provider.example>", "Lockbox Ö <lockbox@provider.example>"} {
		if _, err := Load(map[string]string{"LOCKBOX_SMTP_ADDR": "mail.example:587", "LOCKBOX_SMTP_FROM": from}); err != nil {
			t.Errorf("LOCKBOX_SMTP_FROM=%q: %v", from, err)
		}
	}
}

// The other URLs Lockbox fetches from, sends to or builds redirects from
// are held to a TCP port too, as LOCKBOX_UPSTREAMS is: a digit too many
// would otherwise fail every fetch, delivery or sign-in, long after
// start-up. Each is refused naming its variable.
func TestURLPortOutOfRange(t *testing.T) {
	secret := writeFile(t, "secret", "s3cret-value\n")
	for name, env := range map[string]map[string]string{
		"LOCKBOX_JWT_JWKS_URL": {"LOCKBOX_JWT_JWKS_URL": "https://idp.example:99999/keys"},
		"LOCKBOX_OIDC_ISSUER": {"LOCKBOX_OIDC_ISSUER": "https://idp.example:65536", "LOCKBOX_OIDC_CLIENT_ID": "console",
			"LOCKBOX_OIDC_CLIENT_SECRET_FILE": secret, "LOCKBOX_CONSOLE_URL": "https://lockbox.example.com"},
		"LOCKBOX_CONSOLE_URL":  {"LOCKBOX_CONSOLE_URL": "https://lockbox.example.com:84430"},
		"LOCKBOX_WEBHOOK_URLS": {"LOCKBOX_WEBHOOK_URLS": "https://hooks.example:99999/lockbox", "LOCKBOX_WEBHOOK_SECRET_FILE": secret},
	} {
		_, err := Load(env)
		if err == nil || !strings.Contains(err.Error(), name+": ") {
			t.Errorf("%s: %v, want it refused", name, err)
		}
	}
	doc := "issuers:\n  - issuer: https://idp.example\n    audience: lockbox\n    scope: provider\n    jwks_url: https://idp.example:99999/keys\n"
	if _, err := LoadIssuers(writeFile(t, "issuers.yaml", doc)); err == nil {
		t.Error("issuers file jwks_url with port 99999: no error")
	}
}

// One caller's bound on audit reads may be the whole replica's.
func TestAuditReadsOfOneCallerMayBeAll(t *testing.T) {
	c, err := Load(map[string]string{"LOCKBOX_AUDIT_READS_PER_CALLER": "4", "LOCKBOX_AUDIT_READS": "4"})
	if err != nil {
		t.Fatal(err)
	}
	if c.AuditReadsPerCaller != 4 || c.AuditReads != 4 {
		t.Errorf("got %d per caller and %d in all", c.AuditReadsPerCaller, c.AuditReads)
	}
}

// The console's session and CSRF cookies are Secure only when
// LOCKBOX_CONSOLE_URL is https: an http URL of any other host than a
// loopback one sent sign-in sessions over the network in clear text. It
// is refused at start-up, in one line naming the variable; a loopback
// http URL ("lockbox dev", a browser on the same machine) is kept, as is
// https with TLS ended in front of Lockbox (LOCKBOX_TLS_* unset).
func TestConsoleURLHTTPOnlyOnLoopback(t *testing.T) {
	for _, u := range []string{"http://lockbox.example.com", "http://lockbox.example.com:8080", "HTTP://lockbox.example.com",
		"http://10.0.0.5:8080", "http://[2001:db8::1]:8080", "http://localhost.example.com", "http://127.0.0.1.nip.io"} {
		_, err := Load(map[string]string{"LOCKBOX_CONSOLE_URL": u})
		if err == nil {
			t.Errorf("LOCKBOX_CONSOLE_URL=%q accepted", u)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "LOCKBOX_CONSOLE_URL: ") || strings.Contains(msg, "\n") || !strings.Contains(msg, "https") {
			t.Errorf("LOCKBOX_CONSOLE_URL=%q: want one line naming the variable and https, got %q", u, msg)
		}
	}
	for _, u := range []string{"http://localhost:8080", "http://LOCALHOST:8080", "http://127.0.0.1:8080", "http://[::1]:8080",
		"https://lockbox.example.com", "https://10.0.0.5:8443"} {
		if _, err := Load(map[string]string{"LOCKBOX_CONSOLE_URL": u}); err != nil {
			t.Errorf("LOCKBOX_CONSOLE_URL=%q: %v", u, err)
		}
	}
}

// A configuration LoadFor refuses is ErrInvalid, which "lockbox
// serve" exits 78 on, and the marking changes nothing of the message nor
// hides the variable errors under it.
func TestRefusedConfigurationIsErrInvalid(t *testing.T) {
	_, err := LoadFor(map[string]string{"LOCKBOX_REDIS_TIMEOUT": "5"}, ModeServe)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("LoadFor: %v, not ErrInvalid", err)
	}
	var ve *VarError
	if !errors.As(err, &ve) || ve.Var != "LOCKBOX_REDIS_TIMEOUT" {
		t.Errorf("no *VarError for LOCKBOX_REDIS_TIMEOUT under %v", err)
	}
	if strings.Contains(err.Error(), ErrInvalid.Error()) {
		t.Errorf("the message grew a line: %q", err.Error())
	}
	if _, err := Load(map[string]string{"LOCKBOX_API_ADDR": "bogus"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Load: %v, not ErrInvalid", err)
	}
	if Invalid(nil) != nil {
		t.Error("Invalid(nil) is not nil")
	}
}

// TestIntervalFloors: an interval that sets how often every replica works
// on Redis, the policy directory or the identity provider is refused below
// its floor, with the one-line error naming the variable and the floor,
// and taken at the floor itself; the defaults stay above every floor.
func TestIntervalFloors(t *testing.T) {
	tests := []struct {
		key                 string
		floor               time.Duration
		stated, below, want string // stated: as README's row gives the floor
	}{
		{"LOCKBOX_SWEEP_INTERVAL", MinSweepInterval, "1s", "1ns", "LOCKBOX_SWEEP_INTERVAL: must be at least 1s, got 1ns"},
		{"LOCKBOX_SWEEP_INTERVAL", MinSweepInterval, "1s", "999ms", "LOCKBOX_SWEEP_INTERVAL: must be at least 1s, got 999ms"},
		{"LOCKBOX_POLICY_RELOAD_INTERVAL", MinPolicyReloadInterval, "1s", "1ns", "LOCKBOX_POLICY_RELOAD_INTERVAL: must be at least 1s, got 1ns"},
		{"LOCKBOX_POLICY_RELOAD_INTERVAL", MinPolicyReloadInterval, "1s", "100ms", "LOCKBOX_POLICY_RELOAD_INTERVAL: must be at least 1s, got 100ms"},
		{"LOCKBOX_SIEM_CLAIM_AFTER", MinSIEMClaimAfter, "30s", "1ns", "LOCKBOX_SIEM_CLAIM_AFTER: must be at least 30s, got 1ns"},
		{"LOCKBOX_SIEM_CLAIM_AFTER", MinSIEMClaimAfter, "30s", "29s", "LOCKBOX_SIEM_CLAIM_AFTER: must be at least 30s, got 29s"},
		{"LOCKBOX_JOBS_RESCAN_INTERVAL", MinJobsRescanInterval, "1m", "1ns", "LOCKBOX_JOBS_RESCAN_INTERVAL: must be at least 1m0s, got 1ns"},
		{"LOCKBOX_JOBS_RESCAN_INTERVAL", MinJobsRescanInterval, "1m", "59s", "LOCKBOX_JOBS_RESCAN_INTERVAL: must be at least 1m0s, got 59s"},
		{"LOCKBOX_CONSOLE_REVERIFY", MinConsoleReverify, "1m", "1ns", "LOCKBOX_CONSOLE_REVERIFY: must be at least 1m0s, got 1ns"},
		{"LOCKBOX_CONSOLE_REVERIFY", MinConsoleReverify, "1m", "59s", "LOCKBOX_CONSOLE_REVERIFY: must be at least 1m0s, got 59s"},
	}
	defaults := map[string]string{}
	for _, v := range Vars() {
		defaults[v.Name] = v.Default
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.below, func(t *testing.T) {
			_, err := Load(map[string]string{tt.key: tt.below})
			if err == nil {
				t.Fatalf("%s=%s: no error, want %q", tt.key, tt.below, tt.want)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("%s=%s: error %q, want one line starting %q", tt.key, tt.below, msg, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s=%s: error is not ErrInvalid: %v", tt.key, tt.below, err)
			}
			if _, err := Load(map[string]string{tt.key: tt.floor.String()}); err != nil {
				t.Errorf("%s=%s (the floor): %v", tt.key, tt.floor, err)
			}
			if d, err := time.ParseDuration(defaults[tt.key]); err != nil || d < tt.floor {
				t.Errorf("%s: default %q is under the floor %s (%v)", tt.key, defaults[tt.key], tt.floor, err)
			}
			// README's row (the desc tag) states the floor a reader meets.
			var desc string
			for _, v := range Vars() {
				if v.Name == tt.key {
					desc = v.Description
				}
			}
			if stated := "at least " + tt.stated; !strings.Contains(desc, stated) {
				t.Errorf("%s's description does not say %q: %s", tt.key, stated, desc)
			}
		})
	}
}
