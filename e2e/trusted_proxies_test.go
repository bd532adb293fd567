package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/server"
)

// The X-Forwarded-For lines each surface's call carries in
// throughEverySurface: the client, then the one proxy in front (10.0.0.5).
// Each surface's client differs, so a record showing another call's
// client can't pass.
var forwardedFor = map[string][]string{
	"create":  {"198.51.100.1, 10.0.0.5"},
	"manager": {"192.0.2.200, 198.51.100.7, 10.0.0.5"},
	"console": {"198.51.100.3", "10.0.0.5"}, // two header lines
	"proxied": {"[2001:db8::4]:443, 10.0.0.5"},
	"denied":  {"198.51.100.5,10.0.0.5"},
}

// recordedIPs are the client IPs Lockbox recorded for the calls of
// throughEverySurface, each as the request's history and as the audit
// record say, and as the proxy's denial log line says.
type recordedIPs struct {
	history map[string]string // by surface: create, manager, console
	audit   map[string]string // by surface: create, manager, console, proxied
	denied  string            // the denial's log line
}

// TestTrustedProxies: behind a proxy LOCKBOX_TRUSTED_PROXIES trusts (the
// test's socket peer, 127.0.0.1, and the 10.0.0.5 every call names), the
// client each call's X-Forwarded-For names is what every surface records:
// a request filed and a decision taken through the API, a decision through
// the admin center, an operator call through the proxy and a refused one.
// The upstream sees no X-Forwarded-For.
func TestTrustedProxies(t *testing.T) {
	logs := &lockedBuffer{}
	w := startWith(t, trustedWorld(logs), "LOCKBOX_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")
	got := throughEverySurface(t, w, logs)
	want := map[string]string{
		"create": "198.51.100.1", "manager": "198.51.100.7", "console": "198.51.100.3", "proxied": "2001:db8::4",
	}
	for surface, ip := range want {
		if surface != "proxied" && got.history[surface] != ip {
			t.Errorf("%s: history client_ip = %q, want %q", surface, got.history[surface], ip)
		}
		if got.audit[surface] != ip {
			t.Errorf("%s: audit ClientIP = %q, want %q", surface, got.audit[surface], ip)
		}
	}
	if got.denied != "198.51.100.5" {
		t.Errorf("denial log client_ip = %q, want 198.51.100.5", got.denied)
	}
}

// TestForwardedForIgnored: X-Forwarded-For is the caller's own word unless
// the caller is a trusted proxy, and every surface then records the socket
// address: from a caller that is not a trusted proxy (naming whatever it
// likes, even a chain ending in a trusted proxy), and from any caller
// without the setting (the default).
func TestForwardedForIgnored(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"caller not a trusted proxy", []string{"LOCKBOX_TRUSTED_PROXIES", "10.0.0.0/8, 2001:db8::/32"}},
		{"no trusted proxies", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &lockedBuffer{}
			w := startWith(t, trustedWorld(logs), tc.extra...)
			got := throughEverySurface(t, w, logs)
			for _, m := range []map[string]string{got.history, got.audit} {
				for surface, ip := range m {
					if ip != "127.0.0.1" {
						t.Errorf("%s: client IP %q, want the socket peer 127.0.0.1", surface, ip)
					}
				}
			}
			if got.denied != "127.0.0.1" {
				t.Errorf("denial log client_ip = %q, want the socket peer 127.0.0.1", got.denied)
			}
		})
	}
}

// trustedWorld logs to logs as JSON and offers the tenant's approver the
// admin center's dev sign-in.
func trustedWorld(logs *lockedBuffer) func(*server.Options) {
	return func(o *server.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		o.DevIdentities = []console.DevIdentity{{Principal: principal(users["approver"]), Description: "approver"}}
	}
}

// throughEverySurface files a request over the API, has the manager
// approve it over the API and the tenant's approver in the admin center,
// makes an operator call under it through the proxy and one the proxy
// refuses, each call with its X-Forwarded-For lines of forwardedFor, and
// returns the client IPs Lockbox recorded.
func throughEverySurface(t *testing.T, w *world, logs *lockedBuffer) recordedIPs {
	t.Helper()
	w.assignApprover()
	var req grants.Request
	callAPI(t, w, "operator", "POST", "/v1/requests", grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-7", Reason: "mailbox will not open",
		Duration: grants.Duration(time.Hour), Activities: []string{"Get-Mailbox"},
	}, forwardedFor["create"], http.StatusCreated, &req)
	callAPI(t, w, "manager", "POST", "/v1/requests/"+req.ID+"/approve", map[string]string{"comment": "case checked"},
		forwardedFor["manager"], http.StatusOK, nil)
	consoleApprove(t, w, "approver", req.ID, forwardedFor["console"])

	const mailboxes = "/exchange/tenants/contoso/mailboxes"
	if status, code := proxyCall(t, w, "operator", mailboxes, forwardedFor["proxied"]); status != http.StatusOK {
		t.Fatalf("call under the grant: %d %s", status, code)
	}
	seen := w.upstreams.Service("exchange").Seen()
	if len(seen) != 1 {
		t.Fatalf("the upstream saw %d calls, want 1", len(seen))
	}
	if v := seen[0].Header.Values("X-Forwarded-For"); len(v) != 0 {
		t.Errorf("the upstream got X-Forwarded-For %q, want none", v)
	}
	if status, code := proxyCall(t, w, "operator", "/exchange/tenants/fabrikam/mailboxes", forwardedFor["denied"]); status != http.StatusForbidden || code != "no_grant" {
		t.Fatalf("call without a grant: %d %s, want 403 no_grant", status, code)
	}

	out := recordedIPs{history: map[string]string{}, audit: map[string]string{}}
	// The provider's view: it shows every actor's IP.
	var got grants.Request
	callAPI(t, w, "manager", "GET", "/v1/requests/"+req.ID, nil, nil, http.StatusOK, &got)
	for _, ev := range got.History {
		switch {
		case ev.Action == grants.ActionCreate:
			out.history["create"] = ev.ClientIP
		case ev.Action == grants.ActionApprove && ev.ActorKind == grants.KindProvider:
			out.history["manager"] = ev.ClientIP
		case ev.Action == grants.ActionApprove && ev.ActorKind == grants.KindTenant:
			out.history["console"] = ev.ClientIP
		}
	}
	var recs struct{ Records []record.Record }
	callAPI(t, w, "auditor", "GET", "/v1/audit?tenant=contoso", nil, nil, http.StatusOK, &recs)
	for _, r := range recs.Records {
		switch r.Operation {
		case record.OpNewRequest:
			out.audit["create"] = r.ClientIP
		case record.OpManagerDecision:
			out.audit["manager"] = r.ClientIP
		case record.OpTenantDecision:
			out.audit["console"] = r.ClientIP
		case "Get-Mailbox":
			out.audit["proxied"] = r.ClientIP
		}
	}
	for _, surface := range []string{"create", "manager", "console"} {
		if _, ok := out.history[surface]; !ok {
			t.Errorf("the request's history has no %s event: %+v", surface, got.History)
		}
	}
	for _, surface := range []string{"create", "manager", "console", "proxied"} {
		if _, ok := out.audit[surface]; !ok {
			t.Errorf("the audit log has no record of the %s call", surface)
		}
	}
	// The denial is logged before its answer is written.
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Msg, Tenant string
			ClientIP    string `json:"client_ip"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "proxy call denied" && line.Tenant == "fabrikam" {
			out.denied = line.ClientIP
		}
	}
	if out.denied == "" {
		t.Errorf("no denial log line with a client_ip for the call to fabrikam:\n%s", logs.String())
	}
	return out
}

// callAPI calls the API as user with X-Forwarded-For lines xff, checks the
// status and decodes the answer into v (when not nil).
func callAPI(t *testing.T, w *world, user, method, path string, body any, xff []string, status int, v any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, w.addr+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+w.tokens[user])
	for _, line := range xff {
		req.Header.Add("X-Forwarded-For", line)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != status {
		t.Fatalf("%s %s as %s: %d %s, want %d", method, path, user, resp.StatusCode, b, status)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// consoleApprove signs user in to the admin center and approves request id
// there, the approval carrying X-Forwarded-For lines xff.
func consoleApprove(t *testing.T, w *world, user, id string, xff []string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string, form url.Values, lines []string) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if form != nil {
			rd = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, w.addr+path, rd)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for _, line := range lines {
			req.Header.Add("X-Forwarded-For", line)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if status, b := do("POST", "/console/signin/dev", url.Values{"subject": {users[user].Subject}}, nil); status != http.StatusSeeOther {
		t.Fatalf("dev sign-in: %d %s", status, b)
	}
	confirm := "/console/requests/" + id + "/approve"
	_, page := do("GET", confirm, nil, nil)
	m := csrfRE.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no form token on %s:\n%s", confirm, page)
	}
	if status, b := do("POST", confirm, url.Values{"csrf_token": {string(m[1])}, "comment": {"go ahead"}}, xff); status != http.StatusSeeOther {
		t.Fatalf("approve in the admin center: %d %s", status, b)
	}
}

// proxyCall sends an operator call through the proxy with X-Forwarded-For
// lines xff, and returns the status and a denial's error code.
func proxyCall(t *testing.T, w *world, user, path string, xff []string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", w.proxy+path, nil)
	req.Header.Set("Authorization", "Bearer "+w.tokens[user])
	for _, line := range xff {
		req.Header.Add("X-Forwarded-For", line)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Error struct{ Code string } }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Error.Code
}
