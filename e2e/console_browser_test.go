package e2e

// The admin center in a real browser: Debian's chromium, headless, driven
// by chromedp against the same server wiring as "lockbox serve" and a real
// redis-server. Each user has their own browser context, so their cookie
// jars are as separate as two people's browsers.
//
// Every page visited is screenshotted (full page) into
// LOCKBOX_TEST_SCREENSHOTS, or $TMPDIR/lockbox-console-screenshots, and
// checked for labelled controls.

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/server"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
)

// chromiumMissing is the failure when the browser isn't installed: CI runs
// make test, which installs it, so a missing browser is a broken set-up and
// never a reason to skip.
const chromiumMissing = "chromium not found; run make test as root or apt-get install chromium"

// stepTimeout bounds one browser step, so a selector that never matches
// fails the test with its name instead of hanging it.
const stepTimeout = 15 * time.Second

// consoleRefresh is the live lists' polling period in this test: short, so
// the refresh is seen within a second, not the default 5 s.
const consoleRefresh = 300 * time.Millisecond

func principal(c identity.Claims) identity.Principal {
	return identity.Principal{Subject: c.Subject, Roles: c.Roles, TenantID: c.TenantID}
}

// consoleWorld is a running Lockbox whose sign-in page offers dev identities,
// on the real clock: sessions and the time-left columns are what a user
// would see.
type consoleWorld struct {
	srv  *server.Server
	base string // the console's origin, http://127.0.0.1:port
	logs *lockedBuffer
	idle time.Duration // LOCKBOX_CONSOLE_IDLE_TIMEOUT
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startConsoleWorld(t *testing.T) *consoleWorld {
	t.Helper()
	return startConsoleWorldAt(t, time.Now)
}

// startConsoleWorldAt is startConsoleWorld on the clock now, which a test
// moves to end sessions without waiting.
func startConsoleWorldAt(t *testing.T, now func() time.Time) *consoleWorld {
	t.Helper()
	dir := t.TempDir()
	key, err := identity.GenerateDevKey()
	if err != nil {
		t.Fatal(err)
	}
	_, jwks, err := identity.WriteDevKeys(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	grantKey, err := grantsig.EnsureKeyFiles(filepath.Join(dir, "grant.pem"), filepath.Join(dir, "grant.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := startDemo(t, context.Background(), grantKey, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	cfg, err := config.Load(map[string]string{
		"LOCKBOX_UPSTREAMS":              "exchange=" + cluster.Upstreams()["exchange"],
		"LOCKBOX_PROXY_SIGNING_KEY_FILE": filepath.Join(dir, "grant.pem"),
		"LOCKBOX_REDIS_URL":              redistest.URL(t),
		"LOCKBOX_JWT_JWKS_FILE":          jwks,
		"LOCKBOX_API_ADDR":               "127.0.0.1:0",
		"LOCKBOX_PROXY_ADDR":             "127.0.0.1:0",
		"LOCKBOX_METRICS_ADDR":           "127.0.0.1:0",
		// The SIEM stream is tested elsewhere; here it would only flood
		// the test's output.
		"LOCKBOX_SIEM_SINK": "off",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(config.ModeServe); err != nil {
		t.Fatal(err)
	}
	var ids []console.DevIdentity
	for _, u := range []struct{ name, what string }{
		{"operator", "support engineer (operator)"},
		{"manager", "support manager"},
		{"admin", "global administrator of contoso"},
		{"approver", "assigned lockbox approver of contoso"},
		{"fab-approver", "global administrator of fabrikam"},
		{"lockbox-admin", "Lockbox administrator (tenant registry)"},
	} {
		ids = append(ids, console.DevIdentity{Principal: principal(users[u.name]), Description: u.what})
	}
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, server.Options{
		Now:            now,
		Logger:         slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		DevMailDir:     filepath.Join(dir, "mail"),
		DevIdentities:  ids,
		ConsoleRefresh: consoleRefresh,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		cancel()
		t.Fatal(err)
	}
	tenanttest.Onboard(t, srv.Tenants, "contoso", "fabrikam")
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
		if t.Failed() {
			t.Logf("lockbox logs (warnings and errors):\n%s", logs.String())
		}
	})
	return &consoleWorld{srv: srv, base: "http://" + srv.APIAddr(), logs: logs, idle: cfg.ConsoleIdleTimeout}
}

// screenshotDir is where the test writes its screenshots. The default
// folder is the test's own, so stale pictures of an earlier run are
// removed; a folder named by LOCKBOX_TEST_SCREENSHOTS is only written to.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LOCKBOX_TEST_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "lockbox-console-screenshots")
		old, _ := filepath.Glob(filepath.Join(dir, "*.png"))
		for _, f := range old {
			_ = os.Remove(f)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("LOCKBOX_TEST_SCREENSHOTS: %v", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// browser is one headless chromium.
type browser struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
	n     int // screenshots so far, to number them in the order taken
}

// chromium is the path of Debian's chromium.
func chromium(t *testing.T) string {
	t.Helper()
	path, err := osexec.LookPath("chromium")
	if err != nil {
		t.Fatal(chromiumMissing)
	}
	return path
}

func startBrowser(t *testing.T, path, base string) *browser {
	t.Helper()
	// Chromium makes a directory for its singleton socket in TMPDIR and
	// leaves it behind when stopped, one per browser per run; give it a
	// TMPDIR of its own, removed with the test's other directories.
	tmp := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Env("TMPDIR="+tmp),
		// CI runs the tests as root, where chromium's sandbox can't start.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The browser's life is bound to the context of its first Run: that one
	// has no deadline, only the steps do.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return &browser{t: t, ctx: ctx, base: base, shots: screenshotDir(t)}
}

// tab is one user's browser: a browser context of its own (cookies
// included) with one page.
type tab struct {
	t   *testing.T
	b   *browser
	ctx context.Context
	who string
}

func (b *browser) newTab(who string) *tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("new browser context for %s: %v", who, err)
	}
	return &tab{t: b.t, b: b, ctx: ctx, who: who}
}

// step runs actions under the step deadline.
func (tb *tab) step(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %s: %v", tb.who, what, err)
	}
}

// load runs actions that navigate, waits for the new page and returns its
// HTTP status. Every console page it lands on gets the accessibility check.
func (tb *tab) load(what string, actions ...chromedp.Action[chromedp.Void]) int64 {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		tb.t.Fatalf("%s: %s: %v", tb.who, what, err)
	}
	if strings.HasPrefix(tb.location(), tb.b.base+console.Prefix) {
		tb.checkAccessible()
	}
	return resp.Status
}

// open navigates to a console path and wants 200.
func (tb *tab) open(path string) {
	tb.t.Helper()
	if status := tb.load("open "+path, chromedp.Navigate(tb.b.base+path)); status != http.StatusOK {
		tb.t.Fatalf("%s: GET %s: status %d; page says %q", tb.who, path, status, tb.text("main"))
	}
}

// follow clicks what navigates and wants the page it leads to answer 200.
func (tb *tab) follow(css string) {
	tb.t.Helper()
	if status := tb.load("click "+css, chromedp.Click(chromedp.CSS(css))); status != http.StatusOK {
		tb.t.Fatalf("%s: click %s: status %d; page says %q", tb.who, css, status, tb.text("main"))
	}
}

func (tb *tab) location() string {
	tb.t.Helper()
	return evalIn[string](tb, `location.href`)
}

// evalIn evaluates js in tb's page and decodes its value.
func evalIn[T any](tb *tab, js string, opts ...chromedp.EvaluateOption) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, opts...))
	if err != nil {
		tb.t.Fatalf("%s: evaluate %s: %v", tb.who, js, err)
	}
	return v
}

// text is the text of the first element matching css, its white space
// collapsed, or "" when there is none. It is the document's text, not the
// rendering's: a label styled in capitals still reads as written. Pages are
// rendered by the server, so what is not there once the page loaded never
// comes: no waiting.
func (tb *tab) text(css string) string {
	tb.t.Helper()
	return evalIn[string](tb, fmt.Sprintf(`(document.querySelector(%q)?.textContent ?? "").replace(/\s+/g, " ").trim()`, css))
}

// texts is the text of every element matching css.
func (tb *tab) texts(css string) []string {
	tb.t.Helper()
	return evalIn[[]string](tb, fmt.Sprintf(`Array.from(document.querySelectorAll(%q), e => e.textContent.replace(/\s+/g, " ").trim())`, css))
}

func (tb *tab) exists(css string) bool {
	tb.t.Helper()
	return evalIn[bool](tb, fmt.Sprintf(`document.querySelector(%q) !== null`, css))
}

// want fails unless the element's text contains every one of wants.
func (tb *tab) want(css string, wants ...string) {
	tb.t.Helper()
	got := tb.text(css)
	for _, w := range wants {
		if !strings.Contains(got, w) {
			tb.t.Fatalf("%s at %s: %s says %q; want it to contain %q", tb.who, tb.location(), css, got, w)
		}
	}
}

// shot writes a full-page PNG of what tb shows.
func (tb *tab) shot(name string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("%s: screenshot %s: %v", tb.who, name, err)
	}
	tb.b.n++
	file := filepath.Join(tb.b.shots, fmt.Sprintf("%02d-%s.png", tb.b.n, name))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// accessibilityJS lists what a screen-reader or keyboard user would miss
// on the page: form controls without a label, buttons and links without a
// name, labels pointing at duplicate ids, a document without a language.
const accessibilityJS = `(() => {
  const problems = [];
  const named = (s) => (s || "").trim() !== "";
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    const byFor = el.id !== "" && Array.from(document.querySelectorAll("label")).some(l => l.htmlFor === el.id && named(l.innerText));
    const wrapped = el.closest("label") !== null && named(el.closest("label").innerText);
    const byAria = named(el.getAttribute("aria-label")) ||
      (named(el.getAttribute("aria-labelledby")) && el.getAttribute("aria-labelledby").split(/\s+/).every(id => document.getElementById(id) && named(document.getElementById(id).innerText)));
    if (!byFor && !wrapped && !byAria) problems.push("no label: " + el.outerHTML);
    if (el.id !== "" && document.querySelectorAll("#" + CSS.escape(el.id)).length !== 1) problems.push("duplicate id: " + el.id);
  }
  for (const el of document.querySelectorAll("button, a[href]")) {
    if (!named(el.getAttribute("aria-label")) && !named(el.textContent)) problems.push("no name: " + el.outerHTML);
  }
  if (!named(document.documentElement.lang)) problems.push("no lang on <html>");
  if (document.querySelectorAll("h1").length !== 1) problems.push(document.querySelectorAll("h1").length + " h1 headings");
  return problems;
})()`

func (tb *tab) checkAccessible() {
	tb.t.Helper()
	if problems := evalIn[[]string](tb, accessibilityJS); len(problems) > 0 {
		tb.t.Errorf("%s at %s: accessibility:\n  %s", tb.who, tb.location(), strings.Join(problems, "\n  "))
	}
}

// tabTo presses Tab until the focused element satisfies the JavaScript
// predicate focused(el), as a keyboard-only user would.
func (tb *tab) tabTo(what, focused string) {
	tb.t.Helper()
	for range 40 {
		tb.step("press Tab", chromedp.KeyEvent(kb.Tab))
		if evalIn[bool](tb, `((el) => el !== null && (`+focused+`))(document.activeElement)`) {
			return
		}
	}
	tb.t.Fatalf("%s: Tab never reached %s on %s", tb.who, what, tb.location())
}

// signIn signs the tab in with the dev sign-in button of subject and
// checks the header names the user.
func (tb *tab) signIn(subject string) {
	tb.t.Helper()
	tb.open("/console/signin")
	tb.follow(fmt.Sprintf(`[data-testid="dev-%s"]`, subject))
	tb.signedIn(subject)
}

func (tb *tab) signedIn(subject string) {
	tb.t.Helper()
	if loc := tb.location(); loc != tb.b.base+"/console/requests" {
		tb.t.Fatalf("%s: after sign-in at %s; page says %q", tb.who, loc, tb.text("main"))
	}
	tb.want(`[data-testid="user"]`, subject)
}

// pendingRow is the selector of request id's row in the pending list.
func pendingRow(id string) string { return fmt.Sprintf(`#pending tr[data-request=%q]`, id) }

// TestConsoleInBrowser walks the admin center as its users do, in a real
// browser: an engineer files a request, a support manager approves it, the
// tenant's global admin assigns an approver who approves it; the audit log,
// the tenant's switch, tenant isolation, cross-site form posts and the live
// pending list.
func TestConsoleInBrowser(t *testing.T) {
	started := time.Now()
	path := chromium(t)
	w := startConsoleWorld(t)
	b := startBrowser(t, path, w.base)
	t.Logf("screenshots in %s", b.shots)
	// phase logs the walk's progress, so a slow step shows in -v output.
	phase := func(name string) { t.Logf("%5.1fs %s", time.Since(started).Seconds(), name) }
	ctx := context.Background()
	alice, mary, gina, adam, fay := users["operator"].Subject, users["manager"].Subject, users["admin"].Subject, users["approver"].Subject, users["fab-approver"].Subject

	// 1. The engineer files a request with the form.
	phase("the engineer files a request")
	op := b.newTab("alice")
	op.open("/console/")
	if loc := op.location(); loc != w.base+"/console/signin" {
		t.Fatalf("the console's front door without a session led to %s", loc)
	}
	op.want("h1", "Sign in")
	for _, sub := range []string{alice, mary, gina, adam, fay} {
		if !op.exists(fmt.Sprintf(`[data-testid="dev-%s"]`, sub)) {
			t.Fatalf("the sign-in page offers no button for %s", sub)
		}
	}
	op.shot("signin")
	op.follow(fmt.Sprintf(`[data-testid="dev-%s"]`, alice))
	op.signedIn(alice)
	op.want("#pending", "Nothing is waiting.")
	op.shot("requests-operator")
	op.follow(`nav a[href="/console/requests/new"]`)
	op.want("h1", "New lockbox request")
	op.step("fill the new request form",
		chromedp.SendKeys(chromedp.CSS("#tenant"), "contoso"),
		chromedp.SetValue(chromedp.CSS("#service"), "exchange"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#service").dispatchEvent(new Event("change"))`),
		chromedp.SendKeys(chromedp.CSS("#service_request"), "SR-1001"),
		chromedp.SendKeys(chromedp.CSS("#reason"), "Mailbox will not open after the migration"),
		chromedp.SetValue(chromedp.CSS("#duration"), "2h"),
		chromedp.Click(chromedp.CSS("#act-exchange-Get-Mailbox")),
	)
	// The form shows only the chosen service's activities.
	if visible := evalIn[[]string](op, `Array.from(document.querySelectorAll("fieldset.activities"), f => f.hidden ? "" : f.dataset.service).filter(Boolean)`); !slices.Equal(visible, []string{"exchange"}) {
		t.Fatalf("activity lists shown for service exchange: %v", visible)
	}
	op.shot("new-request")
	op.follow(`[data-testid="submit"]`)
	m := regexp.MustCompile(`/console/requests/([^/?]+)\?done=created$`).FindStringSubmatch(op.location())
	if m == nil {
		t.Fatalf("after filing: at %s; page says %q", op.location(), op.text("main"))
	}
	id := m[1]
	op.want(`[data-testid="flash"]`, "The request was filed. A support manager reviews it next.")
	op.want(`[data-testid="state"]`, "Awaiting manager")
	op.want(".details", id, "contoso", "exchange", "SR-1001", "Get-Mailbox", "2h", alice)
	op.shot("request-filed")
	if r, err := w.srv.Requests.Get(ctx, principal(users["operator"]), id); err != nil || r.State != grants.StatePendingManager ||
		!slices.Equal(r.Activities, []string{"Get-Mailbox"}) || r.Duration.Std() != 2*time.Hour {
		t.Fatalf("filed request in the store: %+v %v", r, err)
	}

	// 2. The support manager finds it in the queue and approves it.
	phase("the manager approves")
	mgr := b.newTab("mary")
	mgr.signIn(mary)
	mgr.want(pendingRow(id), "SR-1001", "contoso", "Awaiting manager", "Your decision")
	mgr.shot("requests-manager")
	mgr.follow(pendingRow(id) + " a")
	mgr.want(`[data-testid="state"]`, "Awaiting manager")
	mgr.shot("request-manager")
	mgr.follow(`[data-testid="action-approve"]`)
	mgr.want("h1", "Approve: request SR-1001")
	mgr.step("write a comment", chromedp.SendKeys(chromedp.CSS("#comment"), "case checked by mary"))
	mgr.shot("confirm-manager")
	mgr.follow(`[data-testid="confirm"]`)
	mgr.want(`[data-testid="flash"]`, "It now awaits the approvers of the tenant")
	mgr.want(`[data-testid="state"]`, "Awaiting customer")
	mgr.want(".details", "Manager approval")

	// 3. The tenant's global admin assigns an approver.
	phase("the admin assigns an approver")
	admin := b.newTab("gina")
	admin.signIn(gina)
	admin.want(pendingRow(id), "Awaiting customer", "Your decision")
	admin.shot("requests-admin")
	admin.follow(`nav a[href="/console/approvers"]`)
	admin.want("main", "No approvers are assigned")
	admin.step("name the approver", chromedp.SendKeys(chromedp.CSS("#user"), adam))
	admin.follow(`[data-testid="add-approver"]`)
	admin.want(`[data-testid="flash"]`, "Approver added.")
	if got := admin.texts("#approvers li span"); !slices.Equal(got, []string{adam}) {
		t.Fatalf("approvers listed after adding %s: %v", adam, got)
	}
	admin.shot("approvers")
	added, err := w.srv.Audit.Search(ctx, principal(users["admin"]), audit.Query{Tenant: "contoso", Operation: record.OpAddApprover})
	if err != nil || len(added.Records) != 1 || added.Records[0].ObjectId != adam || added.Records[0].UserId != gina || added.Records[0].ClientIP != "127.0.0.1" {
		t.Fatalf("approver assignment in the audit log: %+v %v", added.Records, err)
	}

	// 4. The approver, with the keyboard only, signs in and approves with a
	// comment.
	phase("the approver approves by keyboard")
	appr := b.newTab("adam")
	appr.open("/console/signin")
	appr.tabTo("adam's sign-in button", fmt.Sprintf(`el.dataset.testid === "dev-%s"`, adam))
	if status := appr.load("press Enter on adam's sign-in button", chromedp.KeyEvent(kb.Enter)); status != http.StatusOK {
		t.Fatalf("keyboard sign-in: status %d", status)
	}
	appr.signedIn(adam)
	appr.want(pendingRow(id), "SR-1001", "Awaiting customer", "Your decision")
	// Twelve hours to decide from the manager's approval, a moment ago.
	if left := appr.text(pendingRow(id) + " .left"); !regexp.MustCompile(`^(12h|11h [0-5]\dm)$`).MatchString(left) {
		t.Fatalf("time left to decide: %q", left)
	}
	appr.shot("requests-approver")
	phone(t, appr, id)
	appr.follow(pendingRow(id) + " a")
	appr.want(`[data-testid="state"]`, "Awaiting customer")
	appr.want(".details", "Decide by", "left)")
	appr.shot("request-approver")
	appr.follow(`[data-testid="action-approve"]`)
	appr.want("h1", "Approve: request SR-1001")
	appr.tabTo("the comment box", `el.id === "comment"`)
	const comment = "approved by adam in the browser"
	appr.step("type the comment", chromedp.KeyEvent(comment))
	if got := evalIn[string](appr, `document.querySelector("#comment").value`); got != comment {
		t.Fatalf("typed comment: %q", got)
	}
	appr.shot("confirm-approver")
	appr.tabTo("the confirm button", `el.dataset.testid === "confirm"`)
	if status := appr.load("press Enter on Confirm", chromedp.KeyEvent(kb.Enter)); status != http.StatusOK {
		t.Fatalf("keyboard confirm: status %d; page says %q", status, appr.text("main"))
	}
	appr.want(`[data-testid="flash"]`, "The request was approved.")
	appr.want(`[data-testid="state"]`, "Approved")
	appr.want(".details", "Approved by", adam, "Access ends")
	if left := appr.text(`[data-testid="window-left"]`); !regexp.MustCompile(`^\((2h|1h [0-5]\dm) left\)$`).MatchString(left) {
		t.Fatalf("access time left: %q", left)
	}
	appr.want(".timeline", comment, "case checked by mary")
	appr.want("#activity", "Set-AccessToCustomerDataRequest", "Approve", comment)
	appr.shot("request-approved")
	if os.Getenv("LOCKBOX_TEST_SCREENSHOTS") != "" {
		// The picture of the admin center in the docs: what an approver
		// sees, at a laptop's viewport.
		appr.step("1280x900 viewport", chromedp.EmulateViewport(1280, 900))
		viewport, err := chromedp.Run(appr.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		appr.laptop()
		if err := os.WriteFile(filepath.Join(b.shots, "admin-center.png"), viewport, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := w.srv.Requests.Get(ctx, principal(users["operator"]), id); err != nil || r.State != grants.StateApproved || r.Approver != adam {
		t.Fatalf("approved request in the store: %+v %v", r, err)
	}

	// 5. The audit log has the decision, its chain verifies, and the CSV
	// export carries it.
	phase("the audit log")
	admin.follow(`nav a[href="/console/audit"]`)
	admin.follow(`[data-testid="verify"]`)
	admin.want(`[data-testid="verification"]`, "Hash chain intact", "contoso")
	// Each cell by its column's label; a cell's own text, without the
	// smaller line under it (the workload under the operation).
	rows := evalIn[[]map[string]string](admin, `Array.from(document.querySelectorAll("#audit tbody tr"), tr =>
		Object.fromEntries(Array.from(tr.cells, c => [c.dataset.label,
			(c.querySelector(".sub") ? c.childNodes[0].textContent : c.textContent).replace(/\s+/g, " ").trim()])))`)
	var decision, assignment map[string]string
	for _, r := range rows {
		switch r["Operation"] {
		case record.OpTenantDecision:
			decision = r
		case record.OpAddApprover:
			assignment = r
		}
	}
	if decision == nil || decision["User"] != adam || decision["Object"] != id || !strings.Contains(decision["Details"], "Approve") ||
		!strings.Contains(decision["Details"], comment) {
		t.Fatalf("no Set-AccessToCustomerDataRequest row with Approve by %s; rows: %q", adam, rows)
	}
	if assignment == nil || assignment["User"] != gina || assignment["Object"] != adam {
		t.Fatalf("no Add-CustomerLockboxApprover row by %s naming %s; rows: %q", gina, adam, rows)
	}
	admin.shot("audit")
	type download struct {
		Status      int    `json:"status"`
		ContentType string `json:"type"`
		Body        string `json:"body"`
	}
	csv := evalIn[download](admin, `(async () => {
	  const r = await fetch(document.querySelector('[data-testid="export"]').href);
	  return {status: r.status, type: r.headers.get("Content-Type"), body: await r.text()};
	})()`, chromedp.EvalAwaitPromise)
	if csv.Status != 200 || !strings.HasPrefix(csv.ContentType, "text/csv") || !strings.Contains(csv.Body, record.OpTenantDecision) ||
		!strings.Contains(csv.Body, comment) {
		t.Fatalf("CSV export: %d %q\n%s", csv.Status, csv.ContentType, csv.Body)
	}
	// A kept seal the log refuses is said beside its field, which keeps
	// what was pasted; no verdict is shown.
	admin.typeText("#since_seal", "not-a-seal")
	if status := admin.load("check against a kept seal", chromedp.Click(chromedp.CSS(`[data-testid="kept-seal"] button[type="submit"]`))); status != http.StatusBadRequest {
		t.Fatalf("check against a bad kept seal: status %d; page says %q", status, admin.text("main"))
	}
	admin.want(`[data-testid="since-seal-problem"]`, "seal")
	if kept := evalIn[string](admin, `document.querySelector("#since_seal").value`); kept != "not-a-seal" || admin.exists(`[data-testid="verification"]`) {
		t.Fatalf("after a bad kept seal: the field holds %q, a verdict shown: %v", kept, admin.exists(`[data-testid="verification"]`))
	}

	// 6. The global admin turns Customer Lockbox off.
	phase("lockbox off")
	admin.follow(`nav a[href="/console/settings"]`)
	if !evalIn[bool](admin, `document.querySelector("#lockbox_enabled").checked`) {
		t.Fatal("Customer Lockbox shows off before anyone turned it off")
	}
	admin.step("untick Require approval for all data access requests", chromedp.Click(chromedp.CSS(`label[for="lockbox_enabled"]`)))
	admin.follow(`[data-testid="save"]`)
	admin.want(`[data-testid="flash"]`, "Settings saved.")
	if evalIn[bool](admin, `document.querySelector("#lockbox_enabled").checked`) {
		t.Fatal("after saving, the box is still ticked")
	}
	admin.shot("settings")
	if st, err := w.srv.Tenants.Lookup(ctx, "contoso"); err != nil || st.LockboxEnabled {
		t.Fatalf("contoso's settings in the store: %+v %v", st, err)
	}

	// 7. Another tenant's admin sees nothing of contoso.
	phase("fabrikam sees nothing")
	fab := b.newTab("fay")
	fab.signIn(fay)
	// isolated fails if the page shows anything of contoso's request. A
	// page about a URL may echo the id in it, which fay typed.
	isolated := func(where string, echoesID bool) {
		t.Helper()
		body := evalIn[string](fab, `document.documentElement.outerHTML`)
		if strings.Contains(strings.ToLower(body), "contoso") || strings.Contains(body, "SR-1001") || (!echoesID && strings.Contains(body, id)) {
			t.Fatalf("fabrikam's %s shows contoso's data:\n%s", where, fab.text("main"))
		}
	}
	fab.want("#pending", "Nothing is waiting.")
	fab.want("main", "No requests match.")
	isolated("requests page", false)
	fab.shot("requests-fabrikam")
	// Contoso's request looks exactly like one that doesn't exist.
	const madeUp = "01a20882-0000-7000-8000-000000000000"
	for _, path := range []string{"/console/requests/%s", "/console/requests/%s/approve"} {
		var pages [2]string
		for i, rid := range []string{id, madeUp} {
			p := fmt.Sprintf(path, rid)
			if status := fab.load("open "+p, chromedp.Navigate(w.base+p)); status != http.StatusNotFound {
				t.Fatalf("fabrikam's admin GET %s: status %d; page says %q", p, status, fab.text("main"))
			}
			fab.want("h1", "Not found")
			isolated(p, true)
			pages[i] = strings.ReplaceAll(fab.text("main"), rid, "ID")
		}
		if pages[0] != pages[1] {
			t.Fatalf("fabrikam's admin tells contoso's request from a missing one:\n%s\n%s", pages[0], pages[1])
		}
	}
	if status := fab.load("open contoso's request", chromedp.Navigate(w.base+"/console/requests/"+id)); status != http.StatusNotFound {
		t.Fatalf("fabrikam's admin GET contoso's request: status %d", status)
	}
	fab.shot("request-fabrikam-not-found")
	fab.open("/console/audit?verify=1")
	fab.want(`[data-testid="verification"]`, "fabrikam")
	isolated("audit page", false)
	fab.shot("audit-fabrikam")

	// 8. A form on another site can't act with the approver's session: not
	// from a sibling port of the same host (same-site: the SameSite cookie
	// goes along, and the origin check refuses the post before the missing
	// form token would), nor from another site.
	phase("forged posts")
	evil := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(rw, `<!doctype html><html lang="en"><title>You won a prize</title>
<form method="post" action="%s"><input name="comment" value="revoked by a stranger"></form>
<script>document.forms[0].submit()</script></html>`, html.EscapeString(w.base+"/console/requests/"+url.PathEscape(id)+"/revoke"))
	}))
	t.Cleanup(evil.Close)
	_, evilPort, _ := strings.Cut(evil.URL, "127.0.0.1:")
	revokeURL := w.base + "/console/requests/" + id + "/revoke"
	for _, site := range []struct{ name, url string }{
		{"same-site", evil.URL},
		{"cross-site", "http://localhost:" + evilPort},
	} {
		if status := appr.visitForged(site.url, revokeURL); status != http.StatusForbidden {
			t.Fatalf("%s post to %s: status %d; page says %q", site.name, revokeURL, status, appr.text("main"))
		}
		appr.want("h1", "Not allowed")
		appr.want(`[data-testid="error"]`, "This request came from another site and was refused")
		appr.checkAccessible()
		appr.shot("csrf-refused-" + site.name)
		if r, err := w.srv.Requests.Get(ctx, principal(users["operator"]), id); err != nil || r.State != grants.StateApproved {
			t.Fatalf("after the %s post, the request in the store: %+v %v", site.name, r, err)
		}
	}
	// From the console's own origin, but without the form token.
	appr.open("/console/requests/" + id)
	forged := evalIn[download](appr, fmt.Sprintf(`(async () => {
	  const r = await fetch(%q, {method: "POST", body: new URLSearchParams({comment: "no token"})});
	  return {status: r.status, type: r.headers.get("Content-Type"), body: await r.text()};
	})()`, "/console/requests/"+id+"/revoke"), chromedp.EvalAwaitPromise)
	if forged.Status != http.StatusForbidden || !strings.Contains(forged.Body, "This form has expired or did not come from this page") {
		t.Fatalf("same-origin post without the form token: %d\n%s", forged.Status, forged.Body)
	}
	if r, err := w.srv.Requests.Get(ctx, principal(users["operator"]), id); err != nil || r.State != grants.StateApproved {
		t.Fatalf("after the tokenless post, the request in the store: %+v %v", r, err)
	}

	// 9. The manager's open requests page shows a request another engineer
	// files, without a reload.
	phase("live pending list")
	mgr.open("/console/requests")
	// A hidden tab doesn't poll; the user looks at this one.
	if _, err := chromedp.Call(mgr.ctx, cdppage.BringToFront, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	mgr.step("mark the page", chromedp.Evaluate[chromedp.Void](`window.lockboxTestMarker = "no reload"`))
	second, err := w.srv.Requests.Create(ctx, grants.Actor{Principal: principal(users["operator2"]), ClientIP: "127.0.0.1"}, grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-2002", Reason: "calendar doesn't sync", Duration: grants.Duration(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	mgr.step("wait for the new request in the pending list", chromedp.Poll[chromedp.Void](
		fmt.Sprintf(`document.querySelector(%q) !== null`, pendingRow(second.ID)),
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
	if marker := evalIn[string](mgr, `window.lockboxTestMarker ?? "reloaded"`); marker != "no reload" {
		t.Fatalf("the page reloaded (%s) instead of refreshing its list", marker)
	}
	mgr.want(pendingRow(second.ID), "SR-2002", users["operator2"].Subject, "Your decision")
	if updated := evalIn[string](mgr, `document.querySelector("#pending").dataset.updated ?? ""`); updated == "" {
		t.Fatal("the pending list has no data-updated mark from the refresh")
	}
	// A list that did not change is left as it is: swapped in at every
	// poll, it would take the keyboard focus away. The reason's apostrophe is &#39; in the fragment
	// and ' in the page's innerHTML, so the two never compare equal.
	const pendingPolls = `performance.getEntriesByType("resource").filter(e => e.name.includes("/console/requests/pending")).length`
	mgr.step("count the list's swaps", chromedp.Evaluate[chromedp.Void](`window.lockboxSwaps = 0;
	  new MutationObserver(ms => { window.lockboxSwaps += ms.filter(m => m.type === "childList").length; })
	    .observe(document.querySelector("#pending"), {childList: true});
	  window.lockboxPolls = `+pendingPolls))
	mgr.step("wait for four more polls", chromedp.Poll[chromedp.Void](pendingPolls+` >= window.lockboxPolls + 4`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
	// One swap may be a time left that moved to the next minute.
	if swaps := evalIn[int](mgr, `window.lockboxSwaps`); swaps > 1 {
		t.Fatalf("the unchanged pending list was swapped in %d times in four polls", swaps)
	}
	mgr.shot("requests-live")

	// Signing out ends the session: the pages send the browser to sign-in.
	phase("sign out")
	op.open("/console/requests")
	// The page's live list may notice the ended session (401) and go to
	// sign-in itself while the sign-out's own redirect is under way, so
	// where the browser lands is awaited, not one navigation.
	op.step("click Sign out", chromedp.Click(chromedp.CSS(`form[action="/console/signout"] button`)))
	op.waitFor("the sign-in page", fmt.Sprintf(`location.href === %q`, w.base+"/console/signin"))
	op.want("h1", "Sign in")
	op.open("/console/requests")
	if loc := op.location(); loc != w.base+"/console/signin" {
		t.Fatalf("a page after signing out: at %s", loc)
	}

	if took := time.Since(started); took > time.Minute {
		t.Errorf("the browser walk took %s; keep it under a minute", took)
	}
}

// visitForged opens a page of another site that posts a form to target at
// once, and returns the status the console answered that post with. The
// evil page's own load is not awaited: its form may navigate away before
// it finishes.
func (tb *tab) visitForged(page, target string) int64 {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	responses := chromedp.Events(ctx, network.ResponseReceived)
	if _, err := chromedp.Call(ctx, cdppage.Navigate, cdppage.NavigateParams{URL: page}); err != nil {
		tb.t.Fatalf("%s: open %s: %v", tb.who, page, err)
	}
	var status int64
	for ev, err := range responses {
		if err != nil {
			tb.t.Fatalf("%s: no answer to the post from %s: %v", tb.who, page, err)
		}
		if ev.Type == network.ResourceTypeDocument && ev.Response.URL == target {
			status = ev.Response.Status
			break
		}
	}
	tb.waitFor("the answer to the post from "+page, fmt.Sprintf(`location.href === %q`, target))
	return status
}

// waitFor waits until the JavaScript predicate holds in a loaded page.
// While the page navigates, an evaluation may land in the old document's
// dying context and fail: those are retried until the deadline.
func (tb *tab) waitFor(what, predicate string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	js := `document.readyState === "complete" && (` + predicate + `)`
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err == nil && ok {
			return
		}
		if ctx.Err() != nil {
			tb.t.Fatalf("%s: waiting for %s: %s never held (last error: %v)", tb.who, what, predicate, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// phone checks the requests page fits a phone's screen and screenshots it.
func phone(t *testing.T, tb *tab, id string) {
	t.Helper()
	tb.step("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	tb.open("/console/requests")
	tb.want(pendingRow(id), "SR-1001")
	// Wide tables may scroll inside their frame; the page itself must not.
	if w := evalIn[[]int](tb, `[document.documentElement.scrollWidth, document.documentElement.clientWidth]`); w[0] > w[1] {
		t.Errorf("the requests page is %dpx wide on a %dpx phone screen", w[0], w[1])
	}
	tb.shot("requests-phone")
	tb.laptop()
}

// laptop ends any viewport emulation: the page is the browser window's
// size again.
func (tb *tab) laptop() {
	tb.t.Helper()
	tb.step("end the viewport emulation", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, emulation.ClearDeviceMetricsOverride, cdp.Empty{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, emulation.SetTouchEmulationEnabled, emulation.SetTouchEmulationEnabledParams{Enabled: false})
		return err
	}))
	if width := evalIn[int](tb, `window.innerWidth`); width != 1280 {
		tb.t.Fatalf("%s: after the phone, the page is %dpx wide", tb.who, width)
	}
}
