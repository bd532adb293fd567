package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/server"
)

// get answers a GET of url on a connection of its own, so each call shows
// whether the listener still accepts. The client asks to keep the
// connection alive: resp.Close is the server's choice.
func get(t *testing.T, url string) (*http.Response, string, error) {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	resp, err := c.Get(url)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// TestShutdownDelayServesWhileNotReady: with LOCKBOX_SHUTDOWN_DELAY, the
// stop signal makes /readyz answer 503 at once, while every listener
// keeps taking new connections and serving them: in Kubernetes the pod
// leaves its Services' endpoints only some time after SIGTERM, and until
// then kube-proxy and ingress controllers still send it new connections.
// Refused, they failed calls on every rolling update.
func TestShutdownDelayServesWhileNotReady(t *testing.T) {
	for _, end := range []string{"delay over", "second stop signal"} {
		t.Run(end, func(t *testing.T) {
			timer := newDelayTimer()
			second := make(chan struct{})
			lb := start(t, map[string]string{
				"LOCKBOX_UPSTREAMS":      "exchange=http://127.0.0.1:1",
				"LOCKBOX_SHUTDOWN_DELAY": "7s",
			}, func(o *server.Options) { o.After, o.EndDelay = timer.after, second })
			servesWhileNotReady(t, lb)
			if d := timer.asked(t); d != 7*time.Second {
				t.Errorf("the shutdown delay waited for %s, want LOCKBOX_SHUTDOWN_DELAY's 7s", d)
			}
			// Still delaying: nothing ended it yet.
			if _, body, err := get(t, "http://"+lb.srv.APIAddr()+"/v1/keys"); err != nil {
				t.Fatalf("API during the shutdown delay: %v %q", err, body)
			}
			if end == "delay over" {
				close(timer.fire)
			} else {
				close(second)
			}
			// Then the drain that ran at once before: every listener
			// stops accepting. The deadline only bounds a failure.
			for _, addr := range []string{lb.srv.ProxyAddr(), lb.srv.APIAddr(), lb.srv.MetricsAddr()} {
				refused(t, addr)
			}
		})
	}
}

// delayTimer stands in for time.After in the shutdown delay: it tells
// the duration asked for, and fires when the test closes fire.
type delayTimer struct {
	d    chan time.Duration
	fire chan time.Time
}

func newDelayTimer() *delayTimer {
	return &delayTimer{d: make(chan time.Duration, 1), fire: make(chan time.Time)}
}

func (dt *delayTimer) after(d time.Duration) <-chan time.Time {
	dt.d <- d
	return dt.fire
}

func (dt *delayTimer) asked(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-dt.d:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("the shutdown delay never started")
		return 0
	}
}

// refused waits for addr to refuse connections; the deadline only bounds
// a failure.
func refused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections 10s after the shutdown delay ended", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// servesWhileNotReady stops lb and checks that /readyz answers 503 while
// every listener still accepts new connections and serves them.
func servesWhileNotReady(t *testing.T, lb *lockbox) {
	t.Helper()
	metrics := "http://" + lb.srv.MetricsAddr()
	if resp, body, err := get(t, metrics+"/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz before the stop signal: %v %q (%v), want 200", resp, body, err)
	}

	lb.stop()

	// The deadline only bounds a failure.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body, err := get(t, metrics+"/readyz")
		if err != nil {
			t.Fatalf("/readyz after the stop signal: %v, want 503 for LOCKBOX_SHUTDOWN_DELAY", err)
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still answers %s %q 10s after the stop signal, want 503", resp.Status, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Not ready, but alive and serving: a new connection to each listener
	// is accepted and its call answered.
	if body := readyzBody(t, metrics); !strings.Contains(body, "shutdown: ") {
		t.Errorf("/readyz during the shutdown delay says %q, want the shutdown named", body)
	}
	for _, c := range []struct {
		name, url string
		want      int
	}{
		{"livez", metrics + "/livez", http.StatusOK},
		{"API", "http://" + lb.srv.APIAddr() + "/v1/keys", http.StatusOK},
		// No token: the proxy judged the call and refused it.
		{"proxy", "http://" + lb.srv.ProxyAddr() + "/exchange/api/v2.0/me", http.StatusUnauthorized},
	} {
		resp, body, err := get(t, c.url)
		if err != nil {
			t.Fatalf("%s during the shutdown delay: %v, want a new connection served", c.name, err)
		}
		if resp.StatusCode != c.want {
			t.Errorf("%s during the shutdown delay: %s %q, want %d", c.name, resp.Status, body, c.want)
		}
		// Kept-alive clients are told to go: their next connection may
		// reach another replica.
		if !resp.Close {
			t.Errorf("%s during the shutdown delay: the answer keeps the connection alive, want Connection: close", c.name)
		}
	}
}

func readyzBody(t *testing.T, metrics string) string {
	t.Helper()
	_, body, err := get(t, metrics+"/readyz")
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// TestShutdownDelayHearsRevocations: the proxy serves calls through the
// shutdown delay, so its caches go on hearing of other replicas' changes
// until the drain: a grant another replica revokes during the delay is
// refused at once, not served from the cache.
func TestShutdownDelayHearsRevocations(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"value":[]}`)
	}))
	t.Cleanup(up.Close)
	timer := newDelayTimer()
	second := make(chan struct{})
	lb := start(t, map[string]string{
		"LOCKBOX_UPSTREAMS":      "exchange=" + up.URL,
		"LOCKBOX_SHUTDOWN_DELAY": "7s",
	}, func(o *server.Options) { o.After, o.EndDelay = timer.after, second })
	// Runs before start's clean-up, which waits for the server to end.
	t.Cleanup(func() { close(second) })
	// Another replica on the same Redis.
	other := start(t, map[string]string{"LOCKBOX_REDIS_URL": lb.cfg.RedisURL, "LOCKBOX_UPSTREAMS": "exchange=" + up.URL})
	r := lb.grant(t)

	call := func() int {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+lb.srv.ProxyAddr()+"/exchange/tenants/contoso/mailboxes", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+lb.token)
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: tr}).Do(req)
		if err != nil {
			t.Fatalf("proxy call: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// The grant is now in the proxy's cache, which the fake clock never
	// ages: only an event can clear it.
	if code := call(); code != http.StatusOK {
		t.Fatalf("proxy call with the grant: %d, want 200", code)
	}
	waitFor(t, "the proxy's caches subscribe to events", func() bool {
		_, body, err := get(t, "http://"+lb.srv.MetricsAddr()+"/metrics")
		return err == nil && strings.Contains(body, "\nlockbox_proxy_cache_events_subscribed 1\n")
	})

	lb.stop()
	timer.asked(t)
	if _, err := other.srv.Requests.Act(context.Background(), r.ID, grants.ActionRevoke,
		grants.Actor{Principal: admin, ClientIP: "198.51.100.2"}, "done"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the grant revoked on another replica is refused during the shutdown delay", func() bool {
		return call() == http.StatusForbidden
	})
}

// waitFor polls cond until it holds; the deadline only bounds a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
