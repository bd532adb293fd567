package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/identity"
)

// TestJWKSURLsFetchedSideBySideAtStart: the issuers' JWKS URLs are
// fetched side by side at start-up, so identity providers that are down
// delay it by one fetch timeout, not by one for each pair of them, and one
// that answers has its keys at start-up whichever others hang. Here each
// identity provider answers only while all three are asked at once:
// fetched two at a time, the third was asked only after the first two
// gave up, and no issuer had keys.
func TestJWKSURLsFetchedSideBySideAtStart(t *testing.T) {
	dir := t.TempDir()
	key, err := identity.GenerateDevKey()
	if err != nil {
		t.Fatal(err)
	}
	_, jwksPath, err := identity.WriteDevKeys(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := os.ReadFile(jwksPath)
	if err != nil {
		t.Fatal(err)
	}
	// Each identity provider answers once all three are being asked at
	// once; a fetch that waits longer gives up (client's timeout).
	var (
		mu       sync.Mutex
		inFlight int
		once     sync.Once
	)
	allAsked := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if inFlight++; inFlight == 3 {
			once.Do(func() { close(allAsked) })
		}
		mu.Unlock()
		defer func() {
			mu.Lock()
			inFlight--
			mu.Unlock()
		}()
		select {
		case <-allAsked:
			w.Write(jwks)
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)

	var file strings.Builder
	file.WriteString("issuers:\n")
	for _, tenant := range []string{"t1", "t2", "t3"} {
		fmt.Fprintf(&file, "- issuer: https://%s.example\n  audience: lockbox\n  scope: {tenant: %s}\n  jwks_url: %s/%s\n", tenant, tenant, srv.URL, tenant)
	}
	issuers := filepath.Join(dir, "issuers.yaml")
	if err := os.WriteFile(issuers, []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(map[string]string{"LOCKBOX_ISSUERS_FILE": issuers})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	v, fetcher, err := newVerifier(cfg, Options{JWKSHTTPClient: client, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fetcher.Close() })
	select {
	case <-allAsked:
	default:
		t.Fatal("the three JWKS URLs were never fetched at once: start-up waits one fetch timeout for each pair of identity providers that hang")
	}
	now := time.Now()
	for _, tenant := range []string{"t1", "t2", "t3"} {
		tok, err := identity.Mint(key, "https://"+tenant+".example", "lockbox", identity.Claims{Subject: "alice@" + tenant + ".example",
			Roles: []identity.Role{identity.RoleGlobalAdmin}}, now)
		if err != nil {
			t.Fatal(err)
		}
		if p, err := v.Verify(t.Context(), tok); err != nil || p.TenantID != tenant {
			t.Errorf("%s's token at start-up: %+v, %v", tenant, p, err)
		}
	}
}
