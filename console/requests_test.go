package console_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
)

// pageSize is how many requests a page of either list shows.
const pageSize = 200

// fileMany has n operators (prefix000, prefix001, …) each file a request
// for tenant, a second apart, and returns them oldest first. One operator
// has one open request a tenant and service, hence one each.
func (e *env) fileMany(n int, prefix, tenant string) []grants.Request {
	e.t.Helper()
	out := make([]grants.Request, n)
	for i := range n {
		e.clk.Advance(time.Second)
		out[i] = e.fileAs(identity.Principal{Subject: fmt.Sprintf("%s%03d", prefix, i), Roles: []identity.Role{identity.RoleOperator}}, tenant)
	}
	return out
}

// cancel has each request's requester cancel it, so it leaves the pending
// list for the history.
func (e *env) cancel(reqs []grants.Request) {
	e.t.Helper()
	for _, r := range reqs {
		p := identity.Principal{Subject: r.Requester, Roles: []identity.Role{identity.RoleOperator}}
		if _, err := e.reqs.Act(context.Background(), r.ID, grants.ActionCancel, grants.Actor{Principal: p}, ""); err != nil {
			e.t.Fatal(err)
		}
	}
}

var rowRE = regexp.MustCompile(`<tr data-request="([^"]+)"`)

// rows returns the ids of the rows of the requests page's section: the
// pending list ("pending") or the history ("history"). A fragment is all
// pending list.
func rows(t *testing.T, r resp, section string) []string {
	t.Helper()
	body := r.body
	if i := strings.Index(body, `id="history-h"`); i >= 0 {
		if section == "history" {
			body = body[i:]
		} else {
			body = body[:i]
		}
	} else if section == "history" {
		t.Fatalf("no history in %s", r)
	}
	var ids []string
	for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func ids(reqs []grants.Request) []string {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = r.ID
	}
	return out
}

// queryOf returns the query of a link.
func queryOf(t *testing.T, href string) url.Values {
	t.Helper()
	u, err := url.Parse(href)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// tamper changes one character of a cursor, keeping it base64url.
func tamper(c string) string {
	b := []byte(c)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// The history pages by the store's cursor, which the "Older requests"
// link carries with the filters; each page is full while older requests
// match, pending requests among them or not. A tenant's view of it never
// names the provider's engineers.
func TestRequestsHistoryPaging(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	done := e.fileMany(pageSize+50, "op", "contoso")
	e.cancel(done)
	// Still pending, among the history: not on it, and not making its
	// pages short.
	stillPending := e.fileMany(3, "late", "contoso")
	e.clk.Advance(time.Hour)
	want := ids(done)
	slices.Reverse(want) // newest first

	b := e.signIn(contosoAdmin)
	first := b.get("/console/requests?state=canceled")
	if first.status != http.StatusOK {
		t.Fatalf("first page: %s", first)
	}
	got := rows(t, first, "history")
	if !slices.Equal(got, want[:pageSize]) {
		t.Fatalf("first page lists %d requests, want the newest %d", len(got), pageSize)
	}
	older := link(t, first, "Older requests")
	q := queryOf(t, older)
	if q.Get("state") != "canceled" || q.Get("cursor") == "" {
		t.Fatalf("the link to older requests %s lacks the filter or the cursor", older)
	}
	second := b.get(older)
	if second.status != http.StatusOK {
		t.Fatalf("GET %s: %s", older, second)
	}
	if got := rows(t, second, "history"); !slices.Equal(got, want[pageSize:]) {
		t.Fatalf("second page lists %d requests, want the oldest %d", len(got), len(want)-pageSize)
	}
	mustContain(t, "second page", second, `<option value="canceled" selected>`)
	mustNotContain(t, "second page", second, "Older requests")
	for _, r := range []resp{first, second} {
		// The tenant's view: "Microsoft Operator", never the engineer.
		mustNotContain(t, "tenant's history", r, ">op0", ">op1", ">op2", ">late0")
	}

	// Without a state, the pending requests are left out before the page
	// is cut: the first page is as full.
	any := b.get("/console/requests")
	if got := rows(t, any, "history"); !slices.Equal(got, want[:pageSize]) {
		t.Errorf("history without a state lists %d requests, want the newest %d", len(got), pageSize)
	}
	if got := rows(t, any, "pending"); !slices.Equal(got, ids(stillPending)) {
		t.Errorf("pending %v, want %v", got, ids(stillPending))
	}

	// A cursor changed on the way, or used with other filters, is refused
	// with a page that says so and starts again.
	cursor := q.Get("cursor")
	for name, path := range map[string]string{
		"changed":       "/console/requests?state=canceled&cursor=" + url.QueryEscape(tamper(cursor)),
		"other filters": "/console/requests?state=denied&cursor=" + url.QueryEscape(cursor),
		"not a cursor":  "/console/requests?state=canceled&cursor=%3Cb%3E",
	} {
		r := b.get(path)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: %s", name, r)
			continue
		}
		mustContain(t, name, r, "This link to older or newer requests is not valid")
		if l := link(t, r, "Newest requests"); queryOf(t, l).Get("cursor") != "" || queryOf(t, l).Get("state") == "" {
			t.Errorf("%s: the link to start again is %s", name, l)
		}
		if got := rows(t, r, "history"); len(got) != 0 {
			t.Errorf("%s: lists %d requests", name, len(got))
		}
	}
	// Another user's cursor is not theirs to continue.
	other := e.signIn(contosoApprover)
	if r := other.get(older); r.status != http.StatusBadRequest {
		t.Errorf("another user's cursor: %s", r)
	}
}

// The "to" date bounds the store's read: a date far in the past lists the
// requests created by then however many came after, where the newest 200
// were read and filtered before.
func TestRequestsToFarInThePast(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	old := e.fileMany(3, "early", "contoso")
	e.cancel(old)
	e.clk.Advance(72 * time.Hour)
	newer := e.fileMany(pageSize+10, "op", "contoso")
	e.cancel(newer[:pageSize])

	day := start.Format(time.DateOnly)
	b := e.signIn(mia)
	for _, q := range []string{"to=" + day, "from=" + day + "&to=" + day, "state=canceled&to=" + day} {
		r := b.get("/console/requests?" + q)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %s", q, r)
		}
		want := ids(old)
		slices.Reverse(want)
		if got := rows(t, r, "history"); !slices.Equal(got, want) {
			t.Errorf("%s: history lists %v, want %v", q, got, want)
		}
		mustNotContain(t, q, r, "Older requests", "No requests match")
	}
}

// An approver never misses a pending request: more than fit on a page
// are counted, and the list pages, what waits for the viewer first across
// every page; requests decided meanwhile don't make the next page skip
// any, and the live poll refreshes the page shown.
func TestPendingPaging(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	// Waiting for contoso, with the soonest deadlines: not mia's to
	// decide, so after every request that is.
	theirs := []grants.Request{e.managerApproved("fabrikam")}
	e.clk.Advance(time.Second)
	theirs = append(theirs, e.managerApproved("contoso"))
	e.clk.Advance(time.Minute)
	mine := e.fileMany(pageSize+30, "op", "contoso")
	total := len(theirs) + len(mine)

	b := e.signIn(mia)
	first := b.get("/console/requests")
	if first.status != http.StatusOK {
		t.Fatalf("first page: %s", first)
	}
	got := rows(t, first, "pending")
	if !slices.Equal(got, ids(mine[:pageSize])) {
		t.Fatalf("first page lists %d pending requests, want mia's %d soonest", len(got), pageSize)
	}
	mustContain(t, "first page", first, fmt.Sprintf("Pending requests 1–%d of %d; %d of them wait for your decision.", pageSize, total, len(mine)))
	mustNotContain(t, "first page", first, "First pending requests")
	more := link(t, first, "More pending requests")
	if queryOf(t, more).Get("pending_cursor") == "" {
		t.Fatalf("the link to more pending requests is %s", more)
	}
	// The live list polls the page shown.
	if !strings.Contains(first.body, `data-refresh="/console/requests/pending"`) {
		t.Errorf("the first page polls elsewhere: %s", first)
	}

	// Decided meanwhile: gone from the first page, and the next doesn't
	// start later for it.
	for _, r := range mine[:3] {
		if _, err := e.reqs.Act(context.Background(), r.ID, grants.ActionDeny, grants.Actor{Principal: sam}, "no"); err != nil {
			t.Fatal(err)
		}
	}
	wantNext := append(ids(mine[pageSize:]), ids(theirs)...)
	second := b.get(more)
	if second.status != http.StatusOK {
		t.Fatalf("GET %s: %s", more, second)
	}
	if got := rows(t, second, "pending"); !slices.Equal(got, wantNext) {
		t.Fatalf("second page lists %v, want %v", got, wantNext)
	}
	mustContain(t, "second page", second, fmt.Sprintf("Pending requests %d–%d of %d;", pageSize-2, total-3, total-3))
	mustNotContain(t, "second page", second, "More pending requests")
	if l := link(t, second, "First pending requests"); queryOf(t, l).Get("pending_cursor") != "" {
		t.Errorf("the link to the first pending requests is %s", l)
	}
	refresh := regexp.MustCompile(`data-refresh="([^"]+)"`).FindStringSubmatch(second.body)
	if refresh == nil || queryOf(t, html.UnescapeString(refresh[1])).Get("pending_cursor") != queryOf(t, more).Get("pending_cursor") {
		t.Fatalf("the second page polls %v", refresh)
	}
	poll := b.get(html.UnescapeString(refresh[1]))
	if got := rows(t, poll, "pending"); poll.status != http.StatusOK || !slices.Equal(got, wantNext) {
		t.Errorf("the poll of the second page: %v, %s", got, poll)
	}

	// A pending cursor changed on the way is refused, on the page and the
	// poll alike, with a way back to the first page.
	bad := "pending_cursor=" + url.QueryEscape(tamper(queryOf(t, more).Get("pending_cursor")))
	for _, path := range []string{"/console/requests?" + bad, "/console/requests/pending?" + bad, "/console/requests?pending_cursor=x"} {
		r := b.get(path)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: %s", path, r)
			continue
		}
		mustContain(t, path, r, "This link to more pending requests is not valid")
		if l := link(t, r, "First pending requests"); l != "/console/requests" {
			t.Errorf("%s: the link back is %s", path, l)
		}
	}
	// Nor does another manager continue mia's list.
	if r := e.signIn(sam).get(more); r.status != http.StatusBadRequest {
		t.Errorf("another user's pending cursor: %s", r)
	}
}

// TestPendingPagingShowsRequestsReachingTheViewer: a request that comes
// to wait for the viewer's decision while they page the pending list
// moves to the part of the list that comes first, behind the page they
// are on. The next page shows it first, rather than on none of their
// pages.
func TestPendingPagingShowsRequestsReachingTheViewer(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	// Waiting for the manager: none is the approver's to decide yet.
	all := e.fileMany(pageSize+30, "op", "contoso")
	b := e.signIn(contosoApprover)
	first := b.get("/console/requests")
	if got := rows(t, first, "pending"); first.status != http.StatusOK || !slices.Equal(got, ids(all[:pageSize])) {
		t.Fatalf("first page: %d rows, %s", len(got), first)
	}
	more := link(t, first, "More pending requests")

	// Not shown yet, it reaches the tenant: the approver's to decide now.
	x := all[pageSize+15]
	if _, err := e.reqs.Act(context.Background(), x.ID, grants.ActionApprove, grants.Actor{Principal: mia}, ""); err != nil {
		t.Fatal(err)
	}
	second := b.get(more)
	if second.status != http.StatusOK {
		t.Fatalf("GET %s: %s", more, second)
	}
	want := slices.Concat([]string{x.ID}, ids(all[pageSize:pageSize+15]), ids(all[pageSize+16:]))
	if got := rows(t, second, "pending"); !slices.Equal(got, want) {
		t.Fatalf("second page lists %d requests, want %d, %s first:\n%v\nwant\n%v", len(got), len(want), x.ID, got, want)
	}
	mustContain(t, "second page", second, fmt.Sprintf("Pending requests %d–%d of %d; 1 of them wait for your decision.", pageSize+1, len(all), len(all)))
	mustNotContain(t, "second page", second, "More pending requests")
}

// The history's "from" date starts at its midnight: a request filed in
// the last millisecond of the day before is not listed.
func TestRequestsFromStartsAtMidnight(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	midnight := start.Truncate(24 * time.Hour).Add(24 * time.Hour)
	e.clk.Advance(midnight.Add(-500*time.Microsecond).Sub(e.clk.Now()) - time.Second) // fileMany advances a second first
	before := e.fileMany(1, "late", "contoso")
	e.clk.Advance(500*time.Microsecond - time.Second)
	on := e.fileMany(1, "early", "contoso")
	e.cancel(append(before, on...))
	if !before[0].CreatedAt.Before(midnight) || on[0].CreatedAt.Before(midnight) {
		t.Fatalf("filed at %v and %v, want either side of %v", before[0].CreatedAt, on[0].CreatedAt, midnight)
	}
	r := e.signIn(mia).get("/console/requests?from=" + midnight.Format(time.DateOnly))
	if r.status != http.StatusOK {
		t.Fatalf("history: %s", r)
	}
	if got := rows(t, r, "history"); !slices.Equal(got, ids(on)) {
		t.Errorf("history from %s lists %v, want only %v (%v was filed the day before)", midnight.Format(time.DateOnly), got, ids(on), ids(before))
	}
}
