package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/internal/h1transport"
	"github.com/lockbox-oss/lockbox/internal/httperr"
)

// The health checks of upstream HTTP/2 connections (NewTransport). A
// connection that has carried nothing for upstreamPingAfter is pinged, and
// closed if the answer takes longer than upstreamPingTimeout: a hung pod
// behind a load balancer, or a connection left half-open by a network
// partition, is found dead at most 15 s after its last frame, half the
// 30 s response-header timeout, so calls stop going to it before the
// first one sent there times out, and a quarter of DefaultClientTimeout.
// A call already waiting on it fails then (502) rather than at its own
// timeout. A live upstream answers a ping from its connection's read
// loop, whatever its handlers are doing, so a slow answer is never
// mistaken for a dead connection; 5 s is far beyond any round trip
// between a proxy and its upstreams. The cost is a ping every 10 s on a
// connection that sits idle, none on one that carries calls, and a timer
// reset (no allocation) per frame the transport reads over HTTP/2.
// Calls h1transport speaks are untouched.
const (
	upstreamPingAfter   = 10 * time.Second
	upstreamPingTimeout = 5 * time.Second
)

// Headers the proxy writes.
const (
	// HeaderUser is the identity upstreams see: always "Microsoft
	// Operator", never the engineer.
	HeaderUser = "X-Lockbox-User"
	// HeaderRequestID names the lockbox request a forwarded call runs
	// under. The grant assertion (grantsig.Header) says the same,
	// verifiably.
	HeaderRequestID = "X-Lockbox-Request-Id"
	// HeaderDecisionID is set on every answer to the client, denied or
	// forwarded: the id of the proxy's log line about the call.
	HeaderDecisionID = "X-Lockbox-Decision-Id"
)

// forwardedHeaders are the only client headers an upstream receives:
// end-to-end headers about content and caching, none of which carries an
// identity, a route or a hop. The proxy adds no X-Forwarded-* of its own
// either: upstreams see "Microsoft Operator", not the engineer's network.
// Everything else the client sent is dropped:
// Authorization, Cookie, Forwarded and X-Forwarded-*, X-Real-IP,
// X-Original-URL, X-Rewrite-URL, X-User, X-Lockbox-*, Via, Connection and
// what it names, Upgrade, Expect, and any header an upstream framework
// might one day trust. A header the client named in Connection is
// hop-by-hop for it, so it is dropped even when listed here.
//
// Accept-Encoding passes, so the upstream compresses for the client and
// the body passes as it is; the transports never ask for compression of
// their own. Range and If-Range serve partial downloads
// of file contents. Content-Length is not a header here: the request's
// ContentLength carries it.
var forwardedHeaders = []string{
	"Accept",
	"Accept-Encoding",
	"Accept-Language",
	"Content-Encoding",
	"Content-Type",
	"If-Match",
	"If-Modified-Since",
	"If-None-Match",
	"If-Range",
	"If-Unmodified-Since",
	"Range",
	"User-Agent",
}

// operatorUser is X-Lockbox-User's value, shared by every call.
var operatorUser = []string{record.OperatorUserID}

// ForwardedHeaders returns the allow-list of client headers an upstream
// receives. The slice is the caller's.
func ForwardedHeaders() []string { return slices.Clone(forwardedHeaders) }

// NewTransport returns the transport the proxy uses when Config.Transport
// is nil: bounded dial, TLS handshake and response-header waits, a pool of
// kept-alive connections sized for a busy upstream, and no proxy from the
// environment (a stray HTTPS_PROXY would send signed grant assertions
// through a machine nobody chose).
//
// Calls without a body to plain-http upstreams, the usual read, are spoken
// by h1transport, which does a call's work on the caller's goroutine (a
// quarter less CPU per call than net/http's Transport). Everything else
// goes by net/http's Transport: https, with HTTP/2 attempted only when
// http2 is true, and any call with a body, which it writes while it
// listens, so an upstream that answers an upload before reading all of it
// (a 413 from its own limit) is heard instead of failing the call.
// Plain-http upstreams always get HTTP/1.1, never h2c. tlsConfig configures
// the https connections: which roots verify them and the client
// certificate presented (Config.UpstreamTLS). Nil means the system's roots
// and no client certificate; either way TLS 1.2 is the oldest version
// spoken. bodyIdle, Config.ClientTimeout, bounds the wait for the next
// bytes of an answer (the waits for the upstream count against the call's
// deadline): h1transport's for its body (ResponseBodyIdleTimeout), and
// net/http's Transport's by closing a connection on which nothing moved
// for it (quietDialer). Over HTTP/2, which keeps a connection from going
// quiet, the client's stream deadline ends such a wait, and for an
// HTTP/1.1 client the handler's stallWatch. HTTP/2 connections are pinged
// when they go quiet, and one whose peer stopped answering is closed
// (upstreamPingAfter), so that calls are no longer sent to it.
func NewTransport(http2 bool, tlsConfig *tls.Config, bodyIdle time.Duration) http.RoundTripper {
	return newTransport(http2, tlsConfig, bodyIdle, h2Pings{after: upstreamPingAfter, timeout: upstreamPingTimeout})
}

// h2Pings are the health-check timings of upstream HTTP/2 connections:
// after is how long a connection may stay silent before it is pinged,
// timeout how long the ping's answer may take.
type h2Pings struct {
	after, timeout time.Duration
}

func newTransport(http2 bool, tlsConfig *tls.Config, bodyIdle time.Duration, pings h2Pings) http.RoundTripper {
	if tlsConfig == nil {
		tlsConfig = &tls.Config{}
	} else {
		tlsConfig = tlsConfig.Clone()
	}
	tlsConfig.MinVersion = max(tlsConfig.MinVersion, tls.VersionTLS12)
	const (
		dialTimeout           = 5 * time.Second
		keepAlive             = 30 * time.Second
		responseHeaderTimeout = 30 * time.Second
		idleConnTimeout       = 90 * time.Second
		maxIdleConnsPerHost   = 512
		maxResponseHeader     = 1 << 20
	)
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: keepAlive}
	return splitTransport{
		plain: &h1transport.Transport{
			DialTimeout:             dialTimeout,
			KeepAlive:               keepAlive,
			ResponseHeaderTimeout:   responseHeaderTimeout,
			ResponseBodyIdleTimeout: bodyIdle,
			IdleConnTimeout:         idleConnTimeout,
			MaxIdleConnsPerHost:     maxIdleConnsPerHost,
			MaxResponseHeaderBytes:  maxResponseHeader,
		},
		std: &http.Transport{
			Proxy: nil,
			// Over HTTP/1.1 nothing else ends the wait for an upstream
			// gone quiet midway in its answer (quietDialer).
			DialContext:            quietDialer{dial: dialer.DialContext, timeout: bodyIdle}.DialContext,
			TLSClientConfig:        tlsConfig,
			TLSHandshakeTimeout:    5 * time.Second,
			ResponseHeaderTimeout:  responseHeaderTimeout,
			ExpectContinueTimeout:  time.Second,
			IdleConnTimeout:        idleConnTimeout,
			MaxIdleConns:           1024,
			MaxIdleConnsPerHost:    maxIdleConnsPerHost,
			MaxResponseHeaderBytes: maxResponseHeader,
			ForceAttemptHTTP2:      http2,
			DisableCompression:     true,
			// Without pings, an HTTP/2 connection whose peer went silent
			// without closing stays in the pool, and every call sent
			// there waits out its own timeout.
			HTTP2: &http.HTTP2Config{SendPingTimeout: pings.after, PingTimeout: pings.timeout},
		},
	}
}

// splitTransport sends plain-http calls without a body by plain, and
// every other call by std.
type splitTransport struct {
	plain, std http.RoundTripper
}

func (t splitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && (r.Body == nil || r.Body == http.NoBody) {
		return t.plain.RoundTrip(r)
	}
	return t.std.RoundTrip(r)
}

// upstream is one service's destination, with its reverse proxy built
// once at New.
type upstream struct {
	service  string
	scheme   string
	host     string
	basePath string // "" or "/a/b": canonical, without a trailing "/"
	proxy    *httputil.ReverseProxy
}

func (h *Handler) newUpstream(service string, u *url.URL) *upstream {
	up := &upstream{
		service:  service,
		scheme:   u.Scheme,
		host:     u.Host,
		basePath: strings.TrimSuffix(u.Path, "/"),
	}
	// Rewrite, never Director: with Director, a client can name headers in
	// Connection and have the ones Director added stripped, and
	// X-Forwarded-For from the client survives (net/http/httputil docs).
	up.proxy = &httputil.ReverseProxy{
		Rewrite:        up.rewrite,
		Transport:      h.cfg.Transport,
		ModifyResponse: up.modifyResponse,
		ErrorHandler:   h.upstreamError,
		ErrorLog:       slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
		// Without a pool, every response body is copied through a new
		// 32 KiB buffer: garbage on every call.
		BufferPool: copyBuffers,
	}
	return up
}

// copyBuffers recycles the buffers ReverseProxy copies response bodies
// through.
var copyBuffers bufferPool

type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

// outboundHeader builds the header set the upstream receives, fresh: the
// allow-listed client headers, then the proxy's own identity headers, with
// the grant assertion signed for this call.
func (h *Handler) outboundHeader(in http.Header, c *call) (http.Header, Reason, error) {
	if reason, err := h.assert(c); reason != "" {
		return nil, reason, err
	}
	hopByHop := connectionTokens(in)
	// Sized for what a call usually carries (Accept, User-Agent and the
	// proxy's three): the map grows for more.
	out := make(http.Header, 8)
	for _, k := range forwardedHeaders {
		if vs := in[k]; len(vs) > 0 && !slices.Contains(hopByHop, k) {
			out[k] = slices.Clone(vs)
		}
	}
	if teTrailers(in) {
		// Kept from the client's hop-by-hop TE: the upstream may send
		// trailers, which ReverseProxy relays, the allowed ones only
		// (allowedTrailers).
		out.Set("Te", "trailers")
	}
	// The grant's values are shared by its calls (grantViews): nothing
	// between here and the wire modifies a request's header values.
	out[HeaderUser] = operatorUser
	out[HeaderRequestID] = c.view.requestID
	out[grantsig.Header] = c.assertion[:]
	return out, "", nil
}

// connectionTokens returns the header names the client's Connection header
// lists, canonicalized.
func connectionTokens(h http.Header) []string {
	var out []string
	for _, v := range h.Values("Connection") {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				out = append(out, textproto.CanonicalMIMEHeaderKey(tok))
			}
		}
	}
	return out
}

func teTrailers(h http.Header) bool {
	for _, v := range h.Values("Te") {
		for tok := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(tok, ";")
			if strings.EqualFold(strings.TrimSpace(name), "trailers") {
				return true
			}
		}
	}
	return false
}

// outcomeKey carries a forwarded call's *outcome from forward to the
// ErrorHandler and back. It reports what happened after the verdict, for
// the log and the metrics; the verdict itself was final before forwarding
// and never travels in a context.
type outcomeKey struct{}

// outcome is the forwarded call's context and what happened to it, one
// allocation where context.WithValue and a separate record would be two.
type outcome struct {
	context.Context
	err error
	// w is the call's ResponseWriter, and body the upstream's answer body
	// as ReverseProxy copies it (watchBody), kept here to share the
	// allocation.
	w    answerWriter
	body upstreamBody
	// clientBody is the client's request body, when it has one.
	clientBody *progressBody
	// watch, when the call has one, cuts it if it stalls (stallWatch).
	watch *stallWatch
}

func (o *outcome) Value(key any) any {
	if key == (outcomeKey{}) {
		return o
	}
	return o.Context.Value(key)
}

// forward sends a permitted call upstream (step 8) and returns its
// decision label: "allowed", or "error" when forwarding failed. aborted
// reports that the answer was broken off midway: ServeHTTP then drops the
// client's connection (or resets its stream), so that the client sees the
// answer cut off rather than a clean end.
//
// The reverse proxy is not handed the client's request but a shallow copy
// that already is the call to make: its URL is the canonical target, its
// Header the fresh set outboundHeader built, and it has no trailers.
// Rewrite only places it on the upstream, so beyond its method and body
// nothing of the client's request reaches the upstream that the checks
// didn't produce.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, c *call) (decision string, aborted bool) {
	out := &outcome{Context: r.Context()}
	out.w = answerWriter{ResponseWriter: w, id: c.id, deadline: &c.deadline}
	out.clientBody, _ = r.Body.(*progressBody)
	in := r.WithContext(out)
	// The client's URL is this handler's to change (nothing reads it after
	// the checks): it becomes the canonical target, in place.
	*in.URL = url.URL{Path: c.Path, RawPath: c.Path, RawQuery: c.route.target.Query()}
	in.Header = c.header
	in.Trailer = nil
	var cancel context.CancelFunc
	// (Not hasBody: a body read whole for its checks is in r.Body now.)
	withBody := r.Body != nil && r.Body != http.NoBody
	if withBody || c.deadline.h1 {
		// A call is its grant's end's to cancel (clientDeadline.pin),
		// and a revocation's, whatever the upstream does meanwhile. An
		// HTTP/2 client's stream is reset by its pinned write deadline,
		// which cancels the call's context; nothing of an HTTP/1.1
		// client's does so for sure. The server's background read fails
		// at the pinned read deadline and cancels it, but only while it
		// waits: one byte more from the client (a pipelined request) ends
		// that read, and the call held its upstream request until the
		// transport's own timeouts, half a minute past a revocation.
		// Calls with a body are a stallWatch's to cancel too.
		out.Context, cancel = context.WithCancel(out.Context)
	}
	if withBody {
		// A body sent without Content-Length is only measured as it
		// streams; past the limit the upstream sees a truncated body and
		// the client gets 413.
		in.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
		if c.deadline.h1 && c.route.up.scheme == "https" {
			// The upstream may speak HTTP/2, and stop taking the upload
			// before it answers, which only the call can tell
			// (stallWatch); over HTTP/1.1 the connection's quiet timeout
			// would end it anyway. The watch is armed before the answer
			// comes. Calls without a body are never watched before their
			// answer.
			if out.clientBody == nil {
				// A body read whole for its checks: its bytes taken by
				// the upstream move the deadline on, as a streamed one's
				// do as the client sends them.
				in.Body = &sentBody{ReadCloser: in.Body, d: &c.deadline}
			}
			out.watch = watchStall(&c.deadline, out.clientBody, cancel)
		}
	}
	// The grant's end, on the clock the deadlines use: what is left of the
	// grant by the clock it was judged on, from now.
	c.deadline.grantEnds(time.Now().Add(c.grant.ExpiresAt.Sub(h.cfg.Now())), cancel)
	// And a revocation cuts it too, until ServeHTTP returns (CallWatch).
	h.watch.add(c)
	// The wait for the upstream's answer counts against the client's
	// deadline; it gets at least three quarters of it, however long the
	// checks took.
	c.deadline.progress()
	aborted = serveAbortable(c.route.up.proxy, &out.w, in)
	if cancel != nil {
		cancel()
	}
	out.w.dropTrailers()
	if out.err == nil {
		// An answer broken off midway reaches no ErrorHandler: its body's
		// read error is the only trace of the upstream's failure.
		out.err = out.body.err
	}
	if out.watch != nil && out.watch.stop() && out.err != nil {
		if c.deadline.h1 {
			out.err = fmt.Errorf("nothing moved to or from the upstream for the client timeout (%s): %w", h.cfg.ClientTimeout, out.err)
		} else {
			// The call's end closed the answer's body (watchCancel): it is
			// told below whether the stream's deadline or the client did.
			out.err = fmt.Errorf("%w: %w", r.Context().Err(), out.err)
		}
	}

	if out.err != nil || aborted {
		if reason, ended := c.deadline.cutReason(time.Now()); reason != "" {
			// Whichever side was slow, the call failed once its
			// deadlines, pinned at the grant's end or at its revocation,
			// had passed: its access ended.
			h.metrics.cut(c.label, reason)
			attrs := append(h.forwardAttrs(c, nil),
				slog.String("reason", string(reason)),
				slog.Time("expires_at", c.grant.ExpiresAt.UTC()),
				slog.Any("error", cutError(ended, out.err)))
			h.log.LogAttrs(r.Context(), slog.LevelWarn, cutMessage(reason), attrs...)
			// Dropped, whatever was written: the client must not take
			// what it got for the whole answer.
			return decisionAllowed, true
		}
	}
	if out.err != nil && errors.Is(out.err, context.Canceled) && r.Context().Err() != nil {
		if cut := c.deadline.streamCut(); cut != nil {
			// The stream's own deadline passed while the upstream was
			// awaited: the server reset the stream and canceled the call
			// as a client's RST_STREAM would, but the client was waiting
			// for more.
			out.err = fmt.Errorf("the upstream sent nothing for the client timeout (%s), which ended the stream: %w", h.cfg.ClientTimeout, cut)
		}
	}
	switch {
	case out.err == nil && !aborted:
	case out.err == nil, clientBodyFailed(r), errors.Is(out.err, context.Canceled) && r.Context().Err() != nil:
		// The client hung up, broke its upload off, or stopped taking the
		// answer (a write to it failed, with nothing wrong upstream): the
		// call was permitted and forwarded, and nothing failed on our side
		// or the upstream's.
		h.log.LogAttrs(r.Context(), slog.LevelInfo, "proxy call canceled by the client", h.forwardAttrs(c, nil)...)
		return decisionAllowed, aborted
	default:
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "proxy call failed upstream", h.forwardAttrs(c, out.err)...)
		return decisionError, aborted
	}
	if h.log.Enabled(r.Context(), slog.LevelDebug) {
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "proxy call forwarded", h.forwardAttrs(c, nil)...)
	}
	return decisionAllowed, false
}

// serveAbortable runs p for the call and reports whether it ended with
// http.ErrAbortHandler, ReverseProxy's way out when copying the answer's
// body fails midway, on either side: the upstream's read or the client's
// write. The panic is recovered so that the call is logged and counted by
// what happened; ServeHTTP raises it again.
func serveAbortable(p *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) (aborted bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			aborted = true
		}
	}()
	p.ServeHTTP(w, r)
	return false
}

func (h *Handler) forwardAttrs(c *call, err error) []slog.Attr {
	attrs := []slog.Attr{
		slog.String("decision_id", c.id),
		slog.String("service", c.Service),
		slog.String("activity", c.Activity.Name),
		slog.String("tenant", c.Tenant),
		slog.String("operator", c.principal.Subject),
		slog.String("request_id", c.grant.RequestID),
		slog.String("audit_id", c.record.Id),
		slog.String("policy_revision", c.policyRevision()),
		slog.String("method", c.Method),
		slog.String("path", echo(c.Path)),
	}
	if err != nil {
		attrs = append(attrs, slog.String("reason", string(ReasonUpstreamUnavailable)), slog.Any("error", err))
	}
	return attrs
}

// rewrite places the call forward built on the upstream. Out starts as a
// clone of that call; the URL and Header are set again here anyway, whole,
// so that nothing ReverseProxy or a future Go version adds before Rewrite
// runs can reach the upstream.
func (u *upstream) rewrite(pr *httputil.ProxyRequest) {
	p := u.basePath + pr.In.URL.Path
	pr.Out.URL = &url.URL{
		Scheme: u.scheme,
		Host:   u.host,
		// Path and RawPath are the same string: a canonical path has no
		// escapes, so the upstream gets exactly the bytes the policy judged.
		Path:     p,
		RawPath:  p,
		RawQuery: pr.In.URL.RawQuery,
	}
	pr.Out.Host = u.host
	// In's Header is the set outboundHeader built for this call alone, so
	// Out takes it as it is: whatever ReverseProxy did to its own copy
	// before Rewrite is dropped, without copying the set again.
	pr.Out.Header = pr.In.Header
	pr.Out.Trailer = nil
}

// answerWriter is the ResponseWriter ReverseProxy answers a forwarded call
// through. It keeps two things the proxy promises about every answer,
// which ReverseProxy alone would break:
//
//   - No 1xx response reaches the client. ReverseProxy relays each 1xx the
//     transport reports (ClientTrace.Got1xxResponse) with the upstream's
//     headers, unfiltered: a "103 Early Hints" could carry Set-Cookie or
//     a second X-Lockbox-Decision-Id. They are dropped rather than
//     filtered, as h1transport drops them for calls without a body: a
//     hint is only an optimization, and an operator's client loses
//     nothing without it. That includes 100 Continue: net/http's server
//     answers the client's Expect itself and the proxy sends none
//     upstream, so an upstream's 100 means nothing to the client.
//   - The final answer carries exactly one X-Lockbox-Decision-Id, the
//     proxy's. ReverseProxy clears the header map after writing a 1xx,
//     which removes the id forward set, so it is set again here.
//
// It unwraps to the server's ResponseWriter, so http.ResponseController
// (ReverseProxy's flushes, deadlines) still reaches it.
//
// It also moves the call's deadline on as the answer is written, so that a
// long download the client keeps reading is never cut (clientDeadline).
type answerWriter struct {
	http.ResponseWriter
	id          string
	deadline    *clientDeadline
	wroteHeader bool
}

func (w *answerWriter) WriteHeader(code int) {
	if code >= 100 && code <= 199 {
		return
	}
	if !w.wroteHeader {
		w.wroteHeader = true
		h := w.ResponseWriter.Header()
		if ids := h[HeaderDecisionID]; len(ids) != 1 || ids[0] != w.id {
			h[HeaderDecisionID] = []string{w.id}
		}
		w.deadline.answer(h)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *answerWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		// The server would write the implicit 200 itself, without the
		// decision id check above.
		w.WriteHeader(http.StatusOK)
	}
	w.deadline.progress()
	return w.ResponseWriter.Write(b)
}

// Flush is http.Flusher's, found first by ResponseController.
func (w *answerWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.deadline.progress()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// FlushError is what ResponseController.Flush calls first, before Flush:
// without it a flush that failed (a client gone) would be reported as
// done.
func (w *answerWriter) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.deadline.progress()
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap is for http.ResponseController.
func (w *answerWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// dropTrailers removes, once ReverseProxy is done, the trailers it added to
// the header map under http.TrailerPrefix: those the upstream sent without
// announcing them, or that modifyResponse took from the announcement. The
// server sends such keys after the handler returns, so this is the last
// moment to remove them. (Announced trailers are only allowed ones: see
// modifyResponse.)
func (w *answerWriter) dropTrailers() {
	h := w.ResponseWriter.Header()
	for k := range h {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && !allowedTrailer(name) {
			delete(h, k)
		}
	}
}

// allowedTrailers are the only trailers a client receives: the digests of
// RFC 9530, which describe the body and are made to follow it. Trailers are
// an allow-list, not a block-list like the response headers, because
// nothing in a REST answer needs them, and every other name is one more
// way for an upstream to say something to the client after the proxy has
// looked (Set-Cookie, a second X-Lockbox-Decision-Id, a cache directive,
// a hop-by-hop field).
var allowedTrailers = []string{"Content-Digest", "Repr-Digest"}

func allowedTrailer(name string) bool {
	for _, a := range allowedTrailers {
		if strings.EqualFold(name, a) {
			return true
		}
	}
	return false
}

// cacheHeaders are the response headers, besides Cache-Control, that give
// a cache a lifetime for the answer: Expires, Pragma (HTTP/1.0 caches),
// Age (which makes a cache count the answer older), Surrogate-Control
// (Edge Architecture, Varnish, Fastly) and X-Accel-Expires (nginx's cache
// honours it over Cache-Control). Targeted fields such as
// CDN-Cache-Control (RFC 9213), which CDNs prefer to Cache-Control, are
// matched by their suffix.
var cacheHeaders = []string{"Expires", "Pragma", "Age", "Surrogate-Control", "X-Accel-Expires"}

// modifyResponse is modifyResponse, then the answer's Location and
// Content-Location are given the proxy's path for the service when they
// name the upstream itself (redirectTo).
func (u *upstream) modifyResponse(res *http.Response) error {
	if err := modifyResponse(res); err != nil {
		return err
	}
	for _, k := range []string{"Location", "Content-Location"} {
		if vs := res.Header[k]; len(vs) == 1 {
			if v, ok := u.redirectTo(vs[0]); ok {
				res.Header[k] = []string{v}
			}
		}
	}
	return nil
}

// redirectTo returns the proxy's path (and query) for loc, a URL on the
// upstream's own origin under its base path, as nginx's "proxy_redirect
// default" does: an absolute URL would tell the client an internal host
// name, and send it there, around the proxy, with whatever it sends along;
// a reference that starts with "/" (what Go's http.Redirect writes for a
// relative target) means the upstream's own path, which the client, taking
// it on the proxy's origin, would miss by the service's prefix. ok is false
// for anything else, which passes unchanged: a relative-path reference
// ("x", "../x"), which the client resolves against the proxy's path just as
// the upstream meant it against its own; another origin; a path outside
// the base path (which no call through the proxy can reach).
func (u *upstream) redirectTo(loc string) (_ string, ok bool) {
	l, err := url.Parse(loc)
	if err != nil || l.User != nil || l.Opaque != "" {
		return "", false
	}
	switch {
	case l.Scheme == "" && l.Host == "":
		// A path-absolute reference; a relative path is left alone.
		if !strings.HasPrefix(l.Path, "/") {
			return "", false
		}
	case l.Scheme == "":
		// A network-path reference ("//host/x") takes the scheme of the
		// answer it came in, the upstream's.
		if !sameHost(l, u.scheme, u.host) {
			return "", false
		}
	default:
		if !strings.EqualFold(l.Scheme, u.scheme) || !sameHost(l, u.scheme, u.host) {
			return "", false
		}
	}
	p := l.EscapedPath()
	if u.basePath != "" {
		rest, found := strings.CutPrefix(p, u.basePath)
		if !found || (rest != "" && rest[0] != '/') {
			return "", false
		}
		p = rest
	}
	if p == "" {
		p = "/"
	}
	out := "/" + u.service + p
	if l.RawQuery != "" || l.ForceQuery {
		out += "?" + l.RawQuery
	}
	if l.Fragment != "" {
		out += "#" + l.EscapedFragment()
	}
	return out, true
}

// sameHost reports whether l names host (the upstream's host[:port]) on
// scheme, without regard to case or to an explicit default port.
func sameHost(l *url.URL, scheme, host string) bool {
	h, ok := strings.CutSuffix(strings.ToLower(host), defaultPort(scheme))
	if !ok {
		h = strings.ToLower(host)
	}
	lh, ok := strings.CutSuffix(strings.ToLower(l.Host), defaultPort(scheme))
	if !ok {
		lh = strings.ToLower(l.Host)
	}
	return lh == h
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return ":443"
	}
	return ":80"
}

// modifyResponse edits the upstream's answer before it reaches the client,
// and watches its body (watchBody). Hop-by-hop headers are already gone
// (ReverseProxy removes them).
func modifyResponse(res *http.Response) error {
	// http.ReadResponse takes any three digits for a status, and
	// ReverseProxy relays it; net/http's server panics on one below 100,
	// which drops the client's connection and leaves the call unlogged.
	// Only a broken upstream sends one: its answer is a failure (502).
	if res.StatusCode < 100 {
		return fmt.Errorf("proxy: the upstream answered with status %03d", res.StatusCode)
	}
	// No call asks for a switch (screen refuses upgrades), as h1transport
	// refuses one. net/http's Transport hands a 101's connection to the
	// caller as the body, and ReverseProxy, refusing the switch it did not
	// ask for, returns without closing it: a socket to the upstream held
	// open for good per such answer. An error here has ReverseProxy close
	// the body, the connection, before it answers 502.
	if res.StatusCode == http.StatusSwitchingProtocols {
		return errors.New("proxy: the upstream switched protocols, which no call asks for")
	}
	// The client's cookies never reach an upstream (Cookie is not
	// forwarded), so an upstream cookie can't serve a session; it could
	// only plant state in the operator's browser for the proxy's origin,
	// which every service shares.
	// (The header map's keys are canonical: the transport parsed them.)
	delete(res.Header, "Set-Cookie")
	delete(res.Header, "Set-Cookie2")
	// Our decision id is already set; an upstream must not add a second.
	delete(res.Header, HeaderDecisionID)
	// Alt-Svc names another endpoint for the proxy's origin: a client
	// that honours it (browsers, HTTP/3-capable clients) would send its
	// later calls there, bearer token included, around the proxy.
	delete(res.Header, "Alt-Svc")
	// Access ends when the grant does: a cached copy of tenant data, in
	// the operator's browser or anywhere between, would outlive the
	// window and any revocation, since serving it never asks the proxy.
	// And a cache in front of the proxy obeys the first of these it
	// understands, not necessarily Cache-Control.
	for _, k := range cacheHeaders {
		delete(res.Header, k)
	}
	for k := range res.Header {
		if isTargetedCacheControl(k) {
			delete(res.Header, k)
		}
	}
	res.Header["Cache-Control"] = []string{"no-store"}
	// ReverseProxy announces the keys of res.Trailer in the Trailer
	// header; only allowed ones may be announced, since the server sends
	// an announced name's value from the header map, where the proxy's
	// own headers are. Trailers that arrive anyway are dropped by
	// answerWriter.dropTrailers.
	for k := range res.Trailer {
		if !allowedTrailer(k) {
			delete(res.Trailer, k)
		}
	}
	watchBody(res)
	return nil
}

// watchBody has the forwarded call's outcome keep the first error reading
// the answer's body: the upstream closing midway, a body shorter than its
// Content-Length, a trailer section past the transport's bound. An answer
// that came over HTTP/2 to an HTTP/1.1 client is watched for a stall too
// (stallWatch), which closes the body, failing its read.
func watchBody(res *http.Response) {
	if res.Request == nil {
		return
	}
	if out, ok := res.Request.Context().Value(outcomeKey{}).(*outcome); ok {
		body := res.Body
		out.body.ReadCloser = body
		res.Body = &out.body
		switch d := out.w.deadline; {
		case res.ProtoMajor != 2:
			if out.watch != nil {
				// Armed for an upload (forward): over HTTP/1.1 the
				// connection's quiet timeout bounds the rest.
				out.watch.stop()
			}
		case out.watch != nil:
			out.watch.answer(body)
		case d != nil && d.h1:
			out.watch = watchStall(d, out.clientBody, nil)
			out.watch.answer(body)
		case res.Request.Body != nil && res.Request.Body != http.NoBody:
			// An HTTP/2 client's call with an upload: its stream's
			// deadline ends it, but the transport may not heed that.
			out.watch = watchCancel(out.Context, body)
		}
	}
}

// upstreamBody is an answer's body that keeps its first read error.
type upstreamBody struct {
	io.ReadCloser
	err error
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// isTargetedCacheControl reports whether a header is an RFC 9213 targeted
// cache-control field: "<target>-Cache-Control", such as CDN-Cache-Control
// or Cloudflare-CDN-Cache-Control.
func isTargetedCacheControl(k string) bool {
	const suffix = "-Cache-Control"
	return len(k) > len(suffix) && strings.EqualFold(k[len(k)-len(suffix):], suffix)
}

// upstreamError answers a call whose forwarding failed: 413 when the body
// outgrew the limit while streaming, 400 when reading it from the client
// failed, else 502. The call was permitted and audited; the upstream may
// have received it.
func (h *Handler) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if out, ok := r.Context().Value(outcomeKey{}).(*outcome); ok {
		out.err = err
		if out.clientBody != nil && out.clientBody.failed.Load() {
			// A chunked body whose framing breaks midway, or one that
			// stopped coming: the client's failure, which forward logs as
			// such, not the upstream's. (A client that hung up reads
			// nothing.)
			httperr.Write(w, http.StatusBadRequest, string(ReasonBadRequest), "the request body could not be read")
			return
		}
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		httperr.Write(w, http.StatusRequestEntityTooLarge, string(ReasonBadRequest),
			fmt.Sprintf("the request body is larger than %d bytes", h.cfg.MaxBodyBytes))
		return
	}
	httperr.Write(w, ReasonUpstreamUnavailable.Status(), string(ReasonUpstreamUnavailable), publicMessage[ReasonUpstreamUnavailable])
}
