package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit/record"
)

// TestAuditCursorOfOtherFilters: the link to older records carries the
// search's cursor, and one kept after the filters changed (edited in the
// address bar, or the filters changed around it) read a page of the new
// search from the old one's place, under the new filters' heading. The
// search now refuses it, and the page says the link is not valid for
// these filters, with 400; the link with its own filters still works.
func TestAuditCursorOfOtherFilters(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	ctx := context.Background()
	for i := range 60 {
		e.clk.Advance(time.Second)
		if err := e.ten.AddApprover(ctx, contosoAdmin, fmt.Sprintf("10.0.0.%d", i), "contoso", fmt.Sprintf("user%02d@contoso.example", i)); err != nil {
			t.Fatal(err)
		}
	}
	b := e.signIn(contosoAdmin)
	first := b.get("/console/audit?operation=" + record.OpAddApprover)
	older := link(t, first, "Older records")
	u, err := url.Parse(older)
	if err != nil {
		t.Fatal(err)
	}
	if r := b.get(older); r.status != http.StatusOK {
		t.Fatalf("its own filters: %s", r)
	}
	q := u.Query()
	q.Set("user", "user01@contoso.example")
	r := b.get(u.Path + "?" + q.Encode())
	if r.status != http.StatusBadRequest {
		t.Errorf("another filter: status %d, want 400", r.status)
	}
	mustContain(t, "another filter", r, "not valid for these filters")
	if strings.Contains(r.body, `data-label="Client IP"`) {
		t.Errorf("another filter's page lists records:\n%s", r)
	}
}
