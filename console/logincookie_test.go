package console_test

import (
	"crypto/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// TestSigninStartWritesNothing: starting a sign-in needs no credential, so
// it must cost the server nothing it keeps. Anonymous starts, for the
// provider's issuer and for a tenant's, write no key per start: the only
// key sign-in ever writes is the one sealing key, once.
func TestSigninStartWritesNothing(t *testing.T) {
	parallel(t)
	ie := newIssuersEnv(t)
	before := map[string]bool{}
	for _, k := range ie.keys("*") {
		before[k] = true
	}
	const n = 100
	for i := range n {
		path := "/console/signin/oidc"
		if i%2 == 1 {
			path = "/console/signin/oidc?tenant=contoso"
		}
		// A fresh client each time: a flood presents no cookie.
		if r := ie.browser().get(path); r.status != http.StatusFound {
			t.Fatalf("sign-in start %d: %s", i, r)
		}
	}
	var added []string
	for _, k := range ie.keys("*") {
		if !before[k] {
			added = append(added, k)
		}
	}
	if len(added) > 1 || (len(added) == 1 && added[0] != loginKeyName(ie.clk.Now())) {
		t.Errorf("%d sign-in starts wrote %d keys, among them %q", n, len(added), added[:min(len(added), 3)])
	}
}

// TestSigninAcrossReplicas: a sign-in started at one replica finishes at
// another that shares its Redis and never started one: both seal with the
// key in Redis.
func TestSigninAcrossReplicas(t *testing.T) {
	parallel(t)
	e, m := newOIDCEnv(t)
	other, err := console.New(e.cfg) // the same PublicURL, issuer and Redis
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(other)
	t.Cleanup(srv.Close)

	b := e.browser()
	l := startLogin(t, e, m, b, ada)
	u, _ := url.Parse(l.callback)
	// The browser's cookies are the host's, whatever the port.
	r := b.get(srv.URL + u.RequestURI())
	if r.status != http.StatusOK || setCookie(t, r, sessionCookie) == nil {
		t.Fatalf("callback at the other replica: %s", r)
	}
	if r := b.get("/console/requests"); r.status != http.StatusOK || !strings.Contains(r.body, "Ada Admin") {
		t.Errorf("requests after sign-in: %s", r)
	}
}

// TestLoginCookieRefused: a login cookie that is not the console's sealed
// sign-in of this state, or is past its end, is refused as an expired
// sign-in, and cleared.
func TestLoginCookieRefused(t *testing.T) {
	parallel(t)
	e, m := newOIDCEnv(t)
	flip := func(s string, i int) string {
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	// live: the forged cookie is a sign-in in progress of the console's
	// own, of another state; the browser's newest sign-in, it is kept.
	live := map[string]bool{"another sign-in's": true, "resealed with another state": true}
	for name, forge := range map[string]func(t *testing.T, l login) string{
		"tampered":          func(t *testing.T, l login) string { return flip(l.cookie, len(l.cookie)/2) },
		"tampered tag":      func(t *testing.T, l login) string { return flip(l.cookie, len(l.cookie)-2) },
		"truncated":         func(t *testing.T, l login) string { return l.cookie[:len(l.cookie)-4] },
		"not base64":        func(t *testing.T, l login) string { return l.cookie + "!" },
		"the bare state":    func(t *testing.T, l login) string { return l.state },
		"empty":             func(t *testing.T, _ login) string { return "" },
		"another sign-in's": func(t *testing.T, _ login) string { return startLogin(t, e, m, e.browser(), ada).cookie },
		"another key": func(t *testing.T, l login) string {
			key := make([]byte, 32)
			rand.Read(key)
			pl := openLogin(t, e, l.cookie)
			return sealLogin(t, sealer(t, key), pl)
		},
		"resealed with another state": func(t *testing.T, l login) string {
			pl := openLogin(t, e, l.cookie)
			pl.State = startLogin(t, e, m, e.browser(), ada).state
			return sealLogin(t, loginSealer(t, e), pl)
		},
	} {
		t.Run(name, func(t *testing.T) {
			l := startLogin(t, e, m, e.browser(), ada)
			r := e.browser().get(l.callback, header("Cookie", "lockbox_login="+forge(t, l)))
			wantProblem(t, e, r, "expired")
			if c := setCookie(t, r, "lockbox_login"); live[name] && c != nil {
				t.Errorf("another sign-in's login cookie was changed: %v", r.header.Values("Set-Cookie"))
			} else if !live[name] && (c == nil || c.MaxAge >= 0) {
				t.Errorf("the login cookie was not cleared: %v", r.header.Values("Set-Cookie"))
			}
			// The real cookie still signs in: nothing was used up.
			b := e.browser()
			if r := b.get(l.callback, header("Cookie", "lockbox_login="+l.cookie)); r.status != http.StatusOK {
				t.Fatalf("callback with the console's own cookie: %s", r)
			}
			b.post("/console/signout", b.form(nil))
		})
	}
	t.Run("expired", func(t *testing.T) {
		l := startLogin(t, e, m, e.browser(), ada)
		e.clk.Advance(10 * time.Minute)
		defer e.clk.Set(m.Now())
		wantProblem(t, e, e.browser().get(l.callback, header("Cookie", "lockbox_login="+l.cookie)), "expired", "the sign-in expired")
	})
}

// TestSigninKeyUnavailable: without the Redis that holds the sealing key, a
// sign-in can't start (503, no cookie); once the key is read, it is kept.
func TestSigninKeyUnavailable(t *testing.T) {
	parallel(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // no Redis there
	e, _ := newOIDCEnv(t)
	cfg := e.cfg
	cfg.Redis = redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	cfg.Timeout = 2 * time.Second
	t.Cleanup(func() { cfg.Redis.Close() })
	down, err := console.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(down)
	t.Cleanup(srv.Close)
	r := e.browser().get(srv.URL + "/console/signin/oidc")
	if r.status != http.StatusServiceUnavailable || setCookie(t, r, "lockbox_login") != nil {
		t.Errorf("sign-in start without Redis: %s", r)
	}
}

// TestLoginKeyRotates: each key period seals sign-ins with a key of its
// own. A sign-in started just before a period ends finishes in the next;
// a cookie sealed with a key two periods old (one that leaked, say) no
// longer opens, while a sign-in sealed with the current key does. The key
// in Redis lives two periods and a sign-in's life, then goes.
func TestLoginKeyRotates(t *testing.T) {
	parallel(t)
	now := time.Now().UTC()
	end := now.Truncate(loginKeyPeriod).Add(loginKeyPeriod)
	clk := clock.NewFake(end.Add(-20 * time.Second))
	m := oidctest.Start(t, oidctest.Config{Now: clk.Now})
	e := newStores(t, clk)
	cfg := e.consoleConfig()
	cfg.OIDC = []console.OIDCConfig{signinConfig(m, identity.SharedScope())}
	e.serve(cfg, false)

	b := e.browser()
	l := startLogin(t, e, m, b, ada)
	first := loginSealer(t, e)
	if ttl := e.rdb.TTL(t.Context(), loginKeyName(clk.Now())).Val(); ttl < 2*loginKeyPeriod || ttl > 2*loginKeyPeriod+10*time.Minute {
		t.Errorf("the sign-in key's TTL is %s, want two periods and a sign-in's life", ttl)
	}
	clk.Advance(40 * time.Second) // into the next period, within the code's minute
	if r := b.get(l.callback); r.status != http.StatusOK || setCookie(t, r, sessionCookie) == nil {
		t.Fatalf("a sign-in started in the period before: %s", r)
	}
	b.post("/console/signout", b.form(nil))

	clk.Advance(loginKeyPeriod) // two periods after the first key's
	fresh := startLogin(t, e, m, e.browser(), ada)
	pl := openLogin(t, e, fresh.cookie)
	pl.Expires = clk.Now().Add(time.Hour).Unix()
	stale := sealLogin(t, first, pl)
	wantProblem(t, e, e.browser().get(fresh.callback, header("Cookie", "lockbox_login="+stale)), "expired")
	if r := e.browser().get(fresh.callback, header("Cookie", "lockbox_login="+fresh.cookie)); r.status != http.StatusOK {
		t.Fatalf("a sign-in sealed with the current key: %s", r)
	}
}

// TestSigninAcrossReplicasAfterTheKeyWasLost: the period's sign-in key is
// gone from Redis while one replica still holds the one it read (a Redis
// restarted from a file without its last writes, a failover to a replica
// the key had not reached yet), and another replica, which never read it,
// makes the period a new one. Sign-ins started at either replica still
// finish at the other: every replica seals with the key in Redis, and
// opens with it too when what it held does not open the cookie.
func TestSigninAcrossReplicasAfterTheKeyWasLost(t *testing.T) {
	parallel(t)
	e, m := newOIDCEnv(t)
	other, err := console.New(e.cfg) // the same PublicURL, issuer and Redis
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(other)
	t.Cleanup(srv.Close)
	at := func(base string, l login) string {
		u, _ := url.Parse(l.callback)
		return base + u.RequestURI()
	}

	// e reads the period's key and keeps it.
	b := e.browser()
	if r := b.get(startLogin(t, e, m, b, ada).callback); r.status != http.StatusOK {
		t.Fatalf("sign-in before the key was lost: %s", r)
	}
	b.post("/console/signout", b.form(nil))
	if err := e.rdb.Del(t.Context(), loginKeyName(e.clk.Now())).Err(); err != nil {
		t.Fatal(err)
	}

	// Started at the other replica (which makes a new key), finished at e.
	b = e.browser()
	l := startLoginAt(t, m, b, srv.URL+"/console/signin/oidc", ada)
	if r := b.get(at(e.srv.URL, l)); r.status != http.StatusOK || setCookie(t, r, sessionCookie) == nil {
		t.Fatalf("started at the other replica, finished at the one that held the lost key: %s", r)
	}
	b.post("/console/signout", b.form(nil))
	// Started at e, finished at the other replica.
	b = e.browser()
	l = startLogin(t, e, m, b, ada)
	if r := b.get(at(srv.URL, l)); r.status != http.StatusOK || setCookie(t, r, sessionCookie) == nil {
		t.Fatalf("started at the replica that held the lost key, finished at the other: %s", r)
	}
}
