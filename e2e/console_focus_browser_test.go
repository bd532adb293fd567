package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/lockbox-oss/lockbox/grants"
)

// TestConsolePendingFocusInBrowser is a keyboard user on a row of the live
// pending list when that row leaves it (another approver decided the
// request): the focus goes to the row after it, else the one before it,
// else the list's message that nothing is waiting, never to the page's
// start.
func TestConsolePendingFocusInBrowser(t *testing.T) {
	path := chromium(t)
	w := startConsoleWorld(t)
	b := startBrowser(t, path, w.base)
	assignApprover(t, w)
	mgr := grants.Actor{Principal: principal(users["manager"]), ClientIP: "127.0.0.1"}
	// One request a service: an engineer has one open at a time for each.
	for i, svc := range []string{"exchange", "sharepoint", "onedrive"} {
		r, err := w.srv.Requests.Create(t.Context(), grants.Actor{Principal: principal(users["operator"]), ClientIP: "127.0.0.1"}, grants.CreateInput{
			Tenant: "contoso", Service: svc, ServiceRequest: fmt.Sprintf("SR-810%d", i), Reason: "mail flow rule misfires", Duration: grants.Duration(time.Hour),
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.srv.Requests.Act(t.Context(), r.ID, grants.ActionApprove, mgr, "checked"); err != nil {
			t.Fatal(err)
		}
	}

	tb := b.newTab("adam")
	cl := tb.watchConsole()
	tb.signIn(users["approver"].Subject)
	// A hidden tab doesn't poll; the approver looks at this one.
	if _, err := chromedp.Call(tb.ctx, cdppage.BringToFront, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	// The rows as the list orders them.
	ids := evalIn[[]string](tb, `Array.from(document.querySelectorAll("#pending tr[data-request]"), tr => tr.dataset.request)`)
	if len(ids) != 3 {
		t.Fatalf("the pending list shows %d requests, not 3: %q", len(ids), tb.text("#pending"))
	}
	admin := grants.Actor{Principal: principal(users["admin"]), ClientIP: "127.0.0.1"}
	// decide has the tenant's global admin deny id while the approver's
	// focus is on its row, and waits for the row to leave the list.
	decide := func(id string) {
		t.Helper()
		if _, err := w.srv.Requests.Act(t.Context(), id, grants.ActionDeny, admin, "not now"); err != nil {
			t.Fatal(err)
		}
		tb.waitFor("the decided request to leave the pending list", fmt.Sprintf(`document.querySelector(%q) === null`, pendingRow(id)))
	}
	focusedOn := func(css string) bool {
		t.Helper()
		return evalIn[bool](tb, fmt.Sprintf(`document.activeElement !== null && document.activeElement.matches(%q)`, css))
	}
	focused := func() string { return evalIn[string](tb, `document.activeElement.outerHTML.slice(0, 120)`) }

	tb.tabTo("the middle request's link", fmt.Sprintf(`el.matches(%q)`, pendingRow(ids[1])+" a"))
	decide(ids[1])
	if !focusedOn(pendingRow(ids[2]) + " a") {
		t.Fatalf("after the focused row left the list, the focus is on %s, not on the next row's link", focused())
	}
	if news := tb.text("#pending-news"); news != "1 request left the list" {
		t.Fatalf("after a row left the pending list, its status line says %q, not %q", news, "1 request left the list")
	}
	decide(ids[2])
	if !focusedOn(pendingRow(ids[0]) + " a") {
		t.Fatalf("after the focused last row left the list, the focus is on %s, not on the previous row's link", focused())
	}
	decide(ids[0])
	if !focusedOn("#pending .empty") {
		t.Fatalf("after the list's only row left it, the focus is on %s, not on the list's message", focused())
	}
	tb.want("#pending .empty", "Nothing is waiting.")
	cl.clean(tb, "the pending list emptied under the focus")
}
