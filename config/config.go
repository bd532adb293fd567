// Package config loads Lockbox's configuration from LOCKBOX_-prefixed
// environment variables and checks it before anything is built, so that bad
// configuration stops start-up with a message naming the variable.
//
// Load parses with caarlos0/env (secrets read once from their files with its
// "file" option, LOCKBOX_UPSTREAMS with its map parsing) and runs the checks
// that hold in every mode; Validate adds what one subcommand needs (a Redis
// and a JWT key for "lockbox serve") and looks at the files Lockbox reads
// later, or again when they change. Every invalid variable is reported at
// once, each error naming the variable with its full name, e.g.
// `LOCKBOX_REDIS_URL: required by "lockbox serve"`.
//
// The package owns no behaviour beyond that: it imports no other Lockbox
// package but internal/logurl (to show a URL in an error as the logs show
// it), and cmd/ hands the values to the components it builds.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/caarlos0/env/v11"
)

// Prefix starts the name of every variable this package reads.
const Prefix = "LOCKBOX_"

// MaxJWTLeeway bounds LOCKBOX_JWT_LEEWAY: the leeway is how long after "exp"
// a token is still accepted, so a large one quietly extends every session.
const MaxJWTLeeway = 5 * time.Minute

// MinJWKSRefresh is the least LOCKBOX_JWT_JWKS_REFRESH: the background
// fetches of a JWKS URL come no more often than the fetches tokens naming
// unknown keys may cause (identity.DefaultMinRefreshInterval), so a typo
// (1ms for 1m) can't make Lockbox hammer the identity provider.
const MinJWKSRefresh = 30 * time.Second

// The intervals of the background work have a least value each, as
// LOCKBOX_JWT_JWKS_REFRESH has: every replica works at each tick, so a
// typo (1ns for 1s, 1ms for 1m) would have all of them hammer Redis, the
// policy directory or the identity provider in a tight loop. Each floor
// is at or under its default. (This package imports no other Lockbox
// package: the numbers the floors rest on are repeated here, and
// internal/server's tests hold the two together.)

// MinSweepInterval is the least LOCKBOX_SWEEP_INTERVAL. Each pass costs
// every jobs replica a claim on Redis (and audit retention's trim, when
// set), and what it records needs no finer precision: access ends at a
// grant's absolute expiry whether or not a sweep ran, a request past its
// decision window can no longer be decided, and a second is the
// staleness the security contract allows any replica's view of a grant.
const MinSweepInterval = time.Second

// MinPolicyReloadInterval is the least LOCKBOX_POLICY_RELOAD_INTERVAL.
// Each poll reads and hashes every file of the directory, twice when it
// changed; and a directory still changing after 10 polls in a row is
// refused as broken (policy's unsettledPolls), which at a second apart is
// far longer than a deploy takes to write its files, and at less is not.
// A change is live within about a second; SIGHUP reloads at once.
const MinPolicyReloadInterval = time.Second

// MinAuditSealInterval is the least LOCKBOX_AUDIT_SEAL_INTERVAL: each
// round reads every tenant's chain, and a seal a second is as close as an
// auditor needs.
const MinAuditSealInterval = time.Second

// MinSIEMClaimAfter is the least LOCKBOX_SIEM_CLAIM_AFTER. Records a
// replica read stay pending while it writes them, and another replica
// takes over those pending this long: a replica still writing a batch
// would have its records written twice. A write to the sink may take 10 s
// before the sink counts as stalled (audit.SinkWriteTimeout), and the
// acknowledgement 2 s more; the floor is more than twice that. A tenant
// whose records wait at another replica is also visited again every half
// of this.
const MinSIEMClaimAfter = 30 * time.Second

// MinJobsRescanInterval is the least LOCKBOX_JOBS_RESCAN_INTERVAL. A
// rescan reads every tenant (about 4 Redis commands each), and its lease
// is checked every minute, or every interval when that is shorter
// (internal/due): a minute keeps the one cost that grows with the number
// of tenants to that cadence at most.
const MinJobsRescanInterval = time.Minute

// MinConsoleReverify is the least LOCKBOX_CONSOLE_REVERIFY. A session due
// is verified again at its next request, and an open admin center tab
// polls every few seconds: a shorter interval would redeem each session's
// refresh token at the identity provider (or send its browser through the
// provider's sign-in) at nearly every poll. A minute is also how long a
// session waits to ask a provider that failed to answer again
// (console's reverifyRetry).
const MinConsoleReverify = time.Minute

// maxJWKSMaxAge bounds LOCKBOX_JWT_JWKS_MAX_AGE: how long a key the identity
// provider may have retired keeps working while Lockbox can't hear of it.
const maxJWKSMaxAge = 30 * 24 * time.Hour

// keySources counts the token key settings that are set: exactly one may
// be.
func (c Config) keySources() int {
	n := 0
	for _, v := range []string{c.JWKSURL, c.JWKSFile, c.JWTHMACSecretFile, c.IssuersFile} {
		if v != "" {
			n++
		}
	}
	return n
}

// MaxAssertionTTL bounds LOCKBOX_PROXY_ASSERTION_TTL: an assertion is for
// one call, now (grantsig.MaxTTL; this package imports no other Lockbox
// package).
const MaxAssertionTTL = 60 * time.Second

// The deadlines of the waits on Redis have a longest value each. The
// security contract wants a dependency that hangs to be a fast 503, told
// while the client still waits for it: a deadline the listener's own
// timeouts outlast would turn the 503 into a connection cut with no
// answer, and one near a client's patience into a client that gave up
// first. Redis answers a command in well under a millisecond, so each bound
// is thousands of times what a healthy Redis needs. (This package imports
// no other Lockbox package: the numbers of the servers are repeated here,
// and internal/server's tests hold the two together.)

// MaxRedisTimeout bounds LOCKBOX_REDIS_TIMEOUT: the deadline of each
// control-plane Redis call, and the dial, read and write timeout of every
// Redis connection, which cuts each command's wait whatever its context
// allows (the proxy's lookups and audit writes too). An API call has 10 s
// for all its work: at half of that, a Redis that does not answer one
// command is a 503 with the call's deadline still ahead, not a call that
// runs into it.
const MaxRedisTimeout = 5 * time.Second

// MaxGrantTimeout bounds LOCKBOX_GRANT_TIMEOUT. Before a proxied call is
// forwarded or refused it may wait on its grant lookup twice (again after
// a slow audit write), on the policy (250 ms) and on its audit record
// (about twice LOCKBOX_AUDIT_TIMEOUT): at the bounds 2×5 s + 0.25 s +
// 2×10 s, about half the minute the proxy waits on a client
// (proxy.DefaultClientTimeout, its listener's read and write timeouts),
// and well within the three quarters of it that the call's deadline on
// its client is ahead when the checks begin, so that its 503 is written
// rather than cut with the connection. No longer than MaxRedisTimeout
// either, which cuts each of the lookup's reads anyway.
const MaxGrantTimeout = 5 * time.Second

// MaxAuditTimeout bounds LOCKBOX_AUDIT_TIMEOUT. The audit write is durable
// (an fsync under AOF always, a WAIT for replicas), so it may take longer
// than a read; but a record may wait about twice this (queued, then in
// Redis) before its call's 503, which must come well within the proxy's
// minute (see MaxGrantTimeout).
const MaxAuditTimeout = 10 * time.Second

// ProxyMaxBodyBytes is the proxy's limit on one call's request body
// (proxy.DefaultMaxBodyBytes; this package imports no other Lockbox
// package), which LOCKBOX_PROXY_BODY_BUFFER_BYTES must hold at least once.
// "lockbox serve" hands the proxy this value, so the two can't differ.
const ProxyMaxBodyBytes = 10 << 20

// Config is Lockbox's configuration. The comment on each field is the
// variable's documentation (README copies it); the desc tag carries the same
// text for Vars.
type Config struct {
	// APIAddr is the host:port of the control-plane HTTP API (/v1) and the
	// console.
	APIAddr string `env:"API_ADDR" envDefault:"127.0.0.1:8080" desc:"host:port of the control-plane HTTP API (/v1) and the console"`
	// ProxyAddr is the host:port of the enforcement proxy that support
	// engineers call.
	ProxyAddr string `env:"PROXY_ADDR" envDefault:"127.0.0.1:8081" desc:"host:port of the enforcement proxy that support engineers call"`
	// MetricsAddr is the host:port serving /metrics, /livez and /readyz;
	// never the proxy's.
	MetricsAddr string `env:"METRICS_ADDR" envDefault:"127.0.0.1:8082" desc:"host:port serving /metrics, /livez and /readyz; never the proxy's"`
	// TrustedProxies are the proxies in front of the proxy and the API
	// whose X-Forwarded-For says who the client is (see
	// TrustedProxyRanges).
	TrustedProxies string `env:"TRUSTED_PROXIES" desc:"comma-separated CIDRs or single addresses of the proxies in front of LOCKBOX_PROXY_ADDR and LOCKBOX_API_ADDR (load balancers, ingress controllers, a service mesh's sidecar). From a socket peer in them, the client IP Lockbox records (audit ClientIP, request histories, the policy's call.client_ip, logs) is taken from X-Forwarded-For: read from the right, these proxies' own entries skipped, the first other address is the client. Forwarded and X-Real-IP are never read, so the proxies must set X-Forwarded-For. 0.0.0.0/0 and ::/0 are refused, and so are ranges that together hold every IPv4 or every IPv6 address (0.0.0.0/1,128.0.0.0/1). Empty: the socket peer, and no header is read"`

	// TLSCertFile and TLSKeyFile are the certificate the listeners serve
	// TLS with (see tls.go); unset, they speak plain HTTP.
	TLSCertFile string `env:"TLS_CERT_FILE" desc:"PEM certificate chain (leaf first) the listeners named in LOCKBOX_TLS_LISTENERS serve TLS with: TLS 1.2 or later, HTTP/2 where the client offers it; re-read when it changes, so a renewed certificate (e.g. from cert-manager) is served without a restart, and a broken new pair is logged and ignored; needs LOCKBOX_TLS_KEY_FILE; unset: plain HTTP"`
	TLSKeyFile  string `env:"TLS_KEY_FILE" desc:"PEM private key of LOCKBOX_TLS_CERT_FILE"`
	// TLSListeners names the listeners that serve TLS.
	TLSListeners string `env:"TLS_LISTENERS" envDefault:"proxy,api,metrics" desc:"the listeners that serve TLS when LOCKBOX_TLS_CERT_FILE is set, comma-separated: proxy, api, metrics (e.g. proxy,api to keep health and metrics on plain HTTP); refused without LOCKBOX_TLS_CERT_FILE"`
	// TLSClientCAFile makes the API require client certificates.
	TLSClientCAFile string `env:"TLS_CLIENT_CA_FILE" desc:"PEM CA certificates; when set, the API and admin center (LOCKBOX_API_ADDR) accept only connections with a client certificate issued by one of them. The certificate admits the connection, never a user: every call still needs its bearer token or session, which alone say who calls. Needs api in LOCKBOX_TLS_LISTENERS; read at start-up"`
	// UpstreamCAFile and the client pair configure the proxy's TLS to
	// https upstreams.
	UpstreamCAFile         string `env:"UPSTREAM_CA_FILE" desc:"PEM CA certificates that verify every https upstream of LOCKBOX_UPSTREAMS, instead of the system's roots; read at start-up"`
	UpstreamClientCertFile string `env:"UPSTREAM_CLIENT_CERT_FILE" desc:"PEM certificate chain the proxy presents to https upstreams that ask for a client certificate (mutual TLS), the same for every upstream; re-read when it changes; needs LOCKBOX_UPSTREAM_CLIENT_KEY_FILE"`
	UpstreamClientKeyFile  string `env:"UPSTREAM_CLIENT_KEY_FILE" desc:"PEM private key of LOCKBOX_UPSTREAM_CLIENT_CERT_FILE"`

	// Serve lists what "lockbox serve" runs in this process: proxy, api
	// (the /v1 API and the admin center) and jobs (request expiry, audit
	// retention, notification delivery, SIEM forwarding). Metrics and health
	// always run.
	Serve string `env:"SERVE" envDefault:"proxy,api,jobs" desc:"what \"lockbox serve\" runs, comma-separated: proxy (the enforcement proxy), api (the /v1 API and the admin center), jobs (request expiry, audit retention, notification delivery, SIEM forwarding); metrics and health always run; a sidecar runs proxy alone"`

	// RedisURL is the Redis holding requests, grants and audit records
	// (redis://, rediss:// or unix://). "lockbox serve" needs exactly one
	// of it, RedisSentinelAddrs and RedisClusterAddrs; with none,
	// "lockbox dev" runs an embedded store.
	RedisURL string `env:"REDIS_URL" desc:"one Redis holding requests, grants and audit records (redis://, rediss:// or unix://; its skip_verify, dial_timeout, read_timeout, write_timeout and max_retries options are refused: LOCKBOX_REDIS_TIMEOUT sets the timeouts); \"lockbox serve\" needs exactly one of this, LOCKBOX_REDIS_SENTINEL_ADDRS and LOCKBOX_REDIS_CLUSTER_ADDRS; embedded store in \"lockbox dev\" when none is set"`
	// RedisSentinelAddrs and RedisSentinelMaster name a Sentinel
	// deployment; Lockbox follows its master through failovers.
	RedisSentinelAddrs  string `env:"REDIS_SENTINEL_ADDRS" desc:"comma-separated host:port of Redis Sentinels; with LOCKBOX_REDIS_SENTINEL_MASTER, Lockbox uses the master they name and follows it through failovers"`
	RedisSentinelMaster string `env:"REDIS_SENTINEL_MASTER" desc:"name of the master the sentinels monitor; required with LOCKBOX_REDIS_SENTINEL_ADDRS"`
	// RedisClusterAddrs are seed nodes of a Redis Cluster.
	RedisClusterAddrs string `env:"REDIS_CLUSTER_ADDRS" desc:"comma-separated host:port of Redis Cluster nodes to start from (the others are discovered); each tenant's keys share one hash slot"`
	// RedisUsername and RedisPassword authenticate to Redis (not to the
	// sentinels).
	RedisUsername string `env:"REDIS_USERNAME" desc:"Redis ACL user of every data connection (with LOCKBOX_REDIS_URL, instead of one in the URL)"`
	RedisPassword Secret `env:"REDIS_PASSWORD_FILE,file" desc:"file holding the Redis password of every data connection (with LOCKBOX_REDIS_URL, instead of one in the URL); read at start-up"`
	// RedisSentinelPassword authenticates to the sentinels.
	RedisSentinelPassword Secret `env:"REDIS_SENTINEL_PASSWORD_FILE,file" desc:"file holding the sentinels' own password (their requirepass), when they have one; read at start-up"`
	// RedisTLS and the files below secure every connection to Redis and
	// the sentinels.
	RedisTLS         bool   `env:"REDIS_TLS" envDefault:"false" desc:"connect to the sentinels or cluster nodes over TLS, verified against the system's roots or LOCKBOX_REDIS_TLS_CA_FILE (implied by the TLS file variables; LOCKBOX_REDIS_URL says it with rediss://)"`
	RedisTLSCAFile   string `env:"REDIS_TLS_CA_FILE" desc:"PEM file of the CA certificates that verify Redis's (and the sentinels') server certificates, instead of the system's roots"`
	RedisTLSCertFile string `env:"REDIS_TLS_CERT_FILE" desc:"PEM client certificate presented to Redis (TLS client authentication); needs LOCKBOX_REDIS_TLS_KEY_FILE"`
	RedisTLSKeyFile  string `env:"REDIS_TLS_KEY_FILE" desc:"PEM private key of LOCKBOX_REDIS_TLS_CERT_FILE"`
	// RedisTimeout is the deadline of each control-plane Redis call, and
	// every Redis connection's dial, read and write timeout.
	RedisTimeout time.Duration `env:"REDIS_TIMEOUT" envDefault:"2s" desc:"deadline of each control-plane Redis call, and the longest any one Redis command waits, the proxy's too (the dial, read and write timeout of every connection); more than 0 and at most 5s, half an API call's 10s deadline, so that a Redis that does not answer is a 503 well within it"`

	// PolicyDir is the directory of Rego policies and their data; empty means
	// the policies built into the binary.
	PolicyDir string `env:"POLICY_DIR" desc:"directory of Rego policies and their data (activities/data.json); empty means the policies built into the binary"`

	// JWTIssuer is the required "iss" of every token.
	JWTIssuer string `env:"JWT_ISSUER" envDefault:"lockbox" desc:"required \"iss\" of every token"`
	// JWTAudience is the required "aud" of every token.
	JWTAudience string `env:"JWT_AUDIENCE" envDefault:"lockbox" desc:"required \"aud\" of every token"`
	// JWTTokenTypes, when set, are the only "typ" headers tokens may carry,
	// comma-separated.
	JWTTokenTypes string `env:"JWT_TOKEN_TYPES" desc:"comma-separated \"typ\" headers every token must carry, e.g. at+jwt (RFC 9068 access tokens): a token of another type, or with none, is refused; empty: JWT, at+jwt or none"`
	// JWTSubjectClaim is the claim of the single issuer's tokens that is
	// the user id, as an issuers file entry's claims.subject: Entra ID's
	// sub, say, differs between two app registrations of one user, and its
	// oid does not.
	JWTSubjectClaim string `env:"JWT_SUBJECT_CLAIM" envDefault:"sub" desc:"claim of every token that is the user id, e.g. oid; a token without it is refused; where LOCKBOX_OIDC_ISSUER is LOCKBOX_JWT_ISSUER, LOCKBOX_OIDC_SUBJECT_CLAIM must name the same claim"`
	// JWKSURL, JWKSFile and JWTHMACSecretFile are where the keys that
	// verify tokens come from. "lockbox serve" needs exactly one of them,
	// or IssuersFile.
	JWKSURL           string `env:"JWT_JWKS_URL" desc:"the identity provider's JWKS endpoint (https, or http on localhost) whose keys verify tokens: fetched with a deadline, again every LOCKBOX_JWT_JWKS_REFRESH and when a token names an unknown key; \"lockbox serve\" needs exactly one of this, LOCKBOX_JWT_JWKS_FILE, LOCKBOX_JWT_HMAC_SECRET_FILE and LOCKBOX_ISSUERS_FILE"`
	JWKSFile          string `env:"JWT_JWKS_FILE" desc:"JWKS file of public keys that verify tokens, read again when it changes; \"lockbox serve\" needs exactly one of this, LOCKBOX_JWT_JWKS_URL, LOCKBOX_JWT_HMAC_SECRET_FILE and LOCKBOX_ISSUERS_FILE"`
	JWTHMACSecretFile string `env:"JWT_HMAC_SECRET_FILE" desc:"file holding the HMAC secret (at least 32 bytes besides white space) that verifies tokens, read again when it changes; a file of public keys (a JWKS, a JWK or PEM) is refused; \"lockbox serve\" needs exactly one of this, LOCKBOX_JWT_JWKS_URL, LOCKBOX_JWT_JWKS_FILE and LOCKBOX_ISSUERS_FILE"`
	// JWKSRefresh and JWKSMaxAge govern keys fetched from JWKS URLs.
	JWKSRefresh time.Duration `env:"JWT_JWKS_REFRESH" envDefault:"5m" desc:"how often JWKS URLs are fetched in the background (at least 30s; each URL at an interval of its own between three quarters of this and this, so that many are not fetched at once); a token naming an unknown key fetches at once, at most every 30s per issuer; the admin center fetches its issuers' jwks_uri again before checking an ID token once the keys are this old, so a key an identity provider no longer lists stops verifying within it"`
	JWKSMaxAge  time.Duration `env:"JWT_JWKS_MAX_AGE" envDefault:"24h" desc:"how long keys fetched from a JWKS URL (or an admin center issuer's jwks_uri) keep verifying while the URL can't be fetched again, or serves a JWKS Lockbox refuses (at most 720h, more than LOCKBOX_JWT_JWKS_REFRESH); then that issuer's tokens are refused until it answers"`
	// IssuersFile lists several trusted issuers, each with a scope.
	IssuersFile string `env:"ISSUERS_FILE" desc:"YAML file of the trusted token issuers, each with its keys, audience, claim names, scope (provider, or one tenant) and admin center sign-in (see Identity providers); replaces LOCKBOX_JWT_ISSUER, LOCKBOX_JWT_AUDIENCE, the LOCKBOX_JWT_ key settings and LOCKBOX_OIDC_, which are refused beside it"`
	// JWTLeeway is the clock skew allowed when checking "exp" and "nbf"
	// (at most 5m).
	JWTLeeway time.Duration `env:"JWT_LEEWAY" envDefault:"30s" desc:"clock skew allowed when checking \"exp\" and \"nbf\" (at most 5m; 0: none, tokens are checked to the second)"`

	// Upstreams maps each service to its upstream base URL:
	// "exchange=http://127.0.0.1:9001,sharepoint=http://...". Required by
	// "lockbox serve"; "lockbox dev" starts demo services when empty.
	Upstreams map[Service]string `env:"UPSTREAMS" envSeparator:"," envKeyValSeparator:"=" desc:"service=URL pairs, comma-separated: where each proxied service is forwarded (e.g. exchange=http://127.0.0.1:9001); required by \"lockbox serve\" with the proxy in LOCKBOX_SERVE, demo services in \"lockbox dev\" when empty"`
	// ProxySigningKeyFile is the private key that signs the X-Lockbox-Grant
	// assertions upstreams verify. Required by "lockbox serve" with the
	// proxy; generated by "lockbox dev".
	ProxySigningKeyFile string `env:"PROXY_SIGNING_KEY_FILE" desc:"private key (PEM) signing the X-Lockbox-Grant assertions upstreams verify: Ed25519 (EdDSA, cheaper to sign with) or P-256 (ES256); read again on SIGHUP; required by \"lockbox serve\" with the proxy in LOCKBOX_SERVE, generated (Ed25519) by \"lockbox dev\""`
	// ProxyPublishedKeyFiles are more keys in the assertion keys' JWKS.
	ProxyPublishedKeyFiles string `env:"PROXY_PUBLISHED_KEY_FILES" desc:"comma-separated PEM files of public (or private) keys, one key a file, published in the JWKS of assertion keys beside the signing key's: the previous signing key until upstreams no longer need it, the next one before the switch, and on replicas without the proxy the signing key's public half"`
	// ProxyAssertionSecretFiles keys some services' assertions with an
	// HS256 secret of their own instead of the signing key.
	ProxyAssertionSecretFiles string `env:"PROXY_ASSERTION_SECRET_FILES" desc:"service=file pairs, comma-separated: the X-Lockbox-Grant assertions of each service listed are HS256 JWS keyed with the secret in its file (its bytes with every trailing CR and LF removed, at least 32 besides white space, e.g. from openssl rand -base64 48) instead of signed with LOCKBOX_PROXY_SIGNING_KEY_FILE; read again on SIGHUP. The upstream checks them with the same file. A MAC costs the proxy about 1 µs a call, an Ed25519 signature about 13 µs, but the upstream holding the secret could make such assertions itself, so they prove nothing to anyone else: use it for upstreams that only check their own calls. Each service must be in LOCKBOX_UPSTREAMS, and each secret its own: not another service's, nor any other secret the same process is given (a token, webhook, Redis, SMTP or client secret)"`
	// ProxyJWKSFile is where the JWKS of assertion keys is written at
	// start-up.
	ProxyJWKSFile string `env:"PROXY_JWKS_FILE" desc:"file the JWKS of assertion keys (the signing key's and LOCKBOX_PROXY_PUBLISHED_KEY_FILES) is written to at start-up and on SIGHUP, for upstreams that read keys from a file; the API serves the same at GET /v1/keys; \"lockbox dev\" writes $LOCKBOX_DEV_DIR/grant-jwks.json"`
	// ProxyAssertionTTL is how long an X-Lockbox-Grant assertion is valid.
	ProxyAssertionTTL time.Duration `env:"PROXY_ASSERTION_TTL" envDefault:"30s" desc:"how long an X-Lockbox-Grant assertion is valid, from 1s to 60s (never past its grant's end): the trip to the upstream and the clocks' difference"`
	// ProxyAssertionIssuer is the assertions' "iss".
	ProxyAssertionIssuer string `env:"PROXY_ASSERTION_ISSUER" envDefault:"lockbox" desc:"\"iss\" of the X-Lockbox-Grant assertions, which upstreams check, and of the audit chains' seals, which \"audit verify\" checks: set it alike on every replica"`
	// ProxyBodyBufferBytes bounds the request bodies the proxy holds in
	// memory at once, across calls.
	ProxyBodyBufferBytes int64 `env:"PROXY_BODY_BUFFER_BYTES" envDefault:"67108864" desc:"bytes of request bodies the proxy holds in memory at once, all calls together: the form bodies and POSTed JSON bodies it reads whole (each at most 10485760 bytes) to refuse method overrides in them; a call whose body does not fit in what is left gets 503 overloaded with Retry-After, before anything is audited, and so does one whose operator's calls would hold more than a quarter of it (or 10485760 bytes if that is more), while other operators' calls still take from the rest. Calls without a body and bodies that stream take none of it. At least 10485760"`
	// GrantTimeout is the deadline of the proxy's grant and tenant lookups.
	GrantTimeout time.Duration `env:"GRANT_TIMEOUT" envDefault:"300ms" desc:"deadline of the proxy's grant and tenant-settings lookups in Redis; past it the call gets 503; more than 0 and at most 5s: a call may wait on them twice, and on its audit record, before it is answered, well within the minute the proxy waits on a client"`
	// CacheMaxAge is how long the proxy serves a grant or tenant settings
	// from memory; a change reaches every replica at once through an
	// invalidation event, and within this bound even if the event is lost.
	CacheMaxAge time.Duration `env:"CACHE_MAX_AGE" envDefault:"1s" desc:"how long the proxy serves a grant or a tenant's settings from memory (at most 1s; 0 reads Redis on every call); changes reach every replica at once through an invalidation event, and within this bound even if the event is lost"`
	// AuditTimeout is the deadline of writing an operator action's audit
	// record; past it the call gets 503 and is not forwarded.
	AuditTimeout time.Duration `env:"AUDIT_TIMEOUT" envDefault:"2s" desc:"deadline of writing an operator action's audit record; past it the call gets 503 and is not forwarded; more than 0 and at most 10s: the record may wait about twice this, queued and then in Redis, before the call is answered, well within the minute the proxy waits on a client"`
	// AuditReplicas and AuditAOF say when an operator action's record
	// counts as written: see audit.Durability.
	AuditReplicas int  `env:"AUDIT_REPLICAS" envDefault:"0" desc:"how many Redis replicas must have an operator action's audit record (Redis WAIT) before the call is forwarded; 0 means Redis's own acknowledgement. A failover then loses no record of a forwarded call"`
	AuditAOF      bool `env:"AUDIT_AOF" envDefault:"false" desc:"wait until Redis has fsynced each operator action's audit record to its append-only file (WAITAOF; Redis 7.2 or later with appendonly yes) — on LOCKBOX_AUDIT_REPLICAS replicas too — before the call is forwarded"`
	// AuditReadsPerCaller and AuditReads bound the audit exports and
	// verifications running at once on a replica, which no call deadline
	// bounds: per caller, and of all callers together.
	AuditReadsPerCaller int `env:"AUDIT_READS_PER_CALLER" envDefault:"2" desc:"how many audit exports and verifications one user runs at once on a replica, in the API and the admin center together (at least 1); one more is refused with 429 too_many_reads before it reads anything"`
	AuditReads          int `env:"AUDIT_READS" envDefault:"16" desc:"how many audit exports and verifications all users together run at once on a replica, so that many can't exhaust Redis (at least LOCKBOX_AUDIT_READS_PER_CALLER); one more is refused with 429 too_many_reads"`
	// AuditRetention is how long audit records are kept; 0 keeps them
	// forever. Trimming keeps the hash chain verifiable, and verification
	// judges the chain's anchor by it (audit.Log.SetRetention).
	AuditRetention time.Duration `env:"AUDIT_RETENTION" envDefault:"0s" desc:"how long audit records are kept, e.g. 8760h; 0 keeps them forever. At least 28h, so that every record of a request, its filing first, outlasts it: a request lives up to 28 hours, 12 at each of its two approval stages and 4 of access. Trimming keeps the hash chain verifiable, and verification judges the chain's anchor by this setting: records trimmed younger than it (any, with 0) read as deleted, not trimmed. So set it alike wherever the API or the admin center runs; raised (or set to 0) after a trim, set LOCKBOX_AUDIT_RETENTION_SHORTEST to the earlier value"`
	// AuditRetentionShortest is the shortest audit retention the
	// deployment trimmed with, when that is not AuditRetention: the
	// retention was raised, or turned off, after trims. Verification
	// judges the chains' anchors by it; 0 means AuditRetention.
	AuditRetentionShortest time.Duration `env:"AUDIT_RETENTION_SHORTEST" envDefault:"0s" desc:"the shortest LOCKBOX_AUDIT_RETENTION this deployment has trimmed audit records with, when LOCKBOX_AUDIT_RETENTION was raised or set to 0 since; verification judges the chains' anchors by it, so that a chain trimmed under the shorter setting does not read as records deleted; 0 (the default) means LOCKBOX_AUDIT_RETENTION. At least 28h, and no longer than a LOCKBOX_AUDIT_RETENTION that is set. It lets anchors that old pass: set it back to 0 once the oldest trimmed record is older than LOCKBOX_AUDIT_RETENTION"`
	// AuditSealInterval is how often the proxy seals the tenants' audit
	// chains; 0 turns sealing off.
	AuditSealInterval time.Duration `env:"AUDIT_SEAL_INTERVAL" envDefault:"1m" desc:"how often each replica with LOCKBOX_PROXY_SIGNING_KEY_FILE signs the newest record of every tenant's audit chain written since the last seal (a seal, checked by audit verify against the published keys); at least 1s; 0 turns sealing off. The records after the last seal, at most this long's worth, are covered by the hash chain alone"`
	// RequestRetention is how long an ended request, with its history (who
	// decided, from which address, their comments), is kept after it
	// ended; 0 keeps requests forever. Audit records name requests, so it
	// is never shorter than AuditRetention, and needs it set (0 keeps
	// audit records forever).
	RequestRetention time.Duration `env:"REQUEST_RETENTION" envDefault:"0s" desc:"how long an ended request, with its history (who decided, from which address, their comments) and its index entries, is kept after it ended, e.g. 8760h; 0 keeps requests forever. At least 24h, and no shorter than LOCKBOX_AUDIT_RETENTION, which must be set too (audit records name their requests); pending and approved requests are never deleted"`
	// SIEMSink is where every audit record is also written as one line for
	// a log shipper.
	SIEMSink string `env:"SIEM_SINK" envDefault:"stdout" desc:"where every audit record, and every seal of a tenant's audit chain, is also written as one JSON line for a log shipper: stdout, file:/path (appended, 0600, fsynced per batch) or off; \"lockbox dev\" uses file:$LOCKBOX_DEV_DIR/siem.jsonl unless set"`
	// SIEMFormat is the SIEM line format.
	SIEMFormat string `env:"SIEM_FORMAT" envDefault:"json" desc:"SIEM line format: json (the audit record, provider view, with its place in the hash chain, which lockboxctl audit check-siem checks offline) or ocsf (OCSF 1.1 API Activity events; seals as Base Events)"`
	// SIEMConsumer names this replica in the SIEM consumer group.
	SIEMConsumer string `env:"SIEM_CONSUMER" desc:"this replica's name in the SIEM consumer group: unique per replica and stable across restarts (e.g. the pod name); the host name when empty, so two processes on one host each need one; a name another live process holds forwards nothing, and says so in the log"`
	// SIEMClaimAfter is how long a record may wait at one replica before
	// another takes it over.
	SIEMClaimAfter time.Duration `env:"SIEM_CLAIM_AFTER" envDefault:"1m" desc:"how long a record may stay unforwarded at a replica before another replica takes it over; at least 30s, more than twice the 10s a SIEM write may take, so that a replica still writing is not taken over"`
	// SMTPAddr and the settings below configure notification e-mails.
	SMTPAddr     string `env:"SMTP_ADDR" desc:"host:port of the SMTP submission server for notification e-mails (a host, and a port from 1); unset: e-mails are only logged (and in \"lockbox dev\" written under $LOCKBOX_DEV_DIR/mail), and LOCKBOX_SMTP_FROM, LOCKBOX_SMTP_USERNAME and LOCKBOX_SMTP_PASSWORD_FILE are refused"`
	SMTPFrom     string `env:"SMTP_FROM" desc:"sender address of notification e-mails, lockbox@provider.example or Lockbox <lockbox@provider.example>, the address in ASCII; required with LOCKBOX_SMTP_ADDR, and checked at start-up"`
	SMTPUsername string `env:"SMTP_USERNAME" desc:"SMTP AUTH user; needs LOCKBOX_SMTP_PASSWORD_FILE"`
	SMTPPassword Secret `env:"SMTP_PASSWORD_FILE,file" desc:"file holding the SMTP AUTH password; read at start-up"`
	SMTPStartTLS string `env:"SMTP_STARTTLS" envDefault:"opportunistic" desc:"STARTTLS policy: opportunistic, mandatory or none (refused with LOCKBOX_SMTP_USERNAME unless LOCKBOX_SMTP_ADDR is a loopback relay: the password would go in the clear)"`
	// WebhookURLs receive signed JSON notifications.
	WebhookURLs   string `env:"WEBHOOK_URLS" desc:"comma-separated http(s) URLs, the scheme in lower case, receiving JSON notifications signed with X-Lockbox-Signature (LOCKBOX_WEBHOOK_SIGNATURES); each URL as written here derives its receiver's v2 key"`
	WebhookSecret Secret `env:"WEBHOOK_SECRET_FILE,file" desc:"file holding the shared HMAC-SHA256 secret of X-Lockbox-Signature: it keys v1 and derives each receiver's v2 key (lockbox webhook-key URL); required with LOCKBOX_WEBHOOK_URLS; read at start-up"`
	// WebhookSignatures lists the signature schemes of each delivery.
	WebhookSignatures string `env:"WEBHOOK_SIGNATURES" envDefault:"v1" desc:"signatures of each webhook delivery: v1 (keyed with the shared secret, which every receiver checking v1 knows, so each can forge deliveries to the others; the header of earlier versions), v2 (keyed with the receiver's own key), or both, comma-separated; set v1,v2 while receivers move to v2, then v2"`
	// NotifyManagerAddresses are the support managers' e-mail addresses,
	// told of every new request that awaits them.
	NotifyManagerAddresses string `env:"NOTIFY_MANAGER_ADDRESSES" desc:"comma-separated e-mail addresses (ASCII) of the support managers, told of every new request that awaits them; \"lockbox dev\" uses mary@provider.example (its dev manager) when unset"`
	// NotifyExpiryWarning is how long before an access window ends its
	// engineer is warned; 0 disables the warning.
	NotifyExpiryWarning time.Duration `env:"NOTIFY_EXPIRY_WARNING" envDefault:"15m" desc:"how long before an access window ends the engineer is warned by e-mail (webhooks get request.expiring), under 4h (the longest access window); 0 disables; a window no longer than this gets no warning"`
	// PolicyReloadInterval is how often LOCKBOX_POLICY_DIR is checked for
	// changes.
	PolicyReloadInterval time.Duration `env:"POLICY_RELOAD_INTERVAL" envDefault:"1s" desc:"how often LOCKBOX_POLICY_DIR is checked for changes (a valid change is loaded, a broken one refused); at least 1s, as a directory still changing after 10 polls is refused; SIGHUP reloads at once"`

	// ConsoleURL is the admin center's external base URL; it makes the
	// OpenID Connect redirect URI and, when https, Secure cookies.
	ConsoleURL string `env:"CONSOLE_URL" desc:"external base URL of the admin center (e.g. https://lockbox.example.com), as browsers reach it: each OIDC issuer's redirect URI is this plus /console/oidc/callback/provider (the provider's issuer, or LOCKBOX_OIDC_ISSUER) or /console/oidc/callback/tenant/ and the tenant id (a tenant's issuer), the post-logout redirect URI of an issuer whose discovery document names an end_session_endpoint is this plus /console/signin?signed_out=1, and https makes session cookies Secure (http is refused except on localhost, 127.0.0.1 or [::1]: sessions would travel in clear text; with TLS ended in front of Lockbox the URL is https all the same); required with LOCKBOX_OIDC_ISSUER, or with a console section in LOCKBOX_ISSUERS_FILE where LOCKBOX_SERVE runs the api"`
	// OIDCIssuer and the settings below configure the admin center's
	// OpenID Connect sign-in.
	OIDCIssuer       string `env:"OIDC_ISSUER" desc:"OpenID Connect issuer the admin center signs users in with (authorization code flow with PKCE): https, or http on localhost, without a query; unset: no sign-in in \"lockbox serve\", dev identities in \"lockbox dev\""`
	OIDCClientID     string `env:"OIDC_CLIENT_ID" desc:"the admin center's client id at the issuer; required with LOCKBOX_OIDC_ISSUER"`
	OIDCClientSecret Secret `env:"OIDC_CLIENT_SECRET_FILE,file" desc:"file holding the client secret; required with LOCKBOX_OIDC_ISSUER; read at start-up"`
	OIDCScopes       string `env:"OIDC_SCOPES" envDefault:"profile email" desc:"scopes requested besides openid, space-separated"`
	OIDCSubjectClaim string `env:"OIDC_SUBJECT_CLAIM" envDefault:"sub" desc:"ID token claim that is the user id, e.g. preferred_username; where LOCKBOX_OIDC_ISSUER is LOCKBOX_JWT_ISSUER it must be LOCKBOX_JWT_SUBJECT_CLAIM, the claim API tokens carry the user id in, or start-up stops (one person, one user id)"`
	OIDCRolesClaim   string `env:"OIDC_ROLES_CLAIM" envDefault:"roles" desc:"ID token claim listing Lockbox roles (operator, support-manager, global-admin, lockbox-approver, audit-reader, lockbox-admin; others are ignored); where LOCKBOX_OIDC_ISSUER is LOCKBOX_JWT_ISSUER it must be roles, the claim API tokens carry roles in, or start-up stops"`
	OIDCTenantClaim  string `env:"OIDC_TENANT_CLAIM" envDefault:"tid" desc:"ID token claim naming a tenant user's tenant; absent for the provider's staff; where LOCKBOX_OIDC_ISSUER is LOCKBOX_JWT_ISSUER it must be tid, the claim API tokens carry the tenant in, or start-up stops"`
	// ConsoleIdleTimeout and ConsoleSessionMax end admin center sessions.
	ConsoleIdleTimeout time.Duration `env:"CONSOLE_IDLE_TIMEOUT" envDefault:"30m" desc:"an admin center session nobody used for this long ends (the live lists' polling doesn't count as use); more than 0"`
	ConsoleSessionMax  time.Duration `env:"CONSOLE_SESSION_MAX" envDefault:"8h" desc:"every admin center session ends this long after sign-in; more than 0"`
	// ConsoleReverify is how often an OIDC session's roles are read again
	// from the identity provider.
	ConsoleReverify time.Duration `env:"CONSOLE_REVERIFY" envDefault:"15m" desc:"how often an admin center session signed in with OIDC is verified again with its refresh token, or without one by the identity provider's sign-in without a page (prompt=none), so roles removed (or a user disabled) at the identity provider leave the admin center (roles only where its refresh answers carry an ID token); one the identity provider can't verify for 4 times this long ends; at least 1m, or each poll of an open page would ask the identity provider"`

	// DevDir is where "lockbox dev" keeps its signing keys and tokens.
	DevDir string `env:"DEV_DIR" envDefault:".lockbox-dev" desc:"where \"lockbox dev\" keeps its signing key, JWKS and tokens: created 0700; one others can open is refused, as is a second \"lockbox dev\" while one runs there"`

	// LogLevel is the least severe level logged: debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info" desc:"least severe level logged: debug, info, warn or error"`
	// Pprof serves Go's profiler on the metrics address.
	Pprof bool `env:"PPROF" envDefault:"false" desc:"serve Go's profiler (/debug/pprof/) on LOCKBOX_METRICS_ADDR, never on the proxy's or the API's address: CPU and heap profiles of a running replica"`
	// LogFormat is the log format: text or json.
	LogFormat string `env:"LOG_FORMAT" envDefault:"text" desc:"log format: text or json, of every line on stderr, go-redis's messages included (at warn, component=redis; each kind at most once in 10s, the next one's repeated counting those not logged)"`

	// SweepInterval is how often expired requests and ended grants are
	// settled. Access ends at a grant's expiry regardless; the sweep records
	// the state change.
	SweepInterval time.Duration `env:"SWEEP_INTERVAL" envDefault:"5s" desc:"how often expired requests and ended grants are settled (access ends at a grant's expiry regardless); at least 1s: each pass costs every jobs replica Redis commands"`
	// JobsRescanInterval is how often one replica re-reads every tenant to
	// repair the background jobs' schedules. It bounds how long a lost
	// schedule update delays a job, and is the only background cost that
	// grows with the number of tenants.
	JobsRescanInterval time.Duration `env:"JOBS_RESCAN_INTERVAL" envDefault:"1h" desc:"how often one replica re-reads every tenant (about 4 Redis commands each) to repair the background jobs' schedules; a schedule update lost to a crash delays a job by at most this; at least 1m"`

	// ShutdownTimeout is how long in-flight calls may run after a stop
	// signal.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"10s" desc:"how long in-flight calls may run after a stop signal; calls still running then are cut off, and lockbox exits 1 naming this variable; more than 0"`
	// ShutdownDelay is how long "lockbox serve" goes on serving, not
	// ready, after a stop signal before it drains. Kubernetes takes a pod
	// out of its Services' endpoints only some time after SIGTERM, and
	// until then kube-proxy and ingress controllers still send it new
	// connections. Zero by default: elsewhere nothing routes to a stopping
	// process, and every stop would wait for nothing; the Kubernetes
	// manifests set it.
	ShutdownDelay time.Duration `env:"SHUTDOWN_DELAY" envDefault:"0s" desc:"how long \"lockbox serve\" keeps accepting and serving new connections after a stop signal, with /readyz answering 503, before in-flight calls drain (LOCKBOX_SHUTDOWN_TIMEOUT); for load balancers that stop sending new connections only some time after the stop (5s for the control plane in the Kubernetes manifests); a second stop signal ends it; 0: none; \"lockbox dev\" has none"`
}

// Component is a part of Lockbox that LOCKBOX_SERVE can run.
type Component string

// The components of "lockbox serve".
const (
	ComponentProxy Component = "proxy"
	ComponentAPI   Component = "api"
	ComponentJobs  Component = "jobs"
)

// parseComponents reads a LOCKBOX_SERVE list.
func parseComponents(list string) (map[Component]bool, error) {
	out := map[Component]bool{}
	for name := range strings.SplitSeq(list, ",") {
		switch c := Component(strings.TrimSpace(name)); c {
		case ComponentProxy, ComponentAPI, ComponentJobs:
			out[c] = true
		case "":
		default:
			return nil, fmt.Errorf("%q is not one of proxy, api, jobs", name)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("names nothing to run; use some of proxy, api, jobs")
	}
	return out, nil
}

// Runs reports whether this process runs component c. "lockbox dev"
// runs everything, whatever LOCKBOX_SERVE says.
func (c Config) Runs(comp Component) bool {
	m, err := parseComponents(c.Serve)
	return err == nil && m[comp]
}

// Mode is the subcommand a configuration is validated for.
type Mode int

const (
	// ModeServe is "lockbox serve": production, everything explicit.
	ModeServe Mode = iota
	// ModeDev is "lockbox dev": an embedded store and dev keys fill the gaps.
	ModeDev
)

func (m Mode) String() string {
	switch m {
	case ModeServe:
		return "serve"
	case ModeDev:
		return "dev"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// ErrInvalid marks a configuration Lockbox refuses: a variable's value, or
// the content of a file one names, that the operator must change before
// Lockbox can start. errors.Is(err, ErrInvalid) tells it from a failure
// that may pass by itself (a Redis that does not answer yet, an address
// another process holds), so a supervisor is told not to start Lockbox
// again and again on a setting that will not change.
var ErrInvalid = errors.New("invalid configuration")

// Invalid marks err as ErrInvalid, its message unchanged; nil stays nil.
func Invalid(err error) error {
	if err == nil {
		return nil
	}
	return invalidError{err}
}

// InvalidFile marks err, from opening, creating or writing a file a
// setting names, as ErrInvalid when it says the path can't be used as it
// is: it or its directory does not exist, permission is denied, a
// directory stands where a file should, or the file system is read-only.
// The operator must change the setting or the file system, and a restart
// mends neither. Other failures (a full disk, an I/O error, too many open
// files) may pass by themselves and are returned as they are.
func InvalidFile(err error) error {
	for _, refused := range []error{fs.ErrNotExist, fs.ErrPermission, syscall.EISDIR, syscall.ENOTDIR, syscall.EROFS, syscall.ELOOP, syscall.ENAMETOOLONG} {
		if errors.Is(err, refused) {
			return Invalid(err)
		}
	}
	return err
}

// invalidError is ErrInvalid by its Is method, not by unwrapping to it: a
// tree of joined errors (flatten) must not gain a line of its own. It
// unwraps as the errors.Join it marks does, to the problems one a line,
// so a caller splitting Load's error still finds each *VarError.
type invalidError struct{ err error }

func (e invalidError) Error() string        { return e.err.Error() }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

func (e invalidError) Unwrap() []error {
	if j, ok := e.err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{e.err}
}

// VarError is a problem with one variable.
type VarError struct {
	Var string // full name, e.g. LOCKBOX_REDIS_URL
	Err error
}

func (e *VarError) Error() string { return e.Var + ": " + e.Err.Error() }
func (e *VarError) Unwrap() error { return e.Err }

// Load reads the configuration from environ (variable name → value; nil is
// an empty environment, never the process's) and runs the checks that hold
// in every mode. Callers then call Validate for their mode, or call LoadFor,
// which does both and reports every problem of either at once.
//
// Every invalid variable is reported, not only the first: values that don't
// parse (LOCKBOX_REDIS_TIMEOUT=5), secret files that can't be read or are
// empty, and values that parse but fail a check (LOCKBOX_API_ADDR=bogus)
// alike, joined one per line, each naming its variable.
func Load(environ map[string]string) (Config, error) {
	c, failed, parseErrs := parse(environ)
	if err := merge(parseErrs, failed, c.check()); err != nil {
		return Config{}, Invalid(err)
	}
	return c, nil
}

// LoadFor is Load followed by c.Validate(mode), reporting the problems of
// both together, so that one start-up names every variable to fix.
func LoadFor(environ map[string]string, mode Mode) (Config, error) {
	c, failed, parseErrs := parse(environ)
	// Validate runs check too.
	if err := merge(parseErrs, failed, c.Validate(mode)); err != nil {
		return Config{}, Invalid(err)
	}
	return c, nil
}

// FromOS is Load over the process environment.
func FromOS() (Config, error) {
	return Load(env.ToMap(os.Environ()))
}

// parse reads environ into a Config. caarlos0/env goes on past a value it
// can't parse, or a secret file it can't read, and reports them all
// (env.AggregateError), leaving those fields at their zero value; parse
// returns those errors, named by variable, and the set of variables they
// are about.
func parse(environ map[string]string) (Config, map[string]bool, []error) {
	if environ == nil {
		// env.Options treats a nil Environment as "use os.Environ()".
		environ = map[string]string{}
	}
	failed := map[string]bool{}
	var errs []error
	// Secret files are read here, not by env's "file" option, which read
	// them whole: a wrong path (a log, /dev/zero, a pipe that never ends)
	// must be refused at the bound, not fill the memory first. os.Stat's
	// size saw only regular files.
	parsed := maps.Clone(environ)
	secrets := map[string]Secret{}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Config]()) {
		name := fieldVar[f.Name]
		if f.Type != reflect.TypeFor[Secret]() {
			continue
		}
		delete(parsed, name)
		if environ[name] == "" {
			continue
		}
		b, err := readSecretFile(environ[name])
		if err != nil {
			failed[name] = true
			errs = append(errs, &VarError{Var: name, Err: err})
			continue
		}
		var sec Secret
		_ = sec.UnmarshalText(b)
		secrets[name] = sec
	}
	var c Config
	err := env.ParseWithOptions(&c, env.Options{Prefix: Prefix, Environment: parsed,
		FuncMap: map[reflect.Type]env.ParserFunc{reflect.TypeFor[Service](): serviceParser()}})
	if err != nil {
		var agg env.AggregateError
		if !errors.As(err, &agg) {
			return c, nil, []error{err}
		}
		for _, e := range agg.Errors {
			if ve := parseVarError(e); ve != nil {
				failed[ve.Var] = true
				e = ve
			}
			errs = append(errs, e)
		}
	}
	cv := reflect.ValueOf(&c).Elem()
	for _, f := range reflect.VisibleFields(cv.Type()) {
		if sec, ok := secrets[fieldVar[f.Name]]; ok {
			cv.FieldByIndex(f.Index).Set(reflect.ValueOf(sec))
		}
	}
	errs = append(errs, shorthandErrors(environ)...)
	errs = append(errs, tlsListenersErrors(environ)...)
	// env sets nothing for an empty file, as for an unset variable. A file
	// of white space alone (a blank line with spaces, a template that
	// rendered only its indentation) is refused too: a password or a
	// webhook key of spaces is a mistake, and would pass every "required
	// with" check. (ReadClientSecret holds the issuers file's client
	// secrets to the same.)
	v := reflect.ValueOf(c)
	for _, f := range reflect.VisibleFields(v.Type()) {
		name := fieldVar[f.Name]
		if f.Type != reflect.TypeFor[Secret]() || environ[name] == "" || failed[name] {
			continue
		}
		switch s := v.FieldByIndex(f.Index).String(); {
		case s == "":
			failed[name] = true
			errs = append(errs, &VarError{Var: name, Err: fmt.Errorf("%s is empty", environ[name])})
		case strings.TrimSpace(s) == "":
			failed[name] = true
			errs = append(errs, &VarError{Var: name, Err: fmt.Errorf("%s is empty but for white space", environ[name])})
		}
	}
	return c, failed, errs
}

// shorthandFields are the single-issuer shorthand's settings that
// LOCKBOX_ISSUERS_FILE replaces (each issuer there has its own issuer,
// audience and console section) and would otherwise silently ignore. The
// key settings are refused with it by Validate (set only one), and
// LOCKBOX_OIDC_ISSUER by check.
var shorthandFields = []struct{ field, instead string }{
	{"JWTIssuer", "give each issuer there its issuer"},
	{"JWTAudience", "give each issuer there its audience"},
	{"JWTTokenTypes", "give each issuer there its token_types"},
	{"JWTSubjectClaim", "give the issuers there claims"},
	{"OIDCClientID", "give the issuers there a console section"},
	{"OIDCClientSecret", "give the issuers there a console section"},
	{"OIDCScopes", "give the issuers there a console section"},
	{"OIDCSubjectClaim", "give the issuers there claims"},
	{"OIDCRolesClaim", "give the issuers there claims"},
	{"OIDCTenantClaim", "each issuer there has its scope"},
}

// shorthandErrors refuses the shorthand's settings set beside
// LOCKBOX_ISSUERS_FILE. It looks at environ, not at the Config: most of
// them have defaults, so only the environment tells whether someone set
// them (and believes they take effect). An empty value sets nothing.
func shorthandErrors(environ map[string]string) []error {
	if environ[varName("IssuersFile")] == "" {
		return nil
	}
	var errs []error
	for _, f := range shorthandFields {
		if environ[varName(f.field)] != "" {
			errs = append(errs, varErr(f.field, "not with LOCKBOX_ISSUERS_FILE, which replaces it: %s", f.instead))
		}
	}
	return errs
}

// parseVarError turns one of env's errors into a *VarError naming the
// variable, or returns nil for an error about no one variable.
func parseVarError(err error) *VarError {
	var pe env.ParseError
	if errors.As(err, &pe) {
		name, ok := fieldVar[pe.Name]
		if !ok {
			return nil
		}
		perr := pe.Err
		if pe.Type == reflect.TypeFor[time.Duration]() {
			perr = fmt.Errorf("not a duration with a unit, such as 2s, 500ms or 1h30m: %w", pe.Err)
		}
		return &VarError{Var: name, Err: perr}
	}
	var fe env.LoadFileContentError
	if errors.As(err, &fe) {
		// The os error names the file; the file's contents never appear.
		return &VarError{Var: fe.Key, Err: fe.Err}
	}
	return nil
}

// merge joins parse errors with the errors of the checks, one per line.
// A variable that did not parse was checked at its zero value, so what the
// checks say about it ("must be a positive duration, got 0s") is dropped:
// its parse error already names it.
func merge(parseErrs []error, failed map[string]bool, checks error) error {
	errs := parseErrs
	for _, e := range flatten(checks) {
		var ve *VarError
		if errors.As(e, &ve) && failed[ve.Var] {
			continue
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// flatten returns the leaves of a tree of errors.Join errors, so nested
// joins print one problem per line without blank or indented lines.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}

// Validate checks c for mode: everything Load checks, what the mode
// requires, and that the files and directories named exist and can be read.
// All problems are reported, joined, each naming its variable.
func (c Config) Validate(mode Mode) error {
	var errs []error
	if err := c.check(); err != nil {
		errs = append(errs, err)
	}
	switch mode {
	case ModeServe:
		if !c.RedisConfigured() {
			errs = append(errs, varErr("RedisURL", "required by %q (or LOCKBOX_REDIS_SENTINEL_ADDRS, or LOCKBOX_REDIS_CLUSTER_ADDRS)", "lockbox serve"))
		}
		if c.keySources() == 0 {
			errs = append(errs, fmt.Errorf("%s, %s, %s or %s: one is required by %q",
				varName("JWKSURL"), varName("JWKSFile"), varName("JWTHMACSecretFile"), varName("IssuersFile"), "lockbox serve"))
		}
		if c.Runs(ComponentProxy) && len(c.Upstreams) == 0 {
			errs = append(errs, varErr("Upstreams", "required by %q with the proxy in LOCKBOX_SERVE", "lockbox serve"))
		}
		if c.Runs(ComponentProxy) && c.ProxySigningKeyFile == "" {
			errs = append(errs, varErr("ProxySigningKeyFile", "required by %q with the proxy in LOCKBOX_SERVE", "lockbox serve"))
		}
	case ModeDev:
	default:
		return fmt.Errorf("config: unknown mode %v", mode)
	}
	if c.keySources() > 1 {
		errs = append(errs, fmt.Errorf("%s, %s, %s and %s: set only one",
			varName("JWKSURL"), varName("JWKSFile"), varName("JWTHMACSecretFile"), varName("IssuersFile")))
	}
	if c.IssuersFile != "" {
		issuers, err := LoadIssuers(c.IssuersFile)
		if err != nil {
			errs = append(errs, &VarError{Var: varName("IssuersFile"), Err: err})
		}
		// Only the admin center (the API component; "lockbox dev" runs
		// everything) reads the console sections. A sidecar running the
		// proxy alone is handed the deployment's one issuers file, console
		// sections and all, but neither LOCKBOX_CONSOLE_URL nor the
		// client secrets: it must start without them.
		if mode == ModeDev || c.Runs(ComponentAPI) {
			errs = append(errs, c.consoleErrors(issuers)...)
		}
	}
	files := []struct{ field, path string }{
		{"JWKSFile", c.JWKSFile}, {"JWTHMACSecretFile", c.JWTHMACSecretFile},
		{"ProxySigningKeyFile", c.ProxySigningKeyFile},
	}
	for _, f := range c.PublishedKeyFiles() {
		files = append(files, struct{ field, path string }{"ProxyPublishedKeyFiles", f})
	}
	errs = append(errs, c.assertionSecretErrors(mode)...)
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if err := readableFile(f.path); err != nil {
			errs = append(errs, &VarError{Var: varName(f.field), Err: err})
		}
	}
	errs = append(errs, c.validateRedisFiles()...)
	if c.PolicyDir != "" {
		if fi, err := os.Stat(c.PolicyDir); err != nil {
			errs = append(errs, &VarError{Var: varName("PolicyDir"), Err: err})
		} else if !fi.IsDir() {
			errs = append(errs, varErr("PolicyDir", "%s is not a directory", c.PolicyDir))
		}
	}
	errs = append(errs, c.tlsFileErrors()...)
	return errors.Join(errs...)
}

// consoleErrors checks what the admin center needs of the issuers'
// console sections: LOCKBOX_CONSOLE_URL, which makes the redirect URI, and
// each client_secret_file, read when the admin center is built.
func (c Config) consoleErrors(issuers []Issuer) []error {
	var errs []error
	if c.ConsoleURL == "" && slices.ContainsFunc(issuers, func(is Issuer) bool { return is.Console != nil }) {
		errs = append(errs, varErr("ConsoleURL", "required with a console section in LOCKBOX_ISSUERS_FILE (it makes the redirect URI) when LOCKBOX_SERVE runs the api"))
	}
	for i, is := range issuers {
		if is.Console == nil {
			continue
		}
		if _, err := ReadClientSecret(is.Console.ClientSecretFile); err != nil {
			errs = append(errs, &VarError{Var: varName("IssuersFile"),
				Err: fmt.Errorf("%s: issuer %d (%s): console: client_secret_file: %w", c.IssuersFile, i+1, is.ShownName(), err)})
		}
	}
	return errs
}

// check runs the checks that need neither a mode nor the file system
// (beyond the secret files parse has read).
func (c Config) check() error {
	var errs []error
	addrs := []struct{ field, addr string }{
		{"APIAddr", c.APIAddr}, {"ProxyAddr", c.ProxyAddr}, {"MetricsAddr", c.MetricsAddr},
	}
	for i, a := range addrs {
		if err := checkAddr(a.addr); err != nil {
			errs = append(errs, &VarError{Var: varName(a.field), Err: err})
			continue
		}
		// Two listeners on one address fail at start-up anyway, but this
		// names the variables; and health must never share the proxy's
		// port. Port 0 (pick a free one) may repeat.
		for _, b := range addrs[:i] {
			if a.addr == b.addr && !strings.HasSuffix(a.addr, ":0") {
				errs = append(errs, varErr(a.field, "same address as %s (%s)", varName(b.field), a.addr))
			}
		}
	}
	errs = append(errs, c.checkRedis()...)
	durations := []struct {
		field string
		d     time.Duration
	}{
		{"RedisTimeout", c.RedisTimeout},
		{"SweepInterval", c.SweepInterval}, {"JobsRescanInterval", c.JobsRescanInterval}, {"ShutdownTimeout", c.ShutdownTimeout},
		{"GrantTimeout", c.GrantTimeout}, {"AuditTimeout", c.AuditTimeout},
		{"PolicyReloadInterval", c.PolicyReloadInterval}, {"SIEMClaimAfter", c.SIEMClaimAfter},
		{"ConsoleIdleTimeout", c.ConsoleIdleTimeout}, {"ConsoleSessionMax", c.ConsoleSessionMax}, {"ConsoleReverify", c.ConsoleReverify},
		{"JWKSRefresh", c.JWKSRefresh}, {"JWKSMaxAge", c.JWKSMaxAge},
	}
	for _, d := range durations {
		if d.d <= 0 {
			errs = append(errs, varErr(d.field, "must be a positive duration, got %s", d.d))
		}
	}
	deadlines := []struct {
		field   string
		d, most time.Duration
		why     string
	}{
		{"RedisTimeout", c.RedisTimeout, MaxRedisTimeout, "a Redis that does not answer must be a 503 well within an API call's 10s"},
		{"GrantTimeout", c.GrantTimeout, MaxGrantTimeout, "a proxied call may wait on its grant twice, and on its audit record, before its 503, which must come well within the proxy's minute"},
		{"AuditTimeout", c.AuditTimeout, MaxAuditTimeout, "a proxied call may wait about twice this on its audit record before its 503, which must come well within the proxy's minute"},
	}
	for _, d := range deadlines {
		if d.d > d.most {
			errs = append(errs, varErr(d.field, "must be at most %s, got %s: %s", d.most, d.d, d.why))
		}
	}
	if _, err := c.TrustedProxyRanges(); err != nil {
		errs = append(errs, err)
	}
	if c.ShutdownDelay < 0 {
		errs = append(errs, varErr("ShutdownDelay", "must not be negative, got %s", c.ShutdownDelay))
	}
	if c.AuditReplicas < 0 {
		errs = append(errs, varErr("AuditReplicas", "must not be negative, got %d", c.AuditReplicas))
	}
	if c.AuditReadsPerCaller < 1 {
		errs = append(errs, varErr("AuditReadsPerCaller", "must be at least 1, got %d", c.AuditReadsPerCaller))
	}
	if c.AuditReads < 1 {
		errs = append(errs, varErr("AuditReads", "must be at least 1, got %d", c.AuditReads))
	} else if c.AuditReads < c.AuditReadsPerCaller {
		// A caller could never reach its own bound.
		errs = append(errs, varErr("AuditReads", "must be at least LOCKBOX_AUDIT_READS_PER_CALLER (%d), got %d", c.AuditReadsPerCaller, c.AuditReads))
	}
	if c.CacheMaxAge < 0 || c.CacheMaxAge > time.Second {
		errs = append(errs, varErr("CacheMaxAge", "must be from 0 to 1s, got %s", c.CacheMaxAge))
	}
	if c.ProxyBodyBufferBytes < ProxyMaxBodyBytes {
		// A body at the limit could never be read.
		errs = append(errs, varErr("ProxyBodyBufferBytes", "must be at least %d bytes, the limit on one call's body; got %d", ProxyMaxBodyBytes, c.ProxyBodyBufferBytes))
	}
	if c.ProxyAssertionTTL < time.Second || c.ProxyAssertionTTL > MaxAssertionTTL {
		errs = append(errs, varErr("ProxyAssertionTTL", "must be from 1s to %s, got %s", MaxAssertionTTL, c.ProxyAssertionTTL))
	}
	if strings.TrimSpace(c.ProxyAssertionIssuer) == "" {
		errs = append(errs, varErr("ProxyAssertionIssuer", "must not be empty"))
	}
	// Zero is a strict choice (tokens checked to the second), not a
	// mistake: only a negative leeway is refused.
	if c.JWTLeeway < 0 {
		errs = append(errs, varErr("JWTLeeway", "must not be negative, got %s", c.JWTLeeway))
	}
	if c.JWTLeeway > MaxJWTLeeway {
		errs = append(errs, varErr("JWTLeeway", "%s is more than the %s allowed", c.JWTLeeway, MaxJWTLeeway))
	}
	if c.JWKSRefresh > 0 && c.JWKSRefresh < MinJWKSRefresh {
		errs = append(errs, varErr("JWKSRefresh", "must be at least %s, got %s", MinJWKSRefresh, c.JWKSRefresh))
	}
	floors := []struct {
		field    string
		d, least time.Duration
	}{
		{"SweepInterval", c.SweepInterval, MinSweepInterval},
		{"PolicyReloadInterval", c.PolicyReloadInterval, MinPolicyReloadInterval},
		{"SIEMClaimAfter", c.SIEMClaimAfter, MinSIEMClaimAfter},
		{"JobsRescanInterval", c.JobsRescanInterval, MinJobsRescanInterval},
		{"ConsoleReverify", c.ConsoleReverify, MinConsoleReverify},
	}
	for _, f := range floors {
		// Zero and less are refused above, as not positive.
		if f.d > 0 && f.d < f.least {
			errs = append(errs, varErr(f.field, "must be at least %s, got %s", f.least, f.d))
		}
	}
	if c.JWKSMaxAge > maxJWKSMaxAge || (c.JWKSRefresh > 0 && c.JWKSMaxAge <= c.JWKSRefresh) {
		// Keys must outlive the interval they are refreshed in, or every
		// issuer's tokens would be refused between two fetches.
		errs = append(errs, varErr("JWKSMaxAge", "must be more than LOCKBOX_JWT_JWKS_REFRESH (%s) and at most %s, got %s", c.JWKSRefresh, maxJWKSMaxAge, c.JWKSMaxAge))
	}
	if c.JWKSURL != "" {
		if err := checkJWKSURL(c.JWKSURL); err != nil {
			errs = append(errs, &VarError{Var: varName("JWKSURL"), Err: err})
		}
	}
	if c.IssuersFile != "" && c.OIDCIssuer != "" {
		// The LOCKBOX_OIDC_ sign-in reads the tenant from a claim: next to
		// tenants' own issuers it would be a way around them.
		errs = append(errs, varErr("OIDCIssuer", "not with LOCKBOX_ISSUERS_FILE: give the issuers there a console section"))
	}
	if c.SIEMFormat != "json" && c.SIEMFormat != "ocsf" {
		errs = append(errs, varErr("SIEMFormat", "%q is not one of json, ocsf", c.SIEMFormat))
	}
	if sink := c.SIEMSink; sink != "stdout" && sink != "off" && (!strings.HasPrefix(sink, "file:") || len(sink) == len("file:")) {
		errs = append(errs, varErr("SIEMSink", "%q is not stdout, off or file:/path", sink))
	}
	if c.SMTPAddr != "" {
		if err := checkSMTPAddr(c.SMTPAddr); err != nil {
			errs = append(errs, &VarError{Var: varName("SMTPAddr"), Err: err})
		}
		if c.SMTPFrom == "" {
			errs = append(errs, varErr("SMTPFrom", "required with LOCKBOX_SMTP_ADDR"))
		} else if err := checkSender(c.SMTPFrom); err != nil {
			errs = append(errs, &VarError{Var: varName("SMTPFrom"), Err: err})
		}
	} else {
		// Without a server no e-mail is sent, only logged: the settings
		// of one say LOCKBOX_SMTP_ADDR was forgotten, and nobody would be
		// told of a request.
		for _, f := range []struct{ field, v string }{
			{"SMTPFrom", c.SMTPFrom}, {"SMTPUsername", c.SMTPUsername}, {"SMTPPassword", string(c.SMTPPassword)},
		} {
			if f.v != "" {
				errs = append(errs, varErr(f.field, "set, but LOCKBOX_SMTP_ADDR is not: without it no e-mail is sent"))
			}
		}
	}
	if (c.SMTPUsername == "") != (c.SMTPPassword == "") {
		errs = append(errs, varErr("SMTPPassword", "LOCKBOX_SMTP_USERNAME and LOCKBOX_SMTP_PASSWORD_FILE go together"))
	}
	switch c.SMTPStartTLS {
	case "opportunistic", "mandatory":
	case "none":
		// The SMTP client sends AUTH PLAIN in the clear to a loopback
		// relay only (go-mail's rule): elsewhere every e-mail would fail.
		host, _, err := net.SplitHostPort(c.SMTPAddr)
		if c.SMTPUsername != "" && err == nil && host != "localhost" && host != "127.0.0.1" && host != "::1" {
			errs = append(errs, varErr("SMTPStartTLS", "none with LOCKBOX_SMTP_USERNAME would send the password in the clear to %s, which is refused except to a loopback relay: use mandatory", host))
		}
	default:
		errs = append(errs, varErr("SMTPStartTLS", "%q is not one of opportunistic, mandatory, none", c.SMTPStartTLS))
	}
	if c.WebhookURLs != "" && c.WebhookSecret == "" {
		errs = append(errs, varErr("WebhookSecret", "required with LOCKBOX_WEBHOOK_URLS"))
	}
	if _, err := parseWebhookSignatures(c.WebhookSignatures); err != nil {
		errs = append(errs, &VarError{Var: varName("WebhookSignatures"), Err: err})
	}
	for u := range strings.SplitSeq(c.WebhookURLs, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || badPort(pu) {
			// Not quoted: a receiver's URL may hold its credential (Slack's
			// and Teams' do), and this message goes to logs.
			errs = append(errs, varErr("WebhookURLs", "%s is not an http(s) URL with a host", redactWebhookURL(u)))
		} else if !strings.HasPrefix(u, pu.Scheme+"://") {
			// The notifier takes the URL as written, which also derives
			// the receiver's v2 key, and refused HTTPS:// only once
			// Redis had answered: start-up failed with exit 1, and was
			// restarted forever on a setting that can't change by itself.
			errs = append(errs, varErr("WebhookURLs", "%s: write the scheme in lower case (%s://)", redactWebhookURL(u), pu.Scheme))
		}
	}
	if _, err := c.ManagerAddresses(); err != nil {
		errs = append(errs, err)
	}
	// No window is longer than 4h (the longest a request may ask for) and
	// a window no longer than the lead gets no warning.
	if c.NotifyExpiryWarning < 0 || c.NotifyExpiryWarning >= maxAccessWindow {
		errs = append(errs, varErr("NotifyExpiryWarning", "must be 0 (off) or a duration under %s, the longest access window; got %s", maxAccessWindow, c.NotifyExpiryWarning))
	}
	if c.ConsoleURL != "" {
		// The redirect URI is this plus a path, so anything after the
		// host (a query, a fragment) would end up inside it, and
		// credentials have no place in a URL browsers are sent to.
		u, err := url.Parse(c.ConsoleURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
			u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil || u.Opaque != "" || badPort(u) {
			shown := c.ConsoleURL
			if err == nil {
				shown = u.Redacted()
			}
			errs = append(errs, varErr("ConsoleURL", "%q is not an http(s) URL of a host (scheme and host only)", shown))
		} else if h := u.Hostname(); u.Scheme == "http" && !strings.EqualFold(h, "localhost") && h != "127.0.0.1" && h != "::1" {
			// The session and CSRF cookies are Secure only under https: an
			// http URL browsers reach over the network would carry every
			// admin-center session in clear text. TLS ended in front of
			// Lockbox is an https URL all the same.
			errs = append(errs, varErr("ConsoleURL", "%q is http on a host that is not loopback: sign-in sessions would travel in clear text; use https (TLS may end at a load balancer in front of Lockbox), http only on localhost, 127.0.0.1 or [::1]", u.Redacted()))
		}
	}
	if c.OIDCIssuer != "" {
		// Discovery, and through it the keys that verify ID tokens, are
		// fetched from here: https, or http on a loopback address, as
		// JWKS URLs.
		if err := checkOIDCIssuer("the issuer", c.OIDCIssuer); err != nil {
			errs = append(errs, varErr("OIDCIssuer", "%v", err))
		}
		for _, f := range []struct{ field, v string }{
			{"OIDCClientID", c.OIDCClientID}, {"OIDCClientSecret", string(c.OIDCClientSecret)}, {"ConsoleURL", c.ConsoleURL},
		} {
			if f.v == "" {
				errs = append(errs, varErr(f.field, "required with LOCKBOX_OIDC_ISSUER"))
			}
		}
		if err := c.checkOneUserID(); err != nil {
			errs = append(errs, err)
		}
		if err := c.checkOneTenant(); err != nil {
			errs = append(errs, err)
		}
		if err := c.checkOneRoles(); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := parseComponents(c.Serve); err != nil {
		errs = append(errs, &VarError{Var: varName("Serve"), Err: err})
	}
	errs = append(errs, c.tlsErrors()...)
	switch r := c.AuditRetention; {
	case r < 0:
		errs = append(errs, varErr("AuditRetention", "must not be negative, got %s", r))
	case r > 0 && r < minAuditRetention:
		errs = append(errs, varErr("AuditRetention", "must be at least %s (or 0, to keep audit records forever), got %s", minAuditRetention, r))
	}
	switch r := c.AuditRetentionShortest; {
	case r < 0:
		errs = append(errs, varErr("AuditRetentionShortest", "must not be negative, got %s", r))
	case r > 0 && r < minAuditRetention:
		errs = append(errs, varErr("AuditRetentionShortest", "must be at least %s, as LOCKBOX_AUDIT_RETENTION must (or 0, to judge by LOCKBOX_AUDIT_RETENTION), got %s", minAuditRetention, r))
	case r > 0 && c.AuditRetention > 0 && r > c.AuditRetention:
		errs = append(errs, varErr("AuditRetentionShortest", "%s is longer than LOCKBOX_AUDIT_RETENTION (%s), which trims with the shorter one: set it to 0, or to the shortest retention trimmed with", r, c.AuditRetention))
	}
	switch r := c.AuditSealInterval; {
	case r < 0:
		errs = append(errs, varErr("AuditSealInterval", "must not be negative, got %s (0 turns sealing off)", r))
	case r > 0 && r < MinAuditSealInterval:
		errs = append(errs, varErr("AuditSealInterval", "must be at least %s (or 0, to turn sealing off), got %s", MinAuditSealInterval, r))
	}
	switch r := c.RequestRetention; {
	case r < 0:
		errs = append(errs, varErr("RequestRetention", "must not be negative, got %s", r))
	case r > 0 && r < minRequestRetention:
		errs = append(errs, varErr("RequestRetention", "must be at least %s (or 0, to keep requests forever), got %s", minRequestRetention, r))
	case r > 0 && c.AuditRetention == 0:
		// 0 keeps audit records for good: any request retention is
		// shorter, and the records kept would name requests deleted.
		errs = append(errs, varErr("RequestRetention", "%s is set but LOCKBOX_AUDIT_RETENTION is not (0 keeps audit records for good): audit records name their requests, so requests must be kept at least as long; set LOCKBOX_AUDIT_RETENTION to %s or less, or LOCKBOX_REQUEST_RETENTION to 0", r, r))
	case r > 0 && r < c.AuditRetention:
		// The audit records kept would name requests already deleted.
		errs = append(errs, varErr("RequestRetention", "%s is shorter than LOCKBOX_AUDIT_RETENTION (%s): audit records name their requests, so requests must be kept at least as long", r, c.AuditRetention))
	}
	if _, err := c.UpstreamURLs(); err != nil {
		errs = append(errs, err)
	}
	if c.JWTIssuer == "" {
		errs = append(errs, varErr("JWTIssuer", "must not be empty"))
	}
	if c.JWTAudience == "" {
		errs = append(errs, varErr("JWTAudience", "must not be empty"))
	}
	if err := checkTokenTypes(c.JWTTokenTypesList()); err != nil {
		errs = append(errs, varErr("JWTTokenTypes", "%v", err))
	}
	if c.DevDir == "" {
		errs = append(errs, varErr("DevDir", "must not be empty"))
	}
	if _, ok := logLevels[c.LogLevel]; !ok {
		errs = append(errs, varErr("LogLevel", "%q is not one of debug, info, warn, error", c.LogLevel))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, varErr("LogFormat", "%q is not one of text, json", c.LogFormat))
	}
	return errors.Join(errs...)
}

// checkOneUserID refuses an admin center sign-in that knows a person by
// another claim than the API does at the same issuer. The two-person rule
// compares user ids: the engineer who filed a request, or the manager who
// approved it, may not decide it again. With the admin center taking the
// id from preferred_username while the API takes sub, one person has two
// ids, files a request through the API under one and approves it in the
// admin center under the other, and nothing can tell. Only the names of
// the claims can be compared here, not their values: an identity provider
// whose access tokens' sub is what its ID tokens call preferred_username
// is refused too, and is served by naming, on both sides, one claim that
// both kinds of token carry (the issuers file has one claims.subject per
// issuer for the same reason). An admin center issuer the API does not
// take tokens from makes no API ids to compare with.
func (c Config) checkOneUserID() error {
	if c.IssuersFile != "" || !sameIssuer(c.OIDCIssuer, c.JWTIssuer) {
		return nil
	}
	oidc, api := cmp.Or(c.OIDCSubjectClaim, "sub"), cmp.Or(c.JWTSubjectClaim, "sub")
	if oidc == api {
		return nil
	}
	return varErr("OIDCSubjectClaim", "%q, but LOCKBOX_JWT_SUBJECT_CLAIM is %q: the admin center's issuer (LOCKBOX_OIDC_ISSUER) is the API's (LOCKBOX_JWT_ISSUER), "+
		"and one person would have one user id in the API and another in the admin center, where they could approve a request they filed (two-person rule); "+
		"set both to the one claim the issuer's ID tokens and access tokens carry the user id in", oidc, api)
}

// checkOneTenant refuses an admin center sign-in that reads a person's
// tenant from another claim than the API does at the same issuer. The API
// reads the single issuer's tokens in the shared scope, the tenant from
// "tid" and none without it: a user without one is the provider's staff,
// with the roles the token names. An identity provider that names its
// users' organization in another claim (org_id, say), which
// LOCKBOX_OIDC_TENANT_CLAIM would be set to, makes every tenant user's API
// token one of the provider's staff: a tenant's audit-reader becomes the
// provider's, who reads every tenant's audit log. As with the user id, the
// names are compared, not the values, and an admin center issuer the API
// takes no tokens from is left alone.
func (c Config) checkOneTenant() error {
	if c.IssuersFile != "" || !sameIssuer(c.OIDCIssuer, c.JWTIssuer) {
		return nil
	}
	if claim := cmp.Or(c.OIDCTenantClaim, "tid"); claim != "tid" {
		return varErr("OIDCTenantClaim", "%q, but the API reads the tenant of LOCKBOX_JWT_ISSUER's tokens from \"tid\": the admin center's issuer (LOCKBOX_OIDC_ISSUER) is the API's, "+
			"and a tenant's user whose access token has no \"tid\" would be the provider's staff in the API, with the roles the token names (a tenant's audit-reader would read every tenant's audit log); "+
			"have the identity provider put the tenant in \"tid\" and leave LOCKBOX_OIDC_TENANT_CLAIM unset, or give each tenant an issuer of its own in LOCKBOX_ISSUERS_FILE", claim)
	}
	return nil
}

// checkOneRoles refuses an admin center sign-in that reads a person's
// roles from another claim than the API does at the same issuer. The API
// reads the single issuer's roles from "roles" (the shorthand has no
// setting for it). With LOCKBOX_OIDC_ROLES_CLAIM naming "groups", say, one
// person holds one set of roles in the admin center and another in the
// API and the proxy, from one identity provider: a role an administrator
// removes from the claim they look at stays in force in the other
// (a support-manager taken off in "roles" keeps approving in the admin
// center), and who may do what can't be read from either claim alone.
// As with the user id, the names are compared, not the values, and an
// admin center issuer the API takes no tokens from is left alone; an
// issuers file entry has one claims.roles for both.
func (c Config) checkOneRoles() error {
	if c.IssuersFile != "" || !sameIssuer(c.OIDCIssuer, c.JWTIssuer) {
		return nil
	}
	if claim := cmp.Or(c.OIDCRolesClaim, "roles"); claim != "roles" {
		return varErr("OIDCRolesClaim", "%q, but the API reads the roles of LOCKBOX_JWT_ISSUER's tokens from \"roles\": the admin center's issuer (LOCKBOX_OIDC_ISSUER) is the API's, "+
			"and one person would hold one set of roles in the admin center and another in the API and the proxy (a role removed in one claim would stay in force through the other); "+
			"have the identity provider put the Lockbox roles in \"roles\" and leave LOCKBOX_OIDC_ROLES_CLAIM unset, or use LOCKBOX_ISSUERS_FILE, whose claims.roles names one claim for both", claim)
	}
	return nil
}

// sameIssuer reports whether issuer URLs a and b may name one issuer. Both
// must be the exact "iss" to work at all, so a difference of a trailing
// slash or of case breaks one side's sign-in rather than naming another
// issuer: such a pair is taken for one, which refuses more, never less.
func sameIssuer(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "/"), strings.TrimSuffix(b, "/"))
}

// badPort reports whether URL u names a port that is no TCP port:
// url.Parse takes any digits, and a dial to one past 65535, or to 0,
// fails every time.
func badPort(u *url.URL) bool {
	p := u.Port()
	if p == "" {
		return false
	}
	n, err := strconv.ParseUint(p, 10, 16)
	return err != nil || n == 0
}

func checkAddr(addr string) error {
	if strings.ContainsAny(addr, "@/") {
		// A URL, or user info before the host (redis://:password@host:port,
		// as LOCKBOX_REDIS_URL takes it): not quoted, since this message
		// goes to logs, and never taken as part of a host name.
		return errors.New("an address with an @ or a / (a URL, or user info) is not host:port; not shown, as it may hold a password")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q is not host:port: port %q is not a number from 0 to 65535", addr, port)
	}
	return nil
}

// checkSMTPAddr checks LOCKBOX_SMTP_ADDR: host:port of a server to dial,
// so unlike a listener's address it needs a host, and a port from 1 (0
// means "any free port" only to a listener). The notifier refused ":25"
// and "mail.example:0" only once Redis had answered, with exit 1, which a
// supervisor restarts forever.
func checkSMTPAddr(addr string) error {
	if err := checkAddr(addr); err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(addr)
	if host == "" {
		return fmt.Errorf("%q names no host: want host:port of the SMTP server", addr)
	}
	if strings.TrimLeft(port, "0") == "" {
		return fmt.Errorf("%q: port 0 is no server's port: want a port from 1 to 65535", addr)
	}
	return nil
}

// readableFile checks that path is a regular file this process can read
// and that it isn't empty. Its contents never appear in an error.
func readableFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if _, err := f.Read(make([]byte, 1)); err == io.EOF {
		return fmt.Errorf("%s is empty", path)
	} else if err != nil {
		return err
	}
	return nil
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// Logger returns a logger writing to w in c's format at c's level. Values
// Validate would refuse fall back to text at info.
func (c Config) Logger(w io.Writer) *slog.Logger {
	level, ok := logLevels[c.LogLevel]
	if !ok {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// LogValue lets c be logged at start-up: every variable by its full name,
// with the password in LOCKBOX_REDIS_URL and all but the origins of
// LOCKBOX_WEBHOOK_URLS redacted.
func (c Config) LogValue() slog.Value {
	v := reflect.ValueOf(c)
	t := v.Type()
	attrs := make([]slog.Attr, 0, t.NumField())
	for i := range t.NumField() {
		name := fieldVar[t.Field(i).Name]
		val := fmt.Sprint(v.Field(i).Interface())
		switch t.Field(i).Name {
		case "RedisURL":
			val = redactURL(val)
		case "WebhookURLs":
			var us []string
			for u := range strings.SplitSeq(val, ",") {
				if u = strings.TrimSpace(u); u != "" {
					us = append(us, redactWebhookURL(u))
				}
			}
			val = strings.Join(us, ",")
		}
		attrs = append(attrs, slog.String(name, val))
	}
	return slog.GroupValue(attrs...)
}

// redactWebhookURL names a webhook receiver by scheme and host only:
// Slack's and Teams' incoming-webhook URLs carry their credential in the
// path, others in the query or user info.
func redactWebhookURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "(a URL, not shown)"
	}
	// url.Parse lower-cases the scheme: a refusal of "HTTP://x" for its
	// capitals must show them.
	scheme := u.Scheme
	if len(s) >= len(scheme) && strings.EqualFold(s[:len(scheme)], scheme) {
		scheme = s[:len(scheme)]
	}
	out := scheme + "://" + u.Host
	if u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		out += "/…"
	}
	return out
}

func redactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable)"
	}
	return u.Redacted()
}

// VarDoc documents one variable.
type VarDoc struct {
	Name        string // full name, e.g. LOCKBOX_REDIS_URL
	Default     string // "" when the variable has no default
	Description string
}

// Vars documents every variable Config reads, in field order. It is derived
// from the struct tags, so README's table can't drift from the code.
func Vars() []VarDoc {
	t := reflect.TypeFor[Config]()
	docs := make([]VarDoc, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		docs = append(docs, VarDoc{
			Name:        fieldVar[f.Name],
			Default:     f.Tag.Get("envDefault"),
			Description: f.Tag.Get("desc"),
		})
	}
	return docs
}

// fieldVar maps each Config field name to its variable's full name.
var fieldVar = func() map[string]string {
	t := reflect.TypeFor[Config]()
	m := make(map[string]string, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		m[f.Name] = Prefix + name
	}
	return m
}()

// varName is the full variable name of Config field field.
func varName(field string) string {
	name, ok := fieldVar[field]
	if !ok {
		panic("config: no field " + field)
	}
	return name
}

// varErr builds a *VarError for the variable of Config field field.
func varErr(field, format string, args ...any) error {
	return &VarError{Var: varName(field), Err: fmt.Errorf(format, args...)}
}

// AnchorRetention is the retention verification judges the audit chains'
// anchors by: the shortest one trimmed with.
func (c Config) AnchorRetention() time.Duration {
	if c.AuditRetentionShortest > 0 {
		return c.AuditRetentionShortest
	}
	return c.AuditRetention
}

// minAuditRetention is the shortest LOCKBOX_AUDIT_RETENTION: a request's
// manager decides within 12 hours, its tenant within 12 more and its
// access lasts up to 4 hours after, so 28 hours keep every record of a
// request, its filing first, until it ends. A shorter retention trimmed
// the filing record (who asked, and why) of access still going on; a typo
// ("1ns") would trim the records of all of it at the next sweep, gone for
// good.
const minAuditRetention = 28 * time.Hour

// minRequestRetention is the shortest LOCKBOX_REQUEST_RETENTION: a
// shorter one would delete a request while those who took part in it may
// still be looking at it, or a sweep is yet to settle its neighbours.
const minRequestRetention = 24 * time.Hour

// maxAccessWindow is the longest access window a request may ask for
// (grants.MaxDuration; this package imports no other Lockbox package).
const maxAccessWindow = 4 * time.Hour

// checkSender checks LOCKBOX_SMTP_FROM as the mail client parses it for
// every e-mail: one address, with or without a name. Unchecked, a value
// that is none would fail every notification long after start-up, each
// retried for two hours and dead-lettered. The address itself must be
// ASCII, as Lockbox mails without SMTPUTF8 (the name may be anything: it
// is encoded).
func checkSender(from string) error {
	a, err := mail.ParseAddress(from)
	if err != nil {
		return fmt.Errorf("%q is not an e-mail address (lockbox@provider.example, or Lockbox <lockbox@provider.example>): %w", from, err)
	}
	if strings.ContainsFunc(a.Address, func(r rune) bool { return r >= utf8.RuneSelf }) {
		return fmt.Errorf("%q is not an ASCII address: Lockbox mails without SMTPUTF8, which a mail server may refuse; give an internationalized domain in its xn-- form", a.Address)
	}
	return nil
}

// ManagerAddresses parses LOCKBOX_NOTIFY_MANAGER_ADDRESSES: plain e-mail
// addresses ("a@x.example", not "A <a@x.example>"), each once.
func (c Config) ManagerAddresses() ([]string, error) {
	var out []string
	for a := range strings.SplitSeq(c.NotifyManagerAddresses, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if addr, err := mail.ParseAddress(a); err != nil || addr.Name != "" || addr.Address != a {
			return nil, varErr("NotifyManagerAddresses", "%q is not a plain e-mail address", a)
		}
		if strings.ContainsFunc(a, func(r rune) bool { return r >= utf8.RuneSelf }) {
			// As a tenant's addresses: a server without SMTPUTF8 would
			// refuse it for good, and every new request's e-mail to it
			// would be a dead letter.
			return nil, varErr("NotifyManagerAddresses", "%q is not an ASCII address: Lockbox mails without SMTPUTF8, which a mail server may refuse; give an internationalized domain in its xn-- form", a)
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// Webhooks returns the receivers' URLs of LOCKBOX_WEBHOOK_URLS as
// configured: without the spaces around them. Each URL as returned here
// derives its receiver's key, in the worker and in "lockbox webhook-key"
// alike.
func (c Config) Webhooks() []string {
	var out []string
	for u := range strings.SplitSeq(c.WebhookURLs, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// WebhookSchemes returns the schemes of LOCKBOX_WEBHOOK_SIGNATURES in the
// order they are sent, v1 first; v1 alone when it is empty (a Config not
// from Load). Load has refused any other value.
func (c Config) WebhookSchemes() []string {
	s, _ := parseWebhookSignatures(c.WebhookSignatures)
	return s
}

// parseWebhookSignatures reads a LOCKBOX_WEBHOOK_SIGNATURES list: v1, v2,
// or both in either order. Nothing else, so that a typo can't leave a
// receiver without the scheme it checks, or keep v1 going out when v2
// alone was meant.
func parseWebhookSignatures(list string) ([]string, error) {
	if list == "" {
		return []string{"v1"}, nil
	}
	seen := map[string]bool{}
	for name := range strings.SplitSeq(list, ",") {
		switch name = strings.TrimSpace(name); name {
		case "v1", "v2":
			if seen[name] {
				return nil, fmt.Errorf("names %s twice", name)
			}
			seen[name] = true
		case "":
			return nil, fmt.Errorf("%q has an empty entry; use v1, v2 or v1,v2", list)
		default:
			return nil, fmt.Errorf("%q is not one of v1, v2", name)
		}
	}
	var out []string
	for _, s := range []string{"v1", "v2"} {
		if seen[s] {
			out = append(out, s)
		}
	}
	return out, nil
}

// PublishedKeyFiles splits LOCKBOX_PROXY_PUBLISHED_KEY_FILES.
func (c Config) PublishedKeyFiles() []string {
	var out []string
	for f := range strings.SplitSeq(c.ProxyPublishedKeyFiles, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// TrustedProxyRanges parses LOCKBOX_TRUSTED_PROXIES: CIDRs or single
// addresses, comma-separated, as ranges without host bits, IPv4-mapped
// IPv6 ranges as the IPv4 ranges they map (client addresses are compared
// unmapped). A range of every address is refused, and so are ranges that
// together hold every IPv4 or every IPv6 address (0.0.0.0/1,128.0.0.0/1):
// trusting them would let every client write its own IP into the audit
// log.
func (c Config) TrustedProxyRanges() ([]netip.Prefix, error) {
	var out []netip.Prefix
	var written [2][]string // as written, of IPv4 and of IPv6 ranges
	for s := range strings.SplitSeq(c.TrustedProxies, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		var p netip.Prefix
		if strings.Contains(s, "/") {
			var err error
			if p, err = netip.ParsePrefix(s); err != nil {
				return nil, varErr("TrustedProxies", "%q is not a CIDR or an IP address: %w", s, err)
			}
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, varErr("TrustedProxies", "%q is not a CIDR or an IP address", s)
			}
			p = netip.PrefixFrom(a.WithZone(""), a.BitLen())
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		if p.Bits() == 0 {
			return nil, varErr("TrustedProxies", "%s holds every address: it would let every client choose its IP", s)
		}
		out = append(out, p.Masked())
		if p.Addr().Is4() {
			written[0] = append(written[0], s)
		} else {
			written[1] = append(written[1], s)
		}
	}
	// Client addresses are compared unmapped, so none is in
	// ::ffff:0:0/96: IPv6 ranges that hold every other IPv6 address
	// trust every IPv6 client.
	for i, all := range []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")} {
		nets := out
		if i == 1 {
			nets = append(slices.Clip(out), netip.MustParsePrefix("::ffff:0:0/96"))
		}
		if covers(nets, all) {
			return nil, varErr("TrustedProxies", "%s hold every address together: they would let every client choose its IP", strings.Join(written[i], ","))
		}
	}
	return out, nil
}

// covers reports whether the ranges of nets (without host bits) hold every
// address of p: one holds all of p, or each half of p is covered. It only
// splits p where a range of nets lies inside it, so the work is bounded by
// the ranges' count times the address length.
func covers(nets []netip.Prefix, p netip.Prefix) bool {
	inside := false
	for _, n := range nets {
		if n.Addr().BitLen() != p.Addr().BitLen() {
			continue
		}
		if n.Bits() <= p.Bits() && n.Contains(p.Addr()) {
			return true
		}
		if p.Contains(n.Addr()) {
			inside = true
		}
	}
	if !inside || p.Bits() == p.Addr().BitLen() {
		return false
	}
	lo := netip.PrefixFrom(p.Addr(), p.Bits()+1)
	b := p.Addr().AsSlice()
	b[p.Bits()/8] |= 0x80 >> (p.Bits() % 8)
	hiAddr, _ := netip.AddrFromSlice(b)
	return covers(nets, lo) && covers(nets, netip.PrefixFrom(hiAddr, p.Bits()+1))
}
