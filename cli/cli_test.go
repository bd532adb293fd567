package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
)

const (
	reqID    = "0190a1b2-0000-7000-8000-000000000001"
	envToken = "env.token.sig"
	fileTok  = "file.token.sig"
)

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

func sampleRequest() wire.Request {
	decide := t0.Add(12 * time.Hour)
	approved := t0.Add(time.Hour)
	expires := approved.Add(2 * time.Hour)
	return wire.Request{
		ID: reqID, Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1001",
		Reason: "mailbox corrupt", Duration: wire.Duration(2 * time.Hour), Activities: []string{"Get-Mailbox"},
		Requester: "op@provider.example", State: wire.StateApproved, CreatedAt: t0, DecideBy: &decide,
		ManagerApprover: "mgr@provider.example", Approver: "alice@contoso.com",
		ApprovedAt: &approved, ExpiresAt: &expires,
		History: []wire.Event{
			{Action: wire.ActionCreate, Actor: "op@provider.example", ActorKind: wire.KindProvider, To: wire.StatePendingManager, At: t0, ClientIP: "10.0.0.1"},
			{Action: wire.ActionApprove, Actor: "alice@contoso.com", ActorKind: wire.KindTenant, From: wire.StatePendingCustomer, To: wire.StateApproved, At: approved, ClientIP: "192.0.2.7", Comment: "go ahead"},
		},
	}
}

func sampleRecords() []record.Record {
	return []record.Record{{
		Id: "a1", CreationTime: record.TimeOf(t0), Operation: record.OpTenantDecision,
		OrganizationId: "5e2b7c1a-3f4d-4e8b-9a6c-1d2e3f4a5b6c", RecordType: record.RecordTypeExchangeAdmin,
		ResultStatus: record.ResultSucceeded, UserKey: "alice@contoso.com", UserType: record.UserTypeAdmin, Version: 1,
		Workload: "exchange", UserId: "alice@contoso.com", ClientIP: "192.0.2.7", ObjectId: reqID,
		ApprovalDecision: record.ApprovalApprove, LockboxTenant: "contoso", LockboxRequestId: reqID,
		Parameters: []record.Parameter{{Name: "Identity", Value: reqID}, {Name: "ApprovalDecision", Value: record.ApprovalApprove}},
	}}
}

// call is what the fake API saw.
type call struct {
	Method, Path, Query, Body string
	// IfMatch is the If-Match header, checked on the calls that expect
	// one and on every call that sends one.
	IfMatch string
}

type reply struct {
	status int
	body   string
}

// settingsETag is the ETag of the fake API's own settings; a reply set for
// GET settings sends none, as a server from before revisions.
const settingsETag = `"3"`

// tenantETag is the ETag of the fake API's registry entry of contoso; a
// reply set for GET /v1/tenants/contoso sends none, as a server from
// before revisions.
const tenantETag = `"5"`

// sampleTenant is the fake API's registry entry of contoso.
func sampleTenant() wire.Tenant {
	return wire.Tenant{ID: "contoso", OrganizationID: "6f9619ff-8b86-d011-b42d-00c04fc964ff", DisplayName: "Contoso Ltd",
		Domains: []string{"contoso.example"}, GlobalAdmins: []string{"it@contoso.example"},
		OnboardedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// fakeAPI records calls and answers like the Lockbox API would, unless a
// reply for "METHOD /path" was set.
type fakeAPI struct {
	mu      sync.Mutex
	calls   []call
	auth    []string
	replies map[string]reply
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	path := r.URL.EscapedPath()
	f.mu.Lock()
	f.calls = append(f.calls, call{Method: r.Method, Path: path, Query: r.URL.RawQuery, Body: string(b), IfMatch: r.Header.Get("If-Match")})
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	rep, ok := f.replies[r.Method+" "+path]
	f.mu.Unlock()
	if !ok {
		rep = defaultReply(r.Method, path, r.URL.Query(), b)
	}
	if path == "/v1/audit/export" && rep.status == http.StatusOK {
		w.Header().Set("Content-Type", "text/csv")
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	if !ok && r.Method == "GET" && strings.HasSuffix(path, "/settings") {
		w.Header().Set("ETag", settingsETag)
	}
	if !ok && r.Method == "GET" && path == "/v1/tenants/contoso" {
		w.Header().Set("ETag", tenantETag)
	}
	w.WriteHeader(rep.status)
	_, _ = io.WriteString(w, rep.body)
}

func defaultReply(method, path string, q url.Values, body []byte) reply {
	ok := func(v any) reply { return reply{http.StatusOK, mustJSON(v)} }
	switch {
	case method == "POST" && path == "/v1/requests":
		r := sampleRequest()
		r.State, r.History = wire.StatePendingManager, r.History[:1]
		return reply{http.StatusCreated, mustJSON(r)}
	case method == "GET" && path == "/v1/requests" && q.Get("tenant") == "paged":
		return ok(pagedRequests(q))
	case method == "GET" && path == "/v1/requests" && q.Get("tenant") == "gap":
		return ok(gapRequests(q))
	case method == "GET" && path == "/v1/requests":
		return ok(map[string]any{"requests": []wire.Request{sampleRequest()}})
	case method == "GET" && strings.HasPrefix(path, "/v1/requests/") && strings.HasSuffix(path, "/activity"):
		return ok(map[string]any{"records": sampleRecords()})
	case strings.HasPrefix(path, "/v1/requests/"):
		return ok(sampleRequest())
	case method == "GET" && path == "/v1/tenants/contoso":
		return ok(sampleTenant())
	case method == "PATCH" && path == "/v1/tenants/contoso":
		t := sampleTenant()
		var u wire.TenantUpdate
		if json.Unmarshal(body, &u) != nil {
			return reply{http.StatusBadRequest, `{"error":{"code":"invalid_json","message":"bad body"}}`}
		}
		if u.DisplayName != nil {
			t.DisplayName = *u.DisplayName
		}
		if u.Domains != nil {
			t.Domains = *u.Domains
		}
		if u.GlobalAdmins != nil {
			t.GlobalAdmins = *u.GlobalAdmins
		}
		return ok(t)
	case method == "GET" && strings.HasSuffix(path, "/settings"):
		return ok(wire.Settings{LockboxEnabled: true, NotificationAddresses: []string{"sec@contoso.com"}})
	case method == "PUT" && strings.HasSuffix(path, "/settings"):
		return reply{http.StatusOK, string(body)}
	case method == "GET" && strings.HasSuffix(path, "/approvers"):
		return ok(map[string]any{"approvers": []string{"alice@contoso.com", "bob@contoso.com"}})
	case strings.Contains(path, "/approvers/"):
		return reply{http.StatusNoContent, ""}
	case method == "GET" && path == "/v1/audit" && q.Get("tenant") == "paged":
		// Two pages: the first names the second.
		if q.Get("cursor") == "" {
			return ok(map[string]any{"records": sampleRecords(), "next_cursor": "cGFnZTI"})
		}
		r := sampleRecords()
		r[0].Id, r[0].Operation = "a2", "Get-Mailbox"
		return ok(map[string]any{"records": r})
	case method == "GET" && path == "/v1/audit":
		return ok(map[string]any{"records": sampleRecords()})
	case method == "GET" && path == "/v1/audit/verify":
		tenant := q.Get("tenant")
		if tenant == "" {
			tenant = "contoso" // the token's, as the server would say
		}
		v := audit.Verification{Tenant: tenant, OK: true, Records: 3}
		if tenant == "fabrikam" {
			v.TrimmedThrough = "1767225600000-4" // retention cut its log
		}
		return ok(v)
	case method == "GET" && path == "/v1/audit/export":
		if q.Get("format") == "csv" {
			return reply{http.StatusOK, "CreationDate,UserIds,Operations,AuditData\n"}
		}
		return reply{http.StatusOK, mustJSON(sampleRecords()[0]) + "\n"}
	}
	return reply{http.StatusNotFound, `{"error":{"code":"not_found","message":"no such route"}}`}
}

type result struct {
	code           int
	stdout, stderr string
	calls          []call
	auth           []string
}

// run runs lockboxctl against a fresh fake API. In args and env, $ADDR
// becomes the server's URL, $HOSTPORT its host:port, and $TOKENFILE a file
// holding fileTok and a newline.
func run(t *testing.T, args []string, env map[string]string, replies map[string]reply) result {
	t.Helper()
	f := &fakeAPI{replies: replies}
	srv := httptest.NewServer(f)
	defer srv.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(fileTok+"\n \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	expand := strings.NewReplacer("$ADDR", srv.URL, "$HOSTPORT", strings.TrimPrefix(srv.URL, "http://"), "$TOKENFILE", tokenFile).Replace
	// Never the real user's stored token.
	full := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
	for k, v := range env {
		full[k] = expand(v)
	}
	args = append([]string(nil), args...)
	for i, a := range args {
		args[i] = expand(a)
	}
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), args, func(k string) string { return full[k] }, &stdout, &stderr)
	f.mu.Lock()
	defer f.mu.Unlock()
	return result{code: code, stdout: stdout.String(), stderr: stderr.String(), calls: f.calls, auth: f.auth}
}

// sameJSON reports whether two JSON texts are equal as values.
func sameJSON(a, b string) bool {
	if a == "" || b == "" {
		return a == b
	}
	var va, vb any
	if json.Unmarshal([]byte(a), &va) != nil || json.Unmarshal([]byte(b), &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// notCountingList is an approver list with an assignment that approves
// nothing, as the API answers it.
const notCountingList = `{"approvers":["alice@contoso.com"],"not_counting":[{"user":"olly@old.example",` +
	`"reason":"its domain old.example is not one of the tenant's domains (contoso.com): it approves nothing unless the domain is registered again"}]}`

func TestCommands(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		replies   map[string]reply
		wantCode  int
		wantCalls []call // nil: don't check; empty: no call at all
		wantAuth  string // default "Bearer " + envToken
		wantOut   []string
		wantErr   []string
		notErr    []string // must not be in stderr
		check     func(t *testing.T, stdout string)
	}{
		{
			name: "request create",
			args: []string{"request", "create", "--tenant", "contoso", "--service", "exchange", "--service-request", "SR-1001",
				"--reason", "mailbox corrupt", "--duration", "2h", "--activity", "Get-Mailbox", "--activity", "Get-InboxRule,Get-MailboxFolder"},
			wantCalls: []call{{Method: "POST", Path: "/v1/requests",
				Body: `{"tenant":"contoso","service":"exchange","service_request":"SR-1001","reason":"mailbox corrupt","duration":"2h","activities":["Get-Mailbox","Get-InboxRule","Get-MailboxFolder"]}`}},
			// Pending: the last column is when it must be decided by.
			wantOut: []string{"ID", "TENANT", "SERVICE", "STATE", "REQUESTER", "CREATED", "EXPIRES/DECIDE BY", reqID, "pending_manager", "op@provider.example", "2026-03-04 22:00:00Z"},
		},
		{
			name: "request create as json",
			args: []string{"-o", "json", "request", "create", "--tenant=contoso", "--service=exchange", "--service-request=SR-1",
				"--reason=r", "--duration=90m"},
			wantCalls: []call{{Method: "POST", Path: "/v1/requests",
				Body: `{"tenant":"contoso","service":"exchange","service_request":"SR-1","reason":"r","duration":"1h30m"}`}},
			check: func(t *testing.T, out string) {
				var r wire.Request
				if err := json.Unmarshal([]byte(out), &r); err != nil || r.ID != reqID || r.State != wire.StatePendingManager {
					t.Errorf("output %q decoded to %+v, %v", out, r, err)
				}
				if !strings.Contains(out, "\n  \"id\"") {
					t.Errorf("JSON output is not indented:\n%s", out)
				}
			},
		},
		{
			name:      "request create missing flags",
			args:      []string{"request", "create", "--tenant", "contoso", "--duration", "2h"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"missing --service, --service-request, --reason", "see 'lockboxctl request create --help'"},
			notErr:    []string{"Usage:"},
		},
		{
			name: "request create bad duration",
			args: []string{"request", "create", "--tenant", "c", "--service", "exchange", "--service-request", "1",
				"--reason", "r", "--duration", "two hours"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{`--duration "two hours"`},
		},
		{
			// One line and a pointer to the help, not a screen of usage.
			name: "a bad flag value is one line and a hint",
			args: []string{"request", "create", "--tenant", "c", "--service", "exchange", "--service-request", "1",
				"--reason", "r", "--duration", "2"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr: []string{"lockboxctl: --duration \"2\" must be a positive duration with a unit, such as 2h, 90m or 1h30m\n" +
				"see 'lockboxctl request create --help'\n"},
		},
		{
			name: "-o id prints only the id",
			args: []string{"request", "create", "--tenant", "c", "--service", "exchange", "--service-request", "1",
				"--reason", "r", "--duration", "2h", "-o", "id"},
			wantCalls: []call{{Method: "POST", Path: "/v1/requests",
				Body: `{"tenant":"c","service":"exchange","service_request":"1","reason":"r","duration":"2h"}`}},
			check: func(t *testing.T, out string) {
				if out != reqID+"\n" {
					t.Errorf("output = %q, want the id alone", out)
				}
			},
		},
		{
			name:      "-o id lists ids",
			args:      []string{"-o", "id", "request", "list"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests"}},
			check: func(t *testing.T, out string) {
				if out != reqID+"\n" {
					t.Errorf("output = %q, want the id alone", out)
				}
			},
		},
		{
			name:      "-o id is only for commands that return requests",
			args:      []string{"tenant", "settings", "get", "contoso", "-o", "id"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{`-o id is not available for "tenant settings get": use table, json, yaml`},
		},
		{
			name: "request list pending means both pending states",
			args: []string{"request", "list", "--state", "pending", "--limit", "5"},
			wantCalls: []call{
				{Method: "GET", Path: "/v1/requests", Query: "limit=5&state=pending_manager"},
				{Method: "GET", Path: "/v1/requests", Query: "limit=5&state=pending_customer"},
			},
		},
		{
			name: "request list with filters",
			args: []string{"request", "list", "--tenant", "contoso", "--state", "pending_customer",
				"--created-after", "2026-03-01T00:00:00+01:00", "--limit", "5"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests",
				Query: "created_after=2026-02-28T23%3A00%3A00Z&limit=5&state=pending_customer&tenant=contoso"}},
			wantOut: []string{reqID, "contoso", "exchange", "approved", "2026-03-04 10:00:00Z", "2026-03-04 13:00:00Z"},
			check: func(t *testing.T, out string) {
				lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
				if len(lines) != 2 {
					t.Fatalf("want a header and one row, got:\n%s", out)
				}
				for _, col := range [][2]string{{"TENANT", "contoso"}, {"STATE", "approved"}, {"EXPIRES", "2026-03-04 13:00:00Z"}} {
					if h, v := strings.Index(lines[0], col[0]), strings.Index(lines[1], col[1]); h != v || h < 0 {
						t.Errorf("column %s at %d, its value at %d:\n%s", col[0], h, v, out)
					}
				}
			},
		},
		{
			name:      "request list with a date",
			args:      []string{"request", "list", "--created-after", "2026-03-01"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests", Query: "created_after=2026-03-01T00%3A00%3A00Z"}},
		},
		{
			name:      "request list as json, flag after the command",
			args:      []string{"request", "list", "-o", "json"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests"}},
			check: func(t *testing.T, out string) {
				var v struct{ Requests []wire.Request }
				if err := json.Unmarshal([]byte(out), &v); err != nil || len(v.Requests) != 1 || v.Requests[0].ID != reqID {
					t.Errorf("output %q decoded to %+v, %v", out, v, err)
				}
			},
		},
		{
			name:      "request list empty as json is an empty list",
			args:      []string{"--output=json", "request", "list"},
			replies:   map[string]reply{"GET /v1/requests": {200, `{"requests":null}`}},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests"}},
			check: func(t *testing.T, out string) {
				if !sameJSON(out, `{"requests":[]}`) {
					t.Errorf("output = %q", out)
				}
			},
		},
		{
			name:      "global flag between the command words",
			args:      []string{"request", "-o", "json", "list"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests"}},
			wantOut:   []string{`"requests": [`},
		},
		{
			name:      "request list bad state",
			args:      []string{"request", "list", "--state", "open"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{`--state "open" must be one of Pending, Approved`, "pending_manager"},
		},
		{
			name:      "request list bad time",
			args:      []string{"request", "list", "--created-after", "yesterday"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"--created-after", "RFC 3339"},
		},
		{
			name:      "request show",
			args:      []string{"request", "show", reqID},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests/" + reqID}},
			wantOut: []string{reqID, "Service request:", "SR-1001", "Reason:", "mailbox corrupt", "Duration:", "2h",
				"Activities:", "Get-Mailbox", "Manager approver:", "mgr@provider.example", "History:",
				"create", "op@provider.example (provider)", "approve", "alice@contoso.com (tenant)", "pending_customer", "192.0.2.7", "go ahead"},
			check: func(t *testing.T, out string) {
				if strings.Contains(out, "2h0m0s") {
					t.Errorf("duration in the long form:\n%s", out)
				}
			},
		},
		{
			name:      "request show escapes the id",
			args:      []string{"request", "show", "a/b?c"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests/a%2Fb%3Fc"}},
		},
		{
			name:      "request show needs an id",
			args:      []string{"request", "show"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"missing ID", "see 'lockboxctl request show --help'"},
		},
		{
			name:      "request show takes one id",
			args:      []string{"request", "show", "a", "b"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{`unexpected argument "b"`},
		},
		{
			name:      "approve with the comment after the id",
			args:      []string{"request", "approve", reqID, "--comment", "looks right"},
			wantCalls: []call{{Method: "POST", Path: "/v1/requests/" + reqID + "/approve", Body: `{"comment":"looks right"}`}},
			wantOut:   []string{reqID, "approved"},
		},
		{
			name:      "deny with the comment before the id",
			args:      []string{"request", "deny", "--comment=not needed", reqID},
			wantCalls: []call{{Method: "POST", Path: "/v1/requests/" + reqID + "/deny", Body: `{"comment":"not needed"}`}},
		},
		{
			name:      "cancel without a comment",
			args:      []string{"request", "cancel", reqID},
			wantCalls: []call{{Method: "POST", Path: "/v1/requests/" + reqID + "/cancel", Body: `{"comment":""}`}},
		},
		{
			name:      "revoke as json",
			args:      []string{"request", "revoke", reqID, "-o", "json", "--comment", "fixed"},
			wantCalls: []call{{Method: "POST", Path: "/v1/requests/" + reqID + "/revoke", Body: `{"comment":"fixed"}`}},
			check: func(t *testing.T, out string) {
				if !sameJSON(out, mustJSON(sampleRequest())) {
					t.Errorf("output = %s", out)
				}
			},
		},
		{
			name:      "a comment that looks like a flag, after --",
			args:      []string{"request", "deny", "--comment", "--", "--", reqID},
			wantCalls: []call{{Method: "POST", Path: "/v1/requests/" + reqID + "/deny", Body: `{"comment":"--"}`}},
		},
		{
			name:      "an id after -- is positional",
			args:      []string{"request", "show", "--", "-odd"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests/-odd"}},
		},
		{
			name:      "tenant settings get",
			args:      []string{"tenant", "settings", "get", "contoso"},
			wantCalls: []call{{Method: "GET", Path: "/v1/tenants/contoso/settings"}},
			wantOut:   []string{"Tenant:", "contoso", "Customer Lockbox:", "on", "sec@contoso.com"},
		},
		{
			name:      "tenant settings get as json",
			args:      []string{"tenant", "settings", "get", "contoso", "-o", "json"},
			wantCalls: []call{{Method: "GET", Path: "/v1/tenants/contoso/settings"}},
			check: func(t *testing.T, out string) {
				if !sameJSON(out, `{"lockbox_enabled":true,"notification_addresses":["sec@contoso.com"],"etag":"\"3\""}`) {
					t.Errorf("output = %s", out)
				}
			},
		},
		{
			name: "tenant settings set lockbox off keeps the addresses",
			args: []string{"tenant", "settings", "set", "contoso", "--lockbox", "OFF"},
			wantCalls: []call{
				{Method: "GET", Path: "/v1/tenants/contoso/settings"},
				{Method: "PUT", Path: "/v1/tenants/contoso/settings", Body: `{"lockbox_enabled":false,"notification_addresses":["sec@contoso.com"]}`, IfMatch: settingsETag},
			},
			wantOut: []string{"Customer Lockbox:", "off"},
		},
		{
			name: "tenant settings set addresses keeps the switch",
			args: []string{"tenant", "settings", "set", "--notify", "a@contoso.com,b@contoso.com", "contoso"},
			wantCalls: []call{
				{Method: "GET", Path: "/v1/tenants/contoso/settings"},
				{Method: "PUT", Path: "/v1/tenants/contoso/settings", Body: `{"lockbox_enabled":true,"notification_addresses":["a@contoso.com","b@contoso.com"]}`, IfMatch: settingsETag},
			},
			wantOut: []string{"a@contoso.com, b@contoso.com"},
		},
		{
			name: "tenant settings set empty notify clears the addresses",
			args: []string{"tenant", "settings", "set", "contoso", "--notify", "", "--lockbox", "on"},
			wantCalls: []call{
				{Method: "GET", Path: "/v1/tenants/contoso/settings"},
				{Method: "PUT", Path: "/v1/tenants/contoso/settings", Body: `{"lockbox_enabled":true,"notification_addresses":[]}`, IfMatch: settingsETag},
			},
		},
		{
			// Another administrator saved a change between the command's
			// read and its write: refused, said in one line, exit 3.
			name: "tenant settings set refused when the settings changed meanwhile",
			args: []string{"tenant", "settings", "set", "contoso", "--lockbox", "off"},
			replies: map[string]reply{"PUT /v1/tenants/contoso/settings": {412,
				`{"error":{"code":"settings_changed","message":"the Customer Lockbox settings of tenant contoso changed since they were read"}}`}},
			wantCode: 3,
			wantCalls: []call{
				{Method: "GET", Path: "/v1/tenants/contoso/settings"},
				{Method: "PUT", Path: "/v1/tenants/contoso/settings", Body: `{"lockbox_enabled":false,"notification_addresses":["sec@contoso.com"]}`, IfMatch: settingsETag},
			},
			wantErr: []string{"lockboxctl: the settings of tenant contoso changed while this command ran; nothing was saved: run it again to apply your change to the new settings (settings_changed, HTTP 412)\n"},
			check: func(t *testing.T, out string) {
				if out != "" {
					t.Errorf("stdout = %q, want nothing: no settings were saved", out)
				}
			},
		},
		{
			// A server from before revisions sends no ETag: the change is
			// sent as before, without If-Match.
			name:    "tenant settings set against a server without ETags",
			args:    []string{"tenant", "settings", "set", "contoso", "--lockbox", "off"},
			replies: map[string]reply{"GET /v1/tenants/contoso/settings": {200, `{"lockbox_enabled":true,"notification_addresses":[]}`}},
			wantCalls: []call{
				{Method: "GET", Path: "/v1/tenants/contoso/settings"},
				{Method: "PUT", Path: "/v1/tenants/contoso/settings", Body: `{"lockbox_enabled":false,"notification_addresses":[]}`},
			},
			wantOut: []string{"Customer Lockbox:", "off"},
		},
		{
			name: "tenant offboard",
			args: []string{"tenant", "offboard", "contoso", "--reason", "contract ended"},
			replies: map[string]reply{"POST /v1/tenants/contoso/offboard": {200, `{"id":"contoso","organization_id":"0f6c2c4e-7a8b-4c3d-9e1f-2a3b4c5d6e7f",` +
				`"display_name":"Contoso","domains":["contoso.example"],"global_admins":[],"onboarded_at":"2026-03-01T09:00:00Z","state":"offboarded",` +
				`"offboarded":{"at":"2026-03-04T10:00:00Z","by":"lara@provider.example","reason":"contract ended"}}`}},
			wantCalls: []call{{Method: "POST", Path: "/v1/tenants/contoso/offboard", Body: `{"reason":"contract ended"}`}},
			wantOut:   []string{"Offboarded:", "2026-03-04 10:00:00Z by lara@provider.example", "Offboard reason:", "contract ended"},
		},
		{
			name:      "tenant offboard without a reason",
			args:      []string{"tenant", "offboard", "contoso"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"missing --reason", "see 'lockboxctl tenant offboard --help'"},
		},
		{
			name: "tenant offboard refused",
			args: []string{"tenant", "offboard", "contoso", "--reason", "r"},
			replies: map[string]reply{"POST /v1/tenants/contoso/offboard": {403,
				`{"error":{"code":"forbidden","message":"only the provider's Lockbox administrators (role lockbox-admin) can onboard tenants and change their registry entries"}}`}},
			wantCode:  3,
			wantCalls: []call{{Method: "POST", Path: "/v1/tenants/contoso/offboard", Body: `{"reason":"r"}`}},
			wantErr:   []string{"lockbox-admin", "(forbidden, HTTP 403)"},
		},
		{
			// --domain replaces the list with what it names: nothing is
			// read, so nothing is compared.
			name:      "tenant update --domain replaces the domains unconditionally",
			args:      []string{"tenant", "update", "contoso", "--domain", "contoso.example,contoso.com"},
			wantCalls: []call{{Method: "PATCH", Path: "/v1/tenants/contoso", Body: `{"domains":["contoso.example","contoso.com"]}`}},
			wantOut:   []string{"Domains:", "contoso.example, contoso.com"},
		},
		{
			// --add-/--remove- change the lists as read, and send the
			// ETag read.
			name: "tenant update --add-domain sends the ETag it read",
			args: []string{"tenant", "update", "contoso", "--add-domain", "Contoso.COM", "--add-global-admin", "gina@contoso.example,it@contoso.example", "--name", "Contoso"},
			wantCalls: []call{
				{Method: "GET", Path: "/v1/tenants/contoso"},
				{Method: "PATCH", Path: "/v1/tenants/contoso", IfMatch: tenantETag,
					Body: `{"display_name":"Contoso","domains":["contoso.example","contoso.com"],"global_admins":["it@contoso.example","gina@contoso.example"]}`},
			},
			wantOut: []string{"contoso.example, contoso.com", "it@contoso.example, gina@contoso.example"},
		},
		{
			name: "tenant update --remove-domain",
			args: []string{"tenant", "update", "contoso", "--remove-domain", "CONTOSO.example.", "--add-domain", "contoso.com", "--remove-global-admin", "it@contoso.example"},
			wantCalls: []call{
				{Method: "GET", Path: "/v1/tenants/contoso"},
				{Method: "PATCH", Path: "/v1/tenants/contoso", IfMatch: tenantETag, Body: `{"domains":["contoso.com"],"global_admins":[]}`},
			},
		},
		{
			// Another administrator saved a change between the command's
			// read and its write: refused, said in one line, exit 3.
			name: "tenant update refused when the entry changed meanwhile",
			args: []string{"tenant", "update", "contoso", "--add-domain", "contoso.com"},
			replies: map[string]reply{"PATCH /v1/tenants/contoso": {412,
				`{"error":{"code":"tenant_changed","message":"the registry entry of tenant contoso changed since it was read"}}`}},
			wantCode: 3,
			wantCalls: []call{
				{Method: "GET", Path: "/v1/tenants/contoso"},
				{Method: "PATCH", Path: "/v1/tenants/contoso", IfMatch: tenantETag, Body: `{"domains":["contoso.example","contoso.com"]}`},
			},
			wantErr: []string{"lockboxctl: the registry entry of tenant contoso changed while this command ran; nothing was saved: run it again to apply your change to the new entry (tenant_changed, HTTP 412)\n"},
			check: func(t *testing.T, out string) {
				if out != "" {
					t.Errorf("stdout = %q, want nothing: nothing was saved", out)
				}
			},
		},
		{
			// A server from before revisions sends no ETag: the change is
			// sent as before, without If-Match.
			name:    "tenant update --add-domain against a server without ETags",
			args:    []string{"tenant", "update", "contoso", "--add-domain", "contoso.com"},
			replies: map[string]reply{"GET /v1/tenants/contoso": {200, mustJSON(sampleTenant())}},
			wantCalls: []call{
				{Method: "GET", Path: "/v1/tenants/contoso"},
				{Method: "PATCH", Path: "/v1/tenants/contoso", Body: `{"domains":["contoso.example","contoso.com"]}`},
			},
		},
		{
			// Domains are lower-cased in ASCII only, as the registry keeps
			// them: a Kelvin sign (U+212A) is sent as typed, for the server
			// to refuse, never turned into the k of another domain.
			name: "tenant update --add-domain folds ASCII only",
			args: []string{"tenant", "update", "contoso", "--add-domain", "\u212aontoso.example"},
			wantCalls: []call{
				{Method: "GET", Path: "/v1/tenants/contoso"},
				{Method: "PATCH", Path: "/v1/tenants/contoso", IfMatch: tenantETag, Body: `{"domains":["contoso.example","\u212aontoso.example"]}`},
			},
		},
		{
			name: "tenant update --remove-domain matches ASCII case only",
			args: []string{"tenant", "update", "contoso", "--remove-domain", "\u212aontoso.example"},
			replies: map[string]reply{"GET /v1/tenants/contoso": {200,
				`{"id":"contoso","display_name":"Contoso","domains":["contoso.example","kontoso.example"]}`}},
			wantCode:  1,
			wantCalls: []call{{Method: "GET", Path: "/v1/tenants/contoso"}},
			wantErr:   []string{"is not a domain of tenant contoso; nothing was saved"},
		},
		{
			// Removing what is not there is most likely a typo: nothing
			// is saved.
			name:      "tenant update --remove-domain of a domain the tenant lacks",
			args:      []string{"tenant", "update", "contoso", "--remove-domain", "contoso.con"},
			wantCode:  1,
			wantCalls: []call{{Method: "GET", Path: "/v1/tenants/contoso"}},
			wantErr:   []string{"contoso.con is not a domain of tenant contoso; nothing was saved"},
		},
		{
			name:      "tenant update --domain with --add-domain",
			args:      []string{"tenant", "update", "contoso", "--domain", "contoso.example", "--add-domain", "contoso.com"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"--domain replaces the domains: give it, or --add-domain and --remove-domain, not both"},
		},
		{
			name:      "tenant update --global-admin with --remove-global-admin",
			args:      []string{"tenant", "update", "contoso", "--global-admin", "", "--remove-global-admin", "it@contoso.example"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"not both"},
		},
		{
			name:      "tenant update --add-domain with no value",
			args:      []string{"tenant", "update", "contoso", "--add-domain", ""},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"--add-domain needs a value"},
		},
		{
			name:      "tenant settings set with nothing to change",
			args:      []string{"tenant", "settings", "set", "contoso"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"nothing to change"},
		},
		{
			name:      "tenant settings set bad switch",
			args:      []string{"tenant", "settings", "set", "contoso", "--lockbox", "maybe"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{`--lockbox "maybe" must be on or off`},
		},
		{
			name:      "tenant settings set stops when the read fails",
			args:      []string{"tenant", "settings", "set", "contoso", "--lockbox", "off"},
			replies:   map[string]reply{"GET /v1/tenants/contoso/settings": {403, `{"error":{"code":"forbidden","message":"only global administrators of contoso can change its lockbox settings"}}`}},
			wantCode:  3, // the API refused
			wantCalls: []call{{Method: "GET", Path: "/v1/tenants/contoso/settings"}},
			wantErr:   []string{"lockboxctl: only global administrators of contoso can change its lockbox settings (forbidden, HTTP 403)"},
		},
		{
			// Only a 403 makes a part "not visible" (tenants.txtar); a
			// server failure must not pass for one.
			name: "describe tenant fails when the settings can't be read",
			args: []string{"describe", "tenant", "contoso"},
			replies: map[string]reply{
				"GET /v1/tenants/contoso":          {200, `{"id":"contoso","display_name":"Contoso","domains":["contoso.com"]}`},
				"GET /v1/tenants/contoso/settings": {500, `{"error":{"code":"internal","message":"internal error"}}`},
			},
			wantCode:  1,
			wantCalls: []call{{Method: "GET", Path: "/v1/tenants/contoso"}, {Method: "GET", Path: "/v1/tenants/contoso/settings"}},
			wantErr:   []string{"lockboxctl: internal error (internal, HTTP 500)"},
		},
		{
			name: "describe tenant fails when the approvers can't be read",
			args: []string{"describe", "tenant", "contoso"},
			replies: map[string]reply{
				"GET /v1/tenants/contoso":           {200, `{"id":"contoso","display_name":"Contoso","domains":["contoso.com"]}`},
				"GET /v1/tenants/contoso/approvers": {404, `{"error":{"code":"not_found","message":"no tenant contoso"}}`},
			},
			wantCode: 3,
			wantErr:  []string{"lockboxctl: no tenant contoso (not_found, HTTP 404)"},
		},
		{
			// 409 with the API's document is a refusal (exit 3), unless it
			// is the "changed concurrently; retry" one: that call failed
			// and may pass when run again.
			name:     "approve refused: decided first by someone else",
			args:     []string{"request", "approve", reqID},
			replies:  map[string]reply{"POST /v1/requests/" + reqID + "/approve": {409, `{"error":{"code":"invalid_transition","message":"cannot approve a request that is pending_customer"}}`}},
			wantCode: 3,
			wantErr:  []string{"(invalid_transition, HTTP 409"},
		},
		{
			name:     "approve met a concurrent change",
			args:     []string{"request", "approve", reqID},
			replies:  map[string]reply{"POST /v1/requests/" + reqID + "/approve": {409, `{"error":{"code":"conflict","message":"request is changing concurrently; retry"}}`}},
			wantCode: 1,
			wantErr:  []string{"(conflict, HTTP 409"},
		},
		{
			name:      "approver list",
			args:      []string{"approver", "list", "contoso"},
			wantCalls: []call{{Method: "GET", Path: "/v1/tenants/contoso/approvers"}},
			wantOut:   []string{"APPROVER", "alice@contoso.com", "bob@contoso.com"},
		},
		{
			name:      "approver list as json",
			args:      []string{"approver", "list", "contoso", "--output", "json"},
			wantCalls: []call{{Method: "GET", Path: "/v1/tenants/contoso/approvers"}},
			check: func(t *testing.T, out string) {
				if !sameJSON(out, `{"approvers":["alice@contoso.com","bob@contoso.com"]}`) {
					t.Errorf("output = %s", out)
				}
			},
		},
		{
			// An assignment whose domain the tenant no longer has approves
			// nothing: it is listed as not counting, with why, never as one
			// of the approvers.
			name:    "approver list names the assignments that count for nothing apart",
			args:    []string{"approver", "list", "contoso"},
			replies: map[string]reply{"GET /v1/tenants/contoso/approvers": {200, notCountingList}},
			check: func(t *testing.T, out string) {
				if !regexp.MustCompile(`(?m)^alice@contoso\.com +yes$`).MatchString(out) ||
					!regexp.MustCompile(`(?m)^olly@old\.example +no: its domain old\.example is not one of the tenant's domains`).MatchString(out) {
					t.Errorf("output = %s", out)
				}
			},
		},
		{
			name:    "approver list as json keeps the assignments that count for nothing",
			args:    []string{"approver", "list", "contoso", "-o", "json"},
			replies: map[string]reply{"GET /v1/tenants/contoso/approvers": {200, notCountingList}},
			check: func(t *testing.T, out string) {
				if !sameJSON(out, notCountingList) {
					t.Errorf("output = %s", out)
				}
			},
		},
		{
			name: "describe tenant names the approvers that count for nothing apart",
			args: []string{"describe", "tenant", "contoso"},
			replies: map[string]reply{
				"GET /v1/tenants/contoso":           {200, `{"id":"contoso","display_name":"Contoso","domains":["contoso.com"]}`},
				"GET /v1/tenants/contoso/approvers": {200, notCountingList},
			},
			check: func(t *testing.T, out string) {
				if !regexp.MustCompile(`(?m)^Approvers: +alice@contoso\.com$`).MatchString(out) ||
					!regexp.MustCompile(`(?m)^Not counting: +olly@old\.example \(its domain old\.example is not one`).MatchString(out) {
					t.Errorf("output = %s", out)
				}
			},
		},
		{
			name:      "approver add",
			args:      []string{"approver", "add", "contoso", "carol@contoso.com"},
			wantCalls: []call{{Method: "PUT", Path: "/v1/tenants/contoso/approvers/carol@contoso.com"}},
			wantOut:   []string{"carol@contoso.com is an approver of tenant contoso."},
		},
		{
			name:      "approver remove",
			args:      []string{"approver", "remove", "contoso", "bob@contoso.com"},
			wantCalls: []call{{Method: "DELETE", Path: "/v1/tenants/contoso/approvers/bob@contoso.com"}},
			wantOut:   []string{"bob@contoso.com is no longer an approver of tenant contoso."},
		},
		// A typo in the name printed the sentence of a removal and exited
		// 0: the API says no approver was removed, and so does the
		// command, exit 3 as for the API's every 404 (not 1, which
		// scripts retry).
		{
			name: "approver remove of a user who is no approver",
			args: []string{"approver", "remove", "contoso", "Zed@Contoso.com"},
			replies: map[string]reply{"DELETE /v1/tenants/contoso/approvers/Zed@Contoso.com": {404,
				`{"error":{"code":"approver_not_found","message":"zed@contoso.com is not an approver of tenant contoso: nothing was changed"}}`}},
			wantCode:  3,
			wantCalls: []call{{Method: "DELETE", Path: "/v1/tenants/contoso/approvers/Zed@Contoso.com"}},
			wantErr:   []string{"lockboxctl: zed@contoso.com is not an approver of tenant contoso; nothing was changed (approver_not_found, HTTP 404)\n"},
			check: func(t *testing.T, out string) {
				if out != "" {
					t.Errorf("stdout = %q, want nothing", out)
				}
			},
		},
		// The table's sentence names the user as the tenant keeps it, as
		// -o json does: it printed Carol@Contoso.com as typed.
		{
			name:      "approver add in another case",
			args:      []string{"approver", "add", "contoso", "Carol@Contoso.com"},
			wantCalls: []call{{Method: "PUT", Path: "/v1/tenants/contoso/approvers/Carol@Contoso.com"}},
			wantOut:   []string{"carol@contoso.com is an approver of tenant contoso."},
		},
		// The API answers 204: a script still gets a document saying what
		// now holds, the user as the tenant keeps it (in lower case).
		{
			name:      "approver add as json says who is an approver",
			args:      []string{"-o", "json", "approver", "add", "contoso", "Carol@Contoso.com"},
			wantCalls: []call{{Method: "PUT", Path: "/v1/tenants/contoso/approvers/Carol@Contoso.com"}},
			check: func(t *testing.T, out string) {
				if !sameJSON(out, `{"tenant":"contoso","user":"carol@contoso.com","approver":true}`) {
					t.Errorf("output = %q", out)
				}
			},
		},
		{
			name:      "approver remove as yaml says who is not an approver",
			args:      []string{"approver", "remove", "contoso", "bob@contoso.com", "-o", "yaml"},
			wantCalls: []call{{Method: "DELETE", Path: "/v1/tenants/contoso/approvers/bob@contoso.com"}},
			check: func(t *testing.T, out string) {
				if out != "tenant: contoso\nuser: bob@contoso.com\napprover: false\n" {
					t.Errorf("output = %q", out)
				}
			},
		},
		{
			name:      "approver add needs a user",
			args:      []string{"approver", "add", "contoso"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"missing USER"},
		},
		{
			name:      "audit search",
			args:      []string{"audit", "search", "--tenant", "contoso", "--limit", "20"},
			wantCalls: []call{{Method: "GET", Path: "/v1/audit", Query: "limit=20&tenant=contoso"}},
			wantOut: []string{"CreationDate", "Operation", "UserId", "ApprovalDecision", "ObjectId", "ClientIP",
				"2026-03-04 10:00:00Z", "Set-AccessToCustomerDataRequest", "alice@contoso.com", "Approve", reqID, "192.0.2.7"},
		},
		{
			name:      "audit search as json",
			args:      []string{"audit", "search", "--tenant", "contoso", "-o", "json"},
			wantCalls: []call{{Method: "GET", Path: "/v1/audit", Query: "tenant=contoso"}},
			check: func(t *testing.T, out string) {
				var v struct{ Records []record.Record }
				if err := json.Unmarshal([]byte(out), &v); err != nil || !reflect.DeepEqual(v.Records, sampleRecords()) {
					t.Errorf("output %q decoded to %+v, %v", out, v, err)
				}
			},
		},
		{
			name: "audit search with every filter",
			args: []string{"audit", "search", "--tenant", "contoso", "--from", "2026-01-02", "--to", "2026-01-03T10:00:00+01:00",
				"--user", "Microsoft Operator", "--operation", "Get-Mailbox", "--request-id", reqID, "--cursor", "MS0x"},
			wantCalls: []call{{Method: "GET", Path: "/v1/audit", Query: "cursor=MS0x&from=2026-01-02T00%3A00%3A00Z&operation=Get-Mailbox&request_id=" + reqID + "&tenant=contoso&to=2026-01-03T09%3A00%3A00Z&user=Microsoft+Operator"}},
			wantOut:   []string{"Set-AccessToCustomerDataRequest"},
		},
		{
			// As in the console: a date as the upper bound includes that
			// whole day, not just its first instant.
			name:      "audit search --to a date includes the whole day",
			args:      []string{"audit", "search", "--tenant", "contoso", "--from", "2026-11-01", "--to", "2026-11-30"},
			wantCalls: []call{{Method: "GET", Path: "/v1/audit", Query: "from=2026-11-01T00%3A00%3A00Z&tenant=contoso&to=2026-11-30T23%3A59%3A59.999999999Z"}},
			wantOut:   []string{"Set-AccessToCustomerDataRequest"},
		},
		{
			// Go's zero time, given, is a bound like any other: the
			// records created before year 1, none.
			name:      "audit search --to the zero time",
			args:      []string{"audit", "search", "--tenant", "contoso", "--to", "0001-01-01T00:00:00Z"},
			wantCalls: []call{{Method: "GET", Path: "/v1/audit", Query: "tenant=contoso&to=0001-01-01T00%3A00%3A00Z"}},
			wantOut:   []string{"Set-AccessToCustomerDataRequest"},
		},
		{
			name:      "audit search --to the zero time after --from",
			args:      []string{"audit", "search", "--tenant", "contoso", "--from", "2026-01-02", "--to", "0001-01-01T00:00:00Z"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"--to must not be before --from"},
		},
		{
			name: "audit search --all follows the cursor",
			args: []string{"audit", "search", "--tenant", "paged", "--limit", "1", "--all", "-o", "json"},
			wantCalls: []call{
				{Method: "GET", Path: "/v1/audit", Query: "limit=1&tenant=paged"},
				{Method: "GET", Path: "/v1/audit", Query: "cursor=cGFnZTI&limit=1&tenant=paged"},
			},
			check: func(t *testing.T, out string) {
				var v struct {
					Records    []record.Record
					NextCursor string `json:"next_cursor"`
				}
				if err := json.Unmarshal([]byte(out), &v); err != nil || len(v.Records) != 2 || v.Records[1].Id != "a2" || v.NextCursor != "" {
					t.Errorf("output %q decoded to %+v, %v", out, v, err)
				}
			},
		},
		{
			name:      "audit search without --all names the next page",
			args:      []string{"audit", "search", "--tenant", "paged"},
			wantCalls: []call{{Method: "GET", Path: "/v1/audit", Query: "tenant=paged"}},
			wantOut:   []string{"Set-AccessToCustomerDataRequest"},
			wantErr:   []string{"--cursor cGFnZTI"},
		},
		{
			name:      "audit search as csv",
			args:      []string{"audit", "search", "--tenant", "contoso", "-o", "csv"},
			wantCalls: []call{{Method: "GET", Path: "/v1/audit", Query: "tenant=contoso"}},
			check: func(t *testing.T, out string) {
				rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
				if err != nil || len(rows) != 2 || strings.Join(rows[0], ",") != "CreationDate,UserIds,Operations,AuditData" {
					t.Fatalf("csv %q: %v", out, err)
				}
				if rows[1][0] != "2026-03-04T10:00:00Z" || rows[1][1] != "alice@contoso.com" || rows[1][2] != record.OpTenantDecision || !sameJSON(rows[1][3], mustJSON(sampleRecords()[0])) {
					t.Errorf("row = %q", rows[1])
				}
			},
		},
		{
			name:      "audit search takes the RFC 3339 spellings with a space and a lower-case z",
			args:      []string{"audit", "search", "--tenant", "contoso", "--from", "2026-01-02 08:00:00z", "--to", "2026-01-03 10:00:00+01:00"},
			wantCalls: []call{{Method: "GET", Path: "/v1/audit", Query: "from=2026-01-02T08%3A00%3A00Z&tenant=contoso&to=2026-01-03T09%3A00%3A00Z"}},
			wantOut:   []string{"Set-AccessToCustomerDataRequest"},
		},
		{
			// The two searches Microsoft's Customer Lockbox documentation
			// gives: the decisions, and the engineers' actions.
			name:      "Search-UnifiedAuditLog -Operations Set-AccessToCustomerDataRequest",
			args:      []string{"Search-UnifiedAuditLog", "-StartDate", "2026-03-01", "-EndDate", "2026-03-05", "-Operations", "Set-AccessToCustomerDataRequest", "--tenant", "contoso"},
			wantCalls: []call{{Method: "GET", Path: "/v1/audit", Query: "from=2026-03-01T00%3A00%3A00Z&limit=100&operation=Set-AccessToCustomerDataRequest&tenant=contoso&to=2026-03-05T00%3A00%3A00Z"}},
			wantOut:   []string{"Set-AccessToCustomerDataRequest"},
		},
		{
			name:      "Search-UnifiedAuditLog -UserIds \"Microsoft Operator\", any case, times without a zone in UTC",
			args:      []string{"search-unifiedauditlog", "-startdate", "2026-03-01 08:00", "-enddate:2026-03-01 18:00:00", "-userids", "Microsoft Operator", "-SessionCommand", "ReturnLargeSet", "-o", "csv"},
			wantCalls: []call{{Method: "GET", Path: "/v1/audit", Query: "from=2026-03-01T08%3A00%3A00Z&limit=100&to=2026-03-01T18%3A00%3A00Z&user=Microsoft+Operator"}},
			wantOut:   []string{"CreationDate,UserIds,Operations,AuditData"},
		},
		{
			// -ResultSize above the API's page reads pages until it has
			// that many records, or none are left.
			name: "Search-UnifiedAuditLog -ResultSize reads the pages it takes",
			args: []string{"Search-UnifiedAuditLog", "-StartDate", "2026-03-01T00:00:00Z", "-EndDate", "2026-03-02 00:00:00z", "-ResultSize", "1000", "--tenant", "paged", "-o", "json"},
			wantCalls: []call{
				{Method: "GET", Path: "/v1/audit", Query: "from=2026-03-01T00%3A00%3A00Z&limit=1000&tenant=paged&to=2026-03-02T00%3A00%3A00Z"},
				{Method: "GET", Path: "/v1/audit", Query: "cursor=cGFnZTI&from=2026-03-01T00%3A00%3A00Z&limit=999&tenant=paged&to=2026-03-02T00%3A00%3A00Z"},
			},
			check: func(t *testing.T, out string) {
				var v struct{ Records []record.Record }
				if err := json.Unmarshal([]byte(out), &v); err != nil || len(v.Records) != 2 || v.Records[1].Id != "a2" {
					t.Errorf("output %q decoded to %+v, %v", out, v, err)
				}
			},
		},
		{
			// The API's pages hold at most 1000 records.
			name:      "Search-UnifiedAuditLog -ResultSize 5000 asks pages of 1000",
			args:      []string{"Search-UnifiedAuditLog", "-StartDate", "2026-03-01", "-EndDate", "2026-03-02", "-ResultSize", "5000", "--tenant", "contoso"},
			wantCalls: []call{{Method: "GET", Path: "/v1/audit", Query: "from=2026-03-01T00%3A00%3A00Z&limit=1000&tenant=contoso&to=2026-03-02T00%3A00%3A00Z"}},
			wantOut:   []string{"Set-AccessToCustomerDataRequest"},
		},
		{
			name:      "Search-UnifiedAuditLog stops at -ResultSize and names the cursor",
			args:      []string{"Search-UnifiedAuditLog", "-StartDate", "2026-03-01", "-EndDate", "2026-03-02", "-ResultSize", "1", "--tenant", "paged"},
			wantCalls: []call{{Method: "GET", Path: "/v1/audit", Query: "from=2026-03-01T00%3A00%3A00Z&limit=1&tenant=paged&to=2026-03-02T00%3A00%3A00Z"}},
			wantOut:   []string{"Set-AccessToCustomerDataRequest"},
			wantErr:   []string{"More records: add --cursor cGFnZTI (or a larger -ResultSize, up to 5000)."},
		},
		{
			name:      "Search-UnifiedAuditLog needs both dates",
			args:      []string{"Search-UnifiedAuditLog", "-UserIds", "Microsoft Operator"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"missing -StartDate and -EndDate"},
		},
		{
			name:      "Search-UnifiedAuditLog refuses a short date",
			args:      []string{"Search-UnifiedAuditLog", "-StartDate", "5/1/2026", "-EndDate", "2026-05-02"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{`-StartDate "5/1/2026" is in a short date format`},
		},
		{
			name:      "Search-UnifiedAuditLog refuses several operations",
			args:      []string{"Search-UnifiedAuditLog", "-StartDate", "2026-05-01", "-EndDate", "2026-05-02", "-Operations", "Set-AccessToCustomerDataRequest,Get-Mailbox"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"-Operations names 2 values: Lockbox searches one operation at a time"},
		},
		{
			name:      "Search-UnifiedAuditLog refuses -SessionId",
			args:      []string{"Search-UnifiedAuditLog", "-StartDate", "2026-05-01", "-EndDate", "2026-05-08", "-SessionId", "UnifiedAuditLogSearch 05/08/17", "-SessionCommand", "ReturnLargeSet"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"-SessionId is not taken"},
		},
		{
			name:      "Search-UnifiedAuditLog refuses an empty -UserIds",
			args:      []string{"Search-UnifiedAuditLog", "-StartDate", "2026-05-01", "-EndDate", "2026-05-08", "-UserIds", ""},
			wantCode:  2,
			wantCalls: []call{},
		},
		{
			name:      "Search-UnifiedAuditLog -ResultSize over 5000",
			args:      []string{"Search-UnifiedAuditLog", "-StartDate", "2026-05-01", "-EndDate", "2026-05-08", "-ResultSize", "5001"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"-ResultSize 5001 must be from 1 to 5000"},
		},
		{
			name:      "Search-UnifiedAuditLog -EndDate before -StartDate",
			args:      []string{"Search-UnifiedAuditLog", "-StartDate", "2026-05-08", "-EndDate", "2026-05-01"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"-EndDate must not be before -StartDate"},
		},
		{
			name:      "audit search refuses a bad time",
			args:      []string{"audit", "search", "--tenant", "contoso", "--from", "yesterday"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"--from \"yesterday\""},
		},
		{
			name:      "csv is only for audit output",
			args:      []string{"request", "list", "-o", "csv"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{`-o csv is not available for "request list"`},
		},
		{
			name:      "audit export writes JSON lines",
			args:      []string{"audit", "export", "--tenant", "contoso", "--operation", "Get-Mailbox"},
			wantCalls: []call{{Method: "GET", Path: "/v1/audit/export", Query: "format=jsonl&operation=Get-Mailbox&tenant=contoso"}},
			check: func(t *testing.T, out string) {
				if !sameJSON(out, mustJSON(sampleRecords()[0])) || strings.Count(out, "\n") != 1 {
					t.Errorf("output = %q", out)
				}
			},
		},
		{
			name:      "audit export as csv",
			args:      []string{"audit", "export", "--tenant", "contoso", "--format", "csv"},
			wantCalls: []call{{Method: "GET", Path: "/v1/audit/export", Query: "format=csv&tenant=contoso"}},
			check: func(t *testing.T, out string) {
				if out != "CreationDate,UserIds,Operations,AuditData\n" {
					t.Errorf("output = %q", out)
				}
			},
		},
		{
			// "--tenant $T" with T unset: left out, the server reads every
			// tenant's log for a provider audit reader.
			name:      "audit export refuses an empty --tenant",
			args:      []string{"audit", "export", "--tenant", ""},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"--tenant is empty"},
		},
		{
			name:      "audit search refuses an empty filter",
			args:      []string{"audit", "search", "--tenant", "contoso", "--user="},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"--user is empty"},
		},
		{
			name:      "audit verify refuses an empty --tenant",
			args:      []string{"audit", "verify", "--tenant="},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"--tenant is empty"},
		},
		{
			name:      "request list refuses an empty --tenant",
			args:      []string{"get", "requests", "--tenant", ""},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"--tenant is empty"},
		},
		{
			name:      "request list refuses an empty --state",
			args:      []string{"request", "list", "--state="},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"--state is empty"},
		},
		{
			name:      "Get-AccessToCustomerDataRequest refuses an empty --tenant",
			args:      []string{"Get-AccessToCustomerDataRequest", "--tenant", ""},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"--tenant is empty"},
		},
		{
			name:      "audit export refuses other formats",
			args:      []string{"audit", "export", "--tenant", "contoso", "--format", "xml"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"must be csv or jsonl"},
		},
		{
			name:      "request activity",
			args:      []string{"request", "activity", reqID},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests/" + reqID + "/activity", Query: "limit=1000"}},
			wantOut:   []string{"CreationDate", "Set-AccessToCustomerDataRequest", "alice@contoso.com"},
		},
		{
			name:      "request activity as csv",
			args:      []string{"request", "activity", reqID, "-o", "csv"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests/" + reqID + "/activity", Query: "limit=1000"}},
			wantOut:   []string{"CreationDate,UserIds,Operations,AuditData\n2026-03-04T10:00:00Z,alice@contoso.com,Set-AccessToCustomerDataRequest,"},
		},
		{
			name:      "audit verify without a tenant leaves it to the server",
			args:      []string{"audit", "verify"},
			wantCalls: []call{{Method: "GET", Path: "/v1/audit/verify", Query: ""}},
			wantOut:   []string{"audit chain of contoso: intact, 3 records"},
		},
		{
			name:      "audit verify says where retention cut the chain",
			args:      []string{"audit", "verify", "--tenant", "fabrikam"},
			wantCalls: []call{{Method: "GET", Path: "/v1/audit/verify", Query: "tenant=fabrikam"}},
			wantOut: []string{"audit chain of fabrikam: intact, 3 records\n" +
				"  trimmed: retention removed the records through entry 1767225600000-4 (appended 2026-01-01T00:00:00Z); the chain is verified from the one after it\n"},
		},
		{
			name:      "audit export without a tenant leaves it to the server",
			args:      []string{"audit", "export"},
			wantCalls: []call{{Method: "GET", Path: "/v1/audit/export", Query: "format=jsonl"}},
		},
		{
			name:      "audit search without a tenant leaves it to the server",
			args:      []string{"audit", "search"},
			wantCalls: []call{{Method: "GET", Path: "/v1/audit", Query: ""}},
		},
		{
			name:      "Get-AccessToCustomerDataRequest lists",
			args:      []string{"Get-AccessToCustomerDataRequest", "--tenant", "contoso", "--state", "pending_customer"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests", Query: "state=pending_customer&tenant=contoso"}},
			wantOut:   []string{"ID", "TENANT", reqID},
		},
		{
			name:      "Get-AccessToCustomerDataRequest shows one",
			args:      []string{"get-accesstocustomerdatarequest", "--request-id", reqID},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests/" + reqID}},
			wantOut:   []string{"History:"},
		},
		{
			name:      "Get-AccessToCustomerDataRequest with PowerShell spelling",
			args:      []string{"Get-AccessToCustomerDataRequest", "-RequestId", reqID, "-o", "json"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests/" + reqID}},
			wantOut:   []string{`"id": "` + reqID + `"`},
		},
		{
			name:      "Set-AccessToCustomerDataRequest approves",
			args:      []string{"Set-AccessToCustomerDataRequest", "--request-id", reqID, "--approval-decision", "Approve", "--comment", "ok"},
			wantCalls: []call{{Method: "POST", Path: "/v1/requests/" + reqID + "/approve", Body: `{"comment":"ok"}`}},
		},
		{
			name:      "Set-AccessToCustomerDataRequest denies, any case",
			args:      []string{"set-accesstocustomerdatarequest", "-RequestId", reqID, "-ApprovalDecision", "DENY", "-Comment", "no"},
			wantCalls: []call{{Method: "POST", Path: "/v1/requests/" + reqID + "/deny", Body: `{"comment":"no"}`}},
		},
		{
			name:      "Set-AccessToCustomerDataRequest bad decision",
			args:      []string{"Set-AccessToCustomerDataRequest", "--request-id", reqID, "--approval-decision", "maybe"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{`-ApprovalDecision "maybe" must be Approve, Deny or Cancel`, "see 'lockboxctl Set-AccessToCustomerDataRequest --help'"},
		},
		{
			name:      "Set-AccessToCustomerDataRequest needs a request id",
			args:      []string{"Set-AccessToCustomerDataRequest", "--approval-decision", "Approve"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"missing -RequestId"},
		},
		{
			name: "Get-AccessToCustomerDataRequest -ApprovalStatus Pending is both pending states",
			args: []string{"Get-AccessToCustomerDataRequest", "-ApprovalStatus", "Pending", "-CreatedAfter", "2026-03-01"},
			wantCalls: []call{
				{Method: "GET", Path: "/v1/requests", Query: "created_after=2026-03-01T00%3A00%3A00Z&state=pending_manager"},
				{Method: "GET", Path: "/v1/requests", Query: "created_after=2026-03-01T00%3A00%3A00Z&state=pending_customer"},
			},
			wantOut: []string{"EXPIRES/DECIDE BY", reqID},
		},
		{
			name:      "Get-AccessToCustomerDataRequest takes parameters in any case",
			args:      []string{"get-accesstocustomerdatarequest", "-approvalstatus", "approved", "-CREATEDAFTER", "2026-03-01T10:00:00Z"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests", Query: "created_after=2026-03-01T10%3A00%3A00Z&state=approved"}},
		},
		{
			name:      "Get-AccessToCustomerDataRequest takes PowerShell's -Name:value",
			args:      []string{"Get-AccessToCustomerDataRequest", "-ApprovalStatus:Cancelled", "-CreatedAfter:2026-03-01T10:00:00Z"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests", Query: "created_after=2026-03-01T10%3A00%3A00Z&state=canceled"}},
		},
		{
			name:      "Get-AccessToCustomerDataRequest takes Lockbox states and kebab-case flags",
			args:      []string{"Get-AccessToCustomerDataRequest", "--approval-status", "PendingCustomer", "--created-after", "2026-03-01", "--tenant", "contoso", "--limit", "3"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests", Query: "created_after=2026-03-01T00%3A00%3A00Z&limit=3&state=pending_customer&tenant=contoso"}},
		},
		{
			name:      "Get-AccessToCustomerDataRequest --state still works",
			args:      []string{"Get-AccessToCustomerDataRequest", "--state", "expired", "-o", "id"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests", Query: "state=expired"}},
			check: func(t *testing.T, out string) {
				if out != reqID+"\n" {
					t.Errorf("output = %q", out)
				}
			},
		},
		{
			name:      "Get-AccessToCustomerDataRequest -requestid shows one",
			args:      []string{"Get-AccessToCustomerDataRequest", "-requestid", reqID},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests/" + reqID}},
			wantOut:   []string{"History:"},
		},
		{
			name:      "Get-AccessToCustomerDataRequest -RequestId with a paging flag",
			args:      []string{"Get-AccessToCustomerDataRequest", "-RequestId", reqID, "--limit", "5"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"-RequestId shows one request: it can't be combined with --tenant, --limit, --cursor or --all"},
		},
		{
			// The cmdlet's parameters are all filters of one listing:
			// -RequestId with -ApprovalStatus shows the request if it is
			// in that status.
			name:      "Get-AccessToCustomerDataRequest -RequestId -ApprovalStatus it is in",
			args:      []string{"Get-AccessToCustomerDataRequest", "-RequestId", reqID, "-ApprovalStatus", "Approved"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests/" + reqID}},
			wantOut:   []string{"History:", reqID},
		},
		{
			name:      "Get-AccessToCustomerDataRequest -RequestId -ApprovalStatus it is not in",
			args:      []string{"Get-AccessToCustomerDataRequest", "-RequestId", reqID, "-ApprovalStatus", "Pending", "-o", "json"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests/" + reqID}},
			wantErr:   []string{"Request " + reqID + " is approved, not Pending: nothing to show.\n"},
			check: func(t *testing.T, out string) {
				if out != "" {
					t.Errorf("stdout = %q, want nothing", out)
				}
			},
		},
		{
			name:      "Get-AccessToCustomerDataRequest -RequestId -CreatedAfter before it",
			args:      []string{"get-accesstocustomerdatarequest", "-requestid", reqID, "-createdafter", "2026-03-04 09:59:59z", "-o", "id"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests/" + reqID}},
			check: func(t *testing.T, out string) {
				if out != reqID+"\n" {
					t.Errorf("output = %q", out)
				}
			},
		},
		{
			// After, strictly, as the API's created_after lists.
			name:      "Get-AccessToCustomerDataRequest -RequestId -CreatedAfter its creation",
			args:      []string{"Get-AccessToCustomerDataRequest", "-RequestId", reqID, "-CreatedAfter", "2026-03-04T10:00:00Z"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests/" + reqID}},
			wantErr:   []string{"Request " + reqID + " was created at 2026-03-04 10:00:00Z, not after 2026-03-04 10:00:00Z: nothing to show.\n"},
			check: func(t *testing.T, out string) {
				if out != "" {
					t.Errorf("stdout = %q, want nothing", out)
				}
			},
		},
		{
			name:      "Get-AccessToCustomerDataRequest -RequestId with a bad status",
			args:      []string{"Get-AccessToCustomerDataRequest", "-RequestId", reqID, "-ApprovalStatus", "open"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{`-ApprovalStatus "open" must be one of`},
		},
		{
			name:      "Get-AccessToCustomerDataRequest bad status",
			args:      []string{"Get-AccessToCustomerDataRequest", "-ApprovalStatus", "open"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{`-ApprovalStatus "open" must be one of Pending, Approved, Denied, Canceled, Expired, Revoked, Completed`},
			notErr:    []string{"Usage:"},
		},
		{
			// Microsoft documents -CreatedAfter in UTC as
			// "2021-05-06 14:30:00z": a space for the "T" and a lower-case
			// "z", both RFC 3339 spellings (section 5.6).
			name:      "Get-AccessToCustomerDataRequest -CreatedAfter as Microsoft documents it",
			args:      []string{"Get-AccessToCustomerDataRequest", "-ApprovalStatus", "Approved", "-CreatedAfter", "2021-05-06 14:30:00z"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests", Query: "created_after=2021-05-06T14%3A30%3A00Z&state=approved"}},
		},
		{
			name:      "Get-AccessToCustomerDataRequest -CreatedAfter with a lower-case t and an offset",
			args:      []string{"Get-AccessToCustomerDataRequest", "-CreatedAfter:2021-05-06t16:30:00+02:00", "-ApprovalStatus:Denied"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests", Query: "created_after=2021-05-06T14%3A30%3A00Z&state=denied"}},
		},
		{
			// Without a zone, the time would be read in the zone the
			// command runs in: refused, as before.
			name:      "Get-AccessToCustomerDataRequest -CreatedAfter without a zone",
			args:      []string{"Get-AccessToCustomerDataRequest", "-CreatedAfter", "2021-05-06 14:30:00"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{`-CreatedAfter "2021-05-06 14:30:00" must be an RFC 3339 time`},
		},
		{
			name:      "Get-AccessToCustomerDataRequest bad time",
			args:      []string{"Get-AccessToCustomerDataRequest", "-CreatedAfter", "yesterday"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{`-CreatedAfter "yesterday" must be an RFC 3339 time`},
		},
		{
			name:      "Get-AccessToCustomerDataRequest unknown parameter prints the usage",
			args:      []string{"Get-AccessToCustomerDataRequest", "-Identity", reqID},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"flag provided but not defined: -Identity", "-ApprovalStatus S", "-CreatedAfter TIME", "-RequestId ID"},
		},
		{
			name:      "Set-AccessToCustomerDataRequest -ApprovalDecision Cancel cancels",
			args:      []string{"Set-AccessToCustomerDataRequest", "-RequestId", reqID, "-ApprovalDecision", "Cancel", "-Comment", "not needed"},
			wantCalls: []call{{Method: "POST", Path: "/v1/requests/" + reqID + "/cancel", Body: `{"comment":"not needed"}`}},
		},
		{
			// Microsoft 365's cmdlet takes -ServiceName (EOP, Exchange,
			// SharePoint, Teams): a script copied from there decides only
			// a request of that service.
			name: "Set-AccessToCustomerDataRequest -ServiceName Exchange decides an exchange request",
			args: []string{"Set-AccessToCustomerDataRequest", "-ApprovalDecision", "Approve", "-RequestId", reqID, "-ServiceName", "Exchange", "-Comment", "go ahead"},
			wantCalls: []call{
				{Method: "GET", Path: "/v1/requests/" + reqID},
				{Method: "POST", Path: "/v1/requests/" + reqID + "/approve", Body: `{"comment":"go ahead"}`},
			},
		},
		{
			name: "Set-AccessToCustomerDataRequest -servicename:eop, any case",
			args: []string{"set-accesstocustomerdatarequest", "-requestid", reqID, "-servicename:eop", "-approvaldecision", "deny"},
			wantCalls: []call{
				{Method: "GET", Path: "/v1/requests/" + reqID},
				{Method: "POST", Path: "/v1/requests/" + reqID + "/deny", Body: `{"comment":""}`},
			},
		},
		{
			name: "Set-AccessToCustomerDataRequest --service-name takes a Lockbox service name",
			args: []string{"Set-AccessToCustomerDataRequest", "--request-id", reqID, "--approval-decision", "Cancel", "--service-name", "EXCHANGE"},
			wantCalls: []call{
				{Method: "GET", Path: "/v1/requests/" + reqID},
				{Method: "POST", Path: "/v1/requests/" + reqID + "/cancel", Body: `{"comment":""}`},
			},
		},
		{
			name: "Set-AccessToCustomerDataRequest -ServiceName SharePoint covers a onedrive request",
			args: []string{"Set-AccessToCustomerDataRequest", "-RequestId", reqID, "-ApprovalDecision", "Approve", "-ServiceName", "SharePoint"},
			replies: map[string]reply{"GET /v1/requests/" + reqID: {200, func() string {
				r := sampleRequest()
				r.Service = "onedrive"
				return mustJSON(r)
			}()}},
			wantCalls: []call{
				{Method: "GET", Path: "/v1/requests/" + reqID},
				{Method: "POST", Path: "/v1/requests/" + reqID + "/approve", Body: `{"comment":""}`},
			},
		},
		{
			// Another service's request under that id is not decided:
			// the API is never asked to.
			name:      "Set-AccessToCustomerDataRequest -ServiceName of another service decides nothing",
			args:      []string{"Set-AccessToCustomerDataRequest", "-RequestId", reqID, "-ApprovalDecision", "Approve", "-ServiceName", "SharePoint"},
			wantCode:  3,
			wantCalls: []call{{Method: "GET", Path: "/v1/requests/" + reqID}},
			wantErr:   []string{"lockboxctl: request " + reqID + " is for exchange, not -ServiceName SharePoint: nothing was decided\n"},
			check: func(t *testing.T, out string) {
				if out != "" {
					t.Errorf("stdout = %q, want nothing", out)
				}
			},
		},
		{
			name: "Set-AccessToCustomerDataRequest -ServiceName of a request not found",
			args: []string{"Set-AccessToCustomerDataRequest", "-RequestId", reqID, "-ApprovalDecision", "Deny", "-ServiceName", "Teams"},
			replies: map[string]reply{"GET /v1/requests/" + reqID: {404,
				`{"error":{"code":"not_found","message":"request ` + reqID + ` not found"}}`}},
			wantCode:  3,
			wantCalls: []call{{Method: "GET", Path: "/v1/requests/" + reqID}},
			wantErr:   []string{"not found"},
		},
		{
			name:      "Set-AccessToCustomerDataRequest takes parameters in any case",
			args:      []string{"set-accesstocustomerdatarequest", "-requestid", reqID, "-approvaldecision", "approve", "-comment", "ok", "-o", "id"},
			wantCalls: []call{{Method: "POST", Path: "/v1/requests/" + reqID + "/approve", Body: `{"comment":"ok"}`}},
			check: func(t *testing.T, out string) {
				if out != reqID+"\n" {
					t.Errorf("output = %q", out)
				}
			},
		},
		{
			// A value is never taken for a parameter name, whatever its case.
			name:      "Set-AccessToCustomerDataRequest comment that looks like a parameter",
			args:      []string{"Set-AccessToCustomerDataRequest", "-RequestId", reqID, "-Comment", "-approvaldecision", "-ApprovalDecision:Deny"},
			wantCalls: []call{{Method: "POST", Path: "/v1/requests/" + reqID + "/deny", Body: `{"comment":"-approvaldecision"}`}},
		},
		{
			name:      "help shows the PowerShell parameters",
			args:      []string{"help", "Get-AccessToCustomerDataRequest"},
			wantCalls: []call{},
			wantOut: []string{"lockboxctl Get-AccessToCustomerDataRequest [-ApprovalStatus S] [-CreatedAfter TIME] [-RequestId ID]",
				"-ApprovalStatus S", "Pending (both pending states)", "-CreatedAfter TIME", "-RequestId ID", "case-insensitive",
				// A cut page's hint names --cursor and --all: the help
				// names them too.
				"--cursor C", "-All"},
		},
		{
			name:      "Set-AccessToCustomerDataRequest -h shows the PowerShell parameters",
			args:      []string{"Set-AccessToCustomerDataRequest", "-h"},
			wantCalls: []call{},
			wantOut:   []string{"lockboxctl Set-AccessToCustomerDataRequest -RequestId ID -ApprovalDecision Approve|Deny|Cancel [-Comment C] [-ServiceName S]", "-Comment C", "-ServiceName S", "Exchange (or EOP, EXO), SharePoint"},
		},
		{
			name:      "help names every exit status",
			args:      []string{"--help"},
			wantCalls: []call{},
			wantOut:   []string{"3 when the\nAPI refused the call (not allowed, not found, not in a state that allows it, or\nchanged since it was read)"},
		},
		{
			name:      "token from --token-file wins over the environment, whitespace trimmed",
			args:      []string{"request", "list", "--token-file", "$TOKENFILE"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests"}},
			wantAuth:  "Bearer " + fileTok,
		},
		{
			name:      "token from the environment, trailing newline trimmed",
			args:      []string{"request", "list"},
			env:       map[string]string{EnvToken: "env.token.sig\n"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests"}},
			wantAuth:  "Bearer " + envToken,
		},
		{
			name:      "missing token",
			args:      []string{"request", "list"},
			env:       map[string]string{EnvToken: ""},
			wantCode:  1,
			wantCalls: []call{},
			// lockbox dev writes its tokens to files; it prints none.
			wantErr: []string{"no token: set LOCKBOX_TOKEN or pass --token-file", "a token file it writes", ".lockbox-dev/env"},
			notErr:  []string{"tokens it prints"},
		},
		{
			name:      "unreadable token file",
			args:      []string{"request", "list", "--token-file", "/nonexistent/token"},
			wantCode:  1,
			wantCalls: []call{},
			wantErr:   []string{"reading --token-file"},
		},
		{
			name:      "--addr overrides LOCKBOX_ADDR",
			args:      []string{"--addr", "$ADDR", "request", "list"},
			env:       map[string]string{EnvAddr: "http://127.0.0.1:1"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests"}},
		},
		{
			name:      "--addr as host:port means http",
			args:      []string{"request", "list", "--addr", "$HOSTPORT"},
			env:       map[string]string{EnvAddr: "http://127.0.0.1:1"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests"}},
		},
		{
			name:      "LOCKBOX_ADDR as host:port means http",
			args:      []string{"request", "list"},
			env:       map[string]string{EnvAddr: "$HOSTPORT"},
			wantCalls: []call{{Method: "GET", Path: "/v1/requests"}},
		},
		{
			name:      "bad --addr",
			args:      []string{"request", "list", "--addr", "ftp://127.0.0.1:8080"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"http:// or https://"},
		},
		{
			name: "server error is printed with code and status",
			args: []string{"request", "approve", reqID},
			replies: map[string]reply{"POST /v1/requests/" + reqID + "/approve": {403,
				`{"error":{"code":"self_approval","message":"you can't approve your own request"}}`}},
			wantCode:  3, // the API refused
			wantCalls: []call{{Method: "POST", Path: "/v1/requests/" + reqID + "/approve", Body: `{"comment":""}`}},
			wantErr:   []string{"lockboxctl: you can't approve your own request (self_approval, HTTP 403)\n"},
			check: func(t *testing.T, out string) {
				if out != "" {
					t.Errorf("stdout = %q, want nothing", out)
				}
			},
		},
		{
			name:      "server error that is not JSON",
			args:      []string{"request", "list"},
			replies:   map[string]reply{"GET /v1/requests": {502, "<html>bad gateway</html>"}},
			wantCode:  1,
			wantCalls: []call{{Method: "GET", Path: "/v1/requests"}},
			wantErr:   []string{`lockboxctl: the server at `, ` answered 502 Bad Gateway with an HTML page ("bad gateway"), not Lockbox's API: is --addr ($LOCKBOX_ADDR) Lockbox's API, or a proxy in front of it?` + "\n"},
		},
		{
			// A 404 without the API's error document comes from another
			// server (--addr naming the metrics port, a path prefix left
			// out): it says nothing of the request, so no exit 3, which a
			// script takes for "no such request".
			name:      "a 404 that is not the API's",
			args:      []string{"describe", "request", reqID},
			replies:   map[string]reply{"GET /v1/requests/" + reqID: {404, "404 page not found\n"}},
			wantCode:  1,
			wantCalls: []call{{Method: "GET", Path: "/v1/requests/" + reqID}},
			wantErr:   []string{"lockboxctl: HTTP 404 Not Found: 404 page not found\n", "not from the Lockbox API", "--addr"},
		},
		{
			name:      "a 403 that is not the API's",
			args:      []string{"request", "list"},
			replies:   map[string]reply{"GET /v1/requests": {403, "<html>blocked by policy</html>"}},
			wantCode:  1,
			wantCalls: []call{{Method: "GET", Path: "/v1/requests"}},
			wantErr:   []string{`answered 403 Forbidden with an HTML page ("blocked by policy"), not Lockbox's API`},
		},
		{
			name:      "unknown command",
			args:      []string{"frobnicate"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{`unknown command "frobnicate"`, "Commands:"},
		},
		{
			name:      "unknown subcommand",
			args:      []string{"request", "approve-all"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{`unknown command "request approve-all"`, "lockboxctl request [command]"},
		},
		{
			name:      "unknown flag",
			args:      []string{"request", "list", "--colour"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"unknown flag: --colour", "lockboxctl request list"},
		},
		{
			name:      "bad output format",
			args:      []string{"-o", "xml", "request", "list"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{`invalid argument "xml" for "-o, --output" flag`, "see 'lockboxctl request list --help'"},
			notErr:    []string{"Usage:"},
		},
		{
			name:      "a plural command gets a suggestion",
			args:      []string{"requests", "list"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"lockboxctl: unknown command \"requests\"; did you mean \"request\"?\nsee 'lockboxctl --help'\n"},
		},
		{
			name:      "a misspelt subcommand gets a suggestion",
			args:      []string{"request", "lst"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{`unknown command "request lst"; did you mean "request list"?`, "see 'lockboxctl request --help'"},
			notErr:    []string{"Commands:"},
		},
		{
			name:      "a misspelt PowerShell verb gets a suggestion",
			args:      []string{"Get-AccessToCustomerDataRequests", "-RequestId", reqID},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{`did you mean "Get-AccessToCustomerDataRequest"?`},
		},
		{
			name:      "help for a misspelt command gets a suggestion",
			args:      []string{"help", "tenants"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{`no help for unknown command "tenants"; did you mean "tenant"?`},
		},
		{
			name:      "no command",
			args:      nil,
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{"missing command", "Usage:"},
		},
		{
			name:      "-h",
			args:      []string{"-h"},
			wantCalls: []call{},
			wantOut:   []string{"Usage:", "get ", "describe ", "approve ", "request ", "Get-AccessToCustomerDataRequest", "Set-AccessToCustomerDataRequest", "audit ", "Exit status:"},
		},
		{
			name:      "help for a command",
			args:      []string{"help", "request", "approve"},
			wantCalls: []call{},
			wantOut:   []string{"lockboxctl request approve ID [flags]", "--comment string"},
		},
		{
			name:      "-h after a command",
			args:      []string{"tenant", "settings", "set", "--help"},
			wantCalls: []call{},
			wantOut:   []string{"lockboxctl tenant settings set TENANT", "--lockbox on|off"},
		},
		{
			name:      "help for an unknown command",
			args:      []string{"help", "nope"},
			wantCode:  2,
			wantCalls: []call{},
			wantErr:   []string{`no help for unknown command "nope"`},
		},
		{
			name:      "version",
			args:      []string{"version"},
			env:       map[string]string{EnvToken: ""},
			wantCalls: []call{},
			wantOut:   []string{"lockboxctl ", "go1."},
		},
		{
			name:      "version as json",
			args:      []string{"version", "-o", "json"},
			wantCalls: []call{},
			wantOut:   []string{`"version": `, `"go": "go1.`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, tt.args, tt.env, tt.replies)
			if res.code != tt.wantCode {
				t.Errorf("exit code = %d, want %d\nstdout: %s\nstderr: %s", res.code, tt.wantCode, res.stdout, res.stderr)
			}
			if tt.wantCalls != nil {
				if len(res.calls) != len(tt.wantCalls) {
					t.Fatalf("calls = %+v, want %+v", res.calls, tt.wantCalls)
				}
				for i, got := range res.calls {
					want := tt.wantCalls[i]
					if got.Method != want.Method || got.Path != want.Path || got.Query != want.Query || !sameJSON(got.Body, want.Body) || got.IfMatch != want.IfMatch {
						t.Errorf("call %d\n got %+v\nwant %+v", i, got, want)
					}
				}
			}
			wantAuth := tt.wantAuth
			if wantAuth == "" {
				wantAuth = "Bearer " + envToken
			}
			for i, a := range res.auth {
				if a != wantAuth {
					t.Errorf("call %d Authorization = %q, want %q", i, a, wantAuth)
				}
			}
			for _, s := range tt.wantOut {
				if !strings.Contains(res.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, res.stdout)
				}
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(res.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, res.stderr)
				}
			}
			for _, s := range tt.notErr {
				if strings.Contains(res.stderr, s) {
					t.Errorf("stderr has %q:\n%s", s, res.stderr)
				}
			}
			if tt.wantCode == 0 && len(tt.wantErr) == 0 && res.stderr != "" {
				t.Errorf("stderr = %q, want nothing", res.stderr)
			}
			if tt.check != nil {
				tt.check(t, res.stdout)
			}
		})
	}
}

// TestTerminalEscapesAreShownNotInterpreted checks that text written by
// another party can't drive the approver's terminal.
func TestTerminalEscapesAreShownNotInterpreted(t *testing.T) {
	r := sampleRequest()
	r.Reason = "harmless\x1b[2J\x1b[1;1Happroved by security\u202e"
	r.History[1].Comment = "tab\there"
	res := run(t, []string{"request", "show", reqID}, nil, map[string]reply{
		"GET /v1/requests/" + reqID: {200, mustJSON(r)},
	})
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if strings.ContainsAny(res.stdout, "\x1b\u202e") {
		t.Errorf("output carries raw control characters: %q", res.stdout)
	}
	for _, want := range []string{`harmless\u001b[2J\u001b[1;1Happroved by security\u202e`, `tab\there`} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, res.stdout)
		}
	}
}

// TestCSVOutputEscapesTerminalControls: -o csv prints audit records on
// the terminal as the tables do, so a comment or a user id written by
// another party can't drive it either: controls and format characters are
// shown escaped in the UserIds and Operations cells, and AuditData escapes
// the C1 controls and bidirectional overrides JSON leaves as they are, so
// it still reads back as the same record.
func TestCSVOutputEscapesTerminalControls(t *testing.T) {
	recs := sampleRecords()
	recs[0].UserId = "alice\x1b[2J@contoso.com"
	recs[0].Operation = "Get-Mailbox\u202e"
	recs[0].Comment = "fine\u009b31m\x1b]52;c;cm0gLXJmIH4K\x07\u202eevil"
	for _, args := range [][]string{
		{"audit", "search", "--tenant", "contoso", "-o", "csv"},
		{"audit", "search", "--tenant", "contoso", "--all", "-o", "csv"},
		{"get", "activity", reqID, "-o", "csv"},
	} {
		res := run(t, args, nil, map[string]reply{
			"GET /v1/audit": {200, mustJSON(wire.RecordPage{Records: recs})},
			"GET /v1/requests/" + reqID + "/activity": {200, mustJSON(wire.RecordList{Records: recs})},
		})
		if res.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, res.code, res.stderr)
		}
		if strings.ContainsAny(res.stdout, "\x1b\x07\u009b\u202e") {
			t.Errorf("%v: output carries raw control characters: %q", args, res.stdout)
		}
		rows, err := csv.NewReader(strings.NewReader(res.stdout)).ReadAll()
		if err != nil || len(rows) != 2 {
			t.Fatalf("%v: csv %q: %v", args, res.stdout, err)
		}
		if rows[1][1] != `alice\u001b[2J@contoso.com` || rows[1][2] != `Get-Mailbox\u202e` {
			t.Errorf("%v: row = %q", args, rows[1])
		}
		var got record.Record
		if err := json.Unmarshal([]byte(rows[1][3]), &got); err != nil || got.Comment != recs[0].Comment || got.UserId != recs[0].UserId {
			t.Errorf("%v: AuditData %s does not read back as the record (%v)", args, rows[1][3], err)
		}
	}
}

// TestCursorHintIsShownNotInterpreted: the cursor a page names is the
// server's text too, printed in the hint to continue; a server that put
// escape sequences in it (an OSC 52 writes the clipboard a user pastes
// from) drove the terminal.
func TestCursorHintIsShownNotInterpreted(t *testing.T) {
	const cursor = "c\x1b]52;c;cm0gLXJmIH4K\x07\x1b[2J"
	for _, tc := range []struct {
		args  []string
		reply map[string]reply
	}{
		{[]string{"get", "requests"}, map[string]reply{
			"GET /v1/requests": {200, mustJSON(wire.RequestList{Requests: []wire.Request{sampleRequest()}, NextCursor: cursor})}}},
		{[]string{"audit", "search"}, map[string]reply{
			"GET /v1/audit": {200, mustJSON(wire.RecordPage{Records: sampleRecords(), NextCursor: cursor})}}},
	} {
		res := run(t, tc.args, nil, tc.reply)
		if res.code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, res.code, res.stderr)
		}
		if strings.ContainsAny(res.stderr, "\x1b\x07") || !strings.Contains(res.stderr, `--cursor 'c\u001b]52;c;cm0gLXJmIH4K\u0007\u001b[2J'`) {
			t.Errorf("%v: stderr %q", tc.args, res.stderr)
		}
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args    []string
		comment string
		pos     []string
	}{
		{[]string{"id", "--comment", "c"}, "c", []string{"id"}},
		{[]string{"--comment", "c", "id"}, "c", []string{"id"}},
		{[]string{"a", "--comment=c", "b"}, "c", []string{"a", "b"}},
		{[]string{"a", "--", "--comment", "c"}, "", []string{"a", "--comment", "c"}},
		{[]string{"--comment", "--", "a"}, "--", []string{"a"}},
		{[]string{"--comment", "--", "--", "-a"}, "--", []string{"-a"}},
		{[]string{"-", "x"}, "", []string{"-", "x"}},
		{nil, "", nil},
	}
	for _, tt := range tests {
		fs := newTestFlagSet()
		comment := fs.String("comment", "", "")
		pos, err := parseArgs(fs, tt.args)
		if err != nil {
			t.Errorf("parseArgs(%q): %v", tt.args, err)
			continue
		}
		if *comment != tt.comment || !reflect.DeepEqual(pos, tt.pos) {
			t.Errorf("parseArgs(%q) = %q, comment %q; want %q, %q", tt.args, pos, *comment, tt.pos, tt.comment)
		}
	}
}

func newTestFlagSet() *flag.FlagSet {
	e := &env{}
	return e.psFlagSet("test")
}

func TestAuditExportToFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "audit.csv")
	res := run(t, []string{"audit", "export", "--tenant", "contoso", "--format", "csv", "--out", out}, nil, nil)
	if res.code != 0 || res.stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil || string(b) != "CreationDate,UserIds,Operations,AuditData\n" {
		t.Fatalf("file = %q, %v", b, err)
	}
	// A failed export leaves no file behind, not even a partial one.
	failed := filepath.Join(dir, "failed.csv")
	res = run(t, []string{"audit", "export", "--tenant", "contoso", "--out", failed}, nil,
		map[string]reply{"GET /v1/audit/export": {http.StatusForbidden, `{"error":{"code":"forbidden","message":"no"}}`}})
	if res.code != 3 {
		t.Fatalf("exit %d", res.code)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("files left: %v", entries)
	}
}

// The API's X-Request-Id is the call's trace id: printed as such, on the
// error's line, so nobody takes it for a lockbox request's id.
func TestAPIErrorShowsTraceID(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "6XOG3QOH")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"error":{"code":"self_approval","message":"you can't approve your own request"}}`)
	}))
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken}
	code := Run(context.Background(), []string{"request", "approve", reqID}, func(k string) string { return env[k] }, &stdout, &stderr)
	if code != 3 {
		t.Fatalf("exit %d", code)
	}
	if want := "lockboxctl: you can't approve your own request (self_approval, HTTP 403, trace id 6XOG3QOH)\n"; stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct{ group, word, want string }{
		{"", "requests", "request"},
		{"", "reqest", "request"},
		{"", "approvers", "approver"},
		{"", "audits", "audit"},
		{"", "aprove", "approve"},
		{"", "set-accesstocustomerdatarequests", "Set-AccessToCustomerDataRequest"},
		{"request", "lst", "request list"},
		{"request", "aprove", "request approve"},
		{"request", "shows", "request show"},
		{"tenant", "setting", "tenant settings"},
		{"tenant settings", "gte", "tenant settings get"},
		{"get", "tenant", "get tenants"},
		{"", "frobnicate", ""},
		{"request", "approve-all", ""},
		{"", "x", ""},
	}
	root := (&env{ctx: context.Background(), getenv: func(string) string { return "" }}).rootCommand()
	for _, tt := range tests {
		group, _, err := root.Find(strings.Fields(tt.group))
		if err != nil {
			t.Fatal(err)
		}
		if got := suggest(group, tt.word); got != tt.want {
			t.Errorf("suggest(%q, %q) = %q, want %q", tt.group, tt.word, got, tt.want)
		}
	}
}

func TestFoldFlagNames(t *testing.T) {
	fs := newTestFlagSet()
	fs.String("RequestId", "", "")
	fs.String("comment", "", "")
	fs.Bool("all", false, "")
	tests := []struct{ in, want []string }{
		{[]string{"-requestid", "x"}, []string{"-RequestId", "x"}},
		{[]string{"--REQUESTID=x"}, []string{"--RequestId=x"}},
		{[]string{"-RequestId:a:b"}, []string{"-RequestId=a:b"}},
		{[]string{"-Comment", "-requestid", "-ALL"}, []string{"-comment", "-requestid", "-all"}},
		{[]string{"--", "-requestid"}, []string{"--", "-requestid"}},
		{[]string{"-unknown", "-O", "json"}, []string{"-unknown", "-o", "json"}},
		{[]string{"pos", "-"}, []string{"pos", "-"}},
	}
	for _, tt := range tests {
		if got := foldFlagNames(fs, tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("foldFlagNames(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// --addr naming Lockbox's enforcement proxy instead of its API (8081 for
// 8080 under lockbox dev): the proxy's refusals have the API's error
// document, so "describe request ID" exited 3, which tells a script the
// request does not exist or may not be read. An answer carrying the proxy's
// decision id is the proxy's: exit 1, saying so.
func TestProxyAnswerIsNotTheAPIs(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
	}{
		{http.StatusNotFound, `{"error":{"code":"unknown_service","message":"the first path segment names no service this proxy serves (exchange, onedrive, sharepoint)"}}`},
		{http.StatusForbidden, `{"error":{"code":"unauthenticated","message":"tenant users can't call through the proxy; only the provider's operators can"}}`},
		{http.StatusUnauthorized, `{"error":{"code":"unauthenticated","message":"exactly one Authorization: Bearer header is required"}}`},
	} {
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set(client.ProxyDecisionHeader, "5KQBBU7DR4KNU9")
			w.WriteHeader(tc.status)
			_, _ = io.WriteString(w, tc.body)
		}))
		env := map[string]string{EnvAddr: proxy.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), []string{"describe", "request", "01a23f06-5f48-74d5-9e38-ff65ba5cb1e1"},
			func(k string) string { return env[k] }, &stdout, &stderr)
		proxy.Close()
		if code != 1 {
			t.Errorf("HTTP %d from the proxy: exit %d, want 1\n%s", tc.status, code, stderr.String())
		}
		for _, want := range []string{fmt.Sprintf("HTTP %d)", tc.status), "from Lockbox's enforcement proxy, not its API", proxy.URL, "LOCKBOX_API_ADDR"} {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("HTTP %d from the proxy: stderr lacks %q:\n%s", tc.status, want, stderr.String())
			}
		}
	}
}
