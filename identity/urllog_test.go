package identity

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/lockbox-oss/lockbox/internal/clock"
)

// lockedBuffer is a log destination several goroutines may write to.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestJWKSURLQueryNotLogged: a JWKS URL's query may carry a credential
// (some identity providers take an API key or a signed parameter there),
// so the lines that name the URL (the keys changed, the keys could not be
// fetched) show its query's names only.
func TestJWKSURLQueryNotLogged(t *testing.T) {
	keys := newTestKeys(t)
	up := newJWKSServer(t, jose.JSONWebKey{Key: keys.ed.Public(), KeyID: "k1", Algorithm: string(jose.EdDSA), Use: "sig"})
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	for _, c := range []struct{ name, url, want string }{
		{"keys changed", up.URL + "/keys?tenant=t1&sig=s3cret-up", "keys changed"},
		{"fetch failed", down.URL + "/keys?tenant=t1&sig=s3cret-down", "could not be fetched"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs lockedBuffer
			v, err := NewVerifier(Config{Issuer: testIssuer, Audience: testAudience, JWKSURL: c.url, Fetcher: newFetcher(t),
				Now: clock.NewFake(testNow).Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if c.url == up.URL+"/keys?tenant=t1&sig=s3cret-up" {
				// The identity provider rotates its key; the next fetch
				// finds it.
				rotated := newTestKeys(t)
				up.mu.Lock()
				up.keys = []jose.JSONWebKey{{Key: rotated.ed.Public(), KeyID: "k2", Algorithm: string(jose.EdDSA), Use: "sig"}}
				up.mu.Unlock()
				if err := v.issuers[testIssuer].src.load(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			got := logs.String()
			if !strings.Contains(got, c.want) {
				t.Fatalf("no %q line logged:\n%s", c.want, got)
			}
			if strings.Contains(got, "s3cret") {
				t.Errorf("the JWKS URL's query is logged:\n%s", got)
			}
			if !strings.Contains(got, "/keys?") || !strings.Contains(got, "tenant=") {
				t.Errorf("the JWKS URL's path and query names are not logged:\n%s", got)
			}
		})
	}
}

// TestIssuerURLCredentialsNotLogged: an issuer is named by a URL the
// operator or a tenant writes, and its lines name it; a credential in its
// query or user info is not logged, its query's names are.
func TestIssuerURLCredentialsNotLogged(t *testing.T) {
	const iss = "https://lockbox:pw-s3cr3t@idp.example/?secret=s3cr3t"
	keys := newTestKeys(t)
	up := newJWKSServer(t, jose.JSONWebKey{Key: keys.ed.Public(), KeyID: "k1", Algorithm: string(jose.EdDSA), Use: "sig"})
	var logs lockedBuffer
	v, err := NewVerifier(Config{Issuer: iss, Audience: testAudience, JWKSURL: up.URL + "/keys", Fetcher: newFetcher(t),
		Now: clock.NewFake(testNow).Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// The identity provider rotates its key; the next fetch finds it.
	rotated := newTestKeys(t)
	up.mu.Lock()
	up.keys = []jose.JSONWebKey{{Key: rotated.ed.Public(), KeyID: "k2", Algorithm: string(jose.EdDSA), Use: "sig"}}
	up.mu.Unlock()
	if err := v.issuers[iss].src.load(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := logs.String()
	if !strings.Contains(got, "keys changed") {
		t.Fatalf("no \"keys changed\" line logged:\n%s", got)
	}
	if strings.Contains(got, "s3cr3t") {
		t.Errorf("a credential in the issuer's URL is logged:\n%s", got)
	}
	if !strings.Contains(got, "idp.example/?secret="+"REDACTED") {
		t.Errorf("the issuer's host and query names are not logged:\n%s", got)
	}
}
