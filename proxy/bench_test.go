package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/policy"
)

// BenchmarkProxyAllow measures one permitted call end to end: a client
// over loopback HTTP, the whole handler (token verification,
// canonicalization, catalog match, grant and settings reads from a real
// Redis, the policy decision, the durable audit write) and an upstream
// that answers at once. "rego" classifies and decides with a snapshot of
// the real OPA engine and the default policy; "go-rule" with the default
// catalog and the Go mirror of that rule, which shows what the policy
// evaluation itself costs.
func BenchmarkProxyAllow(b *testing.B) {
	engine, err := policy.NewEngine(policy.EngineConfig{})
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range []struct {
		name   string
		policy func(*testEnv) Policy
	}{
		{"rego", func(*testEnv) Policy { return PolicyFunc(func() PolicySnapshot { return engine.Snapshot() }) }},
		{"go-rule", func(e *testEnv) Policy { return goPolicy{catalog: e.catalog, decider: ruleDecider{catalog: e.catalog}} }},
	} {
		b.Run(d.name, func(b *testing.B) { benchmarkProxyAllow(b, d.policy) })
	}
}

func benchmarkProxyAllow(b *testing.B, newPolicy func(*testEnv) Policy) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"value":[]}`)
	}))
	b.Cleanup(upstream.Close)
	e := newTestEnv(b, func(e *testEnv, c *Config) {
		c.Policy = newPolicy(e)
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
