package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/lockbox-oss/lockbox/grants"
)

// TestConsoleSignedOutInAnotherTabInBrowser: a global admin has a request's
// Approve form open with a comment typed, and signs out in another tab of
// the same browser. Confirming the form then sends nothing: the sign-in
// page says the form was not sent, the sign-in goes back to the form,
// which asks for it again, and neither the sign-in nor a reload of the
// page it lands on approves anything.
func TestConsoleSignedOutInAnotherTabInBrowser(t *testing.T) {
	path := chromium(t)
	w := startConsoleWorld(t)
	b := startBrowser(t, path, w.base)
	req, err := w.srv.Requests.Create(t.Context(), grants.Actor{Principal: principal(users["operator"]), ClientIP: "127.0.0.1"}, grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-7001", Reason: "shared mailbox lost its permissions", Duration: grants.Duration(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.srv.Requests.Act(t.Context(), req.ID, grants.ActionApprove, grants.Actor{Principal: principal(users["manager"]), ClientIP: "127.0.0.1"}, "checked"); err != nil {
		t.Fatal(err)
	}
	state := func() grants.State {
		t.Helper()
		r, err := w.srv.Requests.Get(t.Context(), principal(users["manager"]), req.ID)
		if err != nil {
			t.Fatal(err)
		}
		return r.State
	}
	gina := users["admin"].Subject
	confirm := "/console/requests/" + req.ID + "/approve"

	one := b.newTab("gina")
	one.signIn(gina)
	one.open(confirm)
	one.step("write a comment", chromedp.SendKeys(chromedp.CSS("#comment"), "fine by me"))

	// Another tab of the same browser: the same cookies.
	ctx, cancel := chromedp.NewContext(one.ctx)
	t.Cleanup(cancel)
	two := &tab{t: t, b: b, ctx: ctx, who: "gina's other tab"}
	front(two)
	two.open("/console/requests")
	two.step("click Sign out", chromedp.Click(chromedp.CSS(`form[action="/console/signout"] button`)))
	two.waitFor("the sign-in page", `location.pathname === "/console/signin"`)
	front(one)

	if status := one.load("click Confirm", chromedp.Click(chromedp.CSS(`[data-testid="confirm"]`))); status != http.StatusOK {
		t.Fatalf("the form of the ended session: status %d; page says %q", status, one.text("main"))
	}
	if loc := one.location(); !strings.HasPrefix(loc, w.base+"/console/signin?") {
		t.Fatalf("the form of the ended session landed at %s; page says %q", loc, one.text("main"))
	}
	one.want(".problem", "what you submitted was not sent")
	one.shot("signin-again-not-sent")
	if got := state(); got != grants.StatePendingCustomer {
		t.Fatalf("the form of the ended session was acted on: the request is %s", got)
	}

	one.follow(fmt.Sprintf(`[data-testid="dev-%s"]`, gina))
	if loc, want := one.location(), w.base+confirm+"?done=signed_in_again"; loc != want {
		t.Fatalf("after signing in again at %s; want %s", loc, want)
	}
	one.want(`[data-testid="flash"]`, "was not sent")
	if !one.exists(`[data-testid="confirm"]`) {
		t.Fatalf("the page signed in again to has no Confirm button: %q", one.text("main"))
	}
	one.shot("signin-again-back")
	if status := one.load("reload", chromedp.Reload()); status != http.StatusOK {
		t.Fatalf("reload: status %d", status)
	}
	if got := state(); got != grants.StatePendingCustomer {
		t.Fatalf("signing in again or reloading acted on the form: the request is %s", got)
	}
}

// front brings tb's page to the front, as the user does by switching to
// its tab: a page in the background is not drawn, and a click on it would
// wait for it.
func front(tb *tab) {
	tb.t.Helper()
	if _, err := chromedp.Call(tb.ctx, cdppage.BringToFront, cdp.Empty{}); err != nil {
		tb.t.Fatalf("%s: bring to front: %v", tb.who, err)
	}
}
