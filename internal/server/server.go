// Package server builds a whole Lockbox from its configuration — Redis,
// identity, catalog, lifecycle, API, metrics and health — and runs it. It is
// the wiring shared by "lockbox serve", "lockbox dev" and the end-to-end
// tests, so the tests exercise exactly what ships; only the clock and the
// logger can be injected.
package server

import (
	"cmp"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/api"
	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/identity/jwksfetch"
	"github.com/lockbox-oss/lockbox/internal/due"
	"github.com/lockbox-oss/lockbox/internal/events"
	"github.com/lockbox-oss/lockbox/internal/gcdefaults"
	"github.com/lockbox-oss/lockbox/internal/health"
	"github.com/lockbox-oss/lockbox/internal/httptimeouts"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/peer"
	"github.com/lockbox-oss/lockbox/internal/readlimit"
	"github.com/lockbox-oss/lockbox/internal/sendonce"
	"github.com/lockbox-oss/lockbox/notify"
	"github.com/lockbox-oss/lockbox/policy"
	"github.com/lockbox-oss/lockbox/proxy"
	lockboxrego "github.com/lockbox-oss/lockbox/rego"
	"github.com/lockbox-oss/lockbox/tenants"
)

// The engine, the requests' catalog, names its services to whoever files
// a request for a service it lacks.
var _ grants.ServiceLister = (*policy.Engine)(nil)

// The registry answers the audit log's and the lifecycle's questions
// about a tenant's users.
var (
	_ audit.TenantDirectory  = (*tenants.Store)(nil)
	_ grants.TenantDirectory = (*tenants.Store)(nil)
)

// requestTimeout bounds one API call, all its Redis round trips included.
// Each Redis call is bounded on its own by LOCKBOX_REDIS_TIMEOUT.
const requestTimeout = 10 * time.Second

// DefaultAPIWriteTimeout is the API listener's WriteTimeout (the /v1 API
// and the admin center): how long an answer may take from the end of its
// request's header, and how long an audit export, which moves the deadline
// on as it goes, may wait on its client. A minute is above the listener's
// 30 s ReadTimeout for the request's body plus requestTimeout for the
// call's work, with room to write a large answer to a slow client.
const DefaultAPIWriteTimeout = time.Minute

// metricsTimeouts are the metrics listener's. Its callers are Prometheus,
// probes and an operator's pprof, and its answers are small and quick:
// /livez at once, /readyz within health.CheckTimeout, and a scrape (the
// registry gathered, with a few reads of Redis at scrape time under
// LOCKBOX_REDIS_TIMEOUT each, and written out) in well under a second.
var metricsTimeouts = httptimeouts.Timeouts{
	ReadHeader: 5 * time.Second,
	// The whole request: a GET, with no body to wait for.
	Read: 10 * time.Second,
	// Three times Prometheus' default scrape_timeout, which gives up on
	// a scrape after 10 s anyway: room for a large registry and a slow
	// Redis, and a client that stops reading (or never opens its HTTP/2
	// flow-control window) is let go. net/http/pprof's profile and trace
	// (LOCKBOX_PPROF) move their own deadline on by the seconds they are
	// asked to run.
	Write: 30 * time.Second,
	// Longer than the usual scrape intervals (Prometheus' default is a
	// minute), so a scraper's kept-alive connection serves one scrape
	// after another; and an idle connection is closed at last.
	Idle: 2 * time.Minute,
}

// metricsServer is the server of the metrics address, with timeouts t.
func metricsServer(h http.Handler, errorLog *log.Logger, t httptimeouts.Timeouts) *http.Server {
	srv := t.Server(h)
	srv.ErrorLog = errorLog
	return srv
}

// Options are what tests may change about a server.
type Options struct {
	// Now is the clock of every component; time.Now when nil.
	Now func() time.Time
	// Logger; discards when nil.
	Logger *slog.Logger
	// DevMailDir, when set, receives notification e-mails as files when no
	// SMTP server is configured ("lockbox dev").
	DevMailDir string
	// SIEMOut receives the SIEM lines when LOCKBOX_SIEM_SINK is stdout;
	// os.Stdout when nil.
	SIEMOut io.Writer
	// DevIdentities are offered by the admin center's sign-in page
	// ("lockbox dev" only).
	DevIdentities []console.DevIdentity
	// OIDCHTTPClient talks to the OIDC issuer; a default client when nil.
	OIDCHTTPClient *http.Client
	// JWKSHTTPClient fetches JWKS URLs; a client with a 10 s timeout when
	// nil.
	JWKSHTTPClient *http.Client
	// DropInvalidation, when set, makes the proxy's cache invalidation
	// lose the events it returns true for, as a broken connection would:
	// tests show the caches' age limit bounds staleness on its own.
	DropInvalidation func(tenant string) bool
	// ConsoleRefresh is how often the admin center's live lists poll; the
	// console's default when zero. Browser tests shorten it so a list
	// visibly refreshes within the test's patience.
	ConsoleRefresh time.Duration
	// SweepInterval is how often the jobs' sweep runs, instead of
	// LOCKBOX_SWEEP_INTERVAL, when not zero. Config refuses less than
	// config.MinSweepInterval for a deployment; tests whose fake clock
	// jumps past a deadline shorten it to see the sweep settle it within
	// their patience.
	SweepInterval time.Duration
	// ProxyClientTimeout is how long a proxy call waits on its client
	// without progress (proxy.Config.ClientTimeout);
	// proxy.DefaultClientTimeout when zero. Tests shorten it to see a
	// stalled client cut off.
	ProxyClientTimeout time.Duration
	// APIWriteTimeout is the API listener's WriteTimeout;
	// DefaultAPIWriteTimeout when zero. Tests shorten it to see a
	// stalled client cut off.
	APIWriteTimeout time.Duration
	// PolicyEvalTimeout bounds one policy evaluation
	// (policy.EngineConfig.EvalTimeout); policy.DefaultEvalTimeout when
	// zero. Tests lengthen it: a loaded machine under -race now and then
	// takes longer than the default, and the call is denied.
	PolicyEvalTimeout time.Duration
	// RequestRetentionLimit is how many requests one run of request
	// retention deletes at most (grants.Config.RetentionLimit);
	// grants.DefaultRetentionLimit when zero. Tests lower it to see a
	// backlog deleted over several runs.
	RequestRetentionLimit int
	// EndDelay, once closed, ends the shutdown delay
	// (LOCKBOX_SHUTDOWN_DELAY) at once: "lockbox serve" closes it on a
	// second stop signal. Nil: the delay runs its course.
	EndDelay <-chan struct{}
	// After times the shutdown delay; time.After when nil. Tests end the
	// delay when they choose.
	After func(time.Duration) <-chan time.Time
	// ReindexAfter times the waits between the jobs' passes over the
	// provider-wide indexes (reindexLoop); time.After when nil.
	ReindexAfter func(time.Duration) <-chan time.Time
	// HealthAfter times the waits between the readiness probes Run makes
	// on its own (health.Probe); time.After when nil.
	HealthAfter func(time.Duration) <-chan time.Time
	// Reload, at each value, makes Run reload the files that can change
	// while Lockbox serves (Reload): "lockbox serve" sends one on
	// SIGHUP. Nil: they are reloaded only as their watchers see changes.
	Reload <-chan struct{}
}

// Server is a built Lockbox, ready to listen.
type Server struct {
	cfg   config.Config
	log   *slog.Logger
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
	// reindexAfter times reindexLoop's waits (Options.ReindexAfter).
	reindexAfter func(time.Duration) <-chan time.Time
	// probes are the readiness checks Run probes every
	// health.ProbeInterval, timed by healthAfter, besides /readyz.
	probes      []health.Check
	healthAfter func(time.Duration) <-chan time.Time
	endDelay    <-chan struct{}
	// sweepInterval is how often sweepLoop runs: LOCKBOX_SWEEP_INTERVAL,
	// or Options.SweepInterval.
	sweepInterval time.Duration
	// nextRequestRetention is when sweepLoop next applies request
	// retention (LOCKBOX_REQUEST_RETENTION); only sweepLoop reads it.
	nextRequestRetention time.Time
	// stopping is set at the stop signal: /readyz answers 503 from then
	// on, through the shutdown delay.
	stopping atomic.Bool
	Redis    redis.UniversalClient
	Requests *grants.Store
	Tenants  *tenants.Store
	Audit    *audit.Log
	Verifier *identity.Verifier
	jwks     *jwksfetch.Fetcher // fetches JWKS URLs; nil without any
	Policy   *policy.Engine
	Proxy    *proxy.Handler
	Registry *prometheus.Registry

	Notifier *notify.Worker
	events   *events.Listener // clears the proxy's caches
	// auditWriter writes the proxy's records in shared round trips; nil
	// without the proxy.
	auditWriter *audit.GroupCommit
	siem        *audit.Forwarder
	siemClose   io.Closer
	// auditMarks tells the SIEM forwarder and retention which tenants got
	// operator-action records, in the background; nil without the proxy.
	auditMarks *due.Batch

	apiLn, proxyLn, metricsLn net.Listener
	apiSrv, proxySrv, metSrv  *http.Server
	// drain counts the calls of all three that a stop waited for.
	drain drainCount
	tls   tlsState

	reload   <-chan struct{}
	reloadMu sync.Mutex // one Reload at a time, so an older read never replaces a newer one
	// grantKeys is the JWKS GET /v1/keys serves, as last read.
	grantKeys atomic.Pointer[[]byte]
	// sealKeys are those keys, which check the audit seals; sealSigner
	// the signing key that makes them (nil without one); sealer seals
	// (nil where this replica does not).
	sealKeys   atomic.Pointer[grantsig.KeySet]
	sealSigner atomic.Pointer[grantsig.Signer]
	sealer     *audit.Sealer
}

// New builds every component from cfg. It fails when Redis is unreachable
// (within LOCKBOX_REDIS_TIMEOUT), a key file or the catalog is bad.
func New(ctx context.Context, cfg config.Config, opts Options) (_ *Server, err error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.After == nil {
		opts.After = time.After
	}
	if opts.ReindexAfter == nil {
		opts.ReindexAfter = time.After
	}
	s := &Server{cfg: cfg, log: opts.Logger, now: opts.Now, after: opts.After, reindexAfter: opts.ReindexAfter, healthAfter: opts.HealthAfter, endDelay: opts.EndDelay, reload: opts.Reload, Registry: prometheus.NewRegistry(),
		sweepInterval: cmp.Or(opts.SweepInterval, cfg.SweepInterval)}
	s.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// The policy directory and the files the settings name are read before
	// Redis is dialled: what they refuse, the operator must edit
	// (config.ErrInvalid), where a Redis that does not answer may yet.
	if s.Policy, err = loadPolicy(cfg, opts, s.Registry); err != nil {
		return nil, err
	}
	if s.tls, err = loadTLS(cfg, opts); err != nil {
		return nil, config.Invalid(err)
	}
	var upstreams map[string]*url.URL
	if cfg.Runs(config.ComponentProxy) {
		if upstreams, err = cfg.UpstreamURLs(); err != nil {
			return nil, config.Invalid(err)
		}
	}
	keys, err := loadGrantKeys(cfg)
	if err != nil {
		return nil, err
	}
	s.grantKeys.Store(&keys.jwks)
	if err := s.setSealKeys(keys); err != nil {
		return nil, config.Invalid(err)
	}
	if cfg.Runs(config.ComponentAPI) && keys.count == 0 {
		opts.Logger.Warn("GET /v1/keys publishes no assertion keys: upstreams fetching it can verify no X-Lockbox-Grant; set LOCKBOX_PROXY_PUBLISHED_KEY_FILES to the proxy's public key")
	}
	// Its errors name their variable first, as every bad setting's do.
	// A JWKS URL that does not answer is logged, not returned: what is
	// returned is a file or a setting the operator must change.
	if s.Verifier, s.jwks, err = newVerifier(cfg, opts); err != nil {
		return nil, config.Invalid(err)
	}
	defer func() {
		if err != nil && s.jwks != nil {
			s.jwks.Close()
		}
	}()
	if s.Redis, err = connect(ctx, cfg); err != nil {
		return nil, err
	}
	defer func() {
		// The probe passed, but a later start-up step ran a command or
		// touched a key Redis's ACL does not grant Lockbox's user
		// (NOPERM): refused again on every start until the user's rules or
		// the setting change, as a wrong password is.
		if err != nil && redis.IsPermissionError(err) && !errors.Is(err, config.ErrInvalid) {
			err = config.Invalid(permissionError(cfg, "Redis", "a command or key Lockbox needs at start-up", err))
		}
	}()
	s.Audit = audit.NewLog(s.Redis, opts.Now)
	// Seals are checked against the keys GET /v1/keys publishes, as
	// last read.
	s.Audit.SetSealKeys(cfg.ProxyAssertionIssuer, s.sealKeys.Load)
	// Verification judges the chains' anchors by the shortest retention
	// trimmed with: one whose record is younger than that (any, with 0)
	// was not left by a trim, and the chain is reported broken.
	s.Audit.SetRetention(cfg.AnchorRetention())
	// Searches and exports tell of the records they can't read, and every
	// read of a registry entry for its organization id of one it can't use.
	if err := s.Audit.ReportUnreadable(s.Registry, opts.Logger.With("component", "audit")); err != nil {
		s.Redis.Close()
		return nil, err
	}
	s.Tenants = tenants.NewStore(s.Redis, s.Audit, opts.Now)
	// Every read of a registry entry or settings, the tenant list's and
	// the proxy's among them, tells of one it can't read.
	if err := s.Tenants.ReportUnreadable(s.Registry, opts.Logger.With("component", "tenants")); err != nil {
		s.Redis.Close()
		return nil, err
	}
	// A tenant's global admins and audit readers read its log only as
	// users of the tenant, by its registered domains.
	s.Audit.SetTenantDirectory(s.Tenants)
	jobs := cfg.Runs(config.ComponentJobs)
	if jobs {
		// Retention (sweepLoop) tells of the records it removes unread.
		if err := s.Audit.ReportRetention(s.Registry, opts.Logger.With("component", "retention")); err != nil {
			s.Redis.Close()
			return nil, err
		}
		if err := s.openSIEM(cfg, opts); err != nil {
			s.Redis.Close()
			return nil, err
		}
	}
	// The proxy's caches hear of other replicas' changes through events,
	// and of this process's own at once.
	s.events = events.NewListener(s.Redis, opts.Logger.With("component", "events"))
	s.events.Drop = opts.DropInvalidation
	s.Tenants.SetChanged(s.events.Invalidate)
	if s.Requests, err = grants.NewStore(grants.Config{
		Redis: s.Redis, Audit: s.Audit, Tenants: s.Tenants, Catalog: s.Policy,
		Now: opts.Now, Logger: opts.Logger.With("component", "grants"), Registerer: s.Registry,
		Outbox: notify.NewOutbox(), Changed: s.events.Invalidate, RetentionLimit: opts.RequestRetentionLimit,
		DeadLetters: notify.NewDeadLetters(s.Redis, nil, opts.Now, opts.Logger.With("component", "notify")),
	}); err != nil {
		s.Redis.Close()
		return nil, err
	}
	// Turning a tenant's lockbox on ends the grants its approvers never
	// approved, in the same transaction: the lifecycle does that part.
	s.Tenants.SetGuard(s.Requests)
	if jobs {
		// Tenants Lockbox knew before onboarding existed keep working.
		if n, err := s.Tenants.AdoptLegacy(ctx); err != nil {
			s.Redis.Close()
			return nil, fmt.Errorf("register tenants from before onboarding: %w", err)
		} else if n > 0 {
			opts.Logger.Warn("registered tenants that predate onboarding; give each its domains (lockboxctl tenant update): until then no user of theirs, global administrators included, can approve, deny or configure Customer Lockbox", "count", n)
		}
		if s.Notifier, err = newNotifier(cfg, opts, s); err != nil {
			s.Redis.Close()
			return nil, err
		}
	}
	if cfg.IssuersFile != "" {
		s.warnNotOnboarded(ctx)
	}
	if cfg.Runs(config.ComponentAPI) {
		if err := s.newAPI(cfg, opts); err != nil {
			s.Redis.Close()
			return nil, err
		}
	}
	if cfg.Runs(config.ComponentProxy) {
		if err := s.newProxy(cfg, opts, upstreams, keys.signing); err != nil {
			s.Redis.Close()
			return nil, err
		}
		if err := s.newSealer(cfg, opts); err != nil {
			s.Redis.Close()
			return nil, err
		}
	}
	readyLog := opts.Logger.With("component", "health")
	s.probes = []health.Check{
		health.Logged(readyLog, health.RedisCheck(s.Redis)),
		health.Logged(readyLog, health.Check{Name: "policy", Func: func(context.Context) error { return s.Policy.Ready() }}),
	}
	var metricsHandler http.Handler = health.Handler(s.Registry, append(s.probes,
		health.Check{Name: "shutdown", Func: func(context.Context) error {
			if s.stopping.Load() {
				return errStopping
			}
			return nil
		}},
	)...)
	if cfg.Pprof {
		metricsHandler = withPprof(metricsHandler)
	}
	s.metSrv = metricsServer(s.drain.wrap(metricsHandler), errorLog(opts.Logger), metricsTimeouts)
	s.useTLS()
	return s, nil
}

// newAPI builds the /v1 API and the admin center, which share the API
// address.
func (s *Server) newAPI(cfg config.Config, opts Options) error {
	// One bound for both: a user's audit exports and verifications count
	// together, whether started in the API or the admin center.
	longReads, err := readlimit.New(cfg.AuditReadsPerCaller, cfg.AuditReads)
	if err != nil {
		return err
	}
	// A refusal is logged by the API or the admin center; counted here,
	// once for both, so an SRE sees callers meet the bound.
	if err := longReads.Register(s.Registry); err != nil {
		return err
	}
	apiHandler, err := api.New(api.Config{
		Auth: s.Verifier, Requests: s.Requests, Tenants: s.Tenants, Audit: s.Audit,
		// As last read: a reload (SIGHUP) may change them.
		CurrentGrantKeys: func() []byte { return *s.grantKeys.Load() },
		Logger:           opts.Logger.With("component", "api"),
		// Each call gets a deadline, so Redis calls (with
		// ContextTimeoutEnabled) give up instead of hanging a client.
		Timeout:   requestTimeout,
		LongReads: longReads,
	})
	if err != nil {
		return err
	}
	consoleHandler, err := newConsole(cfg, opts, s, longReads)
	if err != nil {
		return err
	}
	// The admin center shares the API's address: one origin for browsers,
	// one listener to publish.
	apiMux := http.NewServeMux()
	apiMux.Handle(console.Prefix, consoleHandler)
	apiMux.Handle("GET /{$}", http.RedirectHandler(console.Prefix, http.StatusSeeOther))
	apiMux.Handle("/", apiHandler)
	handler, err := behindTrustedProxies(cfg, consoleHandler.Front(apiMux))
	if err != nil {
		return err
	}
	s.apiSrv = &http.Server{
		Handler:           s.drain.wrap(handler),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Bounds every answer, net/http's own included. Without it an
		// HTTP/1.1 client that stops reading holds its handler on a
		// large write, and an HTTP/2 client that never opens its
		// flow-control window holds every stream's handler on its last
		// write, for good. The audit exports (API and admin center) move
		// it on while they make progress (internal/writedeadline), so
		// only one whose client takes no bytes for this long is cut.
		WriteTimeout: cmp.Or(opts.APIWriteTimeout, DefaultAPIWriteTimeout),
		HTTP2:        httptimeouts.HTTP2(cmp.Or(opts.APIWriteTimeout, DefaultAPIWriteTimeout)),
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     errorLog(opts.Logger),
	}
	return nil
}

// newProxy builds the enforcement proxy and its server.
func (s *Server) newProxy(cfg config.Config, opts Options, upstreams map[string]*url.URL, signingKey crypto.Signer) error {
	// Grants and settings are served from memory for at most
	// LOCKBOX_CACHE_MAX_AGE; every change's event clears them at once.
	grantCache := grants.NewGrantCache(s.Requests, cfg.CacheMaxAge, opts.Now)
	settingsCache := tenants.NewSettingsCache(s.Tenants, cfg.CacheMaxAge, opts.Now)
	s.events.Add(grantCache, settingsCache)
	// Whether this replica hears other replicas' changes. Not a readiness
	// check: while it is 0 the caches still expire within the age limit,
	// the Listener keeps subscribing again on its own, and /readyz already
	// fails when Redis itself does not answer; a pub/sub hiccup must not
	// take every proxy replica out of service at once.
	if err := s.Registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lockbox_proxy_cache_events_subscribed",
		Help: "1 while the proxy's caches hear other replicas' changes (a live pub/sub subscription), 0 while they rely on their age limit alone.",
	}, func() float64 {
		if s.events.Subscribed() {
			return 1
		}
		return 0
	})); err != nil {
		return err
	}
	// Operator-action records of concurrent calls share round trips
	// (group commit); each call waits for its own.
	auditor, err := audit.NewGroupCommit(audit.GroupCommitConfig{
		Log: s.Audit, Registerer: s.Registry, Timeout: cfg.AuditTimeout,
		Durability: audit.Durability{Replicas: cfg.AuditReplicas, AOF: cfg.AuditAOF},
	})
	if err != nil {
		return err
	}
	s.auditWriter = auditor
	secrets, err := cfg.LoadAssertionSecrets()
	if err != nil {
		return config.Invalid(err)
	}
	s.auditMarks = due.NewBatch(s.Redis, opts.Now, opts.Logger.With("component", "due"), due.AuditWritten)
	if s.Proxy, err = proxy.New(proxy.Config{
		Upstreams: upstreams, Auth: s.Verifier, Grants: grantCache, Tenants: settingsCache,
		// One snapshot per call: the call is classified and decided by one
		// policy version, however the watcher reloads meanwhile.
		Policy:  proxy.PolicyFunc(func() proxy.PolicySnapshot { return s.Policy.Snapshot() }),
		Auditor: markingAuditor{auditor, s.auditMarks}, SigningKey: signingKey, AssertionSecrets: secrets,
		AssertionIssuer: cfg.ProxyAssertionIssuer, AssertionTTL: cfg.ProxyAssertionTTL,
		Now: opts.Now, Logger: opts.Logger.With("component", "proxy"), Registerer: s.Registry,
		GrantTimeout: cfg.GrantTimeout, AuditTimeout: cfg.AuditTimeout,
		// The body limit config checked LOCKBOX_PROXY_BODY_BUFFER_BYTES
		// against, so the two agree.
		MaxBodyBytes: config.ProxyMaxBodyBytes, BodyBufferBytes: cfg.ProxyBodyBufferBytes,
		ClientTimeout: opts.ProxyClientTimeout,
		UpstreamTLS:   s.tls.upstream,
	}); err != nil {
		return err
	}
	// A token secret reloaded into an upstream's assertion secret would
	// let that upstream mint operators' tokens: the verifier keeps the
	// keys it had.
	s.Verifier.RefuseSecrets(func(secret []byte) error {
		if svc, ok := s.Proxy.AssertionSecretOf(secret); ok {
			return fmt.Errorf("it is the assertion secret of %s (LOCKBOX_PROXY_ASSERTION_SECRET_FILES), which that upstream holds and could mint tokens with; give the token issuer a secret of its own", svc)
		}
		return nil
	})
	// After the grant cache, which an event must have cleared before the
	// calls in flight read their grants again.
	s.events.Add(s.Proxy.CallWatch())
	handler, err := behindTrustedProxies(cfg, s.Proxy)
	if err != nil {
		return err
	}
	s.proxySrv = &http.Server{
		Handler:           s.drain.wrap(handler),
		ReadHeaderTimeout: 10 * time.Second,
		// Where each call's deadlines on its client start: the handler
		// moves them on while the client keeps up (a long download, a
		// slow upload), and an HTTP/2 stream gets them only from here, as
		// does what net/http answers itself (proxy.Config.ClientTimeout).
		ReadTimeout:  s.Proxy.ClientTimeout(),
		WriteTimeout: s.Proxy.ClientTimeout(),
		HTTP2:        httptimeouts.HTTP2(s.Proxy.ClientTimeout()),
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     errorLog(opts.Logger),
		// HTTP/2 over TLS only, never h2c: see proxyProtocols.
		Protocols: proxyProtocols(),
	}
	return nil
}

// behindTrustedProxies puts h, the handler of the proxy's or the API's
// listener, behind the proxies of LOCKBOX_TRUSTED_PROXIES (peer.Trust), so
// every client IP recorded is the client's behind them. With none set it
// is h itself: the listener's path gains nothing, and no header is read.
// The metrics listener gets none: it records no client.
func behindTrustedProxies(cfg config.Config, h http.Handler) (http.Handler, error) {
	nets, err := cfg.TrustedProxyRanges()
	if err != nil {
		return nil, err
	}
	if h, err = peer.Trust(h, nets); err != nil {
		return nil, fmt.Errorf("LOCKBOX_TRUSTED_PROXIES: %w", err)
	}
	return h, nil
}

// grantKeys are the keys of the X-Lockbox-Grant assertions.
type grantKeys struct {
	signing crypto.Signer // the proxy's; nil without LOCKBOX_PROXY_SIGNING_KEY_FILE
	jwks    []byte        // every published key, as a JWKS
	count   int           // keys in jwks
}

// loadGrantKeys loads the signing key and the published keys, and writes
// their JWKS to LOCKBOX_PROXY_JWKS_FILE when set. The JWKS holds the
// signing key's public half (when this replica has it) and every key of
// LOCKBOX_PROXY_PUBLISHED_KEY_FILES, each once.
func loadGrantKeys(cfg config.Config) (grantKeys, error) {
	var k grantKeys
	var pubs []crypto.PublicKey
	if cfg.ProxySigningKeyFile != "" {
		key, err := grantsig.LoadPrivateKey(cfg.ProxySigningKeyFile)
		if err != nil {
			return k, config.Invalid(fmt.Errorf("LOCKBOX_PROXY_SIGNING_KEY_FILE: %w", err))
		}
		// Checked before its public half is published: a reload (SIGHUP)
		// must not publish a key the proxy then refuses to sign with,
		// in place of the key it goes on signing with.
		if _, err := grantsig.NewSigner(key); err != nil {
			return k, config.Invalid(fmt.Errorf("LOCKBOX_PROXY_SIGNING_KEY_FILE: %s: %w", cfg.ProxySigningKeyFile, err))
		}
		k.signing = key
		pubs = append(pubs, key.Public())
	}
	for _, f := range cfg.PublishedKeyFiles() {
		pub, err := grantsig.LoadPublicKey(f)
		if err != nil {
			return k, config.Invalid(fmt.Errorf("LOCKBOX_PROXY_PUBLISHED_KEY_FILES: %w", err))
		}
		pubs = append(pubs, pub)
	}
	set, err := grantsig.NewJWKS(pubs...)
	if err != nil {
		return k, config.Invalid(fmt.Errorf("LOCKBOX_PROXY_PUBLISHED_KEY_FILES: %w", err))
	}
	k.count = len(set.Keys)
	if k.jwks, err = json.MarshalIndent(set, "", "  "); err != nil {
		return k, err
	}
	k.jwks = append(k.jwks, '\n')
	if cfg.ProxyJWKSFile != "" {
		if fi, err := os.Stat(cfg.ProxyJWKSFile); err == nil && fi.IsDir() {
			// Renamed onto, a directory answers "file exists", which says
			// nothing of the mistake.
			return k, config.Invalid(fmt.Errorf("LOCKBOX_PROXY_JWKS_FILE: %s is a directory", cfg.ProxyJWKSFile))
		}
		if err := writeFileAtomic(cfg.ProxyJWKSFile, k.jwks, 0o644); err != nil {
			return k, config.InvalidFile(fmt.Errorf("LOCKBOX_PROXY_JWKS_FILE: %w", err))
		}
	}
	return k, nil
}

// writeFileAtomic replaces path with b at once, so an upstream reading the
// file never sees half of it.
func writeFileAtomic(path string, b []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // a no-op once renamed
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// newConsole builds the admin center, with OIDC sign-in when configured.
func newConsole(cfg config.Config, opts Options, s *Server, longReads *readlimit.Limiter) (*console.Console, error) {
	cc := console.Config{
		Requests: s.Requests, Tenants: s.Tenants, Audit: s.Audit, Redis: s.Redis, LongReads: longReads,
		Catalog:       func() console.Catalog { return s.Policy.Catalog() },
		DevIdentities: opts.DevIdentities, PublicURL: cfg.ConsoleURL,
		IdleTimeout: cfg.ConsoleIdleTimeout, MaxAge: cfg.ConsoleSessionMax, Reverify: cfg.ConsoleReverify, RefreshInterval: opts.ConsoleRefresh,
		Timeout: requestTimeout, Now: opts.Now, Logger: opts.Logger.With("component", "console"),
	}
	// Every error here is the configuration's: the sign-ins' settings and
	// secret files are read and checked, and no identity provider is asked
	// anything (discovery waits for the first sign-in), so none may pass
	// by itself. They exited 1, and systemd restarted a bad setting
	// forever.
	var err error
	if cc.OIDC, err = consoleSignins(cfg, opts); err != nil {
		return nil, config.Invalid(err)
	}
	logNoSignin(opts.Logger, cc.OIDC, len(opts.DevIdentities))
	c, err := console.New(cc)
	if err != nil {
		return nil, config.Invalid(fmt.Errorf("admin center (LOCKBOX_CONSOLE_*, LOCKBOX_OIDC_*, LOCKBOX_ISSUERS_FILE): %w", err))
	}
	return c, nil
}

// loadPolicy loads the policies and catalog from LOCKBOX_POLICY_DIR, or the
// defaults built into the binary. A broken policy at start-up stops the
// program with the compiler's message.
func loadPolicy(cfg config.Config, opts Options, reg prometheus.Registerer) (*policy.Engine, error) {
	ec := policy.EngineConfig{FS: lockboxrego.FS, Now: opts.Now, Logger: opts.Logger.With("component", "policy"), Registerer: reg,
		EvalTimeout: opts.PolicyEvalTimeout}
	if cfg.PolicyDir != "" {
		ec.FS, ec.Dir = os.DirFS(cfg.PolicyDir), cfg.PolicyDir
	}
	e, err := policy.NewEngine(ec)
	if err != nil && cfg.PolicyDir != "" {
		return nil, config.Invalid(fmt.Errorf("LOCKBOX_POLICY_DIR: %w", err))
	}
	return e, err
}

// Connect opens the configured Redis as "lockbox serve" does (connect),
// for the operator commands that work on Lockbox's data in place: the
// same topology, credentials, TLS and deadlines, and the same refusal to
// send a command twice.
func Connect(ctx context.Context, cfg config.Config) (redis.UniversalClient, error) {
	return connect(ctx, cfg)
}

// connect opens a UniversalClient on the configured Redis — one server,
// the master a Sentinel deployment names (followed through failovers), or
// a Redis Cluster — whose calls honour their context's deadline, and checks
// Redis answers.
func connect(ctx context.Context, cfg config.Config) (redis.UniversalClient, error) {
	opts, err := cfg.RedisOptions()
	if err != nil {
		return nil, config.Invalid(err)
	}
	// Without ContextTimeoutEnabled go-redis ignores ctx deadlines and uses
	// only its socket timeouts.
	//
	// MaxRetries -1: go-redis would send a command again after its
	// connection broke (EOF, a reset) or timed out while waiting for the
	// answer, though Redis may have run it: an audit record, an outbox entry
	// appended twice, and the proxied call forwarded as if nothing
	// happened. A command is sent once; a failure is the caller's 503 or
	// the job's next pass. (A dead pooled connection is found before use,
	// so a restart of Redis costs no failed call.) A cluster client sends
	// again on its own, past its nodes' MaxRetries: sendonce stops it
	// while still following MOVED and ASK.
	var rdb redis.UniversalClient
	var where string
	switch {
	case opts.Single != nil:
		o := opts.Single
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.ContextTimeoutEnabled = cfg.RedisTimeout, cfg.RedisTimeout, cfg.RedisTimeout, true
		o.MaxRetries = -1
		rdb, where = redis.NewClient(o), "the Redis at "+o.Addr
	case opts.Failover != nil:
		o := opts.Failover
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.ContextTimeoutEnabled = cfg.RedisTimeout, cfg.RedisTimeout, cfg.RedisTimeout, true
		o.MaxRetries = -1
		o.OnConnect = masterOnly
		rdb, where = redis.NewFailoverClient(o), fmt.Sprintf("the master %q of the sentinels at %s", o.MasterName, strings.Join(o.SentinelAddrs, ","))
	case opts.Cluster != nil:
		o := opts.Cluster
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.ContextTimeoutEnabled = cfg.RedisTimeout, cfg.RedisTimeout, cfg.RedisTimeout, true
		// While a slot moves, a tenant's keys answer with ASK (and a
		// script over two of them, briefly, TRYAGAIN): allow a few more
		// hops than go-redis's 3 before a call fails.
		o.MaxRedirects = 8
		rdb, where = sendonce.NewClusterClient(o), "the Redis Cluster at "+strings.Join(o.Addrs, ",")
	}
	// go-redis ends a call at its context's deadline, not at its
	// cancellation: a stop signal while Redis does not answer waited out
	// LOCKBOX_REDIS_TIMEOUT (or the 5m of a larger one) before the process
	// could end. Closing the client ends the wait.
	closeOnStop := context.AfterFunc(ctx, func() { rdb.Close() })
	err = checkRedis(ctx, cfg, rdb, where)
	if !closeOnStop() {
		// Closed, or closing: the stop, not Redis, ended start-up.
		rdb.Close()
		return nil, fmt.Errorf("%s: start-up stopped while waiting on %s: %w", cfg.RedisVar(), where, context.Cause(ctx))
	}
	if err != nil {
		rdb.Close()
		return nil, err
	}
	return rdb, nil
}

// checkRedis checks that rdb answers and, with LOCKBOX_AUDIT_AOF, can
// confirm fsyncs, within LOCKBOX_REDIS_TIMEOUT.
func checkRedis(ctx context.Context, cfg config.Config, rdb redis.UniversalClient, where string) error {
	pctx, cancel := context.WithTimeout(ctx, cfg.RedisTimeout)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		if redis.IsPermissionError(err) {
			return config.Invalid(permissionError(cfg, where, "the command PING", err))
		}
		if refusesCredentials(err) {
			if cfg.RedisTopology() == config.RedisSentinel {
				if serr := sentinelRefusal(pctx, cfg); serr != nil {
					return config.Invalid(serr)
				}
			}
			return config.Invalid(credentialsError(cfg, where, err))
		}
		if refusesCluster(err) {
			return config.Invalid(fmt.Errorf("%s: the Redis at %s is no node of a Redis Cluster: name it in LOCKBOX_REDIS_URL, or sentinels in LOCKBOX_REDIS_SENTINEL_ADDRS, instead: %w", cfg.RedisVar(), cfg.RedisClusterAddrs, err))
		}
		if cfg.RedisTopology() == config.RedisSentinel {
			// go-redis's error joins one line of each sentinel's answer:
			// the refusal says it on one.
			if serr := sentinelNameRefusal(pctx, cfg); serr != nil {
				return config.Invalid(serr)
			}
		}
		// go-redis hides protected mode's DENIED behind the broken pipe
		// that follows it: see protectedModeRefusal.
		if _, isRedis := errors.AsType[redis.Error](err); !isRedis {
			if derr := protectedModeRefusal(pctx, cfg, rdb); derr != nil {
				return config.Invalid(fmt.Errorf("%w (go-redis: %w)", derr, err))
			}
		}
		return fmt.Errorf("%s: %s does not answer: %w", cfg.RedisVar(), where, err)
	}
	if c, ok := rdb.(*redis.Client); ok && cfg.RedisTopology() == config.RedisSingle {
		if err := singleServerRefusal(pctx, cfg, c, where); err != nil {
			return config.Invalid(err)
		}
	}
	if cluster, ok := rdb.(*redis.ClusterClient); ok {
		// The PING reached one node: a node in protected mode among the
		// others failed only the calls for its slots, for as long as
		// Lockbox ran. On a deadline of its own: a node that does not
		// answer must not use up the one WAITAOF's probe has.
		sctx, cancel := context.WithTimeout(ctx, cfg.RedisTimeout)
		derr := protectedModeRefusal(sctx, cfg, cluster)
		cancel()
		if derr != nil {
			return config.Invalid(derr)
		}
	}
	if !cfg.AuditAOF || !cfg.Runs(config.ComponentProxy) {
		return nil
	}
	// Found out now, not on the first call: WAITAOF needs Redis 7.2
	// and appendonly yes. A wait of 1 ms for the local fsync costs
	// nothing. On a cluster every master holds some tenant's audit
	// stream: each must be able to confirm.
	probe := func(ctx context.Context, c *redis.Client) error {
		if err := c.Do(ctx, "WAITAOF", 1, 0, 1).Err(); err != nil {
			return fmt.Errorf("%s: %w", c.Options().Addr, err)
		}
		return nil
	}
	var err error
	if cluster, ok := rdb.(*redis.ClusterClient); ok {
		err = cluster.ForEachMaster(pctx, probe)
	} else {
		err = rdb.Do(pctx, "WAITAOF", 1, 0, 1).Err()
	}
	if err != nil {
		return waitaofError(cfg, where, err)
	}
	return nil
}

// waitaofError is the start-up error of a Redis that answered
// LOCKBOX_AUDIT_AOF's WAITAOF with err: the configuration's (exit 78)
// when its user may not run it (NOPERM) or Redis refuses the setting
// (refusesWAITAOF), else a failure that may pass.
func waitaofError(cfg config.Config, where string, err error) error {
	if redis.IsPermissionError(err) {
		return config.Invalid(permissionError(cfg, where, "the command WAITAOF, which LOCKBOX_AUDIT_AOF needs", err))
	}
	err = fmt.Errorf("LOCKBOX_AUDIT_AOF: %s can't confirm fsyncs (WAITAOF needs Redis 7.2 or later with appendonly yes): %w", where, err)
	if refusesWAITAOF(err) {
		return config.Invalid(err)
	}
	return err
}

// refusesCredentials tells a Redis that refused Lockbox's user and
// password (WRONGPASS), or asks for a password Lockbox did not give
// (NOAUTH). Redis asks again on every start, so a restart can't mend
// it: the operator changes the setting, or Redis's users (exit 78, where
// a Redis that does not answer yet, or is loading its data set, is 1).
func refusesCredentials(err error) bool {
	return redis.HasErrorPrefix(err, "WRONGPASS ") || redis.HasErrorPrefix(err, "NOAUTH ")
}

// credentialsError is the start-up error of a Redis that refused
// Lockbox's credentials (refusesCredentials), naming the variables that
// hold them.
func credentialsError(cfg config.Config, where string, err error) error {
	pass, user := cfg.RedisCredentialVars()
	var msg string
	switch {
	case pass == "":
		// The line starts with the variable a password goes in.
		pass = "LOCKBOX_REDIS_PASSWORD_FILE"
		msg = where + " asks for a password, and none is set (LOCKBOX_REDIS_PASSWORD_FILE"
		if cfg.RedisTopology() == config.RedisSingle {
			msg += ", or in LOCKBOX_REDIS_URL"
		}
		msg += ")"
	case user == pass:
		msg = where + " refused the user and password of " + pass
	case user != "":
		msg = where + " refused the user of " + user + " and the password of " + pass
	default:
		msg = where + " refused the password of " + pass
	}
	return fmt.Errorf("%s: %s: %w", pass, msg, err)
}

// permissionError is the start-up error of a Redis whose ACL refuses
// Lockbox's user what (NOPERM), naming the variable that chose the user:
// LOCKBOX_REDIS_USERNAME or LOCKBOX_REDIS_URL, or, when neither names
// one, LOCKBOX_REDIS_USERNAME for Redis's default user. Like a wrong
// password it is refused again on every start (exit 78), until Redis's
// rules for the user (ACL SETUSER) or the setting change; a restart of
// Lockbox alone mends nothing.
func permissionError(cfg config.Config, where, what string, err error) error {
	_, user := cfg.RedisCredentialVars()
	who := "the user of " + user
	if user == "" {
		user = "LOCKBOX_REDIS_USERNAME"
		who = "its default user (no LOCKBOX_REDIS_USERNAME is set)"
	}
	return fmt.Errorf("%s: %s refuses %s %s: grant it in the user's ACL rules, or name a user that has it: %w", user, where, who, what, err)
}

// sentinelRefusal asks each sentinel, with the sentinels' own password,
// whether it refuses it: go-redis's error reads the same whichever
// refused, a sentinel or the master it named. It returns the start-up
// error naming LOCKBOX_REDIS_SENTINEL_PASSWORD_FILE for the first that
// does, nil when none does (the master refused its own).
func sentinelRefusal(ctx context.Context, cfg config.Config) error {
	opts, err := cfg.RedisOptions()
	if err != nil || opts.Failover == nil {
		return nil
	}
	const v = "LOCKBOX_REDIS_SENTINEL_PASSWORD_FILE"
	o := opts.Failover
	for _, addr := range o.SentinelAddrs {
		c := redis.NewSentinelClient(&redis.Options{
			Addr: addr, Username: o.SentinelUsername, Password: o.SentinelPassword, TLSConfig: o.TLSConfig,
			DialTimeout: cfg.RedisTimeout, ReadTimeout: cfg.RedisTimeout, WriteTimeout: cfg.RedisTimeout,
			ContextTimeoutEnabled: true, MaxRetries: -1,
		})
		err := c.Ping(ctx).Err()
		c.Close()
		switch {
		case !refusesCredentials(err):
		case o.SentinelPassword == "":
			return fmt.Errorf("%s: the sentinel at %s asks for a password, and none is set (%s): %w", v, addr, v, err)
		default:
			return fmt.Errorf("%s: the sentinel at %s refused the password of %s: %w", v, addr, v, err)
		}
	}
	return nil
}

// refusesWAITAOF tells a Redis that answered LOCKBOX_AUDIT_AOF's WAITAOF
// with a refusal of the setting: it has no such command (before 7.2, or
// renamed away) or runs without an append-only file. Either stays until
// the operator changes Redis or the setting. Other errors may pass: a
// replica's ("cannot be used with replica instances"), which a master
// demoted by a failover answers until clients follow the new one, as does
// a managed Redis's endpoint until its name moves to the new primary;
// LOADING, BUSY, MASTERDOWN, CLUSTERDOWN; a timeout. (Inside MULTI or a
// script WAITAOF does not block and answers its counts, not an error;
// start-up sends it alone.)
func refusesWAITAOF(err error) bool {
	return redis.HasErrorPrefix(err, "unknown command ") ||
		redis.HasErrorPrefix(err, "WAITAOF cannot be used when numlocal is set but appendonly is disabled")
}

// Listen binds the API and metrics addresses. Addresses with port 0 get a
// free port; APIAddr and MetricsAddr tell which.
func (s *Server) Listen() error {
	type want struct {
		name, addr string
		ln         *net.Listener
	}
	wants := []want{{"LOCKBOX_METRICS_ADDR", s.cfg.MetricsAddr, &s.metricsLn}}
	if s.cfg.Runs(config.ComponentAPI) {
		wants = append(wants, want{"LOCKBOX_API_ADDR", s.cfg.APIAddr, &s.apiLn})
	}
	if s.Proxy != nil {
		wants = append(wants, want{"LOCKBOX_PROXY_ADDR", s.cfg.ProxyAddr, &s.proxyLn})
	}
	for i, w := range wants {
		ln, err := net.Listen("tcp", w.addr)
		if err != nil {
			for _, done := range wants[:i] {
				(*done.ln).Close()
			}
			if errors.Is(err, syscall.EACCES) {
				// A port below net.ipv4.ip_unprivileged_port_start
				// needs CAP_NET_BIND_SERVICE, which the systemd unit gives
				// no one: refused on every start until the address or the
				// capability changes. It exited 1, and was restarted every
				// RestartSec. An address in use may be freed: 1.
				return config.Invalid(fmt.Errorf("%s: %w (a port below net.ipv4.ip_unprivileged_port_start, 1024 by default, needs CAP_NET_BIND_SERVICE: choose a higher port, or grant Lockbox the capability)", w.name, err))
			}
			if errors.Is(err, syscall.EADDRNOTAVAIL) {
				// An IP address no interface of this host has (a
				// typo, another machine's): refused on every start, as
				// the systemd unit starts Lockbox only once the network
				// is up (network-online.target). It exited 1, and was
				// restarted every RestartSec.
				return config.Invalid(fmt.Errorf("%s: %w (no interface of this host has that address: choose one it has, or leave the host empty to listen on all)", w.name, err))
			}
			return fmt.Errorf("%s: %w", w.name, err)
		}
		*w.ln = ln
	}
	s.warnPlainHTTP()
	return nil
}

// ProxyAddr is the bound proxy address; empty when the proxy doesn't run.
func (s *Server) ProxyAddr() string { return addrOf(s.proxyLn) }

// APIAddr is the bound API address; empty when the API doesn't run.
func (s *Server) APIAddr() string { return addrOf(s.apiLn) }

// MetricsAddr is the bound metrics address.
func (s *Server) MetricsAddr() string { return addrOf(s.metricsLn) }

func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// Run serves until ctx ends, then shuts down gracefully. With jobs in
// LOCKBOX_SERVE it also runs the sweeper that settles expired requests and
// ended grants, audit retention, notification delivery and the SIEM
// forwarder.
func (s *Server) Run(ctx context.Context) error {
	if s.metricsLn == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	servers := []*http.Server{s.metSrv}
	errc := make(chan error, 3)
	go func() { errc <- serve(s.metSrv, s.metricsLn) }()
	if s.apiLn != nil {
		servers = append(servers, s.apiSrv)
		go func() { errc <- serve(s.apiSrv, s.apiLn) }()
	}
	if s.proxyLn != nil {
		servers = append(servers, s.proxySrv)
		go func() { errc <- serve(s.proxySrv, s.proxyLn) }()
	}
	// The background work outlives ctx by the shutdown delay: the proxy
	// serves calls meanwhile, and its caches must go on hearing of
	// revocations.
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	background := []func(context.Context){
		func(ctx context.Context) { s.Policy.Watch(ctx, s.cfg.PolicyReloadInterval) },
		func(ctx context.Context) { s.Verifier.Watch(ctx, keyFileCheck) },
		// The checks' gauges and log lines stay current where nothing
		// asks /readyz (systemd).
		func(ctx context.Context) { health.Probe(ctx, health.ProbeInterval, s.healthAfter, s.probes...) },
	}
	if s.Proxy != nil {
		background = append(background, s.events.Run)
	}
	if s.sealer != nil {
		background = append(background, s.sealLoop)
	}
	if s.reload != nil {
		background = append(background, func(ctx context.Context) { s.reloadLoop(ctx, s.reload) })
	}
	if s.cfg.Runs(config.ComponentJobs) {
		background = append(background, s.sweepLoop, s.reindexLoop, func(ctx context.Context) { _ = s.Notifier.Run(ctx) }, s.rescan().Run)
		if s.siem != nil {
			background = append(background, func(ctx context.Context) { _ = s.siem.Run(ctx) })
		}
	}
	// The marks of the records the proxy wrote go out after the proxy's
	// server stopped (below), so they run on a context of their own.
	marksCtx, stopMarks := context.WithCancel(context.WithoutCancel(ctx))
	marksDone := make(chan struct{})
	if s.auditMarks != nil {
		go func() { defer close(marksDone); s.auditMarks.Run(marksCtx, auditMarkInterval) }()
	} else {
		close(marksDone)
	}
	// The proxy's calls in flight are watched for revocations until its
	// server stopped (below): the calls it drains are cut like any other.
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	watchDone := make(chan struct{})
	if s.Proxy != nil {
		go func() { defer close(watchDone); s.Proxy.CallWatch().Run(watchCtx, proxy.RecheckInterval) }()
	} else {
		close(watchDone)
	}
	bgDone := make(chan struct{}, len(background))
	for _, f := range background {
		go func() { defer func() { bgDone <- struct{}{} }(); f(bgCtx) }()
	}
	gcPercent, memLimit := gcdefaults.Current()
	attrs := []any{"serve", s.cfg.Serve, "api", s.APIAddr(), "proxy", s.ProxyAddr(), "metrics", s.MetricsAddr(),
		"policy_revision", s.Policy.Revision(), "gogc", gcPercent, "memory_limit_bytes", memLimit}
	if s.Proxy != nil {
		// Which key each upstream checks its assertions with: the signing
		// key's kid, or its own secret's (LOCKBOX_PROXY_ASSERTION_SECRET_FILES).
		attrs = append(attrs, "assertion_kids", s.Proxy.AssertionKeyIDs())
	}
	s.log.Info("lockbox listening", attrs...)

	var err error
	signalled := false
	select {
	case <-ctx.Done():
		signalled = true
		err = s.delayShutdown(servers, errc)
	case err = <-errc:
	}
	stopBackground()
	for range background {
		<-bgDone
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	// All at once: each server stops accepting as Shutdown begins and
	// then waits for its calls. One after the other, the proxy took new
	// calls for as long as the API's drained, and had only what was left
	// of the timeout for them.
	drainStart := s.now()
	s.drain.draining.Store(true)
	shutdownErrs := make(chan error, len(servers))
	for _, srv := range servers {
		go func() { shutdownErrs <- srv.Shutdown(sctx) }()
	}
	drainCut := false
	for range servers {
		serr := <-shutdownErrs
		if errors.Is(serr, context.DeadlineExceeded) {
			drainCut = true
			continue
		}
		err = errors.Join(err, serr)
	}
	if drainCut {
		// Shutdown says only "context deadline exceeded" (once per
		// server), which named neither the setting that ran out nor
		// what it cost the calls still running.
		err = errors.Join(err, &DrainCutError{Timeout: s.cfg.ShutdownTimeout})
	}
	drainTook := s.now().Sub(drainStart)
	stopWatch()
	<-watchDone
	if s.auditWriter != nil {
		// After the proxy's server: no call is waiting for a record now.
		s.auditWriter.Close()
	}
	stopMarks()
	<-marksDone
	if s.siemClose != nil {
		err = errors.Join(err, s.siemClose.Close())
	}
	if s.jwks != nil {
		err = errors.Join(err, s.jwks.Close())
	}
	err = errors.Join(err, s.Redis.Close())
	if signalled && err == nil {
		// A clean stop said nothing, and a log that just ends reads
		// like a crash. A stop that failed says so in Run's error.
		s.log.Info("lockbox stopped", "drain", drainTook, "drained_calls", s.drain.drained.Load())
	}
	return err
}

// DrainCutError is Run's error when LOCKBOX_SHUTDOWN_TIMEOUT ran out
// before every call in flight at the stop signal had finished: those still
// running are cut off as the process ends.
type DrainCutError struct {
	Timeout time.Duration
}

func (e *DrainCutError) Error() string {
	return fmt.Sprintf("LOCKBOX_SHUTDOWN_TIMEOUT (%s) ran out with calls still in flight; they were cut off", e.Timeout)
}

// Unwrap is context.DeadlineExceeded, what Shutdown reported.
func (e *DrainCutError) Unwrap() error { return context.DeadlineExceeded }

// errStopping is /readyz's word for a process told to stop.
var errStopping = errors.New("stopping: no new calls should come here")

// delayShutdown is the shutdown delay (LOCKBOX_SHUTDOWN_DELAY): /readyz
// answers 503 while every listener keeps accepting and serving, for load
// balancers that stop sending new connections only some time after the
// stop signal (Kubernetes takes a pod out of its Services' endpoints
// asynchronously). It ends early on EndDelay or a server's error, which
// it returns.
func (s *Server) delayShutdown(servers []*http.Server, errc <-chan error) error {
	s.stopping.Store(true)
	d := s.cfg.ShutdownDelay
	if d <= 0 {
		return nil
	}
	// Answers from now on say Connection: close, and idle HTTP/1
	// connections close, so kept-alive clients open new connections,
	// which the load balancer sends elsewhere once it has caught up,
	// rather than being cut off when the drain closes them.
	for _, srv := range servers {
		srv.SetKeepAlivesEnabled(false)
	}
	s.log.Info("stop signal: not ready; serving new connections for LOCKBOX_SHUTDOWN_DELAY before draining", "delay", d)
	select {
	case <-s.after(d):
		return nil
	case <-s.endDelay:
		s.log.Info("second stop signal: draining now")
		return nil
	case err := <-errc:
		return err
	}
}

// openSIEM sets up the forwarder that writes every audit record once, on
// some replica, to LOCKBOX_SIEM_SINK.
func (s *Server) openSIEM(cfg config.Config, opts Options) error {
	format, err := audit.ParseFormat(cfg.SIEMFormat)
	if err != nil {
		return config.Invalid(fmt.Errorf("LOCKBOX_SIEM_FORMAT: %w", err))
	}
	// A file:/path whose directory does not exist, or that is a directory,
	// or that Lockbox may not write, is the operator's to change: it
	// exited 1, and systemd started it again every RestartSec on a path
	// that stays wrong.
	sink, closer, err := audit.OpenSink(cfg.SIEMSink, opts.SIEMOut, s.log)
	if err != nil {
		return config.InvalidFile(fmt.Errorf("LOCKBOX_SIEM_SINK: %w", err))
	}
	if sink == nil {
		return nil // off
	}
	consumer := cfg.SIEMConsumer
	if consumer == "" {
		consumer, _ = os.Hostname()
	}
	if s.siem, err = audit.NewForwarder(audit.ForwarderConfig{
		Redis: s.Redis, Sink: sink, Format: format, Consumer: consumer,
		Logger: opts.Logger.With("component", "siem"), Registerer: s.Registry,
		ClaimAfter: cfg.SIEMClaimAfter, Now: opts.Now,
	}); err != nil {
		if closer != nil {
			closer.Close()
		}
		return err
	}
	// Retention (sweepLoop) tells of the records it trims before any
	// forwarder read them.
	if err := s.Audit.ReportSIEMTrims(s.Registry, opts.Logger.With("component", "siem")); err != nil {
		if closer != nil {
			closer.Close()
		}
		return err
	}
	s.siemClose = closer
	return nil
}

// sweepLoop settles due requests every sweepInterval, and applies audit
// retention, and request retention at most every requestRetentionInterval.
// Several replicas may sweep at once: each claims the tenants it visits
// (internal/due), and transitions, trims and deletions are atomic and
// idempotent.
func (s *Server) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sctx, cancel := context.WithTimeout(ctx, requestTimeout)
			n, err := s.Requests.Sweep(sctx)
			cancel()
			switch {
			case err != nil && ctx.Err() == nil:
				s.log.Warn("sweep failed", "err", err)
			case n > 0:
				s.log.Info("sweep settled requests", "count", n)
			}
			if s.cfg.AuditRetention > 0 {
				tctx, cancel := context.WithTimeout(ctx, requestTimeout)
				n, err := s.Audit.TrimAll(tctx, s.cfg.AuditRetention)
				cancel()
				switch {
				case err != nil && ctx.Err() == nil:
					s.log.Warn("audit retention failed", "err", err)
				case n > 0:
					s.log.Info("audit retention removed records", "count", n, "retention", s.cfg.AuditRetention)
				}
			}
			s.requestRetention(ctx)
		}
	}
}

// requestRetentionInterval is how often request retention runs. It reads
// each tenant's index up to the cutoff only, and a retention of at least
// a day does not need more than an hour's precision.
const requestRetentionInterval = time.Hour

// requestRetentionSoon is how soon request retention runs again after a
// run that failed, or that stopped at its limit with more due (a backlog
// of years, the first time it is turned on): the backlog goes a run a
// minute, each short, with the sweep's other work in between.
const requestRetentionSoon = time.Minute

// requestRetention deletes the requests that ended more than
// LOCKBOX_REQUEST_RETENTION ago, when its interval has passed since the
// last run; a failed run, or one that left more due, is tried again at
// the next sweep a minute on.
func (s *Server) requestRetention(ctx context.Context) {
	began := s.now()
	if s.cfg.RequestRetention <= 0 || began.Before(s.nextRequestRetention) {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	n, more, err := s.Requests.DeleteEnded(rctx, s.cfg.RequestRetention)
	cancel()
	next := requestRetentionInterval
	if more {
		next = requestRetentionSoon
	}
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("request retention failed", "err", err, "deleted", n)
		next = requestRetentionSoon
	case n > 0:
		s.log.Info("request retention deleted requests", "count", n, "retention", s.cfg.RequestRetention)
	}
	// From when the run began: a run that takes long must not push the
	// next one further off.
	s.nextRequestRetention = began.Add(next)
}

// auditMarkInterval is how often the proxy's record marks are written:
// the most a SIEM line waits for it, at one round trip per interval
// however many calls the proxy serves.
const auditMarkInterval = 100 * time.Millisecond

// markingAuditor is the proxy's audit writer, which also tells the SIEM
// forwarder and retention (in the background, batched) which tenants got
// records.
type markingAuditor struct {
	*audit.GroupCommit
	marks *due.Batch
}

func (m markingAuditor) Append(ctx context.Context, r record.Record) (record.Record, error) {
	out, err := m.GroupCommit.Append(ctx, r)
	// Marked on an error too: the record may have been written all the
	// same, and a needless visit costs little.
	if keys.IsTenant(r.LockboxTenant) {
		m.marks.Add(r.LockboxTenant)
	}
	return out, err
}

func (m markingAuditor) AppendBounded(ctx context.Context, r record.Record) (record.Record, error) {
	return m.Append(ctx, r)
}

// rescan repairs the background jobs' schedules every
// LOCKBOX_JOBS_RESCAN_INTERVAL, on one replica at a time.
func (s *Server) rescan() *due.Rescan {
	probes := map[due.Job]due.Probe{due.Sweep: grants.SweepProbe, due.Notify: s.Notifier.Probe}
	if s.siem != nil {
		probes[due.SIEM] = s.siem.Probe
	}
	if s.cfg.AuditRetention > 0 {
		probes[due.Retention] = audit.RetentionProbe(s.cfg.AuditRetention)
	}
	if s.cfg.AuditSealInterval > 0 {
		probes[due.Seal] = audit.SealProbe
	}
	owner, _ := os.Hostname()
	return &due.Rescan{Redis: s.Redis, Now: s.now, Probes: probes, Interval: s.cfg.JobsRescanInterval,
		Owner: owner, Logger: s.log.With("component", "due")}
}

// reindexInterval is how often a jobs replica restores the provider-wide
// indexes; each pass after the first covers the requests created since the
// pass before it, with this much again as margin.
const reindexInterval = time.Hour

// reindexRetry is how soon a failed pass is tried again: a start-up pass
// that failed (Redis failing over) otherwise left the operators' listings
// unbuilt, and the tenants a lost write dropped unvisited, for an hour.
const reindexRetry = time.Minute

// reindexLoop restores the provider-wide indexes (the tenant set, request
// id → tenant, the provider-wide listing, the operators' listings) from the
// tenants' own keys: at start-up over everything, then every
// reindexInterval over the recent requests; a failed pass is tried again
// after reindexRetry. The first pass over everything
// also back-fills the operators' listings with the requests filed before
// they existed; operators list from the provider-wide index until it has. They live outside the tenants' hash slots and are written
// beside the tenants' transactions, so a Redis failover can lose a write of
// theirs that the tenant's own data kept (see keys). Several replicas may
// run it at once: it only adds what is missing.
func (s *Server) reindexLoop(ctx context.Context) {
	var since time.Time // the first pass covers every request
	for {
		start := s.now()
		rctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		tenants, err := s.Tenants.Reindex(rctx)
		requests := 0
		if err == nil {
			requests, err = s.Requests.Reindex(rctx, since)
		}
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("restoring the provider-wide indexes failed; retrying later", "err", err)
		case tenants+requests > 0:
			// Only a lost write leaves anything to restore: worth a look
			// at what Redis went through.
			s.log.Warn("restored provider-wide index entries a lost Redis write had dropped", "tenants", tenants, "request_entries", requests)
		}
		wait := reindexRetry
		if err == nil {
			since = start.Add(-reindexInterval)
			wait = reindexInterval
		}
		select {
		case <-ctx.Done():
			return
		case <-s.reindexAfter(wait):
		}
	}
}

// newNotifier builds the worker that delivers the notification outbox by
// SMTP and webhooks. Without SMTP, e-mails are logged (and written to
// DevMailDir in dev), so nothing is lost while none is configured.
func newNotifier(cfg config.Config, opts Options, s *Server) (*notify.Worker, error) {
	managers, err := cfg.ManagerAddresses()
	if err != nil {
		return nil, config.Invalid(err)
	}
	nc := notify.Config{Redis: s.Redis, Now: opts.Now, Registerer: s.Registry,
		Logger: opts.Logger.With("component", "notify"), DevDir: opts.DevMailDir,
		Tenants: s.Tenants, ManagerAddresses: managers, ExpiryWarning: cfg.NotifyExpiryWarning}
	if cfg.SMTPAddr != "" {
		nc.SMTP = &notify.SMTPConfig{Addr: cfg.SMTPAddr, From: cfg.SMTPFrom, Username: cfg.SMTPUsername,
			Password: cfg.SMTPPassword.Value(), StartTLS: notify.StartTLSPolicy(cfg.SMTPStartTLS)}
	} else if opts.DevMailDir == "" {
		opts.Logger.Warn("no LOCKBOX_SMTP_ADDR: notification e-mails are only logged")
	}
	if cfg.WebhookURLs != "" {
		if cfg.WebhookSecret == "" {
			return nil, config.Invalid(errors.New("LOCKBOX_WEBHOOK_SECRET_FILE: required with LOCKBOX_WEBHOOK_URLS"))
		}
		for _, u := range cfg.Webhooks() {
			nc.Webhooks = append(nc.Webhooks, notify.WebhookConfig{URL: u, Secret: []byte(cfg.WebhookSecret.Value()),
				Signatures: cfg.WebhookSchemes()})
		}
	}
	// Checked first, apart from the rest of NewWorker (its metrics'
	// registration): what it refuses is a setting, which exited 1 and was
	// restarted forever.
	if err := nc.CheckAndSetDefaults(); err != nil {
		return nil, config.Invalid(fmt.Errorf("notifications (LOCKBOX_SMTP_*, LOCKBOX_WEBHOOK_*, LOCKBOX_NOTIFY_*): %w", err))
	}
	w, err := notify.NewWorker(nc)
	if err != nil {
		return nil, fmt.Errorf("notifications (LOCKBOX_SMTP_*, LOCKBOX_WEBHOOK_*, LOCKBOX_NOTIFY_*): %w", err)
	}
	return w, nil
}

// withPprof adds Go's profiler under /debug/pprof/ to h (the metrics
// address only: profiles show internals no caller of the proxy or the API
// should see).
func withPprof(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}
