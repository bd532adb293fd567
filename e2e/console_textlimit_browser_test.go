package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/lockbox-oss/lockbox/grants"
)

// typeText puts s in the field css as typed by its user (pasted, or an
// input method's text): the browser's own limits on the field (maxlength,
// one line) apply to it, as they do not to a value set by script.
func (tb *tab) typeText(css, s string) {
	tb.t.Helper()
	tb.step("focus "+css, chromedp.Focus(chromedp.CSS(css)))
	if _, err := chromedp.Call(tb.ctx, input.InsertText, input.InsertTextParams{Text: s}); err != nil {
		tb.t.Fatalf("%s: type into %s: %v", tb.who, css, err)
	}
}

// atLimit is a text of n characters as a browser counts them in a
// textarea, a line break as one, in lines of words and Japanese: text a
// reason or comment is made of.
func atLimit(n int) string {
	const line = "Mailbox sync fails after the migration: 同期が失敗します。"
	var b strings.Builder
	for utf8.RuneCountInString(b.String()) < n {
		b.WriteString(line)
		b.WriteString("\n")
	}
	return string([]rune(b.String())[:n-1]) + "."
}

// TestConsoleTextLimitsInBrowser: a reason or comment typed with line
// breaks up to the length its field allows is taken. A browser counts a
// textarea's line break as one character for maxlength and sends it as
// CRLF, two: a reason the form let the engineer type to its last character
// came back refused, "reason must be at most 2000 characters", and a
// manager's comment the same way. What is stored is what was typed, its
// line breaks as LF, as the API and lockboxctl store them.
func TestConsoleTextLimitsInBrowser(t *testing.T) {
	path := chromium(t)
	w := startConsoleWorld(t)
	b := startBrowser(t, path, w.base)

	op := b.newTab("alice")
	op.signIn(users["operator"].Subject)
	op.open("/console/requests/new")
	reason := atLimit(2000)
	op.step("fill the new request form",
		chromedp.SendKeys(chromedp.CSS("#tenant"), "contoso"),
		chromedp.SendKeys(chromedp.CSS("#service_request"), "SR-2000"),
	)
	// More than the field takes: the browser keeps its first 2000.
	op.typeText("#reason", reason+"\nand a line too many")
	if got := evalIn[string](op, `document.querySelector("#reason").value`); got != reason {
		t.Fatalf("the reason field holds %d characters ending %q, not the first %d typed", utf8.RuneCountInString(got), got[max(0, len(got)-40):], 2000)
	}
	op.follow(`[data-testid="submit"]`)
	m := regexp.MustCompile(`/console/requests/([^/?]+)\?done=created$`).FindStringSubmatch(op.location())
	if m == nil {
		t.Fatalf("a reason of 2000 characters with %d line breaks: at %s; page says %q", strings.Count(reason, "\n"), op.location(), op.text(`[data-testid="problem"]`))
	}
	req, err := w.srv.Requests.Get(t.Context(), principal(users["operator"]), m[1])
	if err != nil {
		t.Fatal(err)
	}
	if req.Reason != reason {
		t.Errorf("stored reason of %d characters (%d CR), not the %d typed", utf8.RuneCountInString(req.Reason), strings.Count(req.Reason, "\r"), 2000)
	}

	mgr := b.newTab("mary")
	mgr.signIn(users["manager"].Subject)
	mgr.open(fmt.Sprintf("/console/requests/%s/approve", req.ID))
	comment := atLimit(1000)
	mgr.typeText("#comment", comment+"\nmore")
	mgr.follow(`[data-testid="confirm"]`)
	if !strings.HasSuffix(mgr.location(), "?done=approve_forwarded") {
		t.Fatalf("a comment of 1000 characters with %d line breaks: at %s; page says %q", strings.Count(comment, "\n"), mgr.location(), mgr.text(`[data-testid="problem"]`))
	}
	req, err = w.srv.Requests.Get(t.Context(), principal(users["manager"]), req.ID)
	if err != nil {
		t.Fatal(err)
	}
	if last := req.History[len(req.History)-1]; req.State != grants.StatePendingCustomer || last.Comment != comment {
		t.Errorf("after the approval: state %s, comment of %d characters (%d CR), not the %d typed", req.State,
			utf8.RuneCountInString(last.Comment), strings.Count(last.Comment, "\r"), 1000)
	}
}

// TestConsoleOffboardReasonInBrowser: the reason for offboarding a tenant
// is one line, as the registry keeps it, and its field takes no more: it
// was a textarea of three rows, where a Lockbox administrator wrote the
// reason on two lines and had it refused, "1-1000 printable characters on
// one line".
func TestConsoleOffboardReasonInBrowser(t *testing.T) {
	path := chromium(t)
	w := startConsoleWorld(t)
	b := startBrowser(t, path, w.base)

	lara := b.newTab("lara")
	lara.signIn(users["lockbox-admin"].Subject)
	lara.open("/console/tenants/fabrikam/offboard")
	lara.typeText("#reason", "Contract ended on 2026-11-30.\nTicket OPS-4411.")
	lara.follow(`[data-testid="confirm-offboard"]`)
	if !strings.HasSuffix(lara.location(), "/console/tenants/fabrikam?done=tenant_offboarded") {
		t.Fatalf("a reason typed on two lines: at %s; page says %q", lara.location(), lara.text(`[data-testid="problem"]`))
	}
	got, err := w.srv.Tenants.Get(t.Context(), "fabrikam")
	if err != nil {
		t.Fatal(err)
	}
	// The browser's one-line field turns the line break into a space.
	if got.Offboarded == nil || got.Offboarded.Reason != "Contract ended on 2026-11-30. Ticket OPS-4411." {
		t.Errorf("offboarded: %+v", got.Offboarded)
	}
}
