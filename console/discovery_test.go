package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// TestDiscoveryHangs: an identity provider whose discovery document does
// not come holds up no one but the sign-ins waiting for it, and each of
// those only as long as its own request lasts. A second sign-in at
// contoso's identity provider while the first one's fetch hangs waits for
// that fetch (it does not start another) and gives up when its browser
// does; fabrikam's users sign in meanwhile. A fetch that failed is not
// kept: the next sign-in tries again.
func TestDiscoveryHangs(t *testing.T) {
	parallel(t)
	arrived := make(chan struct{}, 16)
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	var fetches atomic.Int32
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(hung.Close)
	t.Cleanup(releaseAll) // before hung.Close: cleanups run last first

	fab := oidctest.Start(t, oidctest.Config{})
	e := newStores(t, clock.NewFake(fab.Now()))
	cfg := e.consoleConfig()
	// Far longer than the test: a request ends when its browser leaves,
	// or when the fetch it waits for does.
	cfg.Timeout = 10 * time.Minute
	cfg.OIDC = []console.OIDCConfig{
		// A client without a timeout of its own, as an operator's may
		// be: only contexts end the fetch.
		{Issuer: hung.URL, ClientID: "lockbox", ClientSecret: "s", Scope: identity.TenantScope("contoso"), HTTPClient: &http.Client{}},
		signinConfig(fab, identity.TenantScope("fabrikam")),
	}
	// The console's handler, telling when a request marked "second"
	// enters and leaves it.
	srv := httptest.NewUnstartedServer(nil)
	cfg.PublicURL = "http://" + srv.Listener.Addr().String()
	c, err := console.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	entered, left := make(chan struct{}, 1), make(chan struct{}, 1)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		second := r.Header.Get("X-Test") == "second"
		if second {
			entered <- struct{}{}
		}
		c.ServeHTTP(w, r)
		if second {
			left <- struct{}{}
		}
	})
	srv.Start()
	t.Cleanup(srv.Close)
	e.srv, e.cfg = srv, cfg
	const contoso = "/console/signin/oidc?tenant=contoso"

	first := make(chan int, 1)
	go func() {
		res, err := srv.Client().Get(srv.URL + contoso)
		if err != nil {
			first <- 0
			return
		}
		res.Body.Close()
		first <- res.StatusCode
	}()
	<-arrived

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+contoso, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Test", "second")
	go func() {
		if res, err := srv.Client().Do(req); err == nil {
			res.Body.Close()
		}
	}()
	<-entered
	cancel()
	// Only a fetch that hangs for good can keep the second request in:
	// should it wait for the first's, the hung identity provider is
	// released after a while so that the test ends, and fails.
	watchdog := time.AfterFunc(30*time.Second, releaseAll)
	defer watchdog.Stop()
	<-left
	select {
	case <-release:
		t.Fatal("the second sign-in at contoso, its browser gone, waited until the first one's discovery ended")
	default:
	}

	b := e.browser()
	l := startLoginAt(t, fab, b, "/console/signin/oidc?tenant=fabrikam", oidcUser{sub: "fiona@fabrikam.example", roles: []string{"global-admin"}})
	if r := b.get(l.callback); r.status != http.StatusOK {
		t.Fatalf("fabrikam's sign-in while contoso's identity provider hangs: %s", r)
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("contoso's discovery document was fetched %d times while one fetch hung, want 1", n)
	}

	releaseAll()
	if got := <-first; got != http.StatusServiceUnavailable {
		t.Errorf("the first sign-in at contoso, its identity provider down: %d, want 503", got)
	}
	if r := e.browser().get(contoso); r.status != http.StatusServiceUnavailable {
		t.Errorf("a sign-in at contoso after the failed fetch: %s", r)
	}
	if n := fetches.Load(); n != 2 {
		t.Errorf("contoso's discovery document was fetched %d times, want 2: a failed fetch is tried again", n)
	}
}
