package e2e

// What the admin center owes the users of a regulated enterprise beyond
// working: WCAG 2.1 AA essentials on every page, for every role, checked
// in the browser from the page the user gets; a browser console free of
// script errors and Content-Security-Policy violations; the approver's
// flow with the keyboard alone; and pages that work without JavaScript.

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/lockbox-oss/lockbox/grants"
)

// wcagJS lists what the page misses of WCAG 2.1 AA's essentials that
// accessibilityJS does not check: landmarks, headings in order, table
// headers with a scope, a title naming the page as its heading does, a
// live list that is no live region but names a status line saying what
// changed, and an error about a form's only field tied to it.
const wcagJS = `(() => {
  const problems = [];
  const text = (e) => (e?.textContent ?? "").replace(/\s+/g, " ").trim();
  if (document.querySelectorAll("main").length !== 1) problems.push(document.querySelectorAll("main").length + " main landmarks");
  if (document.querySelector("body > header") === null) problems.push("no banner (header)");
  if (document.querySelector(".who") !== null && document.querySelector("nav[aria-label]") === null) problems.push("signed in, but no labelled navigation");
  let last = 0;
  for (const h of document.querySelectorAll("h1, h2, h3, h4, h5, h6")) {
    const n = Number(h.tagName[1]);
    if (last === 0 && n !== 1) problems.push("first heading is " + h.tagName + ": " + text(h));
    if (last !== 0 && n > last + 1) problems.push("heading skips from h" + last + " to " + h.tagName + ": " + text(h));
    last = n;
  }
  for (const t of document.querySelectorAll("table")) {
    if (t.querySelector("th") === null) problems.push("table without headers: #" + t.id);
    for (const th of t.querySelectorAll("th")) {
      if (!["col", "row", "colgroup", "rowgroup"].includes(th.getAttribute("scope"))) problems.push("th without scope: " + th.outerHTML);
    }
  }
  const want = text(document.querySelector("h1")) + " · Lockbox admin center";
  // The title isolates the page's part (FSI … PDI), marks nobody sees.
  if (document.title.replace(/[\u2066-\u2069]/g, "") !== want) problems.push("title " + JSON.stringify(document.title) + " does not name the page: want " + JSON.stringify(want));
  for (const live of document.querySelectorAll("[data-refresh]")) {
    const region = live.closest("[aria-live]:not([aria-live=off]), [role=status], [role=log], [role=alert]");
    if (region !== null) problems.push("live list #" + live.id + " is in the live region #" + region.id + ": each refresh reads all of it again");
    if (document.getElementById(live.dataset.status ?? "")?.getAttribute("role") !== "status") problems.push("live list #" + live.id + " names no status line (data-status)");
  }
  for (const p of document.querySelectorAll(".problem")) {
    for (const form of p.parentElement.querySelectorAll("form")) {
      const fields = Array.from(form.querySelectorAll("input, select, textarea")).filter(el => el.type !== "hidden" && el.type !== "checkbox");
      if (fields.length !== 1) continue;
      const f = fields[0];
      const by = (f.getAttribute("aria-describedby") ?? "").split(/\s+/);
      if (p.id === "" || !by.includes(p.id)) problems.push("the error " + JSON.stringify(text(p)) + " is not tied to #" + f.id + " (aria-describedby)");
      if (f.getAttribute("aria-invalid") !== "true") problems.push("#" + f.id + " is not marked aria-invalid beside its error");
    }
  }
  return problems;
})()`

// focusJS focuses every control of the page as the keyboard does (the
// caller pressed Tab first, so focus is visible) and lists those whose
// focus outline is missing, thin, or under 3:1 against what surrounds it
// (WCAG 1.4.11).
const focusJS = `(() => {
  const problems = [];
  const rgba = (c) => { const m = c.match(/[\d.]+/g).map(Number); return {rgb: m.slice(0, 3), a: m.length > 3 ? m[3] : 1}; };
  const lum = (c) => { const [r, g, b] = rgba(c).rgb.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const bg = (el) => { for (let e = el; e; e = e.parentElement) { const c = getComputedStyle(e).backgroundColor; if (rgba(c).a > 0) return c; } return "rgb(255, 255, 255)"; };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + " " + JSON.stringify((el.textContent || el.getAttribute("aria-label") || el.name || "").replace(/\s+/g, " ").trim().slice(0, 40));
  for (const el of document.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea")) {
    if (el.closest("[hidden]") !== null) continue;
    el.focus();
    if (document.activeElement !== el) { problems.push("can't take the focus: " + name(el)); continue; }
    if (!el.matches(":focus-visible")) { problems.push("focus is not visible-focus: " + name(el)); continue; }
    const s = getComputedStyle(el);
    if (s.outlineStyle === "none" || parseFloat(s.outlineWidth) < 2) { problems.push("no focus outline: " + name(el)); continue; }
    const around = parseFloat(s.outlineOffset) < 0 ? bg(el) : bg(el.parentElement);
    const a = lum(s.outlineColor), b = lum(around);
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 3) problems.push("focus outline " + s.outlineColor + " on " + around + " is " + ratio.toFixed(2) + ":1: " + name(el));
  }
  document.activeElement.blur();
  return problems;
})()`

// consoleLog collects what the browser's console shows of a tab's pages:
// uncaught exceptions, console.error calls, and error entries of the
// browser's own log (CSP violations, failed loads).
type consoleLog struct {
	mu      sync.Mutex
	page    string // the URL of the page a 4xx status is expected of
	entries []string
}

// expect says the next page, at url, is answered with an error status.
func (cl *consoleLog) expect(url string) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.page = url
}

func (tb *tab) watchConsole() *consoleLog {
	tb.t.Helper()
	cl := &consoleLog{}
	err := chromedp.Listen(tb.ctx, func(ev any) {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			cl.entries = append(cl.entries, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, msg))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				cl.entries = append(cl.entries, "console."+string(ev.Type)+": "+strings.Join(args, " "))
			}
		case *cdplog.EventEntryAdded:
			// A page answered 404 or 400 is logged as a failed load: the
			// status is the page's own, which the test checks.
			if ev.Entry.Source == cdplog.EntrySourceNetwork && ev.Entry.URL == cl.page {
				return
			}
			if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Level == cdplog.EntryLevelWarning || strings.Contains(ev.Entry.Text, "Content Security Policy") {
				cl.entries = append(cl.entries, fmt.Sprintf("log %s %s at %s: %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.URL, ev.Entry.Text))
			}
		}
	})
	if err != nil {
		tb.t.Fatalf("%s: listen to the console: %v", tb.who, err)
	}
	return cl
}

// clean fails the test with what the console showed since the last call.
func (cl *consoleLog) clean(tb *tab, where string) {
	tb.t.Helper()
	cl.mu.Lock()
	got := cl.entries
	cl.entries = nil
	cl.mu.Unlock()
	if len(got) > 0 {
		tb.t.Errorf("%s: the browser console on %s:\n  %s", tb.who, where, strings.Join(got, "\n  "))
	}
}

// checkWCAG runs wcagJS and focusJS on the page tb shows.
func (tb *tab) checkWCAG() {
	tb.t.Helper()
	tb.checkAccessible()
	if problems := evalIn[[]string](tb, wcagJS); len(problems) > 0 {
		tb.t.Errorf("%s at %s: WCAG:\n  %s", tb.who, tb.location(), strings.Join(problems, "\n  "))
	}
	// One Tab press puts the page in keyboard mode: the focus script moves
	// on it is then shown as the keyboard's.
	tb.step("press Tab", chromedp.KeyEvent(kb.Tab))
	if problems := evalIn[[]string](tb, focusJS); len(problems) > 0 {
		tb.t.Errorf("%s at %s: keyboard focus:\n  %s", tb.who, tb.location(), strings.Join(problems, "\n  "))
	}
}

// assignApprover makes adam an assigned approver of contoso, as its
// global admin does.
func assignApprover(t *testing.T, w *consoleWorld) {
	t.Helper()
	if err := w.srv.Tenants.AddApprover(t.Context(), principal(users["admin"]), "127.0.0.1", "contoso", users["approver"].Subject); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleAccessibleInBrowser walks every admin center page for the
// provider's engineer and manager, a tenant's global administrator and its
// assigned approver, and checks each against WCAG 2.1 AA's essentials and
// the browser console.
func TestConsoleAccessibleInBrowser(t *testing.T) {
	path := chromium(t)
	w := startConsoleWorld(t)
	b := startBrowser(t, path, w.base)
	assignApprover(t, w)
	req, err := w.srv.Requests.Create(t.Context(), grants.Actor{Principal: principal(users["operator"]), ClientIP: "127.0.0.1"}, grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-4004", Reason: "the user's archive won't expand", Duration: grants.Duration(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string][]string{
		"operator": {"/console/requests", "/console/requests/new", "/console/requests/" + req.ID, "/console/requests/" + req.ID + "/cancel", "/console/tenants", "/console/tenants/contoso"},
		"manager":  {"/console/requests", "/console/requests/" + req.ID, "/console/requests/" + req.ID + "/approve", "/console/tenants"},
		"admin":    {"/console/requests", "/console/requests/" + req.ID, "/console/approvers", "/console/settings", "/console/audit?verify=1"},
		"approver": {"/console/requests", "/console/requests/" + req.ID, "/console/settings"},
	}
	for _, role := range []string{"operator", "manager", "admin", "approver"} {
		tb := b.newTab(role)
		cl := tb.watchConsole()
		tb.open("/console/signin")
		tb.checkWCAG()
		cl.clean(tb, "/console/signin")
		tb.signIn(users[role].Subject)
		for _, p := range pages[role] {
			tb.open(p)
			tb.checkWCAG()
			cl.clean(tb, p)
		}
		// A page that isn't there, and a form's error.
		missing := w.base + "/console/requests/01a20882-0000-7000-8000-000000000000"
		cl.expect(missing)
		if status := tb.load("open a missing request", chromedp.Navigate(missing)); status != http.StatusNotFound {
			t.Fatalf("%s: a missing request: status %d", role, status)
		}
		tb.checkWCAG()
		cl.clean(tb, "a missing request")
		if role == "admin" {
			tb.open("/console/approvers")
			cl.expect(w.base + "/console/approvers")
			tb.step("name a user of another organization", chromedp.SendKeys(chromedp.CSS("#user"), "eve@elsewhere.example"))
			if status := tb.load("add the approver", chromedp.Click(chromedp.CSS(`[data-testid="add-approver"]`))); status != http.StatusBadRequest {
				t.Fatalf("adding an approver of another organization: status %d; page says %q", status, tb.text("main"))
			}
			tb.want(".problem", "elsewhere.example")
			tb.checkWCAG()
			cl.clean(tb, "the approvers form's error")
		}
		if role == "manager" {
			// The box stops typing at its length; a pasted or scripted
			// value still goes, and the server refuses it.
			confirm := w.base + "/console/requests/" + req.ID + "/approve"
			tb.open("/console/requests/" + req.ID + "/approve")
			cl.expect(confirm)
			tb.step("a comment over the limit", chromedp.Evaluate[chromedp.Void](`document.querySelector("#comment").value = "x".repeat(1001)`))
			if status := tb.load("confirm", chromedp.Click(chromedp.CSS(`[data-testid="confirm"]`))); status != http.StatusBadRequest {
				t.Fatalf("a comment of 1001 characters: status %d; page says %q", status, tb.text("main"))
			}
			tb.want(`[data-testid="problem"]`, "comment")
			tb.checkWCAG()
			cl.clean(tb, "the approve form's error")
		}
	}
}

// TestConsoleApproveByKeyboardInBrowser is the approver's flow with the
// keyboard alone: sign in, open the pending request from the list,
// approve it with a reason, read the result. While the approver's focus is
// in the live list, a change to the list keeps it where it was.
func TestConsoleApproveByKeyboardInBrowser(t *testing.T) {
	path := chromium(t)
	w := startConsoleWorld(t)
	b := startBrowser(t, path, w.base)
	mgr := principal(users["manager"])
	file := func(engineer, sr string) grants.Request {
		t.Helper()
		r, err := w.srv.Requests.Create(t.Context(), grants.Actor{Principal: principal(users[engineer]), ClientIP: "127.0.0.1"}, grants.CreateInput{
			Tenant: "contoso", Service: "exchange", ServiceRequest: sr, Reason: "mail flow rule misfires", Duration: grants.Duration(time.Hour),
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.srv.Requests.Act(t.Context(), r.ID, grants.ActionApprove, grants.Actor{Principal: mgr, ClientIP: "127.0.0.1"}, "checked"); err != nil {
			t.Fatal(err)
		}
		return r
	}
	assignApprover(t, w)
	first := file("operator", "SR-5005")

	adam := users["approver"].Subject
	tb := b.newTab("adam")
	cl := tb.watchConsole()
	tb.open("/console/signin")
	tb.tabTo("adam's sign-in button", fmt.Sprintf(`el.dataset.testid === "dev-%s"`, adam))
	if status := tb.load("press Enter on adam's sign-in button", chromedp.KeyEvent(kb.Enter)); status != http.StatusOK {
		t.Fatalf("keyboard sign-in: status %d", status)
	}
	tb.signedIn(adam)
	// A hidden tab doesn't poll; the approver looks at this one.
	if _, err := chromedp.Call(tb.ctx, cdppage.BringToFront, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	link := fmt.Sprintf(`el.matches(%q)`, pendingRow(first.ID)+" a")
	tb.tabTo("the pending request's link", link)
	second := file("operator2", "SR-6006")
	tb.step("wait for the new request in the pending list", chromedp.Poll[chromedp.Void](
		fmt.Sprintf(`document.querySelector(%q) !== null`, pendingRow(second.ID)),
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
	if focused := evalIn[string](tb, `document.activeElement.outerHTML.slice(0, 120)`); !evalIn[bool](tb, `((el) => `+link+`)(document.activeElement)`) {
		t.Fatalf("after the pending list changed, the keyboard focus is on %s, not on the link it was on", focused)
	}
	// A screen reader hears what changed, not the whole list again.
	if news := tb.text("#pending-news"); news != "1 new request" {
		t.Fatalf("after a request came into the pending list, its status line says %q, not %q", news, "1 new request")
	}
	if status := tb.load("press Enter on the request", chromedp.KeyEvent(kb.Enter)); status != http.StatusOK {
		t.Fatalf("keyboard open: status %d", status)
	}
	tb.want("h1", "Request SR-5005")
	tb.tabTo("Approve", `el.dataset.testid === "action-approve"`)
	if status := tb.load("press Enter on Approve", chromedp.KeyEvent(kb.Enter)); status != http.StatusOK {
		t.Fatalf("keyboard approve: status %d", status)
	}
	tb.tabTo("the comment box", `el.id === "comment"`)
	const comment = "approved with the keyboard"
	tb.step("type the comment", chromedp.KeyEvent(comment))
	tb.tabTo("the confirm button", `el.dataset.testid === "confirm"`)
	if status := tb.load("press Enter on Confirm", chromedp.KeyEvent(kb.Enter)); status != http.StatusOK {
		t.Fatalf("keyboard confirm: status %d; page says %q", status, tb.text("main"))
	}
	tb.want(`[data-testid="flash"]`, "The request was approved.")
	tb.want(`[data-testid="state"]`, "Approved")
	tb.want(".timeline", comment)
	cl.clean(tb, "the keyboard flow")
	if r, err := w.srv.Requests.Get(t.Context(), mgr, first.ID); err != nil || r.State != grants.StateApproved || r.Approver != adam {
		t.Fatalf("the request in the store: %+v %v", r, err)
	}
}

// TestConsoleWithoutJavaScriptInBrowser uses the admin center with the
// browser's scripts off: the engineer files a request, the manager and the
// tenant's admin approve it, each through the pages' own forms and links.
func TestConsoleWithoutJavaScriptInBrowser(t *testing.T) {
	path := chromium(t)
	w := startConsoleWorld(t)
	b := startBrowser(t, path, w.base)
	noScript := func(role string) *tab {
		tb := b.newTab(role)
		if _, err := chromedp.Call(tb.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatalf("turn scripts off: %v", err)
		}
		tb.signIn(users[role].Subject)
		return tb
	}

	op := noScript("operator")
	op.follow(`nav a[href="/console/requests/new"]`)
	op.step("fill the new request form",
		chromedp.SendKeys(chromedp.CSS("#tenant"), "contoso"),
		chromedp.SetValue(chromedp.CSS("#service"), "exchange"),
		chromedp.SendKeys(chromedp.CSS("#service_request"), "SR-7007"),
		chromedp.SendKeys(chromedp.CSS("#reason"), "calendar items vanish"),
		chromedp.Click(chromedp.CSS("#act-exchange-Get-Mailbox")),
	)
	op.follow(`[data-testid="submit"]`)
	m := regexp.MustCompile(`/console/requests/([^/?]+)\?done=created$`).FindStringSubmatch(op.location())
	if m == nil {
		t.Fatalf("after filing without scripts: at %s; page says %q", op.location(), op.text("main"))
	}
	id := m[1]
	op.want(`[data-testid="flash"]`, "The request was filed.")

	for _, role := range []string{"manager", "admin"} {
		tb := noScript(role)
		tb.want(pendingRow(id), "SR-7007", "Your decision")
		tb.follow(pendingRow(id) + " a")
		tb.follow(`[data-testid="action-approve"]`)
		tb.step("write a comment", chromedp.SendKeys(chromedp.CSS("#comment"), "approved without scripts by "+role))
		tb.follow(`[data-testid="confirm"]`)
		tb.want(`[data-testid="flash"]`, "approved")
		// The list is the server's: opening it again shows what changed.
		tb.follow(`nav a[href="/console/requests"]`)
		if tb.exists(pendingRow(id)) && role == "admin" {
			t.Fatalf("the approved request is still in %s's pending list", role)
		}
	}
	if r, err := w.srv.Requests.Get(t.Context(), principal(users["operator"]), id); err != nil || r.State != grants.StateApproved ||
		len(r.Activities) != 1 || r.Activities[0] != "Get-Mailbox" {
		t.Fatalf("the request in the store: %+v %v", r, err)
	}
}
