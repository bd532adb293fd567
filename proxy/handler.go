package proxy

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/httperr"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/peer"
	"github.com/lockbox-oss/lockbox/internal/readcache"
	"github.com/lockbox-oss/lockbox/policy"
	"github.com/lockbox-oss/lockbox/tenants"
)

// The dependencies the handler consumes, each declared here, where it is
// used, with only the method the proxy calls. cmd/ wires the concrete types
// (identity.Verifier, grants.Store, tenants.Store, the policy engine,
// audit.Log); the proxy knows nothing of how they work.

// Authenticator verifies a bearer token and says who it identifies. Every
// failure must wrap identity.ErrUnauthenticated.
type Authenticator interface {
	Verify(ctx context.Context, raw string) (identity.Principal, error)
}

// GrantLookup returns the grant for (tenant, operator, service). It returns
// an error wrapping grants.ErrNotFound when there is none and
// grants.ErrInvalid for identifiers no grant can have; any other error is
// store trouble. It must honour ctx's deadline (for go-redis: a client with
// ContextTimeoutEnabled).
type GrantLookup interface {
	Grant(ctx context.Context, tenant, operator, service string) (grants.Grant, error)
}

// TenantLookup returns a tenant's settings, honouring ctx's deadline.
type TenantLookup interface {
	Lookup(ctx context.Context, tenant string) (tenants.Settings, error)
}

// GrantPeeker and SettingsPeeker are implemented by lookups that keep
// answers in memory (grants.GrantCache, tenants.SettingsCache): the proxy
// asks them first, without I/O, and sets up the lookups' deadline only when
// something must be read from the store.
type GrantPeeker interface {
	// PeekGrant returns what Grant would return, when the read that
	// fetched it began, and true, when it can answer from memory.
	PeekGrant(tenant, operator, service string) (grants.Grant, error, time.Time, bool)
	// GrantAt is Grant, also returning when the read whose answer it
	// returns began (an earlier read's, when memory holds the answer).
	GrantAt(ctx context.Context, tenant, operator, service string) (grants.Grant, time.Time, error)
}

// SettingsPeeker: see GrantPeeker.
type SettingsPeeker interface {
	PeekSettings(tenant string) (tenants.Settings, bool)
}

// Policy hands out the policy version serving now. The proxy takes one
// snapshot per call and classifies and decides the call with it, so that a
// reload in between can't classify a call with one version's catalog and
// judge it with another version's rules. Snapshot returns nil, or a
// snapshot whose Revision is empty, when no policy is loaded; the call is
// then denied.
type Policy interface {
	Snapshot() PolicySnapshot
}

// PolicySnapshot is one version of the policy: the activity catalog and the
// rules loaded with it. It must not change once handed out.
type PolicySnapshot interface {
	// Classify finds the activity a canonical method and path of a
	// service invoke, and the value of its pattern's {tenant} wildcard.
	Classify(service, method, path string) (policy.Activity, string, bool)
	// Decide asks the policy. Only a nil error with Allow == true permits
	// the call; an undefined or malformed decision must be an error. The
	// snapshot owns its evaluation deadline.
	Decide(ctx context.Context, in policy.Input) (policy.Decision, error)
	// Revision names the version in the call's log lines and audit record.
	// It is empty only when no policy is loaded (a nil *policy.Snapshot).
	Revision() string
}

// PolicyFunc adapts a function to Policy. cmd/ wires the policy engine with
// it, because a method returning the concrete *policy.Snapshot does not
// satisfy Policy:
//
//	proxy.PolicyFunc(func() proxy.PolicySnapshot { return engine.Snapshot() })
type PolicyFunc func() PolicySnapshot

// Snapshot calls f.
func (f PolicyFunc) Snapshot() PolicySnapshot { return f() }

// Auditor writes one audit record durably, or fails. It must keep the
// record's Id (the proxy picks it, and the call's grant assertion names
// it): a record written under another Id refuses the call.
type Auditor interface {
	Append(ctx context.Context, r record.Record) (record.Record, error)
}

// BoundedAuditor is an Auditor that bounds every append by its own deadline
// (audit.GroupCommit, built with the audit timeout): the proxy hands it the
// call's context detached from the client and sets no deadline of its own,
// which saves a timer on every call.
type BoundedAuditor interface {
	Auditor
	// AppendBounded is Append, returning within the auditor's own bound
	// whatever ctx's deadline.
	AppendBounded(ctx context.Context, r record.Record) (record.Record, error)
}

// Defaults of Config.
const (
	// DefaultGrantTimeout bounds the grant and tenant-settings lookups of
	// one call together: two reads from a Redis that normally answers in
	// well under a millisecond. A Redis slower than this is, to the caller,
	// a Redis that is down: a fast 503 beats a hung operator.
	DefaultGrantTimeout = 300 * time.Millisecond
	// DefaultAuditTimeout bounds the audit write. It is longer than the
	// lookups because it is a durable write (an fsync under AOF "always").
	DefaultAuditTimeout = 2 * time.Second
	// DefaultMaxBodyBytes limits a call's request body.
	DefaultMaxBodyBytes = 10 << 20
	// DefaultBodyBufferBytes bounds the bodies all calls together hold in
	// memory to check them (see Config.BodyBufferBytes): six bodies at
	// DefaultMaxBodyBytes, or many small ones; 16 MiB of it for the calls of
	// any one operator.
	DefaultBodyBufferBytes = 64 << 20
	// DefaultAssertionIssuer is the "iss" of the grant assertions.
	DefaultAssertionIssuer = grantsig.DefaultIssuer
	// DefaultClientTimeout is how long a call waits on its client without
	// progress (see Config.ClientTimeout). It is a minute, like nginx's
	// client_body_timeout and send_timeout, and longer than the proxy's own
	// wait for an upstream to answer (its dial, TLS handshake and
	// response-header timeouts, 40 s together) plus the default grant and
	// audit deadlines, so that a slow upstream is reported as such, not
	// cut off as a slow client.
	DefaultClientTimeout = time.Minute
	// DefaultAssertionTTL is how long a grant assertion lives: long enough
	// for the trip to the upstream and a few seconds of clock difference,
	// short enough that a copy is soon worthless (and it names one call's
	// method and path anyway).
	DefaultAssertionTTL = 30 * time.Second
)

// Config configures a Handler. Every dependency is required: a proxy that
// can't audit, sign or decide must not start, rather than forward calls
// unaudited or unjudged.
type Config struct {
	// Upstreams maps each service name (the first path segment of a call,
	// e.g. "exchange") to its base URL, e.g. http://exchange.internal:8080
	// or https://exchange.internal/api. The call's path within the service
	// is appended to the base path.
	Upstreams map[string]*url.URL
	// Auth verifies the operator's bearer token.
	Auth Authenticator
	// Grants finds the operator's grant.
	Grants GrantLookup
	// Tenants finds the tenant's settings.
	Tenants TenantLookup
	// Policy maps method and path to a catalog activity and decides the
	// call, with one snapshot per call.
	Policy Policy
	// Auditor receives one record per permitted call, before forwarding.
	Auditor Auditor
	// SigningKey signs the X-Lockbox-Grant assertions upstreams verify:
	// an ed25519.PrivateKey (EdDSA, the cheaper to sign with) or an
	// *ecdsa.PrivateKey on P-256 (ES256), for upstreams whose JWT library
	// lacks EdDSA.
	SigningKey crypto.Signer
	// AssertionSecrets keys the assertions of some services with an
	// HS256 secret each (service → secret) instead of SigningKey: about a
	// microsecond a call instead of Ed25519's thirteen, at the price of
	// assertions only that upstream can check (see grantsig.AlgHS256).
	// Each service must be one of Upstreams and each secret its own.
	AssertionSecrets map[string][]byte
	// AssertionIssuer is the assertions' "iss"; DefaultAssertionIssuer when
	// empty.
	AssertionIssuer string
	// AssertionTTL is how long an assertion lives (never past its grant's
	// end), from 1s to grantsig.MaxTTL; DefaultAssertionTTL when zero.
	AssertionTTL time.Duration
	// Now is the clock, read once per call; time.Now when nil.
	Now func() time.Time
	// Logger receives one line per denial; discards when nil.
	Logger *slog.Logger
	// Registerer receives the proxy's metrics.
	Registerer prometheus.Registerer
	// GrantTimeout bounds the grant and settings lookups of a call;
	// DefaultGrantTimeout when zero.
	GrantTimeout time.Duration
	// AuditTimeout bounds the audit write; DefaultAuditTimeout when zero.
	// The write runs under context.WithoutCancel, so a client hanging up
	// can't cut it short.
	AuditTimeout time.Duration
	// MaxBodyBytes limits a call's request body; DefaultMaxBodyBytes when
	// zero. A larger body gets 413.
	MaxBodyBytes int64
	// BodyBufferBytes bounds the bytes of request bodies that all calls
	// together hold in memory: the form bodies and POSTed JSON bodies the
	// proxy reads whole to check them for method overrides. A call whose
	// body does not fit in what is left is refused at once (503
	// ReasonOverloaded, with Retry-After). The calls of one operator
	// together may hold a quarter of it, or MaxBodyBytes if that is more;
	// past their share an operator's call is refused the same way, while
	// other operators' calls still take from the rest. Zero means
	// DefaultBodyBufferBytes, or MaxBodyBytes if that is more; a value
	// under MaxBodyBytes is refused, since a body at the limit could never
	// be read.
	BodyBufferBytes int64
	// ClientTimeout bounds how long a call waits on its client without
	// progress: for the next bytes of its body, and for room to write its
	// answer (a client that stops reading, or never opens an HTTP/2
	// flow-control window, would otherwise hold the call, its goroutine
	// and its upstream connection for as long as it likes). The waits for
	// the checks and for the upstream count too: before the answer
	// starts, and between two pieces of it (over HTTP/1.1, when the
	// transport is NewTransport's, which bounds every call it carries,
	// with a body or not, to a plain-http or an https upstream).
	// Every byte read or written moves the deadline on, at most every
	// quarter of ClientTimeout, so a download or upload that keeps moving
	// is never cut, however long it takes, until its grant ends or is
	// revoked (which cuts any call: clientDeadline.grantEnds, CallWatch);
	// one that stalls for ClientTimeout (at least three quarters of it)
	// is. DefaultClientTimeout when zero.
	//
	// The handler sets an HTTP/1.1 connection's deadlines itself. An
	// HTTP/2 stream's start with it only if the server's ReadTimeout and
	// WriteTimeout are ClientTimeout (Handler.ClientTimeout says it), as
	// "lockbox serve" sets them; they also bound what net/http answers
	// without the handler (a malformed HTTP/2 request's 400, "OPTIONS *").
	ClientTimeout time.Duration
	// Transport carries calls to upstreams. When nil, the proxy builds its
	// own (see NewTransport): never http.DefaultTransport, which has no
	// response-header timeout, is shared with the rest of the process, and
	// follows HTTP_PROXY from the environment.
	Transport http.RoundTripper
	// UpstreamTLS configures the built transport's connections to https
	// upstreams: RootCAs that verify them (the system's roots when nil)
	// and a client certificate for upstreams that ask for one (mutual
	// TLS). Nil means system roots, no client certificate. Ignored when
	// Transport is set.
	UpstreamTLS *tls.Config
}

// CheckAndSetDefaults rejects a configuration missing a dependency or with
// an unusable upstream, and fills in the defaults.
func (c *Config) CheckAndSetDefaults() error {
	switch {
	case len(c.Upstreams) == 0:
		return errors.New("proxy: Upstreams is required")
	case c.Auth == nil:
		return errors.New("proxy: Auth is required")
	case c.Grants == nil:
		return errors.New("proxy: Grants is required")
	case c.Tenants == nil:
		return errors.New("proxy: Tenants is required")
	case c.Policy == nil:
		return errors.New("proxy: Policy is required")
	case c.Auditor == nil:
		// Never "audit nowhere": a permitted call must leave a record.
		return errors.New("proxy: Auditor is required")
	case c.SigningKey == nil:
		return errors.New("proxy: SigningKey is required")
	case c.Registerer == nil:
		return errors.New("proxy: Registerer is required")
	case c.GrantTimeout < 0, c.AuditTimeout < 0, c.MaxBodyBytes < 0, c.BodyBufferBytes < 0, c.ClientTimeout < 0:
		return errors.New("proxy: GrantTimeout, AuditTimeout, MaxBodyBytes, BodyBufferBytes and ClientTimeout must not be negative")
	case c.AssertionTTL != 0 && (c.AssertionTTL < time.Second || c.AssertionTTL > grantsig.MaxTTL):
		return fmt.Errorf("proxy: AssertionTTL must be from 1s to %s, got %s", grantsig.MaxTTL, c.AssertionTTL)
	}
	for name, u := range c.Upstreams {
		if err := checkUpstream(name, u); err != nil {
			return err
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.GrantTimeout == 0 {
		c.GrantTimeout = DefaultGrantTimeout
	}
	if c.AuditTimeout == 0 {
		c.AuditTimeout = DefaultAuditTimeout
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	switch {
	case c.BodyBufferBytes == 0:
		c.BodyBufferBytes = max(DefaultBodyBufferBytes, c.MaxBodyBytes)
	case c.BodyBufferBytes < c.MaxBodyBytes:
		return fmt.Errorf("proxy: BodyBufferBytes (%d) must be at least MaxBodyBytes (%d): a body at the limit could never be read", c.BodyBufferBytes, c.MaxBodyBytes)
	}
	if c.ClientTimeout == 0 {
		c.ClientTimeout = DefaultClientTimeout
	}
	if c.AssertionIssuer == "" {
		c.AssertionIssuer = DefaultAssertionIssuer
	}
	if c.AssertionTTL == 0 {
		c.AssertionTTL = DefaultAssertionTTL
	}
	if c.Transport == nil {
		https := false
		for _, u := range c.Upstreams {
			https = https || u.Scheme == "https"
		}
		c.Transport = NewTransport(https, c.UpstreamTLS, c.ClientTimeout)
	}
	return nil
}

// checkUpstream accepts a plain http(s) base URL: no credentials, query or
// fragment, and a base path that is itself canonical, so that base path +
// canonical path is still exactly what the policy judged.
func checkUpstream(name string, u *url.URL) error {
	switch {
	case !keys.IsService(name):
		return fmt.Errorf("proxy: upstream %q: a service name is 1-32 lower-case letters, digits or '-', starting with a letter", name)
	case u == nil:
		return fmt.Errorf("proxy: upstream %s: no URL", name)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("proxy: upstream %s: scheme must be http or https", name)
	case u.Host == "" || u.Opaque != "":
		return fmt.Errorf("proxy: upstream %s: URL needs a host", name)
	case u.User != nil:
		return fmt.Errorf("proxy: upstream %s: credentials in the URL are not allowed", name)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fmt.Errorf("proxy: upstream %s: URL must not have a query or fragment", name)
	}
	if base := strings.TrimSuffix(u.Path, "/"); base != "" {
		if _, err := Canonicalize(base); err != nil || (u.RawPath != "" && u.RawPath != u.Path) {
			return fmt.Errorf("proxy: upstream %s: base path %q is not canonical", name, u.Path)
		}
	}
	return nil
}

// Handler is the enforcement proxy. It is safe for concurrent use and
// keeps no state between calls: each call, even on a kept-alive
// connection, is judged from scratch.
type Handler struct {
	cfg       Config
	upstreams map[string]*upstream
	services  string // "exchange, onedrive, sharepoint", for messages
	metrics   *metrics
	views     *grantViews
	now       nowText
	ids       *decisionIDs
	log       *slog.Logger
	// bodies is what screenBody may hold of request bodies, across calls.
	bodies bodyBudget
	// watch keeps the calls forwarded and still under way, for a
	// revocation to cut.
	watch *CallWatch
}

// New checks cfg and returns a Handler, with one reverse proxy per
// upstream built now rather than per call.
func New(cfg Config) (*Handler, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	signer, err := grantsig.NewSigner(cfg.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("proxy: SigningKey: %w", err)
	}
	services := slices.Sorted(maps.Keys(cfg.Upstreams))
	h := &Handler{
		cfg:       cfg,
		upstreams: make(map[string]*upstream, len(services)),
		services:  strings.Join(services, ", "),
		log:       cfg.Logger,
		views:     newGrantViews(signer, cfg.AssertionIssuer),
		ids:       newDecisionIDs(),
	}
	if err := h.SetAssertionSecrets(cfg.AssertionSecrets); err != nil {
		return nil, err
	}
	h.watch = newCallWatch(h)
	h.bodies.setLimit(cfg.BodyBufferBytes, cfg.MaxBodyBytes)
	if h.metrics, err = newMetrics(cfg.Registerer, services, &h.bodies); err != nil {
		return nil, err
	}
	for _, s := range services {
		h.upstreams[s] = h.newUpstream(s, cfg.Upstreams[s])
	}
	return h, nil
}

// SetSigningKey makes key sign the X-Lockbox-Grant assertions from the
// next call on: a rotated LOCKBOX_PROXY_SIGNING_KEY_FILE, read again on
// SIGHUP. A key that can't sign them is an error, and the key in use
// keeps signing. A call already signed keeps its assertion.
func (h *Handler) SetSigningKey(key crypto.Signer) error {
	signer, err := grantsig.NewSigner(key)
	if err != nil {
		return fmt.Errorf("proxy: signing key: %w", err)
	}
	h.views.signer.Store(signer)
	return nil
}

// SigningKeyID is the key id ("kid") of the key signing the assertions
// now.
func (h *Handler) SigningKeyID() string { return h.views.signer.Load().KeyID() }

// ErrSharedSecret is returned by SetAssertionSecrets for one secret given
// to two services: either upstream could then make the other's
// assertions.
var ErrSharedSecret = errors.New("proxy: two services share an assertion secret")

// SetAssertionSecrets makes secrets (service → HS256 secret) key the
// assertions of those services from the next call on, and SigningKey
// those of every other service: at start-up, and when the secret files
// are read again on SIGHUP. Secrets that can't be used (too short, for a
// service not configured, one secret for two services) are an error,
// and the secrets in use stay. A call already signed keeps its assertion.
func (h *Handler) SetAssertionSecrets(secrets map[string][]byte) error {
	m := make(map[string]serviceSecret, len(secrets))
	for _, svc := range slices.Sorted(maps.Keys(secrets)) {
		if _, ok := h.cfg.Upstreams[svc]; !ok {
			return fmt.Errorf("proxy: assertion secret of %q: not a configured service (%s)", svc, h.services)
		}
		signer, err := grantsig.NewSecretSigner(secrets[svc])
		if err != nil {
			return fmt.Errorf("proxy: assertion secret of %s: %w", svc, err)
		}
		if other, dup := holderOf(m, secrets[svc]); dup {
			return fmt.Errorf("%w: %s and %s", ErrSharedSecret, other, svc)
		}
		m[svc] = serviceSecret{signer: signer, secret: bytes.Clone(secrets[svc])}
	}
	h.views.secrets.Store(&m)
	return nil
}

// AssertionSecretOf reports which service's assertions secret keys now,
// if any: white space around either counts for nothing, as it does for
// grantsig.CheckSecret. The server refuses such a secret for anything
// else (a token secret reloaded into one), since the upstream holds it.
func (h *Handler) AssertionSecretOf(secret []byte) (service string, ok bool) {
	held := h.views.secrets.Load()
	if held == nil {
		return "", false
	}
	return holderOf(*held, secret)
}

// holderOf returns the service of held whose secret is secret but for
// white space around it.
func holderOf(held map[string]serviceSecret, secret []byte) (string, bool) {
	want := bytes.TrimSpace(secret)
	for _, svc := range slices.Sorted(maps.Keys(held)) {
		if bytes.Equal(bytes.TrimSpace(held[svc].secret), want) {
			return svc, true
		}
	}
	return "", false
}

// AssertionKeyIDs returns the key id ("kid") each service's assertions
// are made with now: the signing key's, or the service's secret's.
func (h *Handler) AssertionKeyIDs() map[string]string {
	out := make(map[string]string, len(h.cfg.Upstreams))
	for svc := range h.cfg.Upstreams {
		out[svc] = h.views.signerFor(svc).KeyID()
	}
	return out
}

// call is what the steps learn about one request, for the next steps and
// for the log line.
type call struct {
	id    string    // decision id: names this call in the log and to the client
	now   time.Time // the time it is judged at: once authenticated, or, if screenBody read its body, once that was complete and the token verified again
	label string    // service metric label: a configured service or "unknown"

	// policy is the one version of the policy that classifies and decides
	// the call, and that its log lines and audit record name.
	policy    PolicySnapshot
	principal identity.Principal
	route     route
	Call
	grant grants.Grant
	// grantRead is when the read of grant began: what the store held
	// then, or later, is what the call is judged by (see current).
	grantRead time.Time
	view      *grantView // what derives from grant alone
	settings  tenants.Settings
	// auditID is the Id of the call's audit record, chosen before the
	// record is written so that the assertion can name it.
	auditID   string
	assertion [1]string   // X-Lockbox-Grant's value
	header    http.Header // the outbound header set
	record    record.Record
	// bodyHeld is how much of the body budget screenBody reserved for the
	// call's body, in its operator's (principal.Subject's) name; ServeHTTP
	// returns it when the call is over.
	bodyHeld int64
	// deadline bounds the waits on the client.
	deadline clientDeadline
	// While the call is forwarded, CallWatch keeps it in its tenant's
	// shard's list (watchShard, the handler goroutine's; watchNext and
	// watchPrev, under the shard's lock), and confirmed is when its grant
	// was last read and found unchanged (once the call is kept, CallWatch's
	// passes' own: written by the one read of its grant in a pass).
	watchShard           *watchShard
	watchNext, watchPrev *call
	confirmed            time.Time
	// noted is the shard of the call's tenant, and watchGen its count of
	// invalidations, as the grant's read began (CallWatch.note).
	noted    *watchShard
	watchGen uint64
}

// ServeHTTP judges one call and forwards it only if every check passed.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Latency is measured on the monotonic clock, not the injected one.
	start := time.Now()
	c := &call{
		id:    h.ids.next(),
		label: h.metrics.label(claimedService(r.RequestURI)),
	}
	w.Header().Set(HeaderDecisionID, c.id)
	// Before anything waits on the client: the body is read while the
	// call is judged, and any answer, a denial's too, may wait for room.
	c.deadline.start(w, r, h.cfg.ClientTimeout, start)
	if hasBody(r) {
		r.Body = &progressBody{ReadCloser: r.Body, d: &c.deadline}
	}
	// Denied until judged and forwarded: a way out nobody foresaw must not
	// be counted as a served call.
	decision, reason := decisionDenied, Reason("")
	// Deferred, because a call whose answer broke off midway ends the
	// handler with a panic (http.ErrAbortHandler, below). For the same
	// reason the body budget is returned here, on every way out: refused,
	// forwarded, or aborted. By then the call's buffered body is not
	// needed: ReverseProxy has returned, with the upstream's answer copied
	// or given up on.
	defer func() {
		h.watch.remove(c)
		c.deadline.finish()
		h.bodies.release(c.principal.Subject, c.bodyHeld)
		h.metrics.observe(c.label, decision, reason, time.Since(start))
	}()
	var err error
	if reason, err = h.judgeOrRecover(r, c); reason != "" {
		if reason == ReasonClientCanceled || errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			// The client hung up (reset its stream) while the call was
			// judged, which canceled the step under way: a Redis read or
			// the policy's evaluation failed for the client's doing, not
			// for a store or a policy in trouble, and must not be counted
			// as one (a single store_unavailable pages whoever runs Redis),
			// nor as the client's bad request.
			reason = ReasonClientCanceled
			h.canceledWhileJudged(w, r, c, err)
			return
		}
		h.deny(w, r, c, reason, err)
		return
	}
	var aborted bool
	if decision, aborted = h.forward(w, r, c); aborted {
		// The answer's header may be out already: only dropping the
		// connection (resetting the stream) tells the client that what it
		// got is not the whole answer.
		panic(http.ErrAbortHandler)
	}
}

// judgeOrRecover is judge, with a panic while judging (a bug in a check, a
// store or the policy's wiring) turned into ReasonInternalError: net/http
// would recover it and drop the connection, and the call went uncounted
// as a denial and unlogged as one. The panic and its stack go to the
// denial's log line, never to the client. http.ErrAbortHandler, a client
// gone, goes on.
func (h *Handler) judgeOrRecover(r *http.Request, c *call) (reason Reason, err error) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			reason, err = ReasonInternalError, fmt.Errorf("panic while judging the call: %v\n%s", p, debug.Stack())
		}
	}()
	return h.judge(r, c)
}

// authorize looks up the call's grant and its tenant's settings and asks
// the policy, at c.now, c.policy and c.Call: the checks that make a call
// one that may be made, which judge runs before a body is read and again
// once a body read whole is in.
func (h *Handler) authorize(ctx context.Context, c *call) (reason Reason, err error) {
	// One deadline bounds the grant and settings reads together, set up
	// only if a cache does not already hold the answers.
	var cancel context.CancelFunc
	var lookupCtx context.Context
	store := func() context.Context {
		if lookupCtx == nil {
			lookupCtx, cancel = context.WithTimeout(ctx, h.cfg.GrantTimeout)
		}
		return lookupCtx
	}
	defer func() {
		if cancel != nil {
			cancel()
		}
	}()
	h.watch.note(c)
	if c.grant, c.grantRead, reason, err = h.lookupGrant(store, c.principal, c.Call, c.now); reason != "" {
		return reason, err
	}
	if c.settings, reason, err = h.lookupSettings(store, c.Tenant); reason != "" {
		return reason, err
	}
	// What derives from the grant alone is derived once per grant.
	if c.view, err = h.views.view(&c.grant, c.now); err != nil {
		// Encoding a grant's strings can't fail; nothing gets here.
		return ReasonStoreUnavailable, fmt.Errorf("grant assertion template: %w", err)
	}
	in := buildInput(c.principal, c.Call, c.view.policy, c.settings, h.now.format(c.now))
	if reason, err = h.decide(ctx, c.policy, in); reason != "" {
		return reason, err
	}
	return "", nil
}

// judge runs the checks in order and returns the first denial, or "" when
// the call may be forwarded (c then holds the outbound header set and the
// audit record that was written).
func (h *Handler) judge(r *http.Request, c *call) (Reason, error) {
	ctx := r.Context()
	var (
		reason Reason
		err    error
	)
	// Taken first: every step after this judges the call by this one
	// version, however the policy reloads meanwhile.
	c.policy = h.cfg.Policy.Snapshot()
	if reason, err = screen(r, h.cfg.MaxBodyBytes); reason != "" {
		return reason, err
	}
	if c.principal, reason, err = h.authenticate(ctx, r); reason != "" {
		return reason, err
	}
	// The call is judged at a reading of the clock taken once its operator
	// is known: verifying a token can wait for the issuer's keys to load
	// again (up to the fetch's timeout), and a grant that ended meanwhile
	// must refuse the call. It is read again once a body screenBody reads
	// is complete.
	c.now = h.cfg.Now()
	if c.route, reason, err = h.resolve(r.RequestURI); reason != "" {
		if reason == ReasonUnknownService {
			c.label = unknownService
		}
		return reason, err
	}
	c.label = c.route.up.service
	if c.Call, reason, err = h.classify(r, c.policy, c.route); reason != "" {
		return reason, err
	}
	// A call with a body is authorized before any of its body is read:
	// the body is read only for a call that may be made (and an HTTP/1.1
	// client that sent "Expect: 100-continue" is told to send it only
	// then), so an operator without a grant can't make the proxy buffer
	// anything. A body read whole is authorized again once it is in
	// (below), by then's token, clock and policy.
	withBody := hasBody(r)
	if withBody {
		if reason, err = h.authorize(ctx, c); reason != "" {
			return reason, err
		}
	}
	read := false
	if read, reason, err = h.screenBody(r, c); reason != "" {
		return reason, err
	}
	if read {
		// The body may have taken as long as the client liked to arrive
		// (nothing bounds a body's time, only its size, and a client that
		// keeps it moving is never cut). The token is verified again now
		// that it is complete: one that expired meanwhile, or whose key the
		// issuer retired, must not carry a call judged after it ended, or
		// a token's lifetime would be stretched by dripping a body in.
		if reason, err = h.reauthenticate(ctx, r, c); reason != "" {
			return reason, err
		}
		// Then the clock, at which the grant is judged, as for any call
		// once its operator is known.
		c.now = h.cfg.Now()
		// Like the clock, the policy is read again: a version the
		// security team replaced meanwhile must not judge the call. It
		// classifies the call again too, so that one version still
		// classifies and decides it.
		c.policy = h.cfg.Policy.Snapshot()
		if c.Call, reason, err = h.classify(r, c.policy, c.route); reason != "" {
			return reason, err
		}
	}
	if read || !withBody {
		if reason, err = h.authorize(ctx, c); reason != "" {
			return reason, err
		}
	}
	// The header set is built (and the call's assertion signed, naming
	// the record about to be written) before the audit write, so that once
	// the record is written only forwarding itself remains. (A write that
	// times out may still land: then a record describes a call that was
	// refused, which errs on the side of over-reporting.)
	c.auditID = uuid.Must(uuid.NewV7()).String()
	if c.header, reason, err = h.outboundHeader(r.Header, c); reason != "" {
		return reason, err
	}
	// The call is judged at c.now, but the grant's read and the policy
	// may have lasted past the grant's end (a slow Redis, within the grant
	// timeout), and so may the audit write (a group commit waiting on
	// replicas, within the audit timeout): the window is checked again
	// before the record is written and before anything is forwarded, so
	// that no call reaches the upstream once its grant has ended.
	if reason, err = h.stillValid(c, h.cfg.Now()); reason != "" {
		return reason, err
	}
	if c.record, reason, err = h.audit(ctx, c); reason != "" {
		return reason, err
	}
	// A record written for a call refused here describes a call that
	// never happened, which errs on the side of over-reporting, as a write
	// that timed out and landed does.
	return h.current(ctx, c)
}

// maxGrantAge is how long after the read of its grant began a call may
// still be forwarded on what it read: the contract's bound on honouring a
// revocation on every replica, the most a cache may serve a grant for.
const maxGrantAge = readcache.MaxAgeLimit

// current is the last check before forwarding: the grant's window, on a
// fresh reading of the clock, and the grant itself once the call has
// waited long enough (a slow audit write) for a revocation, or Customer
// Lockbox switched on, to have landed more than maxGrantAge ago unseen.
// Only then is the grant read again; a call that comes this far within
// maxGrantAge of its grant's read (every call but a slow one) pays one
// comparison.
func (h *Handler) current(ctx context.Context, c *call) (Reason, error) {
	now := h.cfg.Now()
	if reason, err := h.stillValid(c, now); reason != "" {
		return reason, err
	}
	// A clock set back since the read counts as stale too, as in the
	// caches: what was read can't be dated. A change to the tenant that
	// this replica heard of after the read began (its cache cleared
	// since) has the grant read again at once, not only once the read is
	// maxGrantAge old.
	if age := now.Sub(c.grantRead); age >= 0 && age < maxGrantAge && !c.heard() {
		return "", nil
	}
	if reason, err := h.regrant(ctx, c, now); reason != "" {
		return reason, err
	}
	// The read may have waited on Redis (within the grant timeout) past
	// the grant's end, which was judged on the clock before it: the window
	// is checked again once it answered. Only slow calls come here.
	return h.stillValid(c, h.cfg.Now())
}

// regrant reads the call's grant again (memory first, as the first
// lookup) and refuses the call if it is gone or is no longer the grant
// the call was judged and audited by. Turning Customer Lockbox on ends, in
// its own transaction, every grant it no longer allows, so the grant alone
// tells whether the switch took the call's access away; the settings are
// not read again.
func (h *Handler) regrant(ctx context.Context, c *call, now time.Time) (Reason, error) {
	lookupCtx, cancel := context.WithTimeout(ctx, h.cfg.GrantTimeout)
	defer cancel()
	g, _, reason, err := h.lookupGrant(func() context.Context { return lookupCtx }, c.principal, c.Call, now)
	switch {
	case reason != "":
		return reason, err
	case !sameGrant(g, c.grant):
		// Another request's grant, or this one rewritten: the call's
		// record and assertion name what it was judged by.
		return ReasonNoGrant, fmt.Errorf("the grant of request %s ended while the call was judged", c.grant.RequestID)
	}
	return "", nil
}

// stillValid refuses the call if its grant has ended by now, a fresh
// reading of the clock.
func (h *Handler) stillValid(c *call, now time.Time) (Reason, error) {
	if !c.grant.Valid(now) {
		return ReasonGrantExpired, fmt.Errorf("the grant of request %s expired at %s", c.grant.RequestID, c.grant.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return "", nil
}

// screen refuses requests the proxy does not judge at all (step 1). It
// strips nothing: the outbound header set is built from scratch later, so
// nothing the client sent passes unless it is on the allow-list.
func screen(r *http.Request, maxBody int64) (Reason, error) {
	switch {
	case r.Method == http.MethodConnect:
		// Also HTTP/2's extended CONNECT (RFC 8441), how websockets ride h2.
		return ReasonBadRequest, errors.New("CONNECT is refused: the proxy opens no tunnels")
	case r.Method == "PRI":
		return ReasonBadRequest, errors.New("HTTP/2 prior knowledge (h2c) is refused")
	case hasHeader(r.Header, "Upgrade"), hasHeader(r.Header, "Http2-Settings"), connectionLists(r.Header, "Upgrade"):
		// An upgraded connection is a tunnel whose later messages no check
		// sees: websocket frames, or h2c streams.
		return ReasonBadRequest, errors.New("protocol upgrades (Upgrade, h2c) are refused")
	case !strings.HasPrefix(r.RequestURI, "/"):
		// Absolute-form ("GET http://host/...") and authority-form targets
		// ask a proxy to pick a destination; this one has fixed upstreams.
		return ReasonBadRequest, errors.New(`the request target must be a path ("/service/..."), not an absolute URL or an authority`)
	}
	if err := RefuseMethodOverride(r.Header); err != nil {
		return ReasonBadRequest, err
	}
	// Not r.URL.Query(): it returns no parameter at all for a query of
	// more than 10,000 of them.
	if err := RefuseQueryMethodOverride(r.URL.RawQuery); err != nil {
		return ReasonBadRequest, err
	}
	if r.ContentLength > maxBody {
		return ReasonBadRequest, withStatus(http.StatusRequestEntityTooLarge,
			fmt.Errorf("the request body is larger than %d bytes", maxBody))
	}
	return "", nil
}

// screenBody refuses a body with a method-override field (after step 4):
// a form body, or the JSON body of a POST. Laravel and Symfony, Rails
// (Rack::MethodOverride) and Spring's HiddenHttpMethodFilter read
// "_method" from a POSTed form as well as from the query, and Laravel
// also from a POSTed JSON object, since it builds its request input from
// the JSON body (Request::createFromBase). Such a body is read whole,
// bounded by MaxBodyBytes and by the body budget all calls share
// (BodyBufferBytes: see readBody), checked, and forwarded as exactly the
// bytes read. A form body is also any multipart type, and the body of a
// POST without a media type, which Rack reads as a urlencoded form
// (FormType).
// Other bodies are not looked at and still stream.
//
// JSON bodies are read only on POST: Symfony's Request::getMethod, which
// Laravel inherits, honours "_method" only when the real method is POST
// (so do Rack::MethodOverride and express's method-override by default),
// and reading every PUT or PATCH body whole would cost the API writes
// that never change method. Form bodies are read whatever the method, as
// before.
//
// It runs after authentication, classification and authorize, so that
// only a provider operator calling a catalog activity that a grant and
// the policy allow can make the proxy buffer a body (and an HTTP/1.1
// client that asked "Expect: 100-continue" is told to send its body only
// then: the server sends 100 at the body's first read). read reports that it read
// the body: judge then verifies the token again and takes a reading of the
// clock and the policy version serving, so that a token or a grant that
// ended during a slow upload refuses the call, and the assertion's
// lifetime starts when the call is about to leave, not when its header
// arrived.
func (h *Handler) screenBody(r *http.Request, c *call) (read bool, _ Reason, _ error) {
	if r.Body == nil || r.Body == http.NoBody {
		// Nothing to read: the usual GET pays nothing here.
		return false, "", nil
	}
	contentType := r.Header.Values("Content-Type")
	if connectionLists(r.Header, "Content-Type") {
		// Hop-by-hop for the client, so the upstream gets none
		// (outboundHeader), and a POST without one is a form to Rack:
		// "Content-Type: text/plain" and "Connection: Content-Type" would
		// otherwise carry "_method=DELETE" past this check. The body is
		// judged as the upstream reads it.
		contentType = nil
	}
	mediaType, boundary, err := FormType(r.Method, contentType)
	if err != nil {
		return false, ReasonBadRequest, err
	}
	// Symfony upper-cases the method before comparing it with "POST".
	// A form type with "/json" in a parameter is both: Laravel reads the
	// body as JSON, PHP itself as a form, so it must pass both checks.
	isJSON := strings.EqualFold(r.Method, http.MethodPost) && JSONType(contentType)
	if mediaType == "" && !isJSON {
		return false, "", nil
	}
	if encoded(r.Header) {
		// A server in front of the application may inflate it (Apache's
		// mod_deflate input filter does), and the proxy reads no codings:
		// a field it can't read can't be judged.
		return false, ReasonBadRequest, errors.New("a form or JSON body with a Content-Encoding can't be checked for method overrides, so it is refused")
	}
	// Bounded by MaxBodyBytes for this call, by the body budget for all
	// calls together and by the operator's share of it for all of theirs:
	// past either the call is refused (503), here, before anything is
	// audited.
	body, reason, err := h.readBody(c.principal.Subject, r.Body, r.ContentLength, &c.bodyHeld)
	if reason != "" {
		return false, reason, err
	}
	if mediaType != "" {
		if err := RefuseFormMethodOverride(mediaType, boundary, body); err != nil {
			return false, ReasonBadRequest, err
		}
	}
	if isJSON {
		if err := RefuseJSONMethodOverride(body); err != nil {
			return false, ReasonBadRequest, err
		}
	}
	// A chunked body now has a length: the upstream gets Content-Length.
	r.ContentLength = int64(len(body))
	r.TransferEncoding = nil
	r.Body = http.NoBody
	if len(body) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	return true, "", nil
}

// encoded reports whether h gives the body a content coding other than
// identity.
func encoded(h http.Header) bool {
	for _, v := range h.Values("Content-Encoding") {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" && !strings.EqualFold(tok, "identity") {
				return true
			}
		}
	}
	return false
}

// hasHeader reports whether h has name, compared without regard to case,
// so a header map built by hand with odd keys can't hide one.
func hasHeader(h http.Header, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// connectionLists reports whether the Connection header names name,
// compared without regard to case.
func connectionLists(h http.Header, name string) bool {
	for _, v := range h.Values("Connection") {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), name) {
				return true
			}
		}
	}
	return false
}

// authenticate returns the verified operator (step 2). The Authorization
// header is the only source of identity; X-User and the like are never
// read, and never forwarded either.
func (h *Handler) authenticate(ctx context.Context, r *http.Request) (identity.Principal, Reason, error) {
	vals := r.Header.Values("Authorization")
	if len(vals) != 1 {
		// Two headers could be read differently by a proxy in front of us
		// and by us; refuse rather than pick one.
		return identity.Principal{}, ReasonUnauthenticated, errors.New("exactly one Authorization: Bearer header is required")
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return identity.Principal{}, ReasonUnauthenticated, errors.New("the Authorization header must be \"Bearer <token>\"")
	}
	p, err := h.cfg.Auth.Verify(ctx, tok)
	if err != nil {
		if !errors.Is(err, identity.ErrUnauthenticated) {
			// Not a verdict on the token but a failure to reach one: its
			// text is not for the client.
			err = hide("the bearer token could not be verified", err)
		}
		return identity.Principal{}, ReasonUnauthenticated, err
	}
	switch {
	case !p.IsProvider():
		return p, ReasonUnauthenticated, withStatus(http.StatusForbidden,
			errors.New("tenant users can't call through the proxy; only the provider's operators can"))
	case !p.Has(identity.RoleOperator):
		return p, ReasonUnauthenticated, withStatus(http.StatusForbidden,
			errors.New("only identities with the operator role can call through the proxy"))
	case !identity.ValidSubject(p.Subject):
		// The subject becomes part of a Redis key; an Authenticator other
		// than identity.Verifier might not have checked it.
		return p, ReasonUnauthenticated, errors.New("the token's subject is not a valid user id")
	}
	return p, "", nil
}

// reauthenticate verifies the call's token again (after step 4, once
// screenBody read the body) and refuses the call if it no longer verifies
// or names another operator than when the call arrived. The operator's
// verified identity stays the one the body budget was taken in the name of.
func (h *Handler) reauthenticate(ctx context.Context, r *http.Request, c *call) (Reason, error) {
	p, reason, err := h.authenticate(ctx, r)
	switch {
	case reason != "":
		return reason, err
	case p.Subject != c.principal.Subject:
		// The same token can't name another subject; an Authenticator
		// other than identity.Verifier might map it differently now.
		return ReasonUnauthenticated, errors.New("the bearer token no longer names the operator it named when the call arrived")
	}
	c.principal = p
	return "", nil
}

// route is a canonical target resolved to its upstream.
type route struct {
	up     *upstream
	target Path
	path   string // the canonical path within the service, "/..."
}

// resolve canonicalizes the target, once, and finds its service (step 3).
// The canonical path is what the policy judges, the audit records and the
// upstream receives.
func (h *Handler) resolve(rawTarget string) (route, Reason, error) {
	target, err := Canonicalize(rawTarget)
	if err != nil {
		return route{}, ReasonBadRequest, err
	}
	service, rest, ok := strings.Cut(target.String()[1:], "/")
	up := h.upstreams[service]
	switch {
	case up == nil:
		// The segment is not echoed: it is the caller's, and could be long.
		return route{}, ReasonUnknownService, fmt.Errorf("the first path segment names no service this proxy serves (%s)", h.services)
	case !ok:
		return route{}, ReasonUnknownService, fmt.Errorf("a call names a path within the service: /%s/...", service)
	}
	return route{up: up, target: target, path: "/" + rest}, "", nil
}

// classify finds the call's catalog activity and tenant (step 4), in the
// catalog of the policy version that will decide the call.
func (h *Handler) classify(r *http.Request, p PolicySnapshot, rt route) (Call, Reason, error) {
	if p == nil || p.Revision() == "" {
		// Also a nil *policy.Snapshot inside the interface, which would
		// only match nothing: say what is wrong instead.
		return Call{}, ReasonPolicyError, errors.New("no policy is loaded")
	}
	service := rt.up.service
	a, tenant, ok := p.Classify(service, r.Method, rt.path)
	if !ok {
		return Call{}, ReasonUnknownActivity, fmt.Errorf("%s %s is no activity of %s", echo(r.Method), echo(rt.path), service)
	}
	if tenant == "" {
		return Call{}, ReasonUnknownActivity, fmt.Errorf("activity %s names no tenant", a.Name)
	}
	return Call{
		Method:   r.Method,
		Service:  service,
		Path:     rt.path,
		Activity: a,
		Tenant:   tenant,
		ClientIP: peer.IP(r),
	}, "", nil
}

// lookupGrant finds and checks the grant for (tenant, operator, service)
// of the call (step 5). The lookup is by the call's tenant, so a grant for
// another tenant is simply not found.
//
// It also returns when the read of the grant began: the read the cache
// served it from, or else now, which a read from the store follows.
func (h *Handler) lookupGrant(store func() context.Context, p identity.Principal, c Call, now time.Time) (grants.Grant, time.Time, Reason, error) {
	if !identity.ValidTenantID(c.Tenant) {
		return grants.Grant{}, now, ReasonNoGrant, fmt.Errorf("no grant can exist for tenant %q: not a tenant id", echo(c.Tenant))
	}
	g, err, read, ok := grants.Grant{}, error(nil), now, false
	if pk, can := h.cfg.Grants.(GrantPeeker); can {
		if g, err, read, ok = pk.PeekGrant(c.Tenant, p.Subject, c.Service); !ok {
			g, read, err = pk.GrantAt(store(), c.Tenant, p.Subject, c.Service)
			// The answer may be another call's read, which began before
			// now and which the cache kept meanwhile: it dates the answer.
			// A read of ours began after now; now dates it, erring early.
			if read.After(now) {
				read = now
			}
			ok = true
		}
	}
	if !ok {
		g, err = h.cfg.Grants.Grant(store(), c.Tenant, p.Subject, c.Service)
	}
	switch {
	case errors.Is(err, grants.ErrNotFound), errors.Is(err, grants.ErrInvalid):
		return grants.Grant{}, read, ReasonNoGrant, fmt.Errorf("you have no approved lockbox request for %s of tenant %s", c.Service, c.Tenant)
	case err != nil:
		return grants.Grant{}, read, ReasonStoreUnavailable, fmt.Errorf("grant lookup: %w", err)
	}
	// A grant that names another call is checked before its expiry, so
	// that a tampered or misfiled record is reported as what it is.
	switch {
	case g.Tenant != c.Tenant || g.Service != c.Service || g.Operator != p.Subject:
		return g, read, ReasonTenantMismatch, fmt.Errorf("the grant found (request %s) is not for this tenant, service and operator", g.RequestID)
	case g.RequestID == "":
		return g, read, ReasonStoreUnavailable, errors.New("grant lookup: the grant record names no request")
	case !g.Valid(now):
		return g, read, ReasonGrantExpired, fmt.Errorf("the grant of request %s expired at %s", g.RequestID, g.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return g, read, "", nil
}

// lookupSettings reads the tenant's settings for the policy input (step 5).
func (h *Handler) lookupSettings(store func() context.Context, tenant string) (tenants.Settings, Reason, error) {
	if pk, can := h.cfg.Tenants.(SettingsPeeker); can {
		if s, ok := pk.PeekSettings(tenant); ok {
			return s, "", nil
		}
	}
	s, err := h.cfg.Tenants.Lookup(store(), tenant)
	if err != nil {
		return tenants.Settings{}, ReasonStoreUnavailable, fmt.Errorf("tenant settings lookup: %w", err)
	}
	return s, "", nil
}

// decide asks the policy (step 6), the version that classified the call.
// Only an explicit allow permits.
func (h *Handler) decide(ctx context.Context, p PolicySnapshot, in policy.Input) (Reason, error) {
	d, err := p.Decide(ctx, in)
	switch {
	case err != nil && errors.Is(err, context.DeadlineExceeded):
		// The evaluation ran out of its deadline: a slow policy, or a
		// service it calls (http.send) that hangs. Like Redis past its
		// deadline, that is a fast 503, which says retry later, not a 403
		// telling the engineer the call is forbidden.
		return ReasonPolicyError, withStatus(http.StatusServiceUnavailable, fmt.Errorf("policy: %w", err))
	case err != nil:
		return ReasonPolicyError, fmt.Errorf("policy: %w", err)
	case !d.Allow:
		msg := "the policy denied this call"
		if len(d.Reasons) > 0 {
			msg += ": " + strings.Join(d.Reasons, "; ")
		}
		return ReasonPolicyDenied, &policyDenial{msg: msg, activity: in.Call.Activity}
	}
	return "", nil
}

// audit writes the operator-action record (step 7) before anything
// reaches the upstream. The write is detached from the client's context:
// a client that hangs up must not be able to cancel the record of a call
// it made, and has its own deadline so a slow Redis can't hang the call.
func (h *Handler) audit(ctx context.Context, c *call) (record.Record, Reason, error) {
	ctx = context.WithoutCancel(ctx)
	// The record is the tenant's to read: the approval it names is a
	// tenant approver's, or "Microsoft Support" when the provider's manager
	// approved while the tenant's lockbox was off (the manager is kept in
	// the provider-only field).
	approver, providerApprover := c.grant.Approver, ""
	if !c.grant.TenantApproved() {
		approver, providerApprover = record.ProviderUserID, c.grant.Approver
	}
	// The query the upstream receives (forward), so the tenant can tell
	// one search of a mailbox from another; cut to a bounded size without
	// a copy.
	query, queryLength := record.QueryOf(c.route.target.Query())
	rec := record.Record{
		// The id the call's assertion names.
		Id:           c.auditID,
		CreationTime: record.Time{Time: c.now},
		Operation:    c.Activity.Name,
		// The log fills in the tenant's GUID (OrganizationId), cached per
		// tenant: no Redis round trip per call.
		LockboxTenant: c.Tenant,
		RecordType:    record.RecordTypeDataCenterSecurityCmdlet,
		Workload:      c.Service,
		UserId:        record.OperatorUserID,
		UserType:      record.UserTypeDcAdmin,
		// The engineer's machine, as Microsoft shows it to the tenant.
		ClientIP:              c.ClientIP,
		ObjectId:              c.Service + c.Path,
		ResultStatus:          record.ResultSucceeded,
		LockboxRequestId:      c.grant.RequestID,
		LockboxApprover:       approver,
		LockboxApprovalTime:   c.view.approvalTime,
		LockboxMethod:         c.Method,
		LockboxPath:           c.Path,
		LockboxQuery:          query,
		LockboxQueryLength:    queryLength,
		LockboxPolicyRevision: c.policyRevision(),
		ProviderUserId:        c.principal.Subject,
		ProviderApproverId:    providerApprover,
	}
	var err error
	if ba, ok := h.cfg.Auditor.(BoundedAuditor); ok {
		rec, err = ba.AppendBounded(ctx, rec)
	} else {
		actx, cancel := context.WithTimeout(ctx, h.cfg.AuditTimeout)
		rec, err = h.cfg.Auditor.Append(actx, rec)
		cancel()
	}
	if err != nil {
		h.metrics.auditErrors.Inc()
		return record.Record{}, ReasonAuditUnavailable, fmt.Errorf("audit: %w", err)
	}
	if rec.Id != c.auditID {
		// The assertion would name a record that does not exist. Refused
		// as audit_unavailable, so counted as an audit write error too:
		// the RUNBOOK reads the two as the same failures.
		h.metrics.auditErrors.Inc()
		return record.Record{}, ReasonAuditUnavailable, fmt.Errorf("audit: the record was written as %s, not as %s", rec.Id, c.auditID)
	}
	return rec, "", nil
}

// deny answers a refused call and logs it, once.
func (h *Handler) deny(w http.ResponseWriter, r *http.Request, c *call, reason Reason, err error) {
	status := statusOf(reason, err)
	switch {
	case status == http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="lockbox"`)
	case reason == ReasonOverloaded:
		// The one refusal that says nothing of the call itself: the same
		// call may pass once other calls' bodies are released.
		w.Header().Set("Retry-After", retryAfterOverloaded)
	}
	c.deadline.answer(w.Header())
	httperr.Write(w, status, string(reason), messageOf(reason, err))
	level := slog.LevelInfo
	if status >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	h.log.LogAttrs(r.Context(), level, "proxy call denied",
		slog.String("decision_id", c.id),
		slog.String("reason", string(reason)),
		slog.Int("status", status),
		// The metric's label: the service once routed, else the one the
		// target claims if configured, else "unknown".
		slog.String("service", c.label),
		slog.String("activity", c.Activity.Name),
		slog.String("tenant", echo(c.Tenant)),
		slog.String("operator", c.principal.Subject),
		slog.String("request_id", c.grant.RequestID),
		slog.String("policy_revision", c.policyRevision()),
		slog.String("method", echo(r.Method)),
		slog.String("path", echo(c.route.path)),
		slog.String("client_ip", peer.IP(r)),
		slog.Any("error", err),
	)
}

// canceledWhileJudged answers and logs a call whose client went away
// before it was judged. The answer is written although nobody may be left
// to read it: over HTTP/1.1 a client that only closed its sending half
// cancels the context too and still reads, and a handler that writes
// nothing answers 200.
func (h *Handler) canceledWhileJudged(w http.ResponseWriter, r *http.Request, c *call, err error) {
	c.deadline.answer(w.Header())
	httperr.Write(w, ReasonClientCanceled.Status(), string(ReasonClientCanceled), "the call was canceled by the client before it was judged")
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "proxy call canceled by the client",
		slog.String("decision_id", c.id),
		slog.String("reason", string(ReasonClientCanceled)),
		slog.String("service", c.label),
		slog.String("activity", c.Activity.Name),
		slog.String("tenant", echo(c.Tenant)),
		slog.String("operator", c.principal.Subject),
		slog.String("method", echo(r.Method)),
		slog.String("path", echo(c.route.path)),
		slog.String("client_ip", peer.IP(r)),
		slog.Any("error", err),
	)
}

// policyRevision names the policy version judging c; empty when none is
// loaded.
func (c *call) policyRevision() string {
	if c.policy == nil {
		return ""
	}
	return c.policy.Revision()
}

// claimedService is the first segment of a raw target, for the metric
// label before the target is canonicalized; only configured service names
// survive metrics.label.
func claimedService(rawTarget string) string {
	s, ok := strings.CutPrefix(rawTarget, "/")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(s, "/?"); i >= 0 {
		s = s[:i]
	}
	return s
}

// policyDenial is the policy's refusal. The client's message also names
// the activity the call was classified as: "activity_not_requested" alone
// left the engineer to guess which activity the call was, which only the
// log said. The log's error, which has the activity as a field of its own,
// stays the reasons alone.
type policyDenial struct {
	msg      string
	activity string
}

func (e *policyDenial) Error() string { return e.msg }

// public is the client's message.
func (e *policyDenial) public() string {
	if e.activity == "" {
		return e.msg
	}
	return e.msg + " (the call is " + e.activity + ")"
}

// hiddenError is a denial cause whose text is for the log only: the client
// reads msg.
type hiddenError struct {
	msg string
	err error
}

func (e *hiddenError) Error() string  { return e.msg + ": " + e.err.Error() }
func (e *hiddenError) Unwrap() error  { return e.err }
func (e *hiddenError) public() string { return e.msg }

// publicError is a denial cause whose client message is not its log text
// (hiddenError, policyDenial): messageOf answers with public().
type publicError interface {
	error
	public() string
}

func hide(msg string, err error) error { return &hiddenError{msg: msg, err: err} }
