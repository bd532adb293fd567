package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/tenants"
)

// draftKeysJS lists the keys of the tab's sessionStorage that hold drafts.
const draftKeysJS = `Object.keys(sessionStorage).filter(k => k.startsWith("lockbox-draft:"))`

// TestConsoleDraftOutlivesSessionInBrowser: an engineer writes a long
// justification in New request and leaves the tab until the session ended
// (idle: the clock moves, nobody sleeps). Submitting files nothing and
// goes through the sign-in back to the form, which is served empty, as
// the server carries nothing through the sign-in; the page's script puts
// back what was typed, from the tab's sessionStorage, and says so. Filed,
// the draft is gone. A global admin's comment on an Approve form is kept
// alike, but the approver who signs in next in the same tab is shown
// nothing of it, and it is no longer in the tab. No step trips the
// Content-Security-Policy or throws.
func TestConsoleDraftOutlivesSessionInBrowser(t *testing.T) {
	path := chromium(t)
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	w := startConsoleWorldAt(t, clk.Now)
	b := startBrowser(t, path, w.base)

	alice := users["operator"].Subject
	tb := b.newTab("alice")
	cl := tb.watchConsole()
	tb.signIn(alice)
	tb.open("/console/requests/new")
	reason := "The shared mailbox of the finance team lost its delegate permissions after Tuesday's migration;\n" +
		"the customer asks us to compare the mailbox's permission entries with the backup taken before it."
	tb.step("fill in the request",
		chromedp.SendKeys(chromedp.CSS("#tenant"), "contoso"),
		chromedp.SetValue(chromedp.CSS("#service"), "exchange"),
		chromedp.SendKeys(chromedp.CSS("#service_request"), "SR-9001"),
		chromedp.SendKeys(chromedp.CSS("#reason"), reason),
		chromedp.SetValue(chromedp.CSS("#duration"), "2h"),
		chromedp.Click(chromedp.CSS("#act-exchange-Get-Mailbox")),
	)
	// SetValue fires no event of its own; a user's choice does.
	tb.step("choose the duration", chromedp.Evaluate[chromedp.Void](`document.querySelector("#duration").dispatchEvent(new Event("change", {bubbles: true}))`))
	csrf := evalIn[string](tb, `document.querySelector('input[name="csrf_token"]').value`)
	formID := evalIn[string](tb, `document.querySelector('input[name="form_id"]').value`)
	cl.clean(tb, "New request, typed in")

	w.idleOut(clk)
	if status := tb.load("click File request after the session ended", chromedp.Click(chromedp.CSS(`[data-testid="submit"]`))); status != http.StatusOK {
		t.Fatalf("the form of the ended session: status %d; page says %q", status, tb.text("main"))
	}
	if loc := tb.location(); !strings.HasPrefix(loc, w.base+"/console/signin?") {
		t.Fatalf("the form of the ended session landed at %s; page says %q", loc, tb.text("main"))
	}
	tb.want(".problem", "was not sent")
	stored := evalIn[string](tb, `JSON.stringify(sessionStorage)`)
	for what, secret := range map[string]string{"form token": csrf, "form id": formID} {
		if strings.Contains(stored, secret) {
			t.Fatalf("the tab's sessionStorage holds the %s: %s", what, stored)
		}
	}
	if got := evalIn[int](tb, `localStorage.length`); got != 0 {
		t.Fatalf("the draft went to localStorage: %d items", got)
	}

	tb.follow(fmt.Sprintf(`[data-testid="dev-%s"]`, alice))
	if loc, want := tb.location(), w.base+"/console/requests/new?done=signed_in_again"; loc != want {
		t.Fatalf("after signing in again at %s; want %s", loc, want)
	}
	for css, want := range map[string]string{"#tenant": "contoso", "#service": "exchange", "#service_request": "SR-9001", "#reason": reason, "#duration": "2h"} {
		if got := evalIn[string](tb, fmt.Sprintf(`document.querySelector(%q).value`, css)); got != want {
			t.Errorf("after signing in again %s is %q; want %q", css, got, want)
		}
	}
	if !evalIn[bool](tb, `document.querySelector("#act-exchange-Get-Mailbox").checked`) {
		t.Error("after signing in again the activity ticked before is not ticked")
	}
	tb.want(`[data-testid="draft-note"]`, "Restored what you typed before your session ended")
	if !evalIn[bool](tb, `!document.querySelector('[data-testid="draft-note"]').hidden`) {
		t.Fatal("the note that the draft was restored is hidden")
	}
	tb.shot("draft-restored")
	cl.clean(tb, "New request, restored")
	if got := len(w.requestsOf(t, alice)); got != 0 {
		t.Fatalf("the form of the ended session filed %d requests", got)
	}

	if status := tb.load("click File request", chromedp.Click(chromedp.CSS(`[data-testid="submit"]`))); status != http.StatusOK {
		t.Fatalf("filing the restored form: status %d; page says %q", status, tb.text("main"))
	}
	tb.want(`[data-testid="flash"]`, "The request was filed")
	filed := w.requestsOf(t, alice)
	if len(filed) != 1 || filed[0].Reason != reason || filed[0].ServiceRequest != "SR-9001" || filed[0].Duration.Std() != 2*time.Hour ||
		len(filed[0].Activities) != 1 || !strings.HasSuffix(filed[0].Activities[0], "Get-Mailbox") {
		t.Fatalf("filed after the restore: %+v; want one request with the reason typed", filed)
	}
	if keys := evalIn[[]string](tb, draftKeysJS); len(keys) != 0 {
		t.Fatalf("the draft outlived its request's filing: %v", keys)
	}
	tb.open("/console/requests/new")
	if got := evalIn[string](tb, `document.querySelector("#reason").value`); got != "" || !evalIn[bool](tb, `document.querySelector('[data-testid="draft-note"]').hidden`) {
		t.Fatalf("New request after filing shows the reason %q and the note %q", got, tb.text(`[data-testid="draft-note"]`))
	}
	cl.clean(tb, "after filing")

	// A comment typed by gina, on a form whose session ended, is not
	// shown to adam, who signs in next in the same tab.
	req := filed[0]
	if _, err := w.srv.Requests.Act(t.Context(), req.ID, grants.ActionApprove, grants.Actor{Principal: principal(users["manager"]), ClientIP: "127.0.0.1"}, "checked"); err != nil {
		t.Fatal(err)
	}
	gina, adam := users["admin"].Subject, users["approver"].Subject
	if err := w.srv.Tenants.AddApprover(t.Context(), principal(users["admin"]), "127.0.0.1", "contoso", adam); err != nil {
		t.Fatal(err)
	}
	g := b.newTab("gina, then adam")
	gcl := g.watchConsole()
	g.signIn(gina)
	confirm := "/console/requests/" + req.ID + "/approve"
	g.open(confirm)
	g.step("write a comment", chromedp.SendKeys(chromedp.CSS("#comment"), "approved for the finance team's mailbox only"))
	w.idleOut(clk)
	if status := g.load("click Confirm after the session ended", chromedp.Click(chromedp.CSS(`[data-testid="confirm"]`))); status != http.StatusOK {
		t.Fatalf("the form of the ended session: status %d", status)
	}
	g.want(".problem", "was not sent")
	if keys := evalIn[[]string](g, draftKeysJS); len(keys) != 1 {
		t.Fatalf("gina's comment is not kept in her tab: %v", keys)
	}
	g.follow(fmt.Sprintf(`[data-testid="dev-%s"]`, adam))
	if loc, want := g.location(), w.base+confirm+"?done=signed_in_again"; loc != want {
		t.Fatalf("adam signed in at %s; want %s", loc, want)
	}
	g.want(`[data-testid="user"]`, adam)
	if got := evalIn[string](g, `document.querySelector("#comment").value`); got != "" {
		t.Fatalf("adam is shown gina's comment: %q", got)
	}
	if !evalIn[bool](g, `document.querySelector('[data-testid="draft-note"]').hidden`) {
		t.Fatalf("adam is shown a restored draft: %q", g.text(`[data-testid="draft-note"]`))
	}
	if keys := evalIn[[]string](g, draftKeysJS); len(keys) != 0 {
		t.Fatalf("gina's draft stays in the tab adam signed in to: %v", keys)
	}
	g.shot("draft-other-user")
	gcl.clean(g, "adam's Approve form")
}

// requestsOf are the requests subject filed.
func (w *consoleWorld) requestsOf(t *testing.T, subject string) []grants.Request {
	t.Helper()
	list, err := w.srv.Requests.List(t.Context(), principal(users["operator"]), grants.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var mine []grants.Request
	for _, r := range list {
		if r.Requester == subject {
			mine = append(mine, r)
		}
	}
	return mine
}

// TestConsoleSettingsDraftInBrowser: a global admin's settings change,
// typed before her session ended, is put back after she signs in again
// over the settings it was typed over, and saved. Typed over settings that
// another admin changed meanwhile, it is shown, not put back: saved, the
// form (whose revision is now the new one) would undo that change without
// the revision check noticing. Discarding it, or signing out, leaves no
// draft in the tab.
func TestConsoleSettingsDraftInBrowser(t *testing.T) {
	path := chromium(t)
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	w := startConsoleWorldAt(t, clk.Now)
	b := startBrowser(t, path, w.base)
	ctx := t.Context()
	gina := users["admin"].Subject
	settings := func() tenants.Settings {
		t.Helper()
		st, err := w.srv.Tenants.Settings(ctx, principal(users["admin"]), "contoso")
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	tb := b.newTab("gina")
	cl := tb.watchConsole()
	tb.signIn(gina)
	typeAddress := func(addr string) {
		t.Helper()
		tb.open("/console/settings")
		tb.step("type an address", chromedp.SendKeys(chromedp.CSS("#notification_addresses"), addr))
		w.idleOut(clk)
		if status := tb.load("click Save after the session ended", chromedp.Click(chromedp.CSS(`[data-testid="save"]`))); status != http.StatusOK {
			t.Fatalf("the form of the ended session: status %d", status)
		}
		tb.want(".problem", "was not sent")
		tb.follow(fmt.Sprintf(`[data-testid="dev-%s"]`, gina))
		if loc, want := tb.location(), w.base+"/console/settings?done=signed_in_again"; loc != want {
			t.Fatalf("after signing in again at %s; want %s", loc, want)
		}
	}

	typeAddress("secops@contoso.example")
	if got := evalIn[string](tb, `document.querySelector("#notification_addresses").value`); got != "secops@contoso.example" {
		t.Errorf("the address typed before the session ended: %q after signing in again", got)
	}
	tb.want(`[data-testid="draft-note"]`, "Restored what you typed before your session ended")
	tb.follow(`[data-testid="save"]`)
	tb.want(`[data-testid="flash"]`, "Settings saved")
	if got := settings().NotificationAddresses; len(got) != 1 || got[0] != "secops@contoso.example" {
		t.Fatalf("saved after the restore: %v", got)
	}
	if keys := evalIn[[]string](tb, draftKeysJS); len(keys) != 0 {
		t.Fatalf("the draft outlived the save: %v", keys)
	}

	// Another admin changes the settings while gina's session is over.
	tb.open("/console/settings")
	tb.step("type another address after the first",
		chromedp.Evaluate[chromedp.Void](`(el => { el.focus(); el.setSelectionRange(el.value.length, el.value.length) })(document.querySelector("#notification_addresses"))`),
		chromedp.SendKeys(chromedp.CSS("#notification_addresses"), "\nsoc@contoso.example"))
	w.idleOut(clk)
	other := settings()
	other.NotificationAddresses = []string{"it@contoso.example"}
	if _, err := w.srv.Tenants.PutSettings(ctx, principal(users["admin"]), "127.0.0.1", "contoso", other); err != nil {
		t.Fatal(err)
	}
	if status := tb.load("click Save after the session ended", chromedp.Click(chromedp.CSS(`[data-testid="save"]`))); status != http.StatusOK {
		t.Fatalf("the form of the ended session: status %d", status)
	}
	tb.follow(fmt.Sprintf(`[data-testid="dev-%s"]`, gina))
	if got := evalIn[string](tb, `document.querySelector("#notification_addresses").value`); got != "it@contoso.example" {
		t.Fatalf("over settings changed since, the form shows %q; want them as they are now", got)
	}
	tb.want(`[data-testid="draft-note"]`, "is not put back")
	if got, want := evalIn[string](tb, `document.querySelector("[data-draft-typed] dd").textContent`), "secops@contoso.example\nsoc@contoso.example"; got != want {
		t.Fatalf("the note shows %q typed; want %q", got, want)
	}
	tb.shot("draft-settings-changed")
	tb.step("discard it", chromedp.Click(chromedp.CSS(`[data-testid="draft-discard"]`)))
	if !evalIn[bool](tb, `document.querySelector('[data-testid="draft-note"]').hidden`) {
		t.Fatal("the note stays after discarding the draft")
	}
	if keys := evalIn[[]string](tb, draftKeysJS); len(keys) != 0 {
		t.Fatalf("a discarded draft stays in the tab: %v", keys)
	}
	if got := settings().NotificationAddresses; len(got) != 1 || got[0] != "it@contoso.example" {
		t.Fatalf("the other admin's change was undone: %v", got)
	}

	// Saved over settings changed meanwhile, within the session, the
	// form is refused as stale and the page shows the change typed: the
	// draft does not show it a second time.
	tb.open("/console/settings")
	tb.step("type an address", chromedp.SendKeys(chromedp.CSS("#notification_addresses"), "noc@contoso.example\n"))
	other = settings()
	other.NotificationAddresses = []string{"help@contoso.example"}
	if _, err := w.srv.Tenants.PutSettings(ctx, principal(users["admin"]), "127.0.0.1", "contoso", other); err != nil {
		t.Fatal(err)
	}
	cl.expect(w.base + "/console/settings")
	if status := tb.load("click Save over settings changed since", chromedp.Click(chromedp.CSS(`[data-testid="save"]`))); status != http.StatusPreconditionFailed {
		t.Fatalf("a stale save: status %d; page says %q", status, tb.text("main"))
	}
	tb.want(`[data-testid="unsaved"]`, "noc@contoso.example")
	if !evalIn[bool](tb, `document.querySelector('[data-testid="draft-note"]').hidden`) {
		t.Fatalf("the change typed is shown twice: %q", tb.text(`[data-testid="draft-note"]`))
	}
	cl.clean(tb, "a stale save")

	// Signing out leaves nothing typed in the tab.
	tb.open("/console/settings")
	tb.step("type an address", chromedp.SendKeys(chromedp.CSS("#notification_addresses"), "\nleft@contoso.example"))
	if keys := evalIn[[]string](tb, draftKeysJS); len(keys) != 1 {
		t.Fatalf("what gina typed is not kept: %v", keys)
	}
	tb.load("sign out", chromedp.Click(chromedp.CSS(`form[action="/console/signout"] button`)))
	if keys := evalIn[[]string](tb, draftKeysJS); len(keys) != 0 {
		t.Fatalf("a draft outlived signing out: %v", keys)
	}
	cl.clean(tb, "the settings")
}

// idleOut moves clk past the sessions' idle timeout.
func (w *consoleWorld) idleOut(clk *clock.Fake) {
	clk.Advance(w.idle + time.Second)
}
