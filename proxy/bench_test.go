package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/policy"
	"github.com/lockbox-oss/lockbox/tenants"
)

// BenchmarkProxyAllow measures one permitted call end to end: a client
// over loopback HTTP, the whole handler (token verification,
// canonicalization, catalog match, the grant and the tenant's settings, the
// policy decision of the real OPA engine and the default policy, the
// durable audit write) and an upstream that answers at once.
//
// "served" is the proxy as "lockbox serve" wires it: grants and settings
// from the invalidated caches, records written by group commit. "uncached"
// reads Redis for the grant and the settings and writes each record on its
// own, as every call did before those two existed.
func BenchmarkProxyAllow(b *testing.B) {
	engine, err := policy.NewEngine(policy.EngineConfig{})
	if err != nil {
		b.Fatal(err)
	}
	snapshot := PolicyFunc(func() PolicySnapshot { return engine.Snapshot() })
	// served is the proxy as lockbox serve wires it.
	served := func(e *testEnv, c *Config) {
		c.Policy = snapshot
		c.Grants = grants.NewGrantCache(e.grants, time.Second, e.clk.Now)
		c.Tenants = tenants.NewSettingsCache(e.tenants, time.Second, e.clk.Now)
		gc, err := audit.NewGroupCommit(audit.GroupCommitConfig{Log: e.audit})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(gc.Close)
		c.Auditor = gc
	}
	for _, d := range []struct {
		name   string
		wiring func(*testEnv, *Config)
	}{
		{"served", func(e *testEnv, c *Config) { served(e, c) }},
		// The upstream with an assertion secret of its own: a MAC per
		// call instead of an Ed25519 signature.
		{"served-hs256", func(e *testEnv, c *Config) {
			served(e, c)
			c.AssertionSecrets = map[string][]byte{"exchange": []byte("bench-secret-0123456789abcdef0123456789")}
		}},
		{"uncached", func(e *testEnv, c *Config) { c.Policy = snapshot }},
	} {
		b.Run(d.name, func(b *testing.B) { benchmarkProxyAllow(b, d.wiring) })
	}
}

func benchmarkProxyAllow(b *testing.B, wiring func(*testEnv, *Config)) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"value":[]}`)
	}))
	b.Cleanup(upstream.Close)
	e := newTestEnv(b, func(e *testEnv, c *Config) {
		wiring(e, c)
		// Production logs at Info, where a permitted call writes nothing.
		c.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
		u, err := url.Parse(upstream.URL)
		if err != nil {
			b.Fatal(err)
		}
		c.Upstreams["exchange"] = u
	})
	e.grantFor(alice, "contoso", "exchange", 4*time.Hour)
	auth := e.bearer(alice)
	target := e.srv.URL + mailboxes + "/alice/messages?top=10"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512}}
	b.Cleanup(client.CloseIdleConnections)

	call := func(b *testing.B) bool {
		req, err := http.NewRequest(http.MethodGet, target, nil)
		if err != nil {
			b.Error(err)
			return false
		}
		req.Header.Set("Authorization", auth)
		res, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return false
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Errorf("status %d", res.StatusCode)
			return false
		}
		return true
	}

	b.Run("sequential", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !call(b) {
				return
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !call(b) {
					return
				}
			}
		})
	})
}
