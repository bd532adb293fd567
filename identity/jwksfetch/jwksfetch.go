// Package jwksfetch fetches identity providers' JSON Web Key Sets from their
// URLs and keeps them fresh: each fetch has a deadline, every URL is fetched
// again in the background, and on demand (when a token names a key Lockbox
// does not know yet). It is the HTTP side of identity's key sources: identity
// never imports net/http, and decides itself which documents to trust.
//
// The scheduling is httprc's, the refresh engine under jwx's JWK cache
// (jwk.Cache). jwk.Cache itself is not used because it parses keys with
// jwx, and Lockbox wants one JWK parser in its trust path (go-jose's, through
// identity, for files and URLs alike) and to learn of every fetched document
// at once, so that a key that left the set stops working at the next fetch
// even for tokens it verified before. httprc's Transformer gives both.
package jwksfetch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/httprc/v3/errsink"

	"github.com/lockbox-oss/lockbox/internal/logurl"
	"github.com/lockbox-oss/lockbox/internal/origin"
)

// Defaults of Config.
const (
	DefaultRefresh = 5 * time.Minute
	DefaultRetry   = 30 * time.Second
	DefaultTimeout = 10 * time.Second
)

// ErrRefused is wrapped by the error of a fetch whose document was
// fetched and then refused (by a subscriber, or for its size): the server
// answered, with something Lockbox won't use.
var ErrRefused = errors.New("document refused")

// MaxDocumentSize bounds what one fetch reads. Real JWKS documents are a few
// kilobytes; a larger answer is a misconfigured URL or a hostile server.
const MaxDocumentSize = 1 << 20

// Config configures a Fetcher.
type Config struct {
	// Refresh is how often every URL is fetched in the background; zero
	// means DefaultRefresh.
	Refresh time.Duration
	// Retry is how soon a background fetch that could not reach the server
	// is tried again; zero means DefaultRetry (or Refresh, if shorter).
	Retry time.Duration
	// Timeout bounds one fetch, connection to last byte; zero means
	// DefaultTimeout. Ignored when HTTPClient is set.
	Timeout time.Duration
	// HTTPClient fetches the documents; nil means a client with Timeout.
	// Either way redirects are followed only as CheckRedirect allows, and
	// never to a Location that does not parse (origin.Transport).
	HTTPClient *http.Client
	// Logger receives background fetch failures; discarded when nil.
	Logger *slog.Logger
	// Workers is how many fetches run at once; zero means
	// DefaultWorkers. Give it the number of URLs to be registered: their
	// first fetches, at start-up, then all run side by side, and
	// identity providers that hang delay start-up by one Timeout, not by
	// one for each DefaultWorkers of them, while one that answers has its
	// keys at once.
	Workers int
}

// Fetcher keeps a set of JWKS URLs fresh. It is safe for concurrent use.
type Fetcher struct {
	cfg  Config
	log  *slog.Logger
	ctrl httprc.Controller

	mu   sync.Mutex
	urls map[string]*resource

	// slots bounds the refreshes handed to httprc at once (see Refresh).
	slots chan struct{}
	// life ends at Close; refreshes run under it, not under a caller's
	// context.
	life context.Context
	stop context.CancelFunc
}

// resource is one URL and who is told of its documents. Several issuers
// may share one URL (a cloud identity provider signs every tenant's tokens
// with the same keys); it is fetched once for all of them.
type resource struct {
	mu   sync.Mutex
	subs []func([]byte) error
	last []byte // the last document every subscriber accepted
	// newest is the number of the newest fetch whose document was handed
	// to the subscribers (see numbered).
	newest uint64

	// first is closed when the first fetch, the one Register made for
	// the issuer that added the URL, is over (the URL was handed to
	// httprc before it, so it can be refreshed from then on); firstErr
	// is its error, and firstShared whether that answers every issuer
	// that waited for it (see Register).
	first       chan struct{}
	firstDone   bool
	firstErr    error
	firstShared bool
}

// firstOver records the end of the first fetch, with err, and wakes those
// waiting for it. shared is false when its answer is not every
// subscriber's: a document refused, which a subscriber that came in
// after it was handed on did not see, or a fetch its caller gave up on.
func (res *resource) firstOver(err error, shared bool) {
	res.mu.Lock()
	res.firstDone, res.firstErr, res.firstShared = true, err, shared
	res.mu.Unlock()
	close(res.first)
}

// numbered is the HTTP client with every fetch numbered as it begins. A
// background fetch and a token's refresh of one URL may overlap (httprc
// runs them on separate workers); the one that began first may have read the
// identity provider's keys before it rotated, and must not be delivered
// after the other, or a retired key would verify again until the next
// fetch.
type numbered struct {
	client *http.Client
	seq    atomic.Uint64
}

type fetchNumber struct{}

func (n *numbered) Do(req *http.Request) (*http.Response, error) {
	resp, err := n.client.Do(req.WithContext(context.WithValue(req.Context(), fetchNumber{}, n.seq.Add(1))))
	if ue, ok := errors.AsType[*url.Error](err); ok {
		// A refused redirect's error quotes the Location header as the
		// server sent it, user info and all, and any other the URL
		// fetched; the error goes to logs.
		ue.URL = logurl.Show(ue.URL)
	}
	return resp, err
}

// shownError is err, whose text (httprc's, which quotes the URL it
// fetched) may name url, with url shown as logs may show it (logurl.Show):
// a JWKS URL's query may carry a credential.
type shownError struct {
	err error
	url string
}

func (e *shownError) Error() string { return logurl.Replace(e.err.Error(), e.url) }
func (e *shownError) Unwrap() error { return e.err }

// shown is err with every registered URL it names shown as logs may show
// them: a background fetch's error does not say which URL it is of. The
// longest are replaced first, so that a URL that begins another does not
// leave the rest of that one's query in the text.
func (f *Fetcher) shown(err error) error {
	f.mu.Lock()
	urls := slices.Collect(maps.Keys(f.urls))
	f.mu.Unlock()
	slices.SortFunc(urls, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	for _, u := range urls {
		err = &shownError{err: err, url: u}
	}
	return err
}

// DefaultWorkers is how many fetches run at once by default. Few URLs,
// each fetched every few minutes: two keep one slow identity provider from
// delaying the others.
const DefaultWorkers = 2

// New starts a Fetcher's workers. Close stops them.
func New(cfg Config) (*Fetcher, error) {
	if cfg.Refresh < 0 || cfg.Retry < 0 || cfg.Timeout < 0 {
		return nil, errors.New("jwksfetch: durations must not be negative")
	}
	if cfg.Workers < 0 {
		return nil, errors.New("jwksfetch: Workers must not be negative")
	}
	if cfg.Workers == 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Refresh == 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.Retry == 0 {
		cfg.Retry = min(DefaultRetry, cfg.Refresh)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: cfg.Timeout, CheckRedirect: CheckRedirect, Transport: origin.Transport(nil)}
	} else {
		// A caller's client (one trusting a private CA, say) must not
		// take the keys from wherever the identity provider's host sends
		// it either.
		c := *cfg.HTTPClient
		c.Transport = origin.Transport(c.Transport)
		next := c.CheckRedirect
		c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if err := CheckRedirect(req, via); err != nil || next == nil {
				return err
			}
			return next(req, via)
		}
		cfg.HTTPClient = &c
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Fetcher{cfg: cfg, log: cfg.Logger, urls: map[string]*resource{}, slots: make(chan struct{}, cfg.Workers)}
	f.life, f.stop = context.WithCancel(context.Background())
	client := httprc.NewClient(
		httprc.WithHTTPClient(&numbered{client: cfg.HTTPClient}),
		httprc.WithWorkers(cfg.Workers),
		httprc.WithErrorSink(errsink.NewFunc(func(ctx context.Context, err error) {
			if errors.Is(err, ErrRefused) {
				f.log.WarnContext(ctx, "identity: the JWKS fetched in the background was refused; the keys accepted before stay in use while not too old", "error", f.shown(err))
				return
			}
			f.log.WarnContext(ctx, "identity: background JWKS fetch failed; the keys fetched before stay in use", "error", f.shown(err))
		})),
	)
	// The workers live until Close, not as long as some caller's request.
	ctrl, err := client.Start(context.Background())
	if err != nil {
		return nil, fmt.Errorf("jwksfetch: %w", err)
	}
	f.ctrl = ctrl
	return f, nil
}

// CheckRedirect is the fetcher's redirect policy: a few redirects, each
// within the origin (scheme, host and port) of the URL fetched first, never
// from https to anything else, and never to a URL a JWKS URL could not be
// (https, or http on a loopback address). The keys that decide who signs in
// must not travel in the clear across a network, and must come from the
// host the operator named: a redirect to another host, even over https,
// would let whoever controls a path on the identity provider's host (an
// open redirect, a hosted page) choose them.
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return errors.New("more than 3 redirects")
	}
	if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirect from https to %s refused", req.URL.Scheme)
	}
	if origin.Of(req.URL) != origin.Of(via[0].URL) {
		// Named by its origin only: never the user info a Location may
		// carry.
		return fmt.Errorf("redirect to another origin (%s) refused: keys are fetched only from %s", origin.Of(req.URL), origin.Of(via[0].URL))
	}
	// A local identity provider is fetched in the clear; it must not send
	// the fetch on, still in the clear, to another host.
	if req.URL.Scheme != "https" && !(req.URL.Scheme == "http" && loopback(req.URL.Hostname())) {
		return fmt.Errorf("redirect to %s on %s refused: https, or http on localhost only", req.URL.Scheme, req.URL.Hostname())
	}
	return nil
}

// loopback reports whether host is one identity.CheckFetchURL lets a JWKS
// URL reach over plain http.
func loopback(host string) bool { return host == "localhost" || host == "127.0.0.1" || host == "::1" }

// Register starts keeping url fresh and fetches it once now. Every document
// fetched from it, now and later, goes to accept, which returns an error for
// one it refuses. Register returns the first fetch's error, if any: url
// stays registered either way and is tried again in the background, so an
// identity provider that is down at start-up is picked up when it is back.
//
// Subscribers of one URL register side by side at start-up (several
// issuers signed with one key set): those that come while its first fetch
// runs wait for it, and get its document and its error, rather than fetch
// it again, each, a few at a time.
func (f *Fetcher) Register(ctx context.Context, url string, accept func([]byte) error) error {
	f.mu.Lock()
	res, known := f.urls[url]
	if !known {
		res = &resource{first: make(chan struct{})}
		f.urls[url] = res
	}
	res.mu.Lock()
	res.subs = append(res.subs, accept)
	last, firstDone := res.last, res.firstDone
	res.mu.Unlock()
	f.mu.Unlock()
	if known {
		switch {
		case last != nil:
			return accept(last)
		case firstDone:
			// The first fetch brought nothing every subscriber took:
			// this one fetches for itself.
			return f.Refresh(ctx, url)
		}
		select {
		case <-res.first:
		case <-ctx.Done():
			return fmt.Errorf("jwksfetch: %s: %w", logurl.Show(url), ctx.Err())
		}
		res.mu.Lock()
		last, err, shared := res.last, res.firstErr, res.firstShared
		res.mu.Unlock()
		switch {
		case last != nil:
			// Handed to accept with the others': it subscribed before.
			return nil
		case shared:
			return err
		}
		return f.Refresh(ctx, url)
	}
	err := f.add(ctx, url, res)
	if err != nil {
		err = fmt.Errorf("jwksfetch: %w", &shownError{err: err, url: url})
		res.firstOver(err, false)
		return err
	}
	err = f.Refresh(ctx, url)
	res.firstOver(err, !errors.Is(err, ErrRefused) && ctx.Err() == nil)
	return err
}

// add hands url to httprc, to be fetched into res in the background.
func (f *Fetcher) add(ctx context.Context, url string, res *resource) error {
	every := interval(url, f.cfg.Refresh)
	r, err := httprc.NewResource[struct{}](url, httprc.TransformFunc[struct{}](func(_ context.Context, resp *http.Response) (struct{}, error) {
		return struct{}{}, res.deliver(resp)
	}), httprc.WithConstantInterval(every), httprc.WithMinInterval(min(f.cfg.Retry, every)), httprc.WithMaxInterval(every))
	if err != nil {
		return err
	}
	// Not fetched by the background loop right away: Register's Refresh
	// does the first fetch and reports its error.
	r.SetNext(time.Now().Add(every))
	return f.ctrl.Add(ctx, r, httprc.WithWaitReady(false))
}

// interval is how often url is fetched in the background: refresh, less
// up to a quarter of it, by a share its URL picks. With one interval for
// all, the URLs registered together at start-up (a tenant's identity
// provider each) all fell due in the same second, every refresh, and one
// process opened as many connections at once as it has tenants. Intervals
// of their own spread them, and keep them apart rather than drift back
// together; none is longer than refresh, the bound on a key an identity
// provider retired, and the fetches come at most a third more often. The
// share comes from the URL, not from chance, so that a URL is fetched at
// the same rate after every restart.
func interval(url string, refresh time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(url))
	spread := refresh / 4
	if spread < time.Second {
		return refresh
	}
	// Whole seconds: httprc schedules in whole seconds.
	return refresh - time.Duration(h.Sum64()%uint64(spread/time.Second))*time.Second
}

// deliver reads a fetched document and hands it to every subscriber.
func (res *resource) deliver(resp *http.Response) error {
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentSize+1))
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if len(b) > MaxDocumentSize {
		return fmt.Errorf("%w: larger than %d bytes", ErrRefused, MaxDocumentSize)
	}
	// The request is the last of its redirects; each keeps the context,
	// and with it the fetch's number.
	n, _ := resp.Request.Context().Value(fetchNumber{}).(uint64)
	res.mu.Lock()
	defer res.mu.Unlock()
	if n < res.newest {
		// A newer fetch was delivered already: this document is older.
		return nil
	}
	res.newest = n
	var errs []error
	for _, accept := range res.subs {
		if err := accept(b); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrRefused, errors.Join(errs...))
	}
	res.last = b
	return nil
}

// Refresh fetches url now and returns once its document was delivered (or
// refused). It returns early, with ctx's error, if ctx ends first; the fetch
// itself is bounded by Config.Timeout.
//
// At most as many refreshes as httprc has workers are handed to it at once;
// the others wait here. httprc's control loop hands a refresh to the
// workers and blocks while their queue is full, and a worker that finished
// a fetch reports back to that loop before it takes the next one: with
// enough refreshes at once (tokens naming unknown keys of many issuers)
// each side waited for the other for good, and no fetch, background or on
// demand, ever ended again. A refresh whose caller gave up keeps its slot
// until httprc is done with it, so callers giving up can't fill the queue
// either.
func (f *Fetcher) Refresh(ctx context.Context, url string) error {
	select {
	case f.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("jwksfetch: %s: %w", logurl.Show(url), ctx.Err())
	}
	done := make(chan error, 1)
	go func() {
		defer func() { <-f.slots }()
		done <- f.ctrl.Refresh(f.life, url)
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("jwksfetch: %s: %w", logurl.Show(url), &shownError{err: err, url: url})
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("jwksfetch: %s: %w", logurl.Show(url), ctx.Err())
	}
}

// Close stops the background fetches.
func (f *Fetcher) Close() error {
	f.stop()
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.Timeout+time.Second)
	defer cancel()
	return f.ctrl.ShutdownContext(ctx)
}
