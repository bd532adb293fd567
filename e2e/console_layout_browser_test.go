package e2e

import (
	"strings"
	"testing"
	"time"

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
