package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/lockbox-oss/lockbox/audit/record"
)

// TestConsoleNewerInBrowser: a tenant's global administrator pages the
// audit log Older, Older, then Newer, while approvers are added (and
// audited) between the clicks. Newer shows again the page just left, row
// for row; from the first page's place it leads to the records written
// since, and Older from there to the first page as it was.
func TestConsoleNewerInBrowser(t *testing.T) {
	path := chromium(t)
	w := startConsoleWorld(t)
	b := startBrowser(t, path, w.base)
	admin := principal(users["admin"])
	n := 0
	// Each record's client IP tells it apart: 10.0.0.n for the n-th.
	add := func(count int) {
		t.Helper()
		for range count {
			if err := w.srv.Tenants.AddApprover(t.Context(), admin, fmt.Sprintf("10.0.0.%d", n), "contoso", fmt.Sprintf("user%03d@contoso.example", n)); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	// newest returns the client IPs of records from down to to.
	newest := func(from, to int) []string {
		var out []string
		for i := from; i >= to; i-- {
			out = append(out, fmt.Sprintf("10.0.0.%d", i))
		}
		return out
	}
	add(120)
	tb := b.newTab("admin")
	tb.signIn(admin.Subject)
	tb.open("/console/audit?operation=" + record.OpAddApprover)
	rows := func(step string, want []string) {
		t.Helper()
		if got := tb.texts(`#audit td[data-label="Client IP"]`); !slices.Equal(got, want) {
			t.Fatalf("%s: rows %v, want %v", step, got, want)
		}
	}
	has := func(text string) bool { return slices.Contains(tb.texts("main a"), text) }
	click := func(text string) {
		t.Helper()
		if !has(text) {
			t.Fatalf("no %q link at %s", text, tb.location())
		}
		xpath := fmt.Sprintf(`//main//a[normalize-space(.)=%q]`, text)
		if status := tb.load("click "+text, chromedp.Click(chromedp.Search(xpath))); status != http.StatusOK {
			t.Fatalf("click %s: status %d; page says %q", text, status, tb.text("main"))
		}
	}
	rows("first page", newest(119, 70))
	if has("Newer records") {
		t.Fatal("the first page links to newer records")
	}
	click("Older records")
	rows("Older", newest(69, 20))
	add(3)
	click("Older records")
	rows("Older, Older", newest(19, 0))
	if has("Older records") {
		t.Fatal("the last page links to older records")
	}
	add(3)
	click("Newer records")
	rows("Older, Older, Newer", newest(69, 20))
	tb.shot("audit-newer")
	click("Newer records")
	rows("Newer again", newest(119, 70))
	click("Newer records")
	rows("Newer from the first page's place", newest(125, 120))
	if has("Newer records") {
		t.Fatal("the newest records link to newer ones")
	}
	click("Older records")
	rows("Older from the newest", newest(119, 70))
	// The filter is kept.
	if got := evalIn[string](tb, `document.querySelector("#operation").value`); got != record.OpAddApprover {
		t.Fatalf("the operation filter reads %q after paging", got)
	}
}
