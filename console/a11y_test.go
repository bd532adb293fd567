package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/oidctest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// a11yPage is one page of the admin center as a browser got it.
type a11yPage struct {
	name string // what the test did to get it
	kind string // which page it is: pages of different kinds have different titles
	r    resp
	want int // its status
	// field is the id of the form field the page's error is about, which
	// must take the focus; "" when the error is about none (the error
	// takes the focus itself) or the page has none.
	field string
	// tenant is the tenant the page is about, which its title names: a
	// provider's staff keep several tenants' pages open in tabs.
	tenant string
}

// aboutTenant are the kinds of page that are about one tenant.
var aboutTenant = []string{"settings", "approvers", "tenant", "offboard"}

// TestPagesAccessible walks every page of the admin center, as the
// principals who see its variants, its forms refused and its errors, and
// checks the rules of WCAG 2.1 AA that a page's markup alone decides: what
// a screen reader announces for the page, its headings, its form controls,
// buttons, links, tables and errors, and where the focus starts. A page
// added to the admin center is added here.
func TestPagesAccessible(t *testing.T) {
	parallel(t)
	var pages []a11yPage
	add := func(name, kind string, r resp, want int, field string) {
		pages = append(pages, a11yPage{name: name, kind: kind, r: r, want: want, field: field})
	}
	// of says which tenant the page added last is about.
	of := func(tenant string) { pages[len(pages)-1].tenant = tenant }

	e := newEnv(t)
	ctx := context.Background()
	approved := e.managerApproved("contoso")
	pending := e.fileAs(sam, "contoso")
	if _, err := e.reqs.Act(ctx, approved.ID, grants.ActionApprove, grants.Actor{Principal: contosoAdmin, ClientIP: "192.0.2.12"}, "Go ahead"); err != nil {
		t.Fatal(err)
	}
	decided := e.file("fabrikam")
	if _, err := e.reqs.Act(ctx, decided.ID, grants.ActionDeny, grants.Actor{Principal: mia, ClientIP: "192.0.2.11"}, "Not needed"); err != nil {
		t.Fatal(err)
	}
	// who signs in as each of the test's people, by subject.
	who := map[string]*browser{}
	for _, p := range people {
		who[p.Subject] = e.signIn(p)
	}
	engineer, manager, admin, approver, audrey, registrar := who[alice.Subject], who[mia.Subject], who[contosoAdmin.Subject], who[contosoApprover.Subject], who[auditor.Subject], who[lara.Subject]
	if r := registrar.post("/console/tenants", registrar.form(url.Values{"id": {"northwind"}, "display_name": {"Northwind"}, "domains": {"northwind.example"}})); r.status != http.StatusSeeOther {
		t.Fatalf("onboard northwind: %s", r)
	}
	if r := registrar.post("/console/tenants/northwind/offboard", registrar.form(url.Values{"reason": {"Contract ended"}})); r.status != http.StatusSeeOther {
		t.Fatalf("offboard northwind: %s", r)
	}

	anon := e.browser()
	add("sign-in with dev identities", "signin", anon.get("/console/signin"), 200, "")
	add("signed out", "signin", anon.get("/console/signin?signed_out=1"), 200, "")
	add("sign-in that failed", "signin", anon.get("/console/signin?problem=failed"), 200, "")

	reqPath := "/console/requests/"
	for _, p := range people {
		add("requests as "+p.Subject, "requests", who[p.Subject].get("/console/requests"), 200, "")
	}
	add("requests from a date that is none", "requests", manager.get("/console/requests?from=2025-02-30"), 400, "from")
	add("requests ending before they start", "requests", manager.get("/console/requests?from=2025-03-02&to=2025-03-01"), 400, "to")
	add("requests at a history cursor that is none", "requests", manager.get("/console/requests?cursor=bogus"), 400, "")
	add("requests at a pending cursor that is none", "requests", manager.get("/console/requests?pending_cursor=bogus"), 400, "")
	add("requests at two cursors that are none", "requests", manager.get("/console/requests?pending_cursor=bogus&from=x"), 400, "from")

	for _, c := range []struct {
		who identity.Principal
		id  string
	}{{mia, pending.ID}, {contosoAdmin, pending.ID}, {alice, approved.ID}, {contosoAdmin, approved.ID}, {mia, decided.ID}, {fabrikamApprover, decided.ID}} {
		add("request "+c.id+" as "+c.who.Subject, "request", who[c.who.Subject].get(reqPath+c.id), 200, "")
	}
	add("approving, as the manager", "confirm", manager.get(reqPath+pending.ID+"/approve"), 200, "")
	add("denying, as the manager", "confirm", manager.get(reqPath+pending.ID+"/deny"), 200, "")
	add("canceling, as the requester", "confirm", who[sam.Subject].get(reqPath+pending.ID+"/cancel"), 200, "")
	add("revoking, as the tenant's admin", "confirm", admin.get(reqPath+approved.ID+"/revoke"), 200, "")
	add("approving what is approved", "confirm", manager.get(reqPath+approved.ID+"/approve"), 200, "")
	add("approving with a comment too long", "confirm", manager.post(reqPath+pending.ID+"/approve", manager.form(url.Values{"comment": {strings.Repeat("x", 1001)}})), 400, "comment")
	add("revoking what was denied", "confirm", manager.post(reqPath+decided.ID+"/revoke", manager.form(nil)), 409, "")

	request := url.Values{"tenant": {"contoso"}, "service": {"exchange"}, "service_request": {"SR-1"}, "reason": {"Mailbox will not sync"}, "duration": {"1h"}}
	add("new request", "new", engineer.get("/console/requests/new"), 200, "")
	add("new request of a duration not offered", "new", engineer.post("/console/requests", engineer.form(mergeForm(request, url.Values{"duration": {"5h"}}))), 400, "duration")
	add("new request for an offboarded tenant", "new", engineer.post("/console/requests", engineer.form(mergeForm(request, url.Values{"tenant": {"northwind"}}))), 409, "tenant")

	add("settings as the tenant's admin", "settings", admin.get("/console/settings"), 200, "")
	of("contoso")
	add("settings as an approver", "settings", approver.get("/console/settings"), 200, "")
	of("contoso")
	add("settings as the manager", "settings", manager.get("/console/settings?tenant=contoso"), 200, "")
	of("contoso")
	add("settings of an offboarded tenant", "settings", manager.get("/console/settings?tenant=northwind"), 200, "")
	of("northwind")
	add("settings with an address that is none", "settings", admin.post("/console/settings", admin.form(url.Values{"notification_addresses": {"not an address"}})), 400, "notification_addresses")
	of("contoso")
	opened := formRevision(t, admin.get("/console/settings"))
	if _, err := e.ten.PutSettings(ctx, contosoApprover, "", "contoso", tenants.Settings{LockboxEnabled: true, NotificationAddresses: []string{"soc@contoso.example"}}); err != nil {
		t.Fatal(err)
	}
	add("settings changed since the form opened", "settings", admin.post("/console/settings", admin.form(url.Values{"revision": {opened}})), 412, "")
	of("contoso")

	add("approvers as the tenant's admin", "approvers", admin.get("/console/approvers"), 200, "")
	of("contoso")
	add("approvers as an approver", "approvers", approver.get("/console/approvers"), 200, "")
	of("contoso")
	add("approvers as the manager", "approvers", manager.get("/console/approvers?tenant=contoso"), 200, "")
	of("contoso")
	add("approver that is no user", "approvers", admin.post("/console/approvers", admin.form(url.Values{"user": {"eve contoso"}})), 400, "user")
	of("contoso")

	add("audit log, no tenant chosen", "audit", audrey.get("/console/audit"), 200, "")
	add("audit log of a tenant", "audit", audrey.get("/console/audit?tenant=contoso"), 200, "")
	add("audit log verified", "audit", audrey.get("/console/audit?tenant=contoso&verify=1"), 200, "")
	add("audit log as the tenant's admin", "audit", admin.get("/console/audit"), 200, "")
	add("audit log from a date that is none", "audit", audrey.get("/console/audit?tenant=contoso&from=March"), 400, "from")
	add("audit log ending before it starts", "audit", admin.get("/console/audit?from=2025-03-02&to=2025-03-01"), 400, "to")
	add("audit log of a tenant id that is none", "audit", audrey.get("/console/audit?tenant=Not+A+Tenant"), 400, "tenant")
	add("audit log at a cursor that is none", "audit", audrey.get("/console/audit?tenant=contoso&cursor=bogus"), 400, "")

	add("tenants as the Lockbox admin", "tenants", registrar.get("/console/tenants"), 200, "")
	add("tenants as an engineer", "tenants", engineer.get("/console/tenants"), 200, "")
	add("onboarding a tenant id that is none", "tenants", registrar.post("/console/tenants", registrar.form(url.Values{"id": {"North Wind"}, "display_name": {"N"}, "domains": {"n.example"}})), 400, "id")
	add("tenant as the Lockbox admin", "tenant", registrar.get("/console/tenants/contoso"), 200, "")
	of("contoso")
	add("tenant as the tenant's admin", "tenant", admin.get("/console/tenants/contoso"), 200, "")
	of("contoso")
	add("offboarded tenant", "tenant", registrar.get("/console/tenants/northwind"), 200, "")
	of("northwind")
	add("tenant with a domain that is none", "tenant", registrar.post("/console/tenants/contoso", registrar.form(url.Values{"display_name": {"Contoso"}, "domains": {"contoso"}})), 400, "domains")
	of("contoso")
	rev := formRevision(t, registrar.get("/console/tenants/contoso"))
	if r := registrar.post("/console/tenants/contoso", registrar.form(url.Values{"revision": {rev}, "display_name": {"Contoso Ltd"}, "domains": {"contoso.example"}})); r.status != http.StatusSeeOther {
		t.Fatalf("rename contoso: %s", r)
	}
	add("tenant changed since the form opened", "tenant", registrar.post("/console/tenants/contoso", registrar.form(url.Values{"revision": {rev}, "display_name": {"Contoso Inc"}, "domains": {"contoso.example"}})), 412, "")
	of("contoso")
	add("offboarding", "offboard", registrar.get("/console/tenants/contoso/offboard"), 200, "")
	of("contoso")
	add("offboarding without a reason", "offboard", registrar.post("/console/tenants/contoso/offboard", registrar.form(url.Values{"reason": {" "}})), 400, "reason")
	of("contoso")
	add("offboarding an offboarded tenant", "offboard", registrar.get("/console/tenants/northwind/offboard"), 200, "")
	of("northwind")

	add("a request that is none", "error", manager.get(reqPath+"00000000-0000-4000-8000-000000000000"), 404, "")
	add("a page not allowed", "error", manager.get("/console/requests/new"), 403, "")
	add("a form without its token", "error", admin.post("/console/settings", url.Values{}), 403, "")

	// Sign-in at identity providers: the provider's staff at one, each
	// organization at its own.
	ie := newIssuersEnv(t)
	ib := ie.browser()
	add("sign-in with organizations", "signin", ib.get("/console/signin"), 200, "")
	add("sign-in for an organization", "signin", ib.get("/console/signin?tenant=contoso"), 200, "")
	add("sign-in for an organization that is none", "signin", ib.get("/console/signin?tenant=tailspin"), 200, "tenant")
	l := startLoginAt(t, ie.provider, ib, "/console/signin/oidc", oidcUser{sub: "mo@provider.example", name: "Mo", roles: []string{"operator"}})
	add("signed in", "continue", ib.get(l.callback), 200, "")

	// A session its identity provider is confirming.
	re, m, _ := newReverifyEnv(t, oidctest.Config{NoOfflineAccess: true})
	rb := oidcSignIn(t, re, m, mona)
	re.clk.Advance(reverify)
	wantSilent(t, m, rb.get("/console/requests", navigation...))
	re.clk.Advance(5 * time.Second)
	add("confirming the sign-in", "reverifying", rb.get("/console/audit", navigation...), 200, "")

	// A server with no way to sign in.
	bare := newStores(t, clock.NewFake(start))
	bare.serve(bare.consoleConfig(), false)
	add("sign-in not configured", "signin", bare.browser().get("/console/signin"), 200, "")

	titles := map[string]string{} // a title's page kind
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			if p.r.status != p.want {
				t.Fatalf("status %d, want %d: %s", p.r.status, p.want, p.r)
			}
			doc, err := html.Parse(strings.NewReader(p.r.body))
			if err != nil {
				t.Fatal(err)
			}
			title := checkPage(t, doc, p.field)
			switch {
			case p.tenant == "" && slices.Contains(aboutTenant, p.kind):
				t.Fatalf("the test names no tenant the %s page is about", p.kind)
			case !strings.Contains(strings.ToLower(title), p.tenant):
				t.Errorf("the title %q does not name the tenant %s the page is about", title, p.tenant)
			}
			if k, ok := titles[title]; ok && k != p.kind {
				t.Errorf("the %s page has the title %q of the %s page", p.kind, title, k)
			}
			titles[title] = p.kind
		})
	}
}

// vagueLinks are link texts that say nothing of where the link goes, read
// alone from a screen reader's list of links.
var vagueLinks = []string{"here", "click here", "view", "more", "back", "link", "this", "details", "go"}

var space = regexp.MustCompile(`\s+`)

// glyphs are symbols a page may draw as decoration, which screen readers
// read out by name ("right arrow", "check mark", "multiplication sign").
const glyphs = "→←↑↓↔⇒⇐✓✔✗✘×▶►▸▾"

// bareID is a name that is an id (a request's UUID) and nothing else: a
// screen reader reads out its digits, and a list of links holds a column
// of them, none saying what it is.
var bareID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// text is what n holds as a screen reader reads it: its text, with
// images' alternatives, whitespace collapsed, and the bidirectional
// isolates that wrap names left out.
func text(n *html.Node) string {
	var sb strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		switch {
		case n.Type == html.TextNode:
			sb.WriteString(n.Data)
		case n.Type == html.ElementNode && n.Data == "img":
			sb.WriteString(attr(n, "alt"))
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	s := strings.NewReplacer("\u2068", "", "\u2069", "").Replace(sb.String())
	return strings.TrimSpace(space.ReplaceAllString(s, " "))
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	return slices.ContainsFunc(n.Attr, func(a html.Attribute) bool { return a.Key == key })
}

// hasWords reports whether s has a letter or a digit: a name made of
// symbols alone (×, ✓, →) is read as the symbol's name, or not at all.
func hasWords(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return 'a' <= r|0x20 && r|0x20 <= 'z' || '0' <= r && r <= '9' }) >= 0
}

// checkPage checks doc against the rules and returns its title's page
// part. field is the id of the control the page's error is about ("" for
// none).
func checkPage(t *testing.T, doc *html.Node, field string) string {
	t.Helper()
	var all []*html.Node
	ids := map[string]*html.Node{}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			all = append(all, n)
			if id := attr(n, "id"); id != "" {
				if _, dup := ids[id]; dup {
					t.Errorf("two elements have the id %q", id)
				}
				ids[id] = n
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	byTag := func(tag string) []*html.Node {
		var out []*html.Node
		for _, n := range all {
			if n.Data == tag {
				out = append(out, n)
			}
		}
		return out
	}
	// refs resolves the ids an attribute names; each must exist.
	refs := func(n *html.Node, key string) []*html.Node {
		var out []*html.Node
		for _, id := range strings.Fields(attr(n, key)) {
			if target, ok := ids[id]; ok {
				out = append(out, target)
			} else {
				t.Errorf("<%s %s=%q> names no element of the page", n.Data, key, attr(n, key))
			}
		}
		return out
	}

	// The page's language, title and main heading (WCAG 3.1.1, 2.4.2, 1.3.1).
	if h := byTag("html"); len(h) != 1 || attr(h[0], "lang") == "" {
		t.Errorf("<html> has no lang")
	}
	var title string
	if ts := byTag("title"); len(ts) != 1 {
		t.Errorf("%d <title>s", len(ts))
	} else {
		var ok bool
		if title, ok = strings.CutSuffix(text(ts[0]), " · Lockbox admin center"); !ok || !hasWords(title) {
			t.Errorf("the title %q does not name the page", text(ts[0]))
		}
	}
	// Nothing moves the page on after a delay its user can't stop or
	// extend (2.2.1, F41): a refresh that goes on at once (G110) is a
	// redirect, no timer.
	for _, n := range byTag("meta") {
		if !strings.EqualFold(attr(n, "http-equiv"), "refresh") {
			continue
		}
		delay, _, _ := strings.Cut(attr(n, "content"), ";")
		if d, err := strconv.ParseFloat(strings.TrimSpace(delay), 64); err != nil || d != 0 {
			t.Errorf("<meta http-equiv=refresh content=%q> moves the page on by a timer its user can't stop", attr(n, "content"))
		}
	}
	if m := byTag("main"); len(m) != 1 {
		t.Errorf("%d <main>s", len(m))
	}
	level := 0
	for _, n := range all {
		if len(n.Data) != 2 || n.Data[0] != 'h' || n.Data[1] < '1' || n.Data[1] > '6' {
			continue
		}
		l := int(n.Data[1] - '0')
		switch {
		case level == 0 && l != 1:
			t.Errorf("the first heading is an <%s>, %q", n.Data, text(n))
		case l > level+1:
			t.Errorf("<%s> %q follows an <h%d>: a level skipped", n.Data, text(n), level)
		}
		if !hasWords(text(n)) {
			t.Errorf("an empty <%s>", n.Data)
		}
		level = l
	}
	if h1 := byTag("h1"); len(h1) != 1 {
		t.Errorf("%d <h1>s", len(h1))
	} else if text(h1[0]) != title {
		t.Errorf("the title %q does not name the page as its <h1> %q does", title, text(h1[0]))
	}

	// Every control has a name (1.3.1, 4.1.2): a label, or aria-label.
	labels := map[string]string{}
	for _, l := range byTag("label") {
		if f := attr(l, "for"); f != "" {
			refs(l, "for")
			labels[f] += text(l)
		}
	}
	for _, n := range all {
		switch n.Data {
		case "input", "select", "textarea":
		default:
			continue
		}
		if attr(n, "type") == "hidden" {
			continue
		}
		name := strings.TrimSpace(attr(n, "aria-label") + labels[attr(n, "id")])
		for _, l := range refs(n, "aria-labelledby") {
			name += text(l)
		}
		for p := n.Parent; p != nil; p = p.Parent {
			if p.Type == html.ElementNode && p.Data == "label" {
				name += text(p)
			}
		}
		if !hasWords(name) {
			t.Errorf("<%s name=%q> has no label", n.Data, attr(n, "name"))
		}
		refs(n, "aria-describedby")
	}

	// Buttons and links say what they do (2.4.4, 2.5.3, 4.1.2): in words,
	// an aria-label holding the words shown, a link's words meaning
	// something alone.
	for _, n := range all {
		if n.Data != "button" && (n.Data != "a" || !hasAttr(n, "href")) {
			continue
		}
		shown := text(n)
		name := shown
		if l := attr(n, "aria-label"); l != "" {
			name = l
			if !strings.Contains(strings.ToLower(l), strings.ToLower(shown)) {
				t.Errorf("<%s> shows %q but is named %q", n.Data, shown, l)
			}
		}
		if !hasWords(name) {
			t.Errorf("<%s> %q has no name in words", n.Data, name)
		}
		if n.Data == "a" && slices.Contains(vagueLinks, strings.ToLower(strings.Trim(name, " .…"))) {
			t.Errorf("the link %q (to %s) does not say where it goes", name, attr(n, "href"))
		}
		if n.Data == "a" && bareID.MatchString(name) {
			t.Errorf("the link %q (to %s) is named by an identifier alone, which says nothing of what it is", name, attr(n, "href"))
		}
		if h := attr(n, "href"); strings.HasPrefix(h, "#") {
			if _, ok := ids[h[1:]]; !ok {
				t.Errorf("the link to %s goes nowhere on the page", h)
			}
		}
	}
	for _, n := range byTag("img") {
		if !hasAttr(n, "alt") {
			t.Errorf("<img src=%q> has no alt", attr(n, "src"))
		}
	}

	// Tables have a name and headers for their columns (1.3.1).
	for _, tb := range byTag("table") {
		var caption string
		var ths int
		var walkT func(*html.Node)
		walkT = func(n *html.Node) {
			if n.Type == html.ElementNode {
				switch n.Data {
				case "caption":
					caption = text(n)
				case "th":
					ths++
					if s := attr(n, "scope"); s != "col" && s != "row" {
						t.Errorf("table #%s: <th> %q has no scope", attr(tb, "id"), text(n))
					}
				}
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walkT(c)
			}
		}
		walkT(tb)
		if !hasWords(caption + attr(tb, "aria-label")) {
			t.Errorf("table #%s has no caption", attr(tb, "id"))
		}
		if ths == 0 {
			t.Errorf("table #%s has no <th>", attr(tb, "id"))
		}
	}

	// A list the page's script refreshes is no live region, nor inside
	// one: a screen reader would read all of it again at each refresh.
	// What changed is said in the status line it names (4.1.3).
	live := func(n *html.Node) bool {
		l := attr(n, "aria-live")
		return l != "" && l != "off" || slices.Contains([]string{"status", "log", "alert", "marquee", "timer"}, attr(n, "role"))
	}
	for _, n := range all {
		if !hasAttr(n, "data-refresh") {
			continue
		}
		for p := n; p != nil; p = p.Parent {
			if p.Type == html.ElementNode && live(p) {
				t.Errorf("the live list #%s is in the live region <%s id=%q>: each refresh has all of it read again", attr(n, "id"), p.Data, attr(p, "id"))
			}
		}
		if s, ok := ids[attr(n, "data-status")]; !ok || attr(s, "role") != "status" {
			t.Errorf("the live list #%s names no status line (data-status, role=status) to say what changed", attr(n, "id"))
		}
	}

	// A symbol drawn as decoration is hidden from assistive technology,
	// or the words are written instead: a screen reader reads "→" out
	// as "right arrow" in the middle of a sentence (1.1.1, 1.3.1).
	var heard func(*html.Node)
	heard = func(n *html.Node) {
		if n.Type == html.ElementNode && (attr(n, "aria-hidden") == "true" || n.Data == "head" || n.Data == "script" || n.Data == "style") {
			return
		}
		if n.Type == html.TextNode {
			if i := strings.IndexAny(n.Data, glyphs); i >= 0 {
				t.Errorf("a screen reader reads out the symbol in %q (<%s>): hide it (aria-hidden) or say it in words", strings.TrimSpace(n.Data), n.Parent.Data)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			heard(c)
		}
	}
	heard(doc)

	// A state is said in words, not by its colour alone (1.4.1).
	for _, n := range all {
		if slices.Contains(strings.Fields(attr(n, "class")), "state") && !hasWords(text(n)) {
			t.Errorf("a state badge (%s) has no words", attr(n, "class"))
		}
	}

	// An error is announced (4.1.3) and the focus starts on it, or on the
	// field it is about, which it describes (3.3.1, 2.4.3); a page without
	// one leaves the focus where the browser puts it.
	alerts := map[string]bool{}
	var errors []*html.Node
	for _, n := range all {
		if attr(n, "role") == "alert" {
			errors = append(errors, n)
			alerts[attr(n, "id")] = true
		}
	}
	describedByError := func(n *html.Node) bool {
		return slices.ContainsFunc(strings.Fields(attr(n, "aria-describedby")), func(id string) bool { return alerts[id] })
	}
	for _, n := range all {
		if attr(n, "aria-invalid") == "true" && !describedByError(n) {
			t.Errorf("#%s is marked invalid but described by no error", attr(n, "id"))
		}
	}
	var focus []*html.Node
	for _, n := range all {
		if hasAttr(n, "autofocus") {
			focus = append(focus, n)
		}
	}
	switch {
	case len(errors) == 0 && len(focus) > 0:
		t.Errorf("without an error, #%s takes the focus from the page's start", attr(focus[0], "id"))
	case len(errors) == 0:
	case len(focus) != 1:
		t.Errorf("the page shows %d error(s) (%q) and %d element(s) take the focus", len(errors), text(errors[0]), len(focus))
	case field != "":
		if f := focus[0]; attr(f, "id") != field || attr(f, "aria-invalid") != "true" || !describedByError(f) {
			t.Errorf("the error %q is about #%s, but the focus goes to <%s id=%q>, or #%s is not marked and described by it",
				text(errors[0]), field, f.Data, attr(f, "id"), field)
		}
	case attr(focus[0], "role") != "alert" || attr(focus[0], "tabindex") != "-1":
		t.Errorf("the error %q is about no field, but the focus goes to <%s id=%q>, not to it", text(errors[0]), focus[0].Data, attr(focus[0], "id"))
	}
	return title
}
