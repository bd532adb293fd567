package e2e

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleLinkFromAnotherSiteInBrowser: a support manager follows a
// link to the console from another site (a chat, a ticket). The browser
// does not send the SameSite=Strict session cookie with that navigation,
// so the console can't see the session then; but it must not delete the
// cookie either: the manager stays signed in, in that tab and every other.
func TestConsoleLinkFromAnotherSiteInBrowser(t *testing.T) {
	path := chromium(t)
	w := startConsoleWorld(t)
	b := startBrowser(t, path, w.base)
	chat := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(rw, `<!doctype html><html lang="en"><title>Chat</title><a id="link" href="%s">the pending requests</a></html>`,
			html.EscapeString(w.base+"/console/requests"))
	}))
	t.Cleanup(chat.Close)
	// localhost, not the console's 127.0.0.1: another site.
	_, port, _ := strings.Cut(chat.URL, "127.0.0.1:")
	mary := users["manager"].Subject
	tb := b.newTab("mary")
	tb.signIn(mary)
	tb.load("open the chat", chromedp.Navigate("http://localhost:"+port+"/"))
	tb.load("follow the chat's link", chromedp.Click(chromedp.CSS("#link")))
	tb.open("/console/requests")
	if loc := tb.location(); loc != w.base+"/console/requests" {
		t.Fatalf("after a link from another site, the console's own page is at %s: the session was lost", loc)
	}
	tb.want(`[data-testid="user"]`, mary)
}
