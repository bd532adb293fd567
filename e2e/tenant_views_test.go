package e2e

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/api"
	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/server"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/notify"
)

// hookReceiver is a webhook endpoint that keeps every delivery.
type hookReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	posts []hookPost
}

type hookPost struct {
	header http.Header
	body   []byte
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.posts = append(h.posts, hookPost{r.Header.Clone(), b})
		h.mu.Unlock()
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookReceiver) got() []hookPost {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.posts)
}

// leakCheck fails the test when what a tenant user received names a
// provider identity.
type leakCheck struct {
	t         *testing.T
	forbidden []string
	checked   *int // responses checked, shared with the subtests' checks
}

// in returns the check for subtest t.
func (lc *leakCheck) in(t *testing.T) *leakCheck {
	return &leakCheck{t: t, forbidden: lc.forbidden, checked: lc.checked}
}

func (lc *leakCheck) check(where string, header http.Header, body []byte) {
	lc.t.Helper()
	*lc.checked++
	var hdr strings.Builder
	for k, vs := range header {
		fmt.Fprintf(&hdr, "%s: %s\n", k, strings.Join(vs, ", "))
	}
	for _, f := range lc.forbidden {
		for part, text := range map[string]string{"headers": hdr.String(), "body": string(body)} {
			if i := strings.Index(strings.ToLower(text), strings.ToLower(f)); i >= 0 {
				lc.t.Errorf("%s: %s name the provider identity %q: …%s…", where, part, f, text[max(0, i-200):min(len(text), i+len(f)+100)])
			}
		}
	}
}

// TestTenantViewsNeverShowAProviderIdentity drives a realistic history
// through the real wiring — lockbox off, a manager's final approval, an
// operator call through the proxy, lockbox on (which revokes it), a request
// approved by the manager and the tenant and used, a denial, a cancel, a
// manager's revocation, an expiry, a manager's denial, and an audit record
// as Lockbox wrote it before tenant views hid the manager's id — then
// walks, as the tenant's global admin and as its assigned approver, every
// route of the API (from its route table), every page of the admin center
// (from its route table), lockboxctl's views, every e-mail to a tenant
// recipient and every webhook delivery, and fails on any provider identity
// used in the test, or "provider.example", in a body or a header.
func TestTenantViewsNeverShowAProviderIdentity(t *testing.T) {
	hooks := newHookReceiver(t)
	secret := filepath.Join(t.TempDir(), "webhook-secret")
	writeFile(t, secret, "walk-secret\n")
	tenantUsers := []string{"admin", "approver"}
	w := startWith(t, func(o *server.Options) {
		// Only tenant users sign in to the admin center here: the dev
		// sign-in page lists its identities.
		for _, u := range tenantUsers {
			o.DevIdentities = append(o.DevIdentities, console.DevIdentity{Principal: principal(users[u]), Description: u})
		}
	}, "LOCKBOX_WEBHOOK_URLS", hooks.URL, "LOCKBOX_WEBHOOK_SECRET_FILE", secret)
	ctx := context.Background()

	lc := &leakCheck{t: t, forbidden: []string{"provider.example", tenanttest.Admin.Subject}, checked: new(int)}
	for _, c := range users {
		if c.TenantID == "" || strings.HasSuffix(c.Subject, "@provider.example") {
			lc.forbidden = append(lc.forbidden, c.Subject)
		}
	}
	approver := users["approver"].Subject
	// tenant acts as a tenant user and checks the response too: it is a
	// tenant view.
	tenant := func(user, method, path string, body any) []byte {
		t.Helper()
		status, h, b := w.api(user, method, path, body)
		if status/100 != 2 {
			t.Fatalf("%s %s as %s: %d %s", method, path, user, status, b)
		}
		lc.check(fmt.Sprintf("%s %s as %s", method, path, user), h, b)
		return b
	}
	settings := func(on bool) map[string]any {
		return map[string]any{"lockbox_enabled": on, "notification_addresses": []string{"soc@contoso.example"}}
	}
	fileFor := func(user, service string) grants.Request {
		t.Helper()
		var r grants.Request
		w.ok(user, &r, "request", "create", "--tenant", "contoso", "--service", service, "--service-request", "SR-2001",
			"--reason", "mailbox will not open", "--duration", "2h")
		return r
	}
	const mailboxes = "/exchange/tenants/contoso/mailboxes"
	// delivered waits for the outbox to drain. The tenant's "awaits your
	// decision" goes out only while the request awaits it, so the walk
	// lets it go out before the tenant (or time) decides.
	delivered := func() {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for w.srv.Redis.XLen(ctx, notify.OutboxKey("contoso")).Val() > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the outbox still holds %d entries", w.srv.Redis.XLen(ctx, notify.OutboxKey("contoso")).Val())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// The history.
	tenant("admin", "PUT", "/v1/tenants/contoso/approvers/"+approver, nil)
	tenant("admin", "PUT", "/v1/tenants/contoso/settings", settings(false))
	r1 := w.create("operator")
	w.ok("manager", nil, "request", "approve", r1.ID, "--comment", "case checked")
	if status, code := w.get("operator", mailboxes); status != 200 {
		t.Fatalf("call under the manager's final approval: %d %s", status, code)
	}
	tenant("admin", "PUT", "/v1/tenants/contoso/settings", settings(true)) // ends r1
	r2 := w.create("operator")
	w.ok("manager", nil, "request", "approve", r2.ID, "--comment", "case checked")
	delivered()
	tenant("approver", "POST", "/v1/requests/"+r2.ID+"/approve", map[string]string{"comment": "go ahead"})
	if status, code := w.get("operator", mailboxes); status != 200 {
		t.Fatalf("call under the tenant's approval: %d %s", status, code)
	}
	r3 := w.create("operator2")
	w.ok("manager", nil, "request", "approve", r3.ID)
	delivered()
	tenant("admin", "POST", "/v1/requests/"+r3.ID+"/deny", map[string]string{"comment": "not now"})
	r4 := fileFor("operator", "sharepoint")
	w.ok("operator", nil, "request", "cancel", r4.ID)
	w.ok("manager", nil, "request", "revoke", r2.ID, "--comment", "case closed")
	r5 := w.create("operator2")
	w.ok("manager", nil, "request", "approve", r5.ID)
	delivered()
	w.clock.Advance(grants.DecisionWindow)
	r6 := w.create("operator")
	w.ok("manager", nil, "request", "deny", r6.ID, "--comment", "no case")
	ids := []string{r1.ID, r2.ID, r3.ID, r4.ID, r5.ID, r6.ID}
	want := []grants.State{grants.StateRevoked, grants.StateRevoked, grants.StateDenied, grants.StateCanceled, grants.StateExpired, grants.StateDenied}
	for i, id := range ids {
		var r grants.Request
		if err := json.Unmarshal(tenant("admin", "GET", "/v1/requests/"+id, nil), &r); err != nil || r.State != want[i] {
			t.Fatalf("request %d: %s %v, want %s", i+1, r.State, err, want[i])
		}
	}
	appendLegacyRecord(t, w, r1.ID)

	// Notifications are delivered in the background: wait for the outbox.
	delivered()

	t.Run("e-mails to tenant recipients", func(t *testing.T) {
		lc := lc.in(t)
		files, _ := filepath.Glob(filepath.Join(w.mail, "*.eml"))
		nested, _ := filepath.Glob(filepath.Join(w.mail, "*", "*.eml"))
		toRE := regexp.MustCompile(`(?m)^To: *(.+?)\r?$`)
		tenantMail := 0
		for _, f := range append(files, nested...) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m := toRE.FindSubmatch(b)
			if m == nil {
				t.Errorf("%s has no To header", f)
				continue
			}
			if strings.HasSuffix(string(m[1]), "@provider.example") {
				continue // the provider's own staff: their view
			}
			tenantMail++
			lc.check("e-mail to "+string(m[1])+" ("+filepath.Base(f)+")", nil, b)
		}
		// The approver and the notification address were told of r2 and
		// r5; the approver of r3's denial by the admin.
		if tenantMail < 4 {
			t.Errorf("%d e-mails to tenant recipients: the walk checked too little", tenantMail)
		}
	})
	t.Run("webhooks", func(t *testing.T) {
		lc := lc.in(t)
		posts := hooks.got()
		for i, p := range posts {
			lc.check(fmt.Sprintf("webhook delivery %d", i), p.header, p.body)
		}
		if len(posts) < 10 {
			t.Errorf("%d webhook deliveries: the walk checked too little", len(posts))
		}
	})

	for _, user := range tenantUsers {
		t.Run("api as "+user, func(t *testing.T) {
			lc := lc.in(t)
			walkAPI(t, w, lc, user, ids)
		})
		t.Run("admin center as "+user, func(t *testing.T) {
			lc := lc.in(t)
			walkConsole(t, w, lc, user, ids)
		})
		t.Run("lockboxctl as "+user, func(t *testing.T) {
			lc := lc.in(t)
			for _, args := range [][]string{
				{"request", "list"}, {"-o", "json", "request", "list"}, {"audit", "search", "--tenant", "contoso"},
				{"-o", "json", "audit", "search", "--tenant", "contoso"}, {"-o", "csv", "audit", "search", "--tenant", "contoso"},
				{"audit", "export", "--tenant", "contoso"}, {"audit", "export", "--tenant", "contoso", "--format", "csv"},
				{"audit", "verify", "--tenant", "contoso"}, {"tenant", "settings", "get", "contoso"}, {"approver", "list", "contoso"},
			} {
				_, out, errs := w.ctl(user, args...)
				lc.check("lockboxctl "+strings.Join(args, " "), nil, []byte(out+errs))
			}
			for _, id := range ids {
				for _, args := range [][]string{{"request", "show", id}, {"-o", "json", "request", "show", id}, {"request", "activity", id}, {"-o", "json", "request", "activity", id}} {
					_, out, errs := w.ctl(user, args...)
					lc.check("lockboxctl "+strings.Join(args, " "), nil, []byte(out+errs))
				}
			}
		})
	}

	// What the tenant saw is what it should: the labels, and the records
	// themselves (the walk is not vacuous).
	_, _, body := w.api("admin", "GET", "/v1/audit?tenant=contoso&limit=1000", nil)
	for _, s := range []string{`"UserId":"Microsoft Support"`, `"LockboxApprover":"Microsoft Support"`, `"LockboxApprover":"` + approver + `"`, `"Operation":"Get-Mailbox"`} {
		if !bytes.Contains(body, []byte(s)) {
			t.Errorf("the tenant's audit log lacks %s", s)
		}
	}
	// The provider's own views keep the real identities.
	_, _, body = w.api("auditor", "GET", "/v1/audit?tenant=contoso&limit=1000", nil)
	for _, s := range []string{`"ProviderUserId":"mary@provider.example"`, `"ProviderApproverId":"mary@provider.example"`, `"ProviderUserId":"alice@provider.example"`, `"LockboxApprover":"mary@provider.example"`} {
		if !bytes.Contains(body, []byte(s)) {
			t.Errorf("the provider's audit log lacks %s", s)
		}
	}
	var r grants.Request
	w.ok("manager", &r, "request", "show", r1.ID)
	if r.ManagerApprover != users["manager"].Subject || r.Approver != users["manager"].Subject || r.Requester != users["operator"].Subject {
		t.Errorf("the manager's view of r1: %+v", r)
	}
	if *lc.checked < 300 {
		t.Errorf("only %d responses checked", *lc.checked)
	}
	t.Logf("%d responses, e-mails and deliveries checked", *lc.checked)
}

// appendLegacyRecord appends to contoso's audit log an operator action as
// Lockbox wrote it before tenant views hid the manager: the manager's id in
// LockboxApprover, the short name as OrganizationId. It links it into the
// hash chain as the append script does.
func appendLegacyRecord(t *testing.T, w *world, requestID string) {
	t.Helper()
	ctx := context.Background()
	rec := fmt.Sprintf(`{"Id":"0190a4b4-1c2d-7e3f-8a9b-0c1d2e3f4a5b","CreationTime":%q,"Operation":"Get-Mailbox",`+
		`"OrganizationId":"contoso","Workload":"exchange","UserId":"Microsoft Operator","UserType":"DcAdmin","ClientIP":"192.0.2.10",`+
		`"ResultStatus":"Succeeded","LockboxRequestId":%q,"LockboxApprover":"mary@provider.example","LockboxApprovalTime":%q,`+
		`"Method":"GET","Path":"/tenants/contoso/mailboxes","ProviderUserId":"alice@provider.example"}`,
		w.clock.Now().UTC().Format(time.RFC3339Nano), requestID, w.clock.Now().UTC().Format(time.RFC3339Nano))
	prev := w.srv.Redis.Get(ctx, keys.AuditHead("contoso")).Val()
	sum := sha1.Sum([]byte(prev + "\n" + rec))
	h := hex.EncodeToString(sum[:])
	if err := w.srv.Redis.XAdd(ctx, &redis.XAddArgs{Stream: keys.Audit("contoso"), Values: []string{"r", rec, "p", prev, "h", h}}).Err(); err != nil {
		t.Fatal(err)
	}
	w.srv.Redis.Set(ctx, keys.AuditHead("contoso"), h, 0)
	_, _, body := w.api("admin", "GET", "/v1/audit/verify?tenant=contoso", nil)
	if !bytes.Contains(body, []byte(`"ok":true`)) {
		t.Fatalf("the chain with the legacy record does not verify: %s", body)
	}
}

// walkAPI calls every route of the API's route table as user, with its
// path parameters filled from the scenario, and checks every response.
func walkAPI(t *testing.T, w *world, lc *leakCheck, user string, ids []string) {
	queries := map[string][]string{
		"/v1/requests":     {"", "tenant=contoso", "state=revoked", "state=denied"},
		"/v1/audit":        {"tenant=contoso&limit=1000", "tenant=contoso&user=Microsoft+Support", "tenant=contoso&user=Microsoft+Operator", "tenant=contoso&operation=Get-Mailbox"},
		"/v1/audit/export": {"tenant=contoso", "tenant=contoso&format=jsonl", "tenant=contoso&format=csv"},
		"/v1/audit/verify": {"tenant=contoso"},
	}
	for _, id := range ids {
		queries["/v1/audit"] = append(queries["/v1/audit"], "tenant=contoso&request_id="+id)
		queries["/v1/audit/export"] = append(queries["/v1/audit/export"], "tenant=contoso&format=jsonl&request_id="+id)
	}
	// Writes: what a tenant user might send. Every request is final by
	// now, so acting on one changes nothing and answers an error; the
	// settings are sent as they are; olga is no approver.
	bodies := map[string]any{
		"POST /v1/requests": map[string]any{"tenant": "contoso", "service": "exchange", "service_request": "SR-9",
			"reason": "walk", "duration": "1h"},
		"POST /v1/tenants":                             map[string]any{"id": "newco", "display_name": "NewCo", "domains": []string{"newco.example"}},
		"PATCH /v1/tenants/{tenant}":                   map[string]any{"display_name": "Contoso"},
		"POST /v1/tenants/{tenant}/offboard":           map[string]any{"reason": "walk"},
		"PUT /v1/tenants/{tenant}/settings":            map[string]any{"lockbox_enabled": true, "notification_addresses": []string{"soc@contoso.example"}},
		"PUT /v1/tenants/{tenant}/approvers/{user}":    nil,
		"DELETE /v1/tenants/{tenant}/approvers/{user}": nil,
	}
	for _, rt := range api.Routes() {
		key := rt.Method + " " + rt.Path
		var body any
		switch {
		case rt.Method == http.MethodGet:
		case rt.Method == http.MethodPost && strings.HasPrefix(rt.Path, "/v1/requests/{id}/"):
			body = map[string]string{"comment": "walk"}
		default:
			b, ok := bodies[key]
			if !ok {
				t.Errorf("route %s: the walk does not know what a tenant user would send; add it", key)
				continue
			}
			body = b
		}
		for _, path := range expand(t, rt.Path, map[string][]string{"id": ids, "tenant": {"contoso"}, "user": {"olga@contoso.example"}}) {
			qs := queries[rt.Path]
			if rt.Method != http.MethodGet || len(qs) == 0 {
				qs = []string{""}
			}
			for _, q := range qs {
				target := path
				if q != "" {
					target += "?" + q
				}
				status, h, b := w.api(user, rt.Method, target, body)
				if status >= 500 {
					t.Errorf("%s %s: %d %s", rt.Method, target, status, b)
				}
				lc.check(fmt.Sprintf("%s %s (%d)", rt.Method, target, status), h, b)
			}
		}
	}
}

// expand fills a route pattern's {name} wildcards with every value of
// values[name]; a wildcard without values fails the test.
func expand(t *testing.T, pattern string, values map[string][]string) []string {
	out := []string{""}
	for seg := range strings.SplitSeq(strings.TrimPrefix(pattern, "/"), "/") {
		var next []string
		name, isWild := strings.CutPrefix(seg, "{")
		name = strings.TrimSuffix(strings.TrimSuffix(name, "}"), "...")
		vals := []string{seg}
		if isWild {
			if name == "$" {
				vals = []string{""}
			} else if vals = values[name]; len(vals) == 0 {
				t.Errorf("route %s: the walk has no values for {%s}; add them", pattern, name)
				return nil
			}
		}
		for _, p := range out {
			for _, v := range vals {
				if isWild && name != "$" {
					v = url.PathEscape(v)
				}
				next = append(next, p+"/"+v)
			}
		}
		out = next
	}
	return out
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// walkConsole signs in to the admin center as user and requests every page
// of its route table, with its path parameters filled from the scenario.
func walkConsole(t *testing.T, w *world, lc *leakCheck, user string, ids []string) {
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string, form url.Values) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if form != nil {
			rd = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, w.addr+path, rd)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 500 {
			t.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		lc.check(fmt.Sprintf("console %s %s (%d)", method, path, resp.StatusCode), resp.Header, b)
		return resp.StatusCode, b
	}
	if status, _ := do("POST", "/console/signin/dev", url.Values{"subject": {users[user].Subject}}); status != http.StatusSeeOther {
		t.Fatalf("dev sign-in: %d", status)
	}
	_, page := do("GET", "/console/settings", nil)
	m := csrfRE.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no form token on the settings page")
	}
	csrf := string(m[1])
	actions := []string{"approve", "deny", "revoke", "cancel"}
	queries := map[string][]string{
		// A cursor the page refuses (400) is walked too: its page
		// shows the pending list or the history beside the problem.
		"/console/requests":         {"", "state=revoked", "state=denied", "state=denied&cursor=x", "pending_cursor=x"},
		"/console/requests/pending": {"", "pending_cursor=x"},
		"/console/audit":            {"", "user=Microsoft+Support", "user=Microsoft+Operator", "operation=Get-Mailbox"},
	}
	forms := map[string]url.Values{
		"POST /console/requests/{id}/{action}": {"comment": {"walk"}},
		"POST /console/requests":               {"tenant": {"contoso"}, "service": {"exchange"}, "service_request": {"SR-9"}, "reason": {"walk"}, "duration": {"1h"}},
		"POST /console/settings":               {"lockbox_enabled": {"on"}, "notification_addresses": {"soc@contoso.example"}},
		"POST /console/approvers":              {"user": {"olga@contoso.example"}},
		"POST /console/approvers/remove":       {"user": {"olga@contoso.example"}},
		// The registry's forms: refused to tenant users, and the refusal
		// must not name anyone either.
		"POST /console/tenants":                   {"id": {"newco"}, "display_name": {"NewCo"}, "domains": {"newco.example"}},
		"POST /console/tenants/{tenant}":          {"display_name": {"Contoso"}, "domains": {"contoso.example"}},
		"POST /console/tenants/{tenant}/offboard": {"reason": {"walk"}},
	}
	for _, pattern := range console.Routes() {
		method, path, _ := strings.Cut(pattern, " ")
		switch pattern {
		case "GET /console/static/":
			continue // the same embedded files for everyone
		case "POST /console/signin/dev":
			continue // done above
		case "POST /console/signout":
			defer do("POST", "/console/signout", url.Values{"csrf_token": {csrf}}) // last: it ends the session
			continue
		}
		var form url.Values
		if method != http.MethodGet {
			f, ok := forms[pattern]
			if !ok {
				t.Errorf("console route %s: the walk does not know what a tenant user would send; add it", pattern)
				continue
			}
			form = url.Values{"csrf_token": {csrf}}
			for k, v := range f {
				form[k] = v
			}
		}
		for _, p := range expand(t, path, map[string][]string{"id": ids, "action": actions, "tenant": {"contoso", "fabrikam"}, "key": {"provider", "tenant/contoso"}}) {
			qs := queries[path]
			if len(qs) == 0 {
				qs = []string{""}
			}
			for _, q := range qs {
				target := p
				if q != "" {
					target += "?" + q
				}
				do(method, target, form)
			}
		}
	}
}
