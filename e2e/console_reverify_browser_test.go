package e2e

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// pageRecord is what a tab went through that its page does not keep: every
// document it asked for, each hop of a redirect chain included, and what
// the browser logged of Content-Security-Policy violations.
type pageRecord struct {
	mu   sync.Mutex
	docs []*url.URL
	csp  []string
}

// record starts recording tb's documents and CSP violations. Any violation
// fails the test, even one that failed it already in another way (a form
// whose redirect the page's form-action refused goes nowhere).
func (tb *tab) record() *pageRecord {
	tb.t.Helper()
	rec := &pageRecord{}
	tb.t.Cleanup(func() {
		if v := rec.violations(); len(v) > 0 {
			tb.t.Errorf("%s: the browser reported Content-Security-Policy violations:\n  %s", tb.who, strings.Join(v, "\n  "))
		}
	})
	err := chromedp.Listen(tb.ctx, func(ev any) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			if u, err := url.Parse(ev.Request.URL); err == nil && ev.Type == network.ResourceTypeDocument {
				rec.docs = append(rec.docs, u)
			}
		case *cdplog.EventEntryAdded:
			if strings.Contains(ev.Entry.Text, "Content Security Policy") {
				rec.csp = append(rec.csp, ev.Entry.Text)
			}
		}
	})
	if err != nil {
		tb.t.Fatalf("%s: listen to the page: %v", tb.who, err)
	}
	if _, err := chromedp.Call(tb.ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		tb.t.Fatalf("%s: enable the browser's log: %v", tb.who, err)
	}
	return rec
}

// since returns the documents asked for since the last call.
func (rec *pageRecord) since() []*url.URL {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	d := rec.docs
	rec.docs = nil
	return d
}

// violations are the CSP violations the browser logged.
func (rec *pageRecord) violations() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.csp...)
}

// throughIdP fails unless docs went to the identity provider's
// authorization endpoint with prompt=none, and came back from it to the
// console's sign-in callback.
func throughIdP(t *testing.T, what string, p *oidctest.Provider, base string, docs []*url.URL) {
	t.Helper()
	auth, back := -1, -1
	for i, d := range docs {
		switch {
		case auth < 0 && d.Scheme+"://"+d.Host+d.Path == p.AuthorizationEndpoint() && d.Query().Get("prompt") == "none":
			auth = i
		case auth >= 0 && strings.HasPrefix(d.String(), base+"/console/oidc/callback/"):
			back = i
		}
	}
	if auth < 0 || back < 0 {
		var list []string
		for _, d := range docs {
			list = append(list, d.String())
		}
		t.Fatalf("%s: the browser did not go through the identity provider's sign-in with prompt=none and back; it went to:\n  %s",
			what, strings.Join(list, "\n  "))
	}
}

// TestConsoleSilentReverifyInBrowser: in a real browser, a session whose
// sign-in brought no refresh token is verified again, when due, by the
// identity provider's sign-in without a page (prompt=none). The open
// requests page's live list notices and the page comes back to itself,
// still signed in, without its user doing anything; a form posted once the
// user's role is gone at the identity provider is not acted on, and the
// browser comes back to the page it was on, which says to send it again
// and no longer offers it (a role that reads requests is left her, so the
// page is there to come back to); a user whose session at the identity provider ended is signed out at the
// next page. No step trips the pages' Content-Security-Policy.
//
// The console is reached as localhost and the identity provider at
// 127.0.0.1: two sites, as in a deployment, so the session cookie
// (SameSite=Strict) stays off the identity provider's redirects.
func TestConsoleSilentReverifyInBrowser(t *testing.T) {
	path := chromium(t)
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	const every = 5 * time.Minute
	w, p := startIssuersConsoleWith(t, issuersConsole{now: clk.Now, host: "localhost", refresh: consoleRefresh,
		env: map[string]string{"LOCKBOX_CONSOLE_REVERIFY": every.String()}},
		func(name string, c *oidctest.Config) { c.NoOfflineAccess = name == "provider" })
	b := startBrowser(t, path, w.base)
	ctx := context.Background()
	const mary = "mary@provider.example"

	req, err := w.srv.Requests.Create(ctx, grants.Actor{Principal: principal(users["operator"]), ClientIP: "127.0.0.1"}, grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-3003", Reason: "shared mailbox lost its permissions", Duration: grants.Duration(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	pending := func(when string) {
		t.Helper()
		if r, err := w.srv.Requests.Get(ctx, principal(users["operator"]), req.ID); err != nil || r.State != grants.StatePendingManager {
			t.Fatalf("%s, the request in the store: %+v %v", when, r, err)
		}
	}

	// The support manager signs in; her identity provider issues no
	// refresh token.
	tb := b.newTab("mary")
	rec := tb.record()
	tb.open("/console/signin")
	p.provider.QueueUser(oidctest.User{Subject: mary, Claims: map[string]any{"name": "Mary Manager", "roles": []string{"support-manager"}}})
	tb.signInThrough("sign in as staff", "Mary Manager", chromedp.Click(chromedp.CSS(`[data-testid="signin-oidc"]`)))
	tb.want(pendingRow(req.ID), "SR-3003", "Your decision")
	// A hidden tab doesn't poll; she looks at this one.
	if _, err := chromedp.Call(tb.ctx, cdppage.BringToFront, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}

	// (a) Once due, the page's live list gets 401, and the page reloads
	// through the identity provider back to itself.
	tb.step("mark the page", chromedp.Evaluate[chromedp.Void](`window.__beforeReverify = true`))
	rec.since()
	clk.Advance(every)
	tb.waitFor("the requests page after the identity provider",
		fmt.Sprintf(`window.__beforeReverify !== true && location.href === %q`, w.base+"/console/requests"))
	throughIdP(t, "the live list's reload", p.provider, w.base, rec.since())
	tb.checkAccessible()
	tb.signedIn("Mary Manager")
	tb.want(pendingRow(req.ID), "SR-3003", "Your decision")
	tb.shot("reverified-requests")

	// (b) Her role is taken away at the identity provider while she is on
	// the Approve form. Once due, her click on Confirm is not acted on:
	// the browser goes through the identity provider (the page's
	// form-action lets the redirect through) and back to the form's page,
	// which says her sign-in was confirmed and nothing was sent, and no
	// longer offers it to her.
	tb.follow(pendingRow(req.ID) + " a")
	tb.follow(`[data-testid="action-approve"]`)
	tb.want("h1", "Approve: request SR-3003")
	form := tb.location()
	p.provider.UpdateUser(mary, oidctest.User{Subject: mary, Claims: map[string]any{"name": "Mary Manager", "roles": []string{"audit-reader"}}})
	clk.Advance(every)
	rec.since()
	tb.step("mark the form's page", chromedp.Evaluate[chromedp.Void](`window.__beforeReverify = true`))
	tb.step("click Confirm: Approve", chromedp.Click(chromedp.CSS(`[data-testid="confirm"]`)))
	tb.waitFor("the Approve form's page after the identity provider",
		fmt.Sprintf(`window.__beforeReverify !== true && location.href === %q`, form+"?done=resubmit"))
	throughIdP(t, "the form's post", p.provider, w.base, rec.since())
	tb.checkAccessible()
	tb.shot("reverified-form")
	if tb.exists(`[data-testid="confirm"]`) || tb.exists(`form[action$="/approve"]`) {
		t.Fatalf("after her role was taken away, %s still offers to approve: %q", form, tb.text("main"))
	}
	tb.want(`[data-testid="flash"]`, "Your sign-in was confirmed", "submit it again")
	tb.want(`[data-testid="problem"]`, "Approve is not open to you on this request now")
	tb.want(`[data-testid="user"]`, "Mary Manager")
	tb.want(".who", "Audit reader")
	pending("after the post of a session due to be verified again")

	// (c) Her session at the identity provider ends: the next page she
	// opens ends hers here, and she lands on the sign-in page.
	p.provider.EndUserSession(mary)
	clk.Advance(every)
	rec.since()
	tb.step("open the requests page", chromedp.Navigate(w.base+"/console/requests"))
	tb.waitFor("the sign-in page", fmt.Sprintf(`location.href === %q`, w.base+"/console/signin"))
	throughIdP(t, "the page after her session at the identity provider ended", p.provider, w.base, rec.since())
	tb.want("h1", "Sign in")
	tb.checkAccessible()
	tb.shot("reverify-signed-out")
	tb.open("/console/requests")
	if loc := tb.location(); loc != w.base+"/console/signin" {
		t.Fatalf("a page after the identity provider ended her session: at %s", loc)
	}
	pending("at the end")
}
