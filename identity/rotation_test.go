package identity

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/lockbox-oss/lockbox/identity/jwksfetch"
	"github.com/lockbox-oss/lockbox/internal/clock"
)

// jwksServer is an identity provider's JWKS endpoint whose keys the test
// rotates, and which it can take down.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	raw     string // served instead of keys when set
	down    bool
	fetches atomic.Int64
}

func newJWKSServer(t testing.TB, keys ...jose.JSONWebKey) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		down, body := s.down, must(json.Marshal(jose.JSONWebKeySet{Keys: s.keys}))
		if s.raw != "" {
			body = []byte(s.raw)
		}
		s.mu.Unlock()
		if down {
			// The connection drops without an answer, as an unreachable
			// identity provider's would.
			panic(http.ErrAbortHandler)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(keys ...jose.JSONWebKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys, s.raw = keys, ""
}

// serveRaw makes the endpoint answer body, as it is.
func (s *jwksServer) serveRaw(body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raw = body
}

func (s *jwksServer) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func newFetcher(t testing.TB) *jwksfetch.Fetcher {
	t.Helper()
	// Background fetches are a day apart: the tests fetch on demand, so
	// what they see does not depend on timing.
	f, err := jwksfetch.New(jwksfetch.Config{Refresh: 24 * time.Hour, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// urlVerifiers are two verifiers of the same JWKS URL, one remembering
// verified tokens and one not, so each step checks both paths.
func urlVerifiers(t *testing.T, url string, clk *clock.Fake, cfg Config) map[string]*Verifier {
	t.Helper()
	out := map[string]*Verifier{}
	for name, size := range map[string]int{"cached": 0, "uncached": -1} {
		c := cfg
		c.Issuer, c.Audience, c.JWKSURL, c.Now, c.CacheSize = testIssuer, testAudience, url, clk.Now, size
		if c.Fetcher == nil {
			c.Fetcher = newFetcher(t)
		}
		v, err := NewVerifier(c)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = v
	}
	return out
}

// TestJWKSURLRotation: the identity provider rotates its key. A token of the
// new key is accepted at once (its unknown kid makes the verifier fetch the
// keys again), without a restart; a token of the retired key is refused once
// the key left the set, also when it was verified and remembered before.
func TestJWKSURLRotation(t *testing.T) {
	oldKeys, newKeys := newTestKeys(t), newTestKeys(t)
	oldJWK := jose.JSONWebKey{Key: oldKeys.ed.Public(), KeyID: "2024", Algorithm: string(jose.EdDSA), Use: "sig"}
	newJWK := jose.JSONWebKey{Key: newKeys.ed.Public(), KeyID: "2025", Algorithm: string(jose.EdDSA), Use: "sig"}
	oldTok := tok{alg: jose.EdDSA, key: oldKeys.ed, kid: "2024"}.sign(t)
	newTok := tok{alg: jose.EdDSA, key: newKeys.ed, kid: "2025"}.sign(t)
	operator := Principal{Subject: "alice@example.test", Roles: []Role{RoleOperator}}

	idp := newJWKSServer(t, oldJWK)
	clk := clock.NewFake(testNow)
	for name, v := range urlVerifiers(t, idp.URL, clk, Config{}) {
		t.Run(name, func(t *testing.T) {
			clk.Set(testNow)
			idp.serve(oldJWK)
			v.refetch(t)
			p, err := v.Verify(context.Background(), oldTok)
			checkResult(t, p, err, operator, "")

			// The provider publishes the new key next to the old one and
			// starts signing with it.
			idp.serve(oldJWK, newJWK)
			clk.Advance(DefaultMinRefreshInterval)
			p, err = v.Verify(context.Background(), newTok)
			checkResult(t, p, err, operator, "")
			p, err = v.Verify(context.Background(), oldTok)
			checkResult(t, p, err, operator, "")

			// It retires the old key; the background refresh (here on
			// demand) finds the set without it.
			idp.serve(newJWK)
			v.refetch(t)
			p, err = v.Verify(context.Background(), oldTok)
			checkResult(t, p, err, operator, "unknown signing key")
			p, err = v.Verify(context.Background(), newTok)
			checkResult(t, p, err, operator, "")
		})
	}
}

// refetch is the background refresh, now.
func (v *Verifier) refetch(t *testing.T) {
	t.Helper()
	for _, is := range v.issuers {
		if err := is.src.load(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestJWKSURLRetiredKeyLeavesCache: a key dropped by a refresh triggered by
// someone else's unknown kid ends the remembered tokens it verified.
func TestJWKSURLRetiredKeyLeavesCache(t *testing.T) {
	oldKeys, newKeys := newTestKeys(t), newTestKeys(t)
	oldJWK := jose.JSONWebKey{Key: oldKeys.ed.Public(), KeyID: "old"}
	newJWK := jose.JSONWebKey{Key: newKeys.ed.Public(), KeyID: "new"}
	idp := newJWKSServer(t, oldJWK)
	clk := clock.NewFake(testNow)
	v := urlVerifiers(t, idp.URL, clk, Config{})["cached"]
	oldTok := tok{alg: jose.EdDSA, key: oldKeys.ed, kid: "old"}.sign(t)
	if _, err := v.Verify(context.Background(), oldTok); err != nil {
		t.Fatal(err)
	}
	if n := len(v.cache.cur); n != 1 {
		t.Fatalf("%d tokens remembered, want 1", n)
	}
	idp.serve(newJWK)
	if _, err := v.Verify(context.Background(), tok{alg: jose.EdDSA, key: newKeys.ed, kid: "new"}.sign(t)); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(context.Background(), oldTok)
	checkResult(t, Principal{}, err, Principal{}, "unknown signing key")
}

// TestJWKSURLRefusedDocumentEndsUnlistedKeys: the provider retires a key
// and, in the same document, publishes one Lockbox refuses (here a weak RSA
// key). The document is refused and the new keys are not loaded, but it
// still says which keys the provider stands by: a key it no longer lists,
// or lists with other material, stops working at that fetch, as the retired
// key of an accepted document does, instead of verifying for up to
// MaxKeyAge. An answer that is no key set at all says nothing and keeps
// the keys.
func TestJWKSURLRefusedDocumentEndsUnlistedKeys(t *testing.T) {
	keys, retired, other := newTestKeys(t), newTestKeys(t), newTestKeys(t)
	weak := must(rsa.GenerateKey(rand.Reader, 1024))
	retiredJWK := jose.JSONWebKey{Key: &retired.ec.PublicKey, KeyID: "retired", Algorithm: string(jose.ES256), Use: "sig"}
	stayJWK := jose.JSONWebKey{Key: &keys.ec.PublicKey, KeyID: "stay", Algorithm: string(jose.ES256), Use: "sig"}
	weakJWK := jose.JSONWebKey{Key: &weak.PublicKey, KeyID: "legacy", Use: "sig"}
	retiredTok := tok{alg: jose.ES256, key: retired.ec, kid: "retired"}.sign(t)
	stayTok := tok{alg: jose.ES256, key: keys.ec, kid: "stay"}.sign(t)
	operator := Principal{Subject: "alice@example.test", Roles: []Role{RoleOperator}}

	idp := newJWKSServer(t, retiredJWK, stayJWK)
	clk := clock.NewFake(testNow)
	for name, v := range urlVerifiers(t, idp.URL, clk, Config{}) {
		t.Run(name, func(t *testing.T) {
			idp.serve(retiredJWK, stayJWK)
			v.refetch(t)
			for _, raw := range []string{retiredTok, stayTok} {
				p, err := v.Verify(context.Background(), raw)
				checkResult(t, p, err, operator, "")
			}
			refused := func() {
				t.Helper()
				if err := v.issuers[testIssuer].src.load(context.Background()); err == nil {
					t.Fatal("the document was accepted")
				}
			}

			// Not a key set: nothing changes.
			for _, body := range []string{"<html>maintenance</html>", `{"error":"busy"}`} {
				idp.serveRaw(body)
				refused()
				for _, raw := range []string{retiredTok, stayTok} {
					p, err := v.Verify(context.Background(), raw)
					checkResult(t, p, err, operator, "")
				}
			}

			// "retired" left the set; "stay" is still in it.
			idp.serve(stayJWK, weakJWK)
			refused()
			p, err := v.Verify(context.Background(), retiredTok)
			checkResult(t, p, err, operator, "unknown signing key")
			p, err = v.Verify(context.Background(), stayTok)
			checkResult(t, p, err, operator, "")

			// "stay" is listed with other material: it is not the key
			// that verified the token.
			idp.serve(jose.JSONWebKey{Key: &other.ec.PublicKey, KeyID: "stay", Algorithm: string(jose.ES256), Use: "sig"}, weakJWK)
			refused()
			p, err = v.Verify(context.Background(), stayTok)
			checkResult(t, p, err, operator, "no verification keys (JWKS refused)")

			// An accepted document brings keys back.
			idp.serve(retiredJWK, stayJWK)
			v.refetch(t)
			p, err = v.Verify(context.Background(), stayTok)
			checkResult(t, p, err, operator, "")
		})
	}
}

// TestJWKSURLSameKeysKeepGeneration: a refresh that finds the same keys
// (most of them) keeps the key set, so remembered tokens are not verified
// again after every background fetch.
func TestJWKSURLSameKeysKeepGeneration(t *testing.T) {
	keys := newTestKeys(t)
	idp := newJWKSServer(t, keys.jwks()...)
	clk := clock.NewFake(testNow)
	v := urlVerifiers(t, idp.URL, clk, Config{})["cached"]
	raw := tok{alg: jose.EdDSA, key: keys.ed, kid: "ed"}.sign(t)
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	is := v.issuers[testIssuer]
	before := is.keys.Load()
	// The same keys in another order, as a provider may serve them.
	jwks := keys.jwks()
	idp.serve(jwks[2], jwks[0], jwks[1])
	clk.Advance(time.Minute)
	v.refetch(t)
	if is.keys.Load() != before {
		t.Fatal("a refresh that found the same keys replaced the key set")
	}
	if got := before.confirmed.Load(); got != clk.Now().UnixNano() {
		t.Errorf("the keys were confirmed at %d, want now (%d)", got, clk.Now().UnixNano())
	}
	hit := v.cache.get(tokenKey(raw))
	if hit == nil || !hit.valid(clk.Now(), DefaultLeeway) {
		t.Fatal("the remembered token is no longer valid after a refresh that changed nothing")
	}
	// Another key added: a new generation.
	other := newTestKeys(t)
	idp.serve(append(keys.jwks(), jose.JSONWebKey{Key: other.ed.Public(), KeyID: "other"})...)
	v.refetch(t)
	if is.keys.Load() == before || hit.valid(clk.Now(), DefaultLeeway) {
		t.Fatal("new keys kept the old generation")
	}
}

// TestJWKSURLUnreachable: with the identity provider unreachable, a token
// naming an unknown key is refused (nothing to check it with: fail
// closed), while the keys fetched before keep working until they are
// MaxKeyAge old; then every token is refused, until the provider answers
// again.
func TestJWKSURLUnreachable(t *testing.T) {
	keys, next := newTestKeys(t), newTestKeys(t)
	idp := newJWKSServer(t, keys.jwks()...)
	clk := clock.NewFake(testNow)
	const maxAge = 10 * time.Minute
	known := tok{alg: jose.EdDSA, key: keys.ed, kid: "ed"}.sign(t)
	unknown := tok{alg: jose.EdDSA, key: next.ed, kid: "next"}.sign(t)
	operator := Principal{Subject: "alice@example.test", Roles: []Role{RoleOperator}}

	for name, v := range urlVerifiers(t, idp.URL, clk, Config{MaxKeyAge: maxAge}) {
		t.Run(name, func(t *testing.T) {
			clk.Set(testNow)
			idp.setDown(false)
			idp.serve(keys.jwks()...)
			v.refetch(t)
			p, err := v.Verify(context.Background(), known)
			checkResult(t, p, err, operator, "")

			idp.setDown(true)
			if err := v.issuers[testIssuer].src.load(context.Background()); err == nil {
				t.Fatal("a fetch from the unreachable provider succeeded")
			}
			clk.Advance(DefaultMinRefreshInterval)
			p, err = v.Verify(context.Background(), unknown)
			checkResult(t, p, err, operator, "unknown signing key")

			for _, at := range []time.Duration{time.Minute, maxAge - time.Second, maxAge} {
				clk.Set(testNow.Add(at))
				p, err = v.Verify(context.Background(), known)
				checkResult(t, p, err, operator, "")
			}
			clk.Set(testNow.Add(maxAge + time.Second))
			for _, raw := range []string{known, unknown} {
				p, err = v.Verify(context.Background(), raw)
				checkResult(t, p, err, operator, "verification keys too old")
			}

			// The provider is back, with the next key published: the
			// next token (past the rate limit) fetches the keys again.
			idp.setDown(false)
			idp.serve(append(keys.jwks(), jose.JSONWebKey{Key: next.ed.Public(), KeyID: "next"})...)
			clk.Advance(DefaultMinRefreshInterval)
			for _, raw := range []string{known, unknown} {
				p, err = v.Verify(context.Background(), raw)
				checkResult(t, p, err, operator, "")
			}
		})
	}
}

// TestJWKSURLDownAtStart: an identity provider that can't be reached when
// the verifier starts does not stop it: its tokens are refused until the
// keys can be fetched, then accepted without a restart.
func TestJWKSURLDownAtStart(t *testing.T) {
	keys := newTestKeys(t)
	idp := newJWKSServer(t, keys.jwks()...)
	idp.setDown(true)
	clk := clock.NewFake(testNow)
	v := urlVerifiers(t, idp.URL, clk, Config{})["cached"]
	raw := tok{alg: jose.EdDSA, key: keys.ed, kid: "ed"}.sign(t)
	operator := Principal{Subject: "alice@example.test", Roles: []Role{RoleOperator}}
	p, err := v.Verify(context.Background(), raw)
	checkResult(t, p, err, operator, "no verification keys")
	idp.setDown(false)
	// Within the rate limit: no fetch yet.
	p, err = v.Verify(context.Background(), raw)
	checkResult(t, p, err, operator, "no verification keys")
	clk.Advance(DefaultMinRefreshInterval)
	p, err = v.Verify(context.Background(), raw)
	checkResult(t, p, err, operator, "")
}

// TestUnknownKIDRateLimited: tokens naming made-up key ids, however many and
// however concurrent, make the verifier fetch the keys at most once per
// MinRefreshInterval.
func TestUnknownKIDRateLimited(t *testing.T) {
	keys, attacker := newTestKeys(t), newTestKeys(t)
	idp := newJWKSServer(t, keys.jwks()...)
	clk := clock.NewFake(testNow)
	v := urlVerifiers(t, idp.URL, clk, Config{MinRefreshInterval: time.Minute})["cached"]
	flood := func() {
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				raw := tok{alg: jose.EdDSA, key: attacker.ed, kid: fmt.Sprintf("bogus-%d", i)}.sign(t)
				if _, err := v.Verify(context.Background(), raw); err == nil {
					t.Error("a token of an unknown key was accepted")
				}
			})
		}
		wg.Wait()
	}
	start := idp.fetches.Load()
	flood()
	if n := idp.fetches.Load() - start; n != 1 {
		t.Fatalf("40 tokens with unknown kids caused %d fetches, want 1", n)
	}
	clk.Advance(time.Minute - time.Second)
	flood()
	if n := idp.fetches.Load() - start; n != 1 {
		t.Fatalf("within the minute: %d fetches in all, want 1", n)
	}
	clk.Advance(time.Second)
	flood()
	if n := idp.fetches.Load() - start; n != 2 {
		t.Fatalf("a minute later: %d fetches in all, want 2", n)
	}
	// Algorithms no key could have don't fetch at all.
	clk.Advance(time.Minute)
	for _, raw := range []string{
		b64(map[string]any{"alg": "none", "kid": "x"}) + "." + b64(validClaims()) + ".",
		tok{alg: jose.PS256, key: keys.rsa, kid: "x"}.sign(t),
	} {
		if _, err := v.Verify(context.Background(), raw); err == nil {
			t.Fatal("accepted")
		}
	}
	if n := idp.fetches.Load() - start; n != 2 {
		t.Fatalf("tokens with impossible algorithms caused fetches: %d in all, want 2", n)
	}
}

// TestJWKSFileRotation: a rotated JWKS file takes effect without a restart,
// by the watcher or at once for a token of the new key.
func TestJWKSFileRotation(t *testing.T) {
	oldKeys, newKeys := newTestKeys(t), newTestKeys(t)
	path := writeJWKS(t, filepath.Join(t.TempDir(), "jwks.json"), jose.JSONWebKey{Key: oldKeys.ed.Public(), KeyID: "old"})
	clk := clock.NewFake(testNow)
	v, err := NewVerifier(Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: path, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	oldTok := tok{alg: jose.EdDSA, key: oldKeys.ed, kid: "old"}.sign(t)
	newTok := tok{alg: jose.EdDSA, key: newKeys.ed, kid: "new"}.sign(t)
	operator := Principal{Subject: "alice@example.test", Roles: []Role{RoleOperator}}
	p, err := v.Verify(context.Background(), oldTok)
	checkResult(t, p, err, operator, "")

	// The new key's first token reads the file again.
	writeJWKS(t, path, jose.JSONWebKey{Key: newKeys.ed.Public(), KeyID: "new"})
	p, err = v.Verify(context.Background(), newTok)
	checkResult(t, p, err, operator, "")
	p, err = v.Verify(context.Background(), oldTok)
	checkResult(t, p, err, operator, "unknown signing key")

	// The watcher notices a change nobody's token asked for.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); v.Watch(ctx, 10*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	writeJWKS(t, path, jose.JSONWebKey{Key: oldKeys.ed.Public(), KeyID: "old"})
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := v.Verify(context.Background(), newTok)
		if err != nil {
			checkResult(t, Principal{}, err, operator, "unknown signing key")
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watcher never loaded the rotated file")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A broken file keeps the keys.
	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := v.Reload(); err == nil {
		t.Fatal("a broken file reloaded")
	}
	p, err = v.Verify(context.Background(), oldTok)
	checkResult(t, p, err, operator, "")
}

// TestUnknownKIDRateLimitedPerURL: issuers that share a JWKS URL (a cloud
// identity provider signs every directory's tokens with one set of keys)
// share its rate limit too. A fetch for one of them brings every one of
// them the keys, so tokens naming made-up key ids of each issuer in turn
// must not make Lockbox fetch the URL once for each.
func TestUnknownKIDRateLimitedPerURL(t *testing.T) {
	keys, attacker := newTestKeys(t), newTestKeys(t)
	idp := newJWKSServer(t, keys.jwks()...)
	clk := clock.NewFake(testNow)
	const tenants = 10
	cfg := Config{Now: clk.Now, Fetcher: newFetcher(t), MinRefreshInterval: time.Minute}
	issuerOf := func(i int) string { return fmt.Sprintf("https://login.cloud.example/tenant-%d/v2.0", i) }
	for i := range tenants {
		cfg.Issuers = append(cfg.Issuers, IssuerConfig{Issuer: issuerOf(i), Audience: testAudience,
			Scope: TenantScope(fmt.Sprintf("tenant-%d", i)), JWKSURL: idp.URL})
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	flood := func() {
		for i := range tenants {
			raw := tok{alg: jose.EdDSA, key: attacker.ed, kid: fmt.Sprintf("bogus-%d", i), claims: func(c map[string]any) { c["iss"] = issuerOf(i) }}.sign(t)
			_, err := v.Verify(context.Background(), raw)
			checkResult(t, Principal{}, err, Principal{}, "unknown signing key")
		}
	}
	start := idp.fetches.Load()
	flood()
	if n := idp.fetches.Load() - start; n != 1 {
		t.Fatalf("unknown kids of %d issuers of one URL caused %d fetches, want 1", tenants, n)
	}
	clk.Advance(time.Minute)
	flood()
	if n := idp.fetches.Load() - start; n != 2 {
		t.Fatalf("a minute later: %d fetches in all, want 2", n)
	}
	// Each issuer still gets the keys, and verifies its own tokens.
	raw := tok{alg: jose.EdDSA, key: keys.ed, kid: "ed", claims: func(c map[string]any) { c["iss"] = issuerOf(tenants - 1) }}.sign(t)
	p, err := v.Verify(context.Background(), raw)
	checkResult(t, p, err, Principal{Subject: "alice@example.test", TenantID: fmt.Sprintf("tenant-%d", tenants-1)}, "")
}

// TestUnknownKIDLoadEndsWithTheCaller: Verify's context bounds the load of
// keys a token causes, for the caller that started the load as for those
// waiting for it. An identity provider that answers slowly must not hold
// the request that happened to name an unknown key past its own deadline
// (up to the fetch timeout); the load goes on for whoever comes next.
func TestUnknownKIDLoadEndsWithTheCaller(t *testing.T) {
	keys, next := newTestKeys(t), newTestKeys(t)
	body := must(json.Marshal(jose.JSONWebKeySet{Keys: keys.jwks()}))
	var fetches atomic.Int64
	entered, release := make(chan struct{}, 1), make(chan struct{})
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fetches.Add(1) > 1 {
			// Slow from the second fetch on.
			select {
			case entered <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		w.Write(body)
	}))
	t.Cleanup(idp.Close)
	f, err := jwksfetch.New(jwksfetch.Config{Refresh: 24 * time.Hour, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	t.Cleanup(func() { close(release) }) // before the fetcher closes
	v, err := NewVerifier(Config{Issuer: testIssuer, Audience: testAudience, JWKSURL: idp.URL, Fetcher: f, Now: clock.NewFake(testNow).Now})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := v.Verify(ctx, tok{alg: jose.EdDSA, key: next.ed, kid: "next"}.sign(t))
		done <- err
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the token's unknown kid never made Lockbox fetch the keys")
	}
	cancel()
	select {
	case err := <-done:
		checkResult(t, Principal{}, err, Principal{}, "unknown signing key")
	case <-time.After(10 * time.Second):
		t.Fatal("Verify still waits for the slow fetch after its context ended")
	}
}

// logBuffer keeps what a verifier logs, for the test to read while the
// verifier may still be writing.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestJWKSURLRefusedDocumentSaysRefused: a provider that keeps publishing
// a JWKS Lockbox refuses (malformed, or with keys of a type Lockbox does
// not verify with only) locks its issuer out, as an unreachable one does:
// at once when it lists none of the keys in use, after MaxKeyAge when it
// is no key set at all. That fails safe, but the logs and the reason a
// token is refused must say the document was refused, not that the keys
// could not be fetched, or the operator looks for a network problem.
func TestJWKSURLRefusedDocumentSaysRefused(t *testing.T) {
	keys := newTestKeys(t)
	p384 := must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))
	// Keys of a type Lockbox does not verify with: skipped, which leaves
	// the document without a usable key.
	unsupported := jose.JSONWebKey{Key: &p384.PublicKey, KeyID: "p384", Use: "sig"}
	known := tok{alg: jose.EdDSA, key: keys.ed, kid: "ed"}.sign(t)
	operator := Principal{Subject: "alice@example.test", Roles: []Role{RoleOperator}}
	const maxAge = 10 * time.Minute

	t.Run("at start-up", func(t *testing.T) {
		idp := newJWKSServer(t, unsupported)
		var logs logBuffer
		v, err := NewVerifier(Config{Issuer: testIssuer, Audience: testAudience, JWKSURL: idp.URL, Fetcher: newFetcher(t),
			Now: clock.NewFake(testNow).Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		got := logs.String()
		if !strings.Contains(got, "JWKS was refused") || strings.Contains(got, "could not be fetched") {
			t.Errorf("start-up logs do not say the JWKS was refused:\n%s", got)
		}
		p, err := v.Verify(context.Background(), known)
		checkResult(t, p, err, operator, "no verification keys (JWKS refused)")
	})

	t.Run("lists none of the keys in use", func(t *testing.T) {
		idp := newJWKSServer(t, keys.jwks()...)
		clk := clock.NewFake(testNow)
		for name, v := range urlVerifiers(t, idp.URL, clk, Config{MaxKeyAge: maxAge}) {
			t.Run(name, func(t *testing.T) {
				idp.serve(keys.jwks()...)
				v.refetch(t)
				idp.serve(unsupported)
				if err := v.issuers[testIssuer].src.load(context.Background()); err == nil {
					t.Fatal("the document was accepted")
				}
				p, err := v.Verify(context.Background(), known)
				checkResult(t, p, err, operator, "no verification keys (JWKS refused)")
			})
		}
	})

	t.Run("no key set at all", func(t *testing.T) {
		idp := newJWKSServer(t, keys.jwks()...)
		clk := clock.NewFake(testNow)
		var logs logBuffer
		cfg := Config{MaxKeyAge: maxAge, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
		for name, v := range urlVerifiers(t, idp.URL, clk, cfg) {
			t.Run(name, func(t *testing.T) {
				clk.Set(testNow)
				idp.serve(keys.jwks()...)
				v.refetch(t)
				idp.serveRaw("<html>maintenance</html>")
				if err := v.issuers[testIssuer].src.load(context.Background()); err == nil {
					t.Fatal("the document was accepted")
				}
				// The keys fetched before work until they are too old.
				clk.Set(testNow.Add(maxAge))
				p, err := v.Verify(context.Background(), known)
				checkResult(t, p, err, operator, "")
				clk.Set(testNow.Add(maxAge + DefaultMinRefreshInterval))
				p, err = v.Verify(context.Background(), known)
				checkResult(t, p, err, operator, "verification keys too old (JWKS refused)")
				got := logs.String()
				if !strings.Contains(got, "JWKS fetched again was refused") || strings.Contains(got, "could not be loaded again") {
					t.Errorf("the logs do not say the JWKS fetched for the token was refused:\n%s", got)
				}
				// A document accepted again ends it.
				idp.serve(keys.jwks()...)
				v.refetch(t)
				p, err = v.Verify(context.Background(), known)
				checkResult(t, p, err, operator, "")
			})
		}
	})
}
