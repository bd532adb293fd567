package e2e

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/lockbox-oss/lockbox/grants"
)

// staleShown is whether the requests page shows its note that the live
// list can't be refreshed.
const staleShown = `(document.querySelector('[data-testid="pending-stale"]')?.checkVisibility() === true)`

// How the browser answers the live list's polls in
// TestConsoleLiveListUnansweredInBrowser.
const (
	pollsPass      = iota // on to the server as the page sends them
	pollsRefused          // the connection is refused: a server down or restarting
	pollsBadCursor        // on to the server with a cursor it does not take
)

// TestConsoleLiveListUnansweredInBrowser is a support manager's open
// requests page whose live list stops getting its refreshes. While the
// server can't be reached, the page says the list can't be refreshed, and
// says so no more once the server answers again: a list that silently
// stopped refreshing looked current, with a request filed meanwhile
// missing from it and times left that no longer ran. And when the server
// refuses the page's place in the list (its cursor, as after an upgrade
// that changed the cursors' format), the list shows the refusal and the
// way back to the first page, as the page itself would: that answer was
// thrown away, and the list stayed as it was for good.
func TestConsoleLiveListUnansweredInBrowser(t *testing.T) {
	path := chromium(t)
	w := startConsoleWorld(t)
	b := startBrowser(t, path, w.base)
	// One engineer each: an engineer has one open request a service.
	file := func(who, sr string) grants.Request {
		t.Helper()
		r, err := w.srv.Requests.Create(t.Context(), grants.Actor{Principal: principal(users[who]), ClientIP: "127.0.0.1"}, grants.CreateInput{
			Tenant: "contoso", Service: "exchange", ServiceRequest: sr, Reason: "mail flow rule misfires", Duration: grants.Duration(time.Hour),
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	first := file("operator", "SR-7001")

	tb := b.newTab("mary")
	tb.signIn(users["manager"].Subject)
	// A hidden tab doesn't poll; the manager looks at this one.
	if _, err := chromedp.Call(tb.ctx, cdppage.BringToFront, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	tb.want(pendingRow(first.ID), "SR-7001")
	if evalIn[bool](tb, staleShown) {
		t.Fatalf("the list says it is out of date before any poll failed: %q", tb.text(`[data-testid="pending-stale"]`))
	}

	var polls atomic.Int32
	err := chromedp.Listen(tb.ctx, func(ev any) {
		e, ok := ev.(*fetch.EventRequestPaused)
		if !ok {
			return
		}
		// Not on the event loop: a command's answer comes through it.
		go func() {
			var err error
			switch polls.Load() {
			case pollsRefused:
				_, err = chromedp.Call(tb.ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: e.RequestID, ErrorReason: network.ErrorReasonConnectionRefused})
			case pollsBadCursor:
				_, err = chromedp.Call(tb.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: e.RequestID,
					URL: w.base + "/console/requests/pending?pending_cursor=x"})
			default:
				_, err = chromedp.Call(tb.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: e.RequestID})
			}
			if err != nil && tb.ctx.Err() == nil {
				t.Errorf("answer the poll %s: %v", e.Request.URL, err)
			}
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
	polls.Store(pollsRefused)
	if _, err := chromedp.Call(tb.ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*/console/requests/pending*"}}}); err != nil {
		t.Fatal(err)
	}

	// The server can't be reached: a request filed meanwhile can't show.
	second := file("operator2", "SR-7002")
	tb.waitFor("the note that the list is out of date", staleShown)
	tb.want(`[data-testid="pending-stale"]`, "can't be refreshed")
	if news := tb.text("#pending-news"); news != "The list can't be refreshed now." {
		t.Errorf("while the polls fail, the status line says %q", news)
	}
	tb.shot("requests-stale")
	tb.checkAccessible()

	// The server answers again: the list catches up, and the note goes.
	polls.Store(pollsPass)
	tb.waitFor("the request filed meanwhile", fmt.Sprintf(`document.querySelector(%q) !== null`, pendingRow(second.ID)))
	tb.waitFor("the note to go", "!"+staleShown)

	// The server refuses the page's cursor: the list says so, with the
	// way back to its first page.
	polls.Store(pollsBadCursor)
	tb.waitFor("the refusal of the list's cursor", `document.querySelector("#pending .problem") !== null`)
	tb.want("#pending .problem", "This link to more pending requests is not valid")
	if !tb.exists(`#pending a[href="/console/requests"]`) {
		t.Errorf("the refused list links to no first page: %q", tb.text("#pending"))
	}
	if evalIn[bool](tb, staleShown) {
		t.Errorf("a list the server answered says it can't be refreshed")
	}
}
