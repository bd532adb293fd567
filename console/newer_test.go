package console_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit/record"
)

// The history's "Newer requests" link goes back to the page before, with
// the filters: the page shown Older, then Newer, is the page it was,
// requests filed meanwhile or not, and from the first page's place it
// leads to those. The first page has no Newer link, the last no Older;
// a Newer link changed on the way, or another user's, is refused like an
// Older one, with a page that does not call it a link to older requests.
func TestRequestsHistoryNewer(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	done := e.fileMany(pageSize+50, "op", "contoso")
	e.cancel(done)
	want := ids(done)
	slices.Reverse(want)

	b := e.signIn(contosoAdmin)
	first := b.get("/console/requests?state=canceled")
	mustNotContain(t, "first page", first, "Newer requests")
	second := b.get(link(t, first, "Older requests"))
	if got := rows(t, second, "history"); !slices.Equal(got, want[pageSize:]) {
		t.Fatalf("second page lists %d requests, want the oldest %d", len(got), len(want)-pageSize)
	}
	mustNotContain(t, "last page", second, "Older requests")
	newer := link(t, second, "Newer requests")
	if q := queryOf(t, newer); q.Get("state") != "canceled" || q.Get("cursor") == "" {
		t.Fatalf("the link to newer requests %s lacks the filter or the cursor", newer)
	}

	// Filed, and canceled, since the first page was read.
	since := e.fileMany(3, "new", "contoso")
	e.cancel(since)
	back := b.get(newer)
	if back.status != http.StatusOK {
		t.Fatalf("GET %s: %s", newer, back)
	}
	if got := rows(t, back, "history"); !slices.Equal(got, want[:pageSize]) {
		t.Fatalf("Newer from the second page lists %d requests, want the first page's %d", len(got), pageSize)
	}
	mustContain(t, "first page's place", back, `<option value="canceled" selected>`)
	if got := rows(t, b.get(link(t, back, "Older requests")), "history"); !slices.Equal(got, want[pageSize:]) {
		t.Fatalf("Older again lists %d requests, want the second page's %d", len(got), len(want)-pageSize)
	}
	top := b.get(link(t, back, "Newer requests"))
	wantTop := ids(since)
	slices.Reverse(wantTop)
	if got := rows(t, top, "history"); !slices.Equal(got, wantTop) {
		t.Fatalf("Newer from the first page's place lists %v, want those filed since %v", got, wantTop)
	}
	mustNotContain(t, "newest page", top, "Newer requests")
	for _, r := range []resp{second, back, top} {
		// The tenant's view: "Microsoft Operator", never the engineer.
		mustNotContain(t, "tenant's history", r, ">op0", ">op1", ">op2", ">new0")
	}

	cursor := queryOf(t, newer).Get("cursor")
	for name, path := range map[string]string{
		"changed":       "/console/requests?state=canceled&cursor=" + url.QueryEscape(tamper(cursor)),
		"other filters": "/console/requests?state=denied&cursor=" + url.QueryEscape(cursor),
	} {
		r := b.get(path)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: %s", name, r)
			continue
		}
		mustContain(t, name, r, "This link to older or newer requests is not valid")
		if l := link(t, r, "Newest requests"); queryOf(t, l).Get("cursor") != "" {
			t.Errorf("%s: the link to start again is %s", name, l)
		}
	}
	if r := e.signIn(contosoApprover).get(newer); r.status != http.StatusBadRequest {
		t.Errorf("another user's cursor: %s", r)
	} else {
		mustContain(t, "another user's cursor", r, "This link to older or newer requests is not valid")
	}
}

var clientIPRE = regexp.MustCompile(`<td data-label="Client IP" class="mono">10\.0\.(\d+)\.(\d+)</td>`)

// auditRows returns the record numbers of an audit page's rows, by the
// client IP addApprovers gave each.
func auditRows(r resp) []int {
	var out []int
	for _, m := range clientIPRE.FindAllStringSubmatch(r.body, -1) {
		var hi, lo int
		fmt.Sscan(m[1], &hi)
		fmt.Sscan(m[2], &lo)
		out = append(out, hi*256+lo)
	}
	return out
}

// descending returns from, from-1, … to.
func descending(from, to int) []int {
	var out []int
	for i := from; i >= to; i-- {
		out = append(out, i)
	}
	return out
}

// The audit log's "Newer records" link goes back to the page before, with
// the filters, however many records were written since: Older, Older,
// Newer shows the second page again, and from the first page's place it
// leads to the records written since. The first page has no Newer link.
func TestAuditNewer(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	n := 0
	addApprovers := func(count int) {
		for range count {
			e.clk.Advance(time.Second)
			if err := e.ten.AddApprover(context.Background(), contosoAdmin, fmt.Sprintf("10.0.%d.%d", n/256, n%256), "contoso", fmt.Sprintf("user%03d@contoso.example", n)); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	addApprovers(120)
	b := e.signIn(contosoAdmin)
	first := b.get("/console/audit?operation=" + record.OpAddApprover)
	if got := auditRows(first); !slices.Equal(got, descending(119, 70)) {
		t.Fatalf("first page %v", got)
	}
	mustNotContain(t, "first page", first, "Newer records")
	second := b.get(link(t, first, "Older records"))
	third := b.get(link(t, second, "Older records"))
	if got := auditRows(third); !slices.Equal(got, descending(19, 0)) {
		t.Fatalf("third page %v", got)
	}
	mustNotContain(t, "last page", third, "Older records")
	addApprovers(5)
	newer := link(t, third, "Newer records")
	if q := queryOf(t, newer); q.Get("operation") != record.OpAddApprover || q.Get("cursor") == "" {
		t.Fatalf("the link to newer records %s lacks the filter or the cursor", newer)
	}
	back := b.get(newer)
	if got := auditRows(back); !slices.Equal(got, descending(69, 20)) {
		t.Fatalf("Newer from the third page %v, want the second page", got)
	}
	mustContain(t, "second page read Newer", back, `value="`+record.OpAddApprover+`"`)
	again := b.get(link(t, back, "Newer records"))
	if got := auditRows(again); !slices.Equal(got, descending(119, 70)) {
		t.Fatalf("Newer from the second page %v, want the first page", got)
	}
	top := b.get(link(t, again, "Newer records"))
	if got := auditRows(top); !slices.Equal(got, descending(124, 120)) {
		t.Fatalf("Newer from the first page's place %v, want the records written since", got)
	}
	mustNotContain(t, "newest page", top, "Newer records")
	if got := auditRows(b.get(link(t, top, "Older records"))); !slices.Equal(got, descending(119, 70)) {
		t.Fatalf("Older from the newest page %v, want the first page", got)
	}

	// A Newer cursor of a search of every tenant, for the tenant's own.
	other := base64.RawURLEncoding.EncodeToString([]byte("n:1700000000000-0/contoso"))
	r := b.get("/console/audit?operation=" + record.OpAddApprover + "&cursor=" + other)
	if r.status != http.StatusBadRequest {
		t.Fatalf("a cursor of another search: %s", r)
	}
	mustContain(t, "a cursor of another search", r, "This link to older or newer records is not valid")
}
