package login

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/internal/httptimeouts"
	"github.com/lockbox-oss/lockbox/internal/oidctest"
	"github.com/lockbox-oss/lockbox/internal/stalltest"
)

// target is what the stalled clients ask for: another flow's redirect
// (its state is not this one's), which ends nothing.
const target = "/callback?state=other"

// browserFlow is a Browser sign-in under way at an oidctest provider
// that signs alice in.
type browserFlow struct {
	authURL  string        // what the user is told to open
	redirect string        // host:port of the loopback redirect server
	done     chan struct{} // closed when Browser returned tok and err
	tok      Token
	err      error
}

// startBrowser starts a Browser flow whose redirect server has the
// timeouts rt, and returns once the flow told the user where to go. The
// flow is canceled, and waited for, when the test ends.
func startBrowser(t *testing.T, rt redirectTimeouts) *browserFlow {
	t.Helper()
	p := oidctest.Start(t, oidctest.Config{PublicClientID: "cli", NoDeviceFlow: true})
	p.QueueUser(oidctest.User{Subject: "alice"})
	iss, err := Discover(context.Background(), nil, p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	prompts := make(chan Prompt, 1)
	f := &Flow{Issuer: iss, ClientID: "cli", Tell: func(pr Prompt) { prompts <- pr }, redirectTimeouts: rt}
	ctx, cancel := context.WithCancel(context.Background())
	b := &browserFlow{done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.tok, b.err = f.Browser(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-b.done:
		case <-time.After(stalltest.Patience):
			t.Error("the flow did not end after its context")
		}
	})
	var pr Prompt
	select {
	case pr = <-prompts:
	case <-b.done:
		t.Fatalf("the flow ended before telling the user anything: %v", b.err)
	case <-time.After(stalltest.Patience):
		t.Fatal("the flow told the user nothing")
	}
	u, err := url.Parse(pr.URL)
	if err != nil {
		t.Fatal(err)
	}
	redirect, err := url.Parse(u.Query().Get("redirect_uri"))
	if err != nil {
		t.Fatal(err)
	}
	b.authURL, b.redirect = pr.URL, redirect.Host
	return b
}

// signIn is the browser: it opens the sign-in URL with hc, which the
// provider redirects to the loopback server, and checks the page it gets.
func (b *browserFlow) signIn(t *testing.T, hc *http.Client) {
	t.Helper()
	resp, err := hc.Get(b.authURL)
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Signed in") {
		t.Fatalf("the browser's page: %d %q %v", resp.StatusCode, page, err)
	}
}

// result waits for the flow's end and wants alice's token.
func (b *browserFlow) result(t *testing.T) {
	t.Helper()
	select {
	case <-b.done:
		if b.err != nil || b.tok.AccessToken == "" {
			t.Fatalf("Browser: %+v, %v", b.tok, b.err)
		}
	case <-time.After(stalltest.Patience):
		t.Fatal("the flow did not end after the redirect")
	}
}

// browserClient is a browser's HTTP client: it keeps its connections
// alive.
func browserClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: stalltest.Patience}
}

// TestRedirectServerClosesStalledConnections: while the user signs in,
// the loopback server drops a connection that stalls, where it used to
// have a header timeout only and kept a connection whose request body
// never came, or a kept-alive connection, for as long as the client
// liked. Each case shortens only the timeout of the phase it stalls in.
func TestRedirectServerClosesStalledConnections(t *testing.T) {
	const short, long = 200 * time.Millisecond, time.Hour
	for _, c := range stalltest.Stalls {
		rt := redirectTimeouts{Timeouts: c.Phase.Timeouts(short, long)}
		t.Run(c.Name, func(t *testing.T) {
			b := startBrowser(t, rt)
			stalltest.WaitClosed(t, c.Open(t, b.redirect, target), c.Name)
			select {
			case <-b.done:
				t.Fatalf("the stalled connection ended the flow: %v", b.err)
			default: // still waiting for its redirect
			}
		})
	}
}

// TestBrowserEndsDespiteStalledConnections: with stalled connections
// open, the sign-in still comes back; the flow then ends after its grace
// for answers still being written (the default, so that a loaded machine
// still writes the browser's page within it), and the connections still
// open are closed, where they used to outlive the flow until (if ever) a
// timeout of theirs passed. The timeouts here are too long to close
// anything during the test.
func TestBrowserEndsDespiteStalledConnections(t *testing.T) {
	const long = time.Hour
	b := startBrowser(t, redirectTimeouts{Timeouts: httptimeouts.Timeouts{ReadHeader: long, Read: long, Write: long, Idle: long}})
	// "nothing sent" is also what a browser's spare connection does.
	stalled := map[string]net.Conn{}
	for _, c := range stalltest.Stalls {
		stalled[c.Name] = c.Open(t, b.redirect, target)
	}
	b.signIn(t, browserClient(t))
	b.result(t)
	for what, c := range stalled {
		stalltest.WaitClosed(t, c, what)
	}
}

// TestBrowserEndsWithBrowserKeepingAlive: a browser that keeps its
// connection alive after the redirect does not hold the flow up: the
// shutdown closes idle connections at once, not after its grace. Grace
// and timeouts here are longer than stalltest.Patience.
func TestBrowserEndsWithBrowserKeepingAlive(t *testing.T) {
	const long = time.Hour
	b := startBrowser(t, redirectTimeouts{Timeouts: httptimeouts.Timeouts{ReadHeader: long, Read: long, Write: long, Idle: long}, shutdown: long})
	b.signIn(t, browserClient(t))
	b.result(t)
}

// TestRedirectServerDefaultTimeouts: the server Browser builds without
// injected timeouts bounds every phase of a connection, and the flow's
// shutdown.
func TestRedirectServerDefaultTimeouts(t *testing.T) {
	rt := redirectTimeouts{}.orDefaults()
	srv := rt.Server(http.NotFoundHandler())
	for name, d := range map[string]time.Duration{
		"ReadHeaderTimeout": srv.ReadHeaderTimeout, "ReadTimeout": srv.ReadTimeout,
		"WriteTimeout": srv.WriteTimeout, "IdleTimeout": srv.IdleTimeout, "shutdown grace": rt.shutdown,
	} {
		if d <= 0 || d > time.Minute {
			t.Errorf("%s = %s, want a bound of seconds", name, d)
		}
	}
}
