package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lockbox-oss/lockbox/grants"
)

// spillJS lists the elements of the tables' cells that reach out of their
// cell: text drawn over the next column.
const spillJS = `(() => {
  const out = [];
  for (const td of document.querySelectorAll("main td")) {
    const edge = td.getBoundingClientRect().right;
    for (const el of td.querySelectorAll("*")) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && Math.max(r.right, r.left + el.scrollWidth) > edge + 1) {
        out.push(el.tagName.toLowerCase() + "." + el.className + " reaches " + Math.round(Math.max(r.right, r.left + el.scrollWidth) - edge) + "px past its cell");
      }
    }
  }
  return out;
})()`

// TestConsoleLongReasonInBrowser is a request whose reason is as long as
// the lifecycle takes (2000 characters) and has no space to break at: the
// pending list, where the reason shows under the request, keeps it in its
// cell rather than drawing it over the columns beside it.
func TestConsoleLongReasonInBrowser(t *testing.T) {
	path := chromium(t)
	w := startConsoleWorld(t)
	b := startBrowser(t, path, w.base)
	_, err := w.srv.Requests.Create(t.Context(), grants.Actor{Principal: principal(users["operator"]), ClientIP: "127.0.0.1"}, grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-9009", Reason: strings.Repeat("x", 2000), Duration: grants.Duration(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	tb := b.newTab("manager")
	tb.signIn(users["manager"].Subject)
	tb.want("#pending", "SR-9009")
	if spills := evalIn[[]string](tb, spillJS); len(spills) > 0 {
		t.Errorf("the pending list on a laptop:\n  %s", strings.Join(spills, "\n  "))
	}
}

// sidewaysJS is how wide the page is and how wide the viewport, with the
// elements that reach past its right edge.
const sidewaysJS = `(() => {
  const doc = document.scrollingElement;
  const past = [];
  for (const el of document.querySelectorAll("body *")) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > doc.clientWidth + 1) {
      past.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className ? "." + String(el.className).split(" ").join(".") : "") +
        " reaches " + Math.round(r.right - doc.clientWidth) + "px past");
    }
  }
  // A table that scrolls in its own frame keeps the page from
  // scrolling, but hides part of each row: a row stacked on a phone fits.
  const framed = Array.from(document.querySelectorAll("main .table-wrap"), w => w.scrollWidth > w.clientWidth ?
    "#" + (w.querySelector("table")?.id ?? "") + " scrolls in its frame: " + w.scrollWidth + "px in " + w.clientWidth + "px" : "").filter(Boolean);
  return {scroll: doc.scrollWidth, client: doc.clientWidth, past: past.slice(0, 8), framed: framed};
})()`

// TestConsoleNarrowInBrowser opens every admin center page with a table
// at 320 CSS px wide: a phone, or a laptop's window zoomed to 400 %. The
// page must not scroll sideways (WCAG 1.4.10, reflow), and its tables
// stack their rows as cards that fit the screen, so no part of a row
// hides in a frame scrolled sideways either.
func TestConsoleNarrowInBrowser(t *testing.T) {
	path := chromium(t)
	w := startConsoleWorld(t)
	b := startBrowser(t, path, w.base)
	ctx := t.Context()
	decided, err := w.srv.Requests.Create(ctx, grants.Actor{Principal: principal(users["operator"]), ClientIP: "127.0.0.1"}, grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1101", Reason: "archive mailbox won't expand", Duration: grants.Duration(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"manager", "admin"} {
		if _, err := w.srv.Requests.Act(ctx, decided.ID, grants.ActionApprove, grants.Actor{Principal: principal(users[who]), ClientIP: "127.0.0.1"}, "checked"); err != nil {
			t.Fatal(err)
		}
	}
	// A pending one too, with a reason that is one long word.
	if _, err := w.srv.Requests.Create(ctx, grants.Actor{Principal: principal(users["operator"]), ClientIP: "127.0.0.1"}, grants.CreateInput{
		Tenant: "contoso", Service: "sharepoint", ServiceRequest: "SR-1102", Reason: strings.Repeat("x", 200), Duration: grants.Duration(time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	pages := map[string][]string{
		"manager": {"/console/requests", "/console/requests/" + decided.ID, "/console/tenants"},
		"admin":   {"/console/requests", "/console/requests/" + decided.ID, "/console/audit", "/console/audit?verify=1"},
	}
	type width struct {
		Scroll int      `json:"scroll"`
		Client int      `json:"client"`
		Past   []string `json:"past"`
		Framed []string `json:"framed"`
	}
	for _, role := range []string{"manager", "admin"} {
		tb := b.newTab(role)
		tb.signIn(users[role].Subject)
		tb.step("320px viewport", chromedp.EmulateViewport(320, 640, chromedp.EmulateMobile))
		for _, p := range pages[role] {
			tb.open(p)
			if !tb.exists("main table") {
				t.Fatalf("%s: %s shows no table to check", role, p)
			}
			got := evalIn[width](tb, sidewaysJS)
			if got.Scroll > got.Client {
				t.Errorf("%s: %s is %dpx wide at %dpx:\n  %s", role, p, got.Scroll, got.Client, strings.Join(got.Past, "\n  "))
			}
			if len(got.Framed) > 0 {
				t.Errorf("%s: %s at %dpx:\n  %s", role, p, got.Client, strings.Join(got.Framed, "\n  "))
			}
			tb.shot("narrow-" + role + strings.NewReplacer("/console/", "-", "/", "-", "?", "-", "=", "-").Replace(p))
		}
	}
}

// TestConsoleEveryPageNarrowInBrowser opens the admin center's other pages
// (sign-in, forms, confirmations, a tenant, an error) at 320 CSS px wide
// (a phone, or a laptop zoomed to 400 %) and at 640 (zoomed to 200 %),
// with values as long as they come: none may scroll sideways (WCAG
// 1.4.10), and each is still used with the keyboard, its focus visible.
func TestConsoleEveryPageNarrowInBrowser(t *testing.T) {
	path := chromium(t)
	w := startConsoleWorld(t)
	b := startBrowser(t, path, w.base)
	ctx := t.Context()
	assignApprover(t, w)
	// An approver whose address is one long word.
	if err := w.srv.Tenants.AddApprover(ctx, principal(users["admin"]), "127.0.0.1", "contoso", "first.second-third.fourth-fifth.sixth@contoso.example"); err != nil {
		t.Fatal(err)
	}
	req, err := w.srv.Requests.Create(ctx, grants.Actor{Principal: principal(users["operator"]), ClientIP: "127.0.0.1"}, grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1201", Reason: strings.Repeat("y", 300), Duration: grants.Duration(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string][]string{
		"operator": {"/console/requests/new", "/console/requests/" + req.ID + "/cancel", "/console/tenants/contoso"},
		"manager":  {"/console/requests/" + req.ID + "/approve"},
		"admin":    {"/console/approvers", "/console/settings"},
	}
	type width struct {
		Scroll int      `json:"scroll"`
		Client int      `json:"client"`
		Past   []string `json:"past"`
	}
	check := func(tb *tab, role, p string, px int64) {
		t.Helper()
		if got := evalIn[width](tb, sidewaysJS); got.Scroll > got.Client {
			t.Errorf("%s: %s is %dpx wide at %dpx:\n  %s", role, p, got.Scroll, got.Client, strings.Join(got.Past, "\n  "))
		}
		tb.checkWCAG()
		tb.shot(fmt.Sprintf("narrow%d-%s%s", px, role, strings.NewReplacer("/console/", "-", "/", "-", "?", "-", "=", "-").Replace(p)))
	}
	for _, px := range []int64{320, 640} {
		anon := b.newTab("anyone")
		anon.step("narrow viewport", chromedp.EmulateViewport(px, 640, chromedp.EmulateMobile))
		anon.open("/console/signin")
		check(anon, "anyone", "/console/signin", px)
		for _, role := range []string{"operator", "manager", "admin"} {
			tb := b.newTab(role)
			tb.step("narrow viewport", chromedp.EmulateViewport(px, 640, chromedp.EmulateMobile))
			tb.signIn(users[role].Subject)
			for _, p := range pages[role] {
				tb.open(p)
				check(tb, role, p, px)
			}
			if role == "admin" {
				missing := "/console/requests/01a20882-0000-7000-8000-000000000000"
				if status := tb.load("open a missing request", chromedp.Navigate(w.base+missing)); status != http.StatusNotFound {
					t.Fatalf("a missing request: status %d", status)
				}
				check(tb, role, missing, px)
			}
		}
	}
}
