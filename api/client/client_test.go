package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit/record"
)

const token = "header.payload.signature"

// call is what the fake server saw.
type call struct {
	Method, Path, Query, Body, Auth, ContentType, UserAgent, IfMatch string
}

// fake is an API server that records calls and answers with a canned
// status and body.
type fake struct {
	mu     sync.Mutex
	calls  []call
	status int
	body   string
	header http.Header
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls = append(f.calls, call{
		Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Body: string(b),
		Auth: r.Header.Get("Authorization"), ContentType: r.Header.Get("Content-Type"),
		UserAgent: r.Header.Get("User-Agent"), IfMatch: strings.Join(r.Header.Values("If-Match"), ", "),
	})
	status, body := f.status, f.body
	f.mu.Unlock()
	for k, v := range f.header {
		w.Header()[k] = v
	}
	if status == 0 {
		status = http.StatusOK
	}
	if body != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func (f *fake) last(t *testing.T) call {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) != 1 {
		t.Fatalf("server saw %d calls, want 1: %+v", len(f.calls), f.calls)
	}
	return f.calls[0]
}

func newClient(t *testing.T, f *fake, opts ...Option) *Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, token, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const requestJSON = `{"id":"0190a1b2-0000-7000-8000-000000000001","tenant":"contoso","service":"exchange",
"service_request":"SR-1","reason":"mailbox corrupt","duration":"2h","activities":["Get-Mailbox"],
"requester":"op@provider","state":"pending_manager","created_at":"2026-01-02T03:04:05Z","history":[]}`

func wantRequest() wire.Request {
	return wire.Request{
		ID: "0190a1b2-0000-7000-8000-000000000001", Tenant: "contoso", Service: "exchange",
		ServiceRequest: "SR-1", Reason: "mailbox corrupt", Duration: wire.Duration(2 * time.Hour),
		Activities: []string{"Get-Mailbox"}, Requester: "op@provider", State: wire.StatePendingManager,
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), History: []wire.Event{},
	}
}

func TestCalls(t *testing.T) {
	ctx := context.Background()
	after := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name     string
		respBody string
		status   int
		invoke   func(*Client) (any, error)
		want     call
		wantOut  any
	}{
		{
			name:     "create",
			respBody: requestJSON,
			status:   http.StatusCreated,
			invoke: func(c *Client) (any, error) {
				return c.CreateRequest(ctx, wire.CreateRequest{
					Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1", Reason: "mailbox corrupt",
					Duration: wire.Duration(2 * time.Hour), Activities: []string{"Get-Mailbox"},
				})
			},
			want: call{Method: "POST", Path: "/v1/requests",
				Body: `{"tenant":"contoso","service":"exchange","service_request":"SR-1","reason":"mailbox corrupt","duration":"2h","activities":["Get-Mailbox"]}`},
			wantOut: wantRequest(),
		},
		{
			name:     "list with every filter",
			respBody: `{"requests":[` + requestJSON + `]}`,
			invoke: func(c *Client) (any, error) {
				return c.ListRequests(ctx, ListOptions{Tenant: "contoso", State: wire.StatePendingCustomer, CreatedAfter: after, Limit: 5})
			},
			want:    call{Method: "GET", Path: "/v1/requests", Query: "created_after=2026-01-02T02%3A04%3A05Z&limit=5&state=pending_customer&tenant=contoso"},
			wantOut: []wire.Request{wantRequest()},
		},
		{
			name:     "list page with a cursor",
			respBody: `{"requests":[` + requestJSON + `],"next_cursor":"cGFnZTM"}`,
			invoke: func(c *Client) (any, error) {
				return c.ListRequestsPage(ctx, ListOptions{Tenant: "contoso", Limit: 1, Cursor: "cGFnZTI"})
			},
			want:    call{Method: "GET", Path: "/v1/requests", Query: "cursor=cGFnZTI&limit=1&tenant=contoso"},
			wantOut: RequestPage{Requests: []wire.Request{wantRequest()}, NextCursor: "cGFnZTM"},
		},
		{
			name:     "last list page, empty",
			respBody: `{"requests":null}`,
			invoke:   func(c *Client) (any, error) { return c.ListRequestsPage(ctx, ListOptions{Cursor: "cGFnZTI"}) },
			want:     call{Method: "GET", Path: "/v1/requests", Query: "cursor=cGFnZTI"},
			wantOut:  RequestPage{Requests: []wire.Request{}},
		},
		{
			name:     "list without filters, empty",
			respBody: `{"requests":null}`,
			invoke:   func(c *Client) (any, error) { return c.ListRequests(ctx, ListOptions{}) },
			want:     call{Method: "GET", Path: "/v1/requests"},
			wantOut:  []wire.Request{},
		},
		{
			name:     "get escapes the id",
			respBody: requestJSON,
			invoke:   func(c *Client) (any, error) { return c.GetRequest(ctx, "a/b c") },
			want:     call{Method: "GET", Path: "/v1/requests/a%2Fb%20c"},
			wantOut:  wantRequest(),
		},
		{
			name:     "approve",
			respBody: requestJSON,
			invoke:   func(c *Client) (any, error) { return c.Approve(ctx, "r1", "looks right") },
			want:     call{Method: "POST", Path: "/v1/requests/r1/approve", Body: `{"comment":"looks right"}`},
			wantOut:  wantRequest(),
		},
		{
			name:     "deny",
			respBody: requestJSON,
			invoke:   func(c *Client) (any, error) { return c.Deny(ctx, "r1", "") },
			want:     call{Method: "POST", Path: "/v1/requests/r1/deny", Body: `{"comment":""}`},
			wantOut:  wantRequest(),
		},
		{
			name:     "cancel",
			respBody: requestJSON,
			invoke:   func(c *Client) (any, error) { return c.Cancel(ctx, "r1", "fixed") },
			want:     call{Method: "POST", Path: "/v1/requests/r1/cancel", Body: `{"comment":"fixed"}`},
			wantOut:  wantRequest(),
		},
		{
			name:     "revoke",
			respBody: requestJSON,
			invoke:   func(c *Client) (any, error) { return c.Revoke(ctx, "r1", "done") },
			want:     call{Method: "POST", Path: "/v1/requests/r1/revoke", Body: `{"comment":"done"}`},
			wantOut:  wantRequest(),
		},
		{
			name:     "settings",
			respBody: `{"lockbox_enabled":true,"notification_addresses":["sec@contoso.com"]}`,
			invoke:   func(c *Client) (any, error) { return c.Settings(ctx, "contoso") },
			want:     call{Method: "GET", Path: "/v1/tenants/contoso/settings"},
			wantOut:  wire.Settings{LockboxEnabled: true, NotificationAddresses: []string{"sec@contoso.com"}},
		},
		{
			name:     "put settings sends an empty list, never null",
			respBody: `{"lockbox_enabled":false,"notification_addresses":[]}`,
			invoke: func(c *Client) (any, error) {
				return c.PutSettings(ctx, "contoso", wire.Settings{LockboxEnabled: false})
			},
			want:    call{Method: "PUT", Path: "/v1/tenants/contoso/settings", Body: `{"lockbox_enabled":false,"notification_addresses":[]}`},
			wantOut: wire.Settings{LockboxEnabled: false, NotificationAddresses: []string{}},
		},
		{
			name:     "approvers",
			respBody: `{"approvers":["alice@contoso.com","bob@contoso.com"]}`,
			invoke:   func(c *Client) (any, error) { return c.Approvers(ctx, "contoso") },
			want:     call{Method: "GET", Path: "/v1/tenants/contoso/approvers"},
			wantOut:  []string{"alice@contoso.com", "bob@contoso.com"},
		},
		{
			name:    "add approver",
			status:  http.StatusNoContent,
			invoke:  func(c *Client) (any, error) { return nil, c.AddApprover(ctx, "contoso", "alice@contoso.com") },
			want:    call{Method: "PUT", Path: "/v1/tenants/contoso/approvers/alice@contoso.com"},
			wantOut: nil,
		},
		{
			name:    "remove approver escapes the user",
			status:  http.StatusNoContent,
			invoke:  func(c *Client) (any, error) { return nil, c.RemoveApprover(ctx, "contoso", "eve/../admin") },
			want:    call{Method: "DELETE", Path: "/v1/tenants/contoso/approvers/eve%2F..%2Fadmin"},
			wantOut: nil,
		},
		{
			name:     "audit",
			respBody: `{"records":[{"CreationTime":"2026-01-02T03:04:05","Id":"a1","Operation":"Set-AccessToCustomerDataRequest","OrganizationId":"5e2b7c1a-3f4d-4e8b-9a6c-1d2e3f4a5b6c","RecordType":1,"ResultStatus":"Succeeded","UserKey":"alice@contoso.com","UserType":2,"Version":1,"Workload":"exchange","ClientIP":"","ObjectId":"r1","UserId":"alice@contoso.com","ApprovalDecision":"Approve","LockboxTenant":"contoso"}]}`,
			invoke:   func(c *Client) (any, error) { return c.Audit(ctx, AuditQuery{Tenant: "contoso", Limit: 10}) },
			want:     call{Method: "GET", Path: "/v1/audit", Query: "limit=10&tenant=contoso"},
			wantOut: []record.Record{{
				Id: "a1", CreationTime: record.TimeOf(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), Operation: record.OpTenantDecision,
				OrganizationId: "5e2b7c1a-3f4d-4e8b-9a6c-1d2e3f4a5b6c", RecordType: record.RecordTypeExchangeAdmin, ResultStatus: "Succeeded",
				UserKey: "alice@contoso.com", UserType: record.UserTypeAdmin, Version: 1, Workload: "exchange", ObjectId: "r1",
				UserId: "alice@contoso.com", ApprovalDecision: "Approve", LockboxTenant: "contoso",
			}},
		},
		{
			name:     "search audit with every filter",
			respBody: `{"records":[],"next_cursor":"MS0w"}`,
			invoke: func(c *Client) (any, error) {
				return c.SearchAudit(ctx, AuditQuery{
					Tenant: "contoso", From: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), To: time.Date(2026, 1, 3, 0, 0, 0, 0, time.FixedZone("x", 3600)),
					User: "Microsoft Operator", Operation: "Get-Mailbox", RequestID: "r1", Cursor: "MS0x", Limit: 5,
				})
			},
			want:    call{Method: "GET", Path: "/v1/audit", Query: "cursor=MS0x&from=2026-01-02T03%3A04%3A05Z&limit=5&operation=Get-Mailbox&request_id=r1&tenant=contoso&to=2026-01-02T23%3A00%3A00Z&user=Microsoft+Operator"},
			wantOut: AuditPage{Records: []record.Record{}, NextCursor: "MS0w"},
		},
		{
			// Given, Go's zero time is a bound like any other.
			name:     "search audit with the zero time as bounds",
			respBody: `{"records":[]}`,
			invoke: func(c *Client) (any, error) {
				return c.SearchAudit(ctx, AuditQuery{Tenant: "contoso", HasFrom: true, HasTo: true})
			},
			want:    call{Method: "GET", Path: "/v1/audit", Query: "from=0001-01-01T00%3A00%3A00Z&tenant=contoso&to=0001-01-01T00%3A00%3A00Z"},
			wantOut: AuditPage{Records: []record.Record{}},
		},
		{
			name:     "activity",
			respBody: `{"records":[{"CreationTime":"2026-01-02T03:04:05","Id":"a1","Operation":"Get-Mailbox","OrganizationId":"5e2b7c1a-3f4d-4e8b-9a6c-1d2e3f4a5b6c","RecordType":10,"ResultStatus":"Succeeded","UserKey":"Microsoft Operator","UserType":3,"Version":1,"Workload":"exchange","ClientIP":"192.0.2.10","ObjectId":"exchange/tenants/contoso/mailboxes","UserId":"Microsoft Operator","LockboxTenant":"contoso","LockboxRequestId":"r1","LockboxMethod":"GET","LockboxPath":"/tenants/contoso/mailboxes"}]}`,
			invoke:   func(c *Client) (any, error) { return c.Activity(ctx, "r1") },
			want:     call{Method: "GET", Path: "/v1/requests/r1/activity", Query: "limit=1000"},
			wantOut: []record.Record{{
				Id: "a1", CreationTime: record.TimeOf(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), Operation: "Get-Mailbox",
				OrganizationId: "5e2b7c1a-3f4d-4e8b-9a6c-1d2e3f4a5b6c", RecordType: record.RecordTypeDataCenterSecurityCmdlet, ResultStatus: "Succeeded",
				UserKey: record.OperatorUserID, UserType: record.UserTypeDcAdmin, Version: 1, Workload: "exchange", ClientIP: "192.0.2.10",
				ObjectId: "exchange/tenants/contoso/mailboxes", UserId: record.OperatorUserID, LockboxTenant: "contoso",
				LockboxRequestId: "r1", LockboxMethod: "GET", LockboxPath: "/tenants/contoso/mailboxes",
			}},
		},
		{
			name:     "activity naming a record that can't be read",
			respBody: `{"records":[],"unreadable":[{"stream_id":"1764000000000-0","tenant":"contoso","error":"cannot be read"}]}`,
			invoke:   func(c *Client) (any, error) { return c.RequestActivity(ctx, "r1") },
			want:     call{Method: "GET", Path: "/v1/requests/r1/activity", Query: "limit=1000"},
			wantOut: wire.RecordList{Records: []record.Record{},
				Unreadable: []wire.UnreadableRecord{{StreamID: "1764000000000-0", Tenant: "contoso", Error: "cannot be read"}}},
		},
		{
			name:     "verify a tenant's chain",
			respBody: `{"tenant":"contoso","ok":true,"records":3}`,
			invoke:   func(c *Client) (any, error) { return c.VerifyAudit(ctx, "contoso") },
			want:     call{Method: "GET", Path: "/v1/audit/verify", Query: "tenant=contoso"},
			wantOut:  wire.AuditVerification{Tenant: "contoso", OK: true, Records: 3},
		},
		{
			name:     "verify against a kept seal",
			respBody: `{"tenant":"contoso","ok":true,"records":3,"since_seal":"verified"}`,
			invoke:   func(c *Client) (any, error) { return c.VerifyAuditSince(ctx, "contoso", "h.c.s") },
			want:     call{Method: "GET", Path: "/v1/audit/verify", Query: "since_seal=h.c.s&tenant=contoso"},
			wantOut:  wire.AuditVerification{Tenant: "contoso", OK: true, Records: 3, SinceSeal: "verified"},
		},
		{
			name:     "verify without a tenant leaves it to the server",
			respBody: `{"tenant":"contoso","ok":true,"records":3}`,
			invoke:   func(c *Client) (any, error) { return c.VerifyAudit(ctx, "") },
			want:     call{Method: "GET", Path: "/v1/audit/verify"},
			wantOut:  wire.AuditVerification{Tenant: "contoso", OK: true, Records: 3},
		},
		{
			name:     "export streams the body",
			respBody: "CreationDate,UserIds,Operations,AuditData\n",
			invoke: func(c *Client) (any, error) {
				var b strings.Builder
				err := c.ExportAudit(ctx, AuditQuery{Tenant: "contoso", Operation: "Get-Mailbox", Cursor: "ignored", Limit: 3}, "csv", &b)
				return b.String(), err
			},
			want:    call{Method: "GET", Path: "/v1/audit/export", Query: "format=csv&operation=Get-Mailbox&tenant=contoso"},
			wantOut: "CreationDate,UserIds,Operations,AuditData\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake{status: tt.status, body: tt.respBody}
			c := newClient(t, f)
			out, err := tt.invoke(c)
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			got := f.last(t)
			if got.Auth != "Bearer "+token {
				t.Errorf("Authorization = %q", got.Auth)
			}
			if got.UserAgent != DefaultUserAgent {
				t.Errorf("User-Agent = %q", got.UserAgent)
			}
			if tt.want.Body != "" && got.ContentType != "application/json" {
				t.Errorf("Content-Type = %q", got.ContentType)
			}
			got.Auth, got.ContentType, got.UserAgent = "", "", ""
			if got != tt.want {
				t.Errorf("call\n got %+v\nwant %+v", got, tt.want)
			}
			if tt.wantOut != nil && !reflect.DeepEqual(out, tt.wantOut) {
				t.Errorf("result\n got %#v\nwant %#v", out, tt.wantOut)
			}
		})
	}
}

// TestSettingsIfMatch: SettingsETag returns the ETag of the answer, and
// PutSettingsIfMatch sends it back as If-Match, returning the new one or
// the server's 412 as an *APIError with CodeSettingsChanged. PutSettings
// sends none.
func TestSettingsIfMatch(t *testing.T) {
	ctx := context.Background()
	f := &fake{body: `{"lockbox_enabled":true,"notification_addresses":[]}`, header: http.Header{"Etag": {`"7"`}}}
	c := newClient(t, f)
	s, etag, err := c.SettingsETag(ctx, "contoso")
	if err != nil || etag != `"7"` || !s.LockboxEnabled {
		t.Fatalf("SettingsETag = %+v, %q, %v", s, etag, err)
	}
	if got := f.last(t); got.Method != "GET" || got.Path != "/v1/tenants/contoso/settings" || got.IfMatch != "" {
		t.Fatalf("GET = %+v", got)
	}

	f = &fake{body: `{"lockbox_enabled":false,"notification_addresses":[]}`, header: http.Header{"Etag": {`"8"`}}}
	c = newClient(t, f)
	s.LockboxEnabled = false
	out, etag, err := c.PutSettingsIfMatch(ctx, "contoso", s, `"7"`)
	if err != nil || etag != `"8"` || out.LockboxEnabled {
		t.Fatalf("PutSettingsIfMatch = %+v, %q, %v", out, etag, err)
	}
	if got := f.last(t); got.Method != "PUT" || got.IfMatch != `"7"` || got.Body != `{"lockbox_enabled":false,"notification_addresses":[]}` {
		t.Fatalf("PUT = %+v", got)
	}

	f = &fake{status: http.StatusPreconditionFailed, body: `{"error":{"code":"settings_changed","message":"read them again"}}`}
	c = newClient(t, f)
	_, _, err = c.PutSettingsIfMatch(ctx, "contoso", s, `"7"`)
	if apiErr, ok := errors.AsType[*APIError](err); !ok || apiErr.Status != http.StatusPreconditionFailed || apiErr.Code != CodeSettingsChanged {
		t.Fatalf("412 = %v, want an *APIError with %s", err, CodeSettingsChanged)
	}

	f = &fake{body: `{"lockbox_enabled":false,"notification_addresses":[]}`}
	c = newClient(t, f)
	if _, err := c.PutSettings(ctx, "contoso", s); err != nil || f.last(t).IfMatch != "" {
		t.Fatalf("PutSettings sent If-Match %q (%v)", f.last(t).IfMatch, err)
	}
	if _, _, err := c.PutSettingsIfMatch(ctx, "contoso", s, ""); err == nil || len(f.calls) != 1 {
		t.Fatalf("an empty ETag was sent as an unconditional change: %v", err)
	}
}

// TestTenantIfMatch: TenantETag returns the ETag of the answer, and
// UpdateTenantIfMatch sends it back as If-Match, returning the new one or
// the server's 412 as an *APIError with CodeTenantChanged. UpdateTenant
// sends none.
func TestTenantIfMatch(t *testing.T) {
	ctx := context.Background()
	f := &fake{body: `{"id":"contoso","domains":["contoso.example"],"global_admins":[]}`, header: http.Header{"Etag": {`"3"`}}}
	c := newClient(t, f)
	e, etag, err := c.TenantETag(ctx, "contoso")
	if err != nil || etag != `"3"` || e.ID != "contoso" {
		t.Fatalf("TenantETag = %+v, %q, %v", e, etag, err)
	}
	if got := f.last(t); got.Method != "GET" || got.Path != "/v1/tenants/contoso" || got.IfMatch != "" {
		t.Fatalf("GET = %+v", got)
	}

	f = &fake{body: `{"id":"contoso","domains":["contoso.com","contoso.example"],"global_admins":[]}`, header: http.Header{"Etag": {`"4"`}}}
	c = newClient(t, f)
	domains := []string{"contoso.example", "contoso.com"}
	out, etag, err := c.UpdateTenantIfMatch(ctx, "contoso", wire.TenantUpdate{Domains: &domains}, `"3"`)
	if err != nil || etag != `"4"` || len(out.Domains) != 2 {
		t.Fatalf("UpdateTenantIfMatch = %+v, %q, %v", out, etag, err)
	}
	if got := f.last(t); got.Method != "PATCH" || got.IfMatch != `"3"` || got.Body != `{"domains":["contoso.example","contoso.com"]}` {
		t.Fatalf("PATCH = %+v", got)
	}

	f = &fake{status: http.StatusPreconditionFailed, body: `{"error":{"code":"tenant_changed","message":"read it again"}}`}
	c = newClient(t, f)
	_, _, err = c.UpdateTenantIfMatch(ctx, "contoso", wire.TenantUpdate{Domains: &domains}, `"3"`)
	if apiErr, ok := errors.AsType[*APIError](err); !ok || apiErr.Status != http.StatusPreconditionFailed || apiErr.Code != CodeTenantChanged {
		t.Fatalf("412 = %v, want an *APIError with %s", err, CodeTenantChanged)
	}

	f = &fake{body: `{"id":"contoso"}`}
	c = newClient(t, f)
	if _, err := c.UpdateTenant(ctx, "contoso", wire.TenantUpdate{Domains: &domains}); err != nil || f.last(t).IfMatch != "" {
		t.Fatalf("UpdateTenant sent If-Match %q (%v)", f.last(t).IfMatch, err)
	}
	if _, _, err := c.UpdateTenantIfMatch(ctx, "contoso", wire.TenantUpdate{Domains: &domains}, ""); err == nil || len(f.calls) != 1 {
		t.Fatalf("an empty ETag was sent as an unconditional change: %v", err)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		header http.Header
		want   APIError
		text   string
	}{
		{
			name:   "lockbox error",
			status: http.StatusForbidden,
			body:   `{"error":{"code":"self_approval","message":"you can't approve your own request"}}`,
			header: http.Header{"X-Request-Id": {"6XOG3QOH"}},
			want:   APIError{Status: 403, Code: "self_approval", Message: "you can't approve your own request", TraceID: "6XOG3QOH"},
			text:   "you can't approve your own request (self_approval, trace id 6XOG3QOH)",
		},
		{
			name:   "lockbox error without a trace id",
			status: http.StatusConflict,
			body:   `{"error":{"code":"conflict","message":"changed"}}`,
			want:   APIError{Status: 409, Code: "conflict", Message: "changed"},
			text:   "changed (conflict)",
		},
		{
			name:   "trace id without a code",
			status: http.StatusBadGateway,
			body:   "bad gateway",
			header: http.Header{"X-Request-Id": {"T1"}},
			want:   APIError{Status: 502, Message: "HTTP 502 Bad Gateway: bad gateway", TraceID: "T1"},
			text:   "HTTP 502 Bad Gateway: bad gateway (trace id T1)",
		},
		{
			// Known by its content: the fake names no Content-Type.
			// The page's markup is no message.
			name:   "html from a proxy in front",
			status: http.StatusBadGateway,
			body:   "<html>\n<body>\n  <h1>502 Bad Gateway</h1>\n</body></html>",
			want:   APIError{Status: 502, Message: `HTTP 502 Bad Gateway: an HTML page saying "502 Bad Gateway"`, HTMLPage: true, PageText: "502 Bad Gateway"},
			text:   `HTTP 502 Bad Gateway: an HTML page saying "502 Bad Gateway"`,
		},
		{
			// No title: the page's text, without its scripts and styles.
			name:   "html without a title",
			status: http.StatusForbidden,
			body: "<html><head><title></title><style>body { color: red }</style><SCRIPT>if (a < b) alert(1)</SCRIPT></head>" +
				"<body><h1>Blocked</h1><p>by policy &amp; rules</p>" + strings.Repeat("<p>more</p>", 50) + "</body></html>",
			want: APIError{Status: 403, Message: `HTTP 403 Forbidden: an HTML page saying "Blocked by policy & rules` + strings.Repeat(" more", 11) + `..."`,
				HTMLPage: true, PageText: "Blocked by policy & rules" + strings.Repeat(" more", 11) + "..."},
			text: `HTTP 403 Forbidden: an HTML page saying "Blocked by policy & rules` + strings.Repeat(" more", 11) + `..."`,
		},
		{
			name:   "html saying nothing",
			status: http.StatusBadGateway,
			body:   "<!DOCTYPE html><html><body><img src=x></body></html>",
			want:   APIError{Status: 502, Message: "HTTP 502 Bad Gateway: an HTML page", HTMLPage: true},
			text:   "HTTP 502 Bad Gateway: an HTML page",
		},
		{
			name:   "html with a title",
			status: http.StatusBadGateway,
			body:   "<!DOCTYPE html><html><head><Title>\n  502 Bad Gateway &mdash; \x1b[2Jedge\n</tItle></head><body>...</body></html>",
			want:   APIError{Status: 502, Message: `HTTP 502 Bad Gateway: an HTML page saying "502 Bad Gateway — [2Jedge"`, HTMLPage: true, PageText: "502 Bad Gateway — [2Jedge"},
			text:   `HTTP 502 Bad Gateway: an HTML page saying "502 Bad Gateway — [2Jedge"`,
		},
		{
			// A body's control characters never reach a message.
			name:   "control characters",
			status: http.StatusBadGateway,
			body:   "bad\x1b[2J\x07 gateway\u202e",
			want:   APIError{Status: 502, Message: "HTTP 502 Bad Gateway: bad [2J gateway"},
			text:   "HTTP 502 Bad Gateway: bad [2J gateway",
		},
		{
			name:   "empty body",
			status: http.StatusUnauthorized,
			want:   APIError{Status: 401, Message: "HTTP 401 Unauthorized"},
			text:   "HTTP 401 Unauthorized",
		},
		{
			name:   "json without the error object",
			status: http.StatusInternalServerError,
			body:   `{"message":"oops"}`,
			want:   APIError{Status: 500, Message: `HTTP 500 Internal Server Error: {"message":"oops"}`},
			text:   `HTTP 500 Internal Server Error: {"message":"oops"}`,
		},
		{
			// RFC 9457 problem details, from a gateway in front: its title
			// and detail, not the start of the document, which a long type
			// URI filled before the detail came.
			name:   "problem details",
			status: http.StatusServiceUnavailable,
			body: `{"type":"https://gateway.example/problems/` + strings.Repeat("upstream-", 20) + `unavailable","title":"Upstream unavailable",` +
				`"status":503,"detail":"lockbox-api has no ready endpoints","instance":"/v1/requests/r1"}`,
			want: APIError{Status: 503, Message: "HTTP 503 Service Unavailable: Upstream unavailable: lockbox-api has no ready endpoints"},
			text: "HTTP 503 Service Unavailable: Upstream unavailable: lockbox-api has no ready endpoints",
		},
		{
			// about:blank's title is the status's text (RFC 9457 4.2.1),
			// which the message already says.
			name:   "problem details titled with the status's text alone",
			status: http.StatusNotFound,
			body:   `{"type":"about:blank","title":"Not Found","status":404}`,
			want:   APIError{Status: 404, Message: "HTTP 404 Not Found"},
			text:   "HTTP 404 Not Found",
		},
		{
			name:   "problem details with a title of its own alone",
			status: http.StatusNotFound,
			body:   `{"type":"https://gateway.example/problems/no-route","title":"No route to lockbox-api","status":404}`,
			want:   APIError{Status: 404, Message: "HTTP 404 Not Found: No route to lockbox-api"},
			text:   "HTTP 404 Not Found: No route to lockbox-api",
		},
		{
			name:   "long body is cut",
			status: http.StatusServiceUnavailable,
			body:   strings.Repeat("x", 1000),
			want:   APIError{Status: 503, Message: "HTTP 503 Service Unavailable: " + strings.Repeat("x", maxSnippet) + "..."},
			text:   "HTTP 503 Service Unavailable: " + strings.Repeat("x", maxSnippet) + "...",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, &fake{status: tt.status, body: tt.body, header: tt.header})
			_, err := c.GetRequest(context.Background(), "r1")
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v (%T), want *APIError", err, err)
			}
			if *apiErr != tt.want {
				t.Errorf("got %+v\nwant %+v", *apiErr, tt.want)
			}
			if err.Error() != tt.text {
				t.Errorf("Error() = %q, want %q", err.Error(), tt.text)
			}
		})
	}
}

func TestBadSuccessBodies(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"not json", "<html>", "decoding response"},
		{"empty", "", "decoding response"},
		{"too large", `{"requests":["` + strings.Repeat("x", 1024) + `"]}`, "larger than 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, &fake{body: tt.body})
			c.maxResponse = 1024
			_, err := c.ListRequests(context.Background(), ListOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			var apiErr *APIError
			if errors.As(err, &apiErr) {
				t.Errorf("a 200 answer must not be an APIError")
			}
		})
	}
}

func TestBodyOfExactlyTheLimit(t *testing.T) {
	body := `{"approvers":["` + strings.Repeat("x", 100) + `"]}`
	c := newClient(t, &fake{body: body})
	c.maxResponse = int64(len(body))
	if _, err := c.Approvers(context.Background(), "contoso"); err != nil {
		t.Fatalf("a body of exactly the limit failed: %v", err)
	}
}

func TestRefusesDotSegments(t *testing.T) {
	f := &fake{body: requestJSON}
	c := newClient(t, f)
	ctx := context.Background()
	for _, id := range []string{"", ".", ".."} {
		if _, err := c.GetRequest(ctx, id); err == nil {
			t.Errorf("GetRequest(%q) succeeded", id)
		}
		if err := c.AddApprover(ctx, "contoso", id); err == nil {
			t.Errorf("AddApprover(%q) succeeded", id)
		}
		if _, err := c.Settings(ctx, id); err == nil {
			t.Errorf("Settings(%q) succeeded", id)
		}
	}
	if len(f.calls) != 0 {
		t.Errorf("server saw %d calls, want none", len(f.calls))
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		base, token string
		ok          bool
	}{
		{"http://127.0.0.1:8080", "t", true},
		{"https://lockbox.example.com/", "t", true},
		{"https://lockbox.example.com/prefix", "t", true},
		{"http://127.0.0.1:8080", "", true},
		{"127.0.0.1:8080", "t", false},
		{"ftp://host", "t", false},
		{"http://", "t", false},
		{"http://user:pw@host", "t", false},
		{"http://host?x=1", "t", false},
		{"http://host#frag", "t", false},
		{"http://host", "a b", false},
		{"http://host", "tok\r\nX-Evil: 1", false},
		{"http://[::1", "t", false},
	}
	for _, tt := range tests {
		_, err := New(tt.base, tt.token)
		if (err == nil) != tt.ok {
			t.Errorf("New(%q, %q) err = %v, want ok=%t", tt.base, tt.token, err, tt.ok)
		}
	}
}

// TestNewKeepsThePassword: an address refused for the credentials in it
// is named without its password, as in every other message of the
// client, so the refusal does not print the secret to a terminal or a CI
// log.
func TestNewKeepsThePassword(t *testing.T) {
	for _, base := range []string{"https://user:s3cret@lockbox.example", "https://user:s3cret@lockbox.example/p?x=1", "https://user:s3cret@[::1"} {
		_, err := New(base, "t")
		if err == nil {
			t.Fatalf("New(%q) = nil error", base)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("New(%q): %v", base, err)
		}
	}
}

func TestOptionsAndPrefix(t *testing.T) {
	f := &fake{body: `{"approvers":[]}`}
	srv := httptest.NewServer(http.StripPrefix("/lockbox", f))
	defer srv.Close()
	var used bool
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used = true
		return http.DefaultTransport.RoundTrip(r)
	})}
	c, err := New(srv.URL+"/lockbox/", "", WithHTTPClient(hc), WithUserAgent("lockboxctl/test"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Approvers(context.Background(), "contoso"); err != nil {
		t.Fatal(err)
	}
	got := f.last(t)
	if !used {
		t.Error("WithHTTPClient's client was not used")
	}
	if got.UserAgent != "lockboxctl/test" {
		t.Errorf("User-Agent = %q", got.UserAgent)
	}
	if got.Auth != "" {
		t.Errorf("an empty token sent Authorization %q", got.Auth)
	}
	if got.Path != "/v1/tenants/contoso/approvers" {
		t.Errorf("path = %q", got.Path)
	}
}

func TestContextCanceled(t *testing.T) {
	c := newClient(t, &fake{body: requestJSON})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.GetRequest(ctx, "r1")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Errorf("err = %T, want *url.Error", err)
	}
}

func TestRequestBodyIsJSON(t *testing.T) {
	// The comment travels as JSON, whatever it contains.
	f := &fake{body: requestJSON}
	c := newClient(t, f)
	comment := "quote \" newline \n and <html>"
	if _, err := c.Approve(context.Background(), "r1", comment); err != nil {
		t.Fatal(err)
	}
	var body struct{ Comment string }
	if err := json.Unmarshal([]byte(f.last(t).Body), &body); err != nil || body.Comment != comment {
		t.Fatalf("body %q decoded to %q, %v", f.last(t).Body, body.Comment, err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// An export has no overall deadline, but a server that stops sending must
// not hang the caller: the client's timeout bounds the wait for the
// response headers and each wait for more of the body.
func TestExportStalls(t *testing.T) {
	// A second, not less: "slow but steady" fails on any pause of more
	// than three quarters of it between two writes, which a loaded
	// machine running the suite under -race makes now and then.
	const timeout = time.Second
	// run serves h, with release closed before the server is closed, and
	// exports from it.
	run := func(t *testing.T, h func(w http.ResponseWriter, r *http.Request, release <-chan struct{})) (string, error) {
		t.Helper()
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(w, r, release) }))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) }) // runs first
		c, err := New(srv.URL, token, WithHTTPClient(&http.Client{Timeout: timeout}))
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		done := make(chan error, 1)
		go func() { done <- c.ExportAudit(context.Background(), AuditQuery{Tenant: "contoso"}, "jsonl", &b) }()
		select {
		case err := <-done:
			return b.String(), err
		case <-time.After(10 * time.Second):
			t.Fatal("ExportAudit still waits for a server that stopped answering")
			return "", nil
		}
	}
	t.Run("no headers", func(t *testing.T) {
		_, err := run(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) { <-release })
		if err == nil || !strings.Contains(err.Error(), "sent nothing for 1s") {
			t.Fatalf("err = %v, want the server named as silent", err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want it to match context.DeadlineExceeded", err)
		}
		var ue *url.Error
		if !errors.As(err, &ue) {
			t.Errorf("err = %T, want a *url.Error like every call that got no answer", err)
		}
	})
	t.Run("body stops", func(t *testing.T) {
		got, err := run(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
			_, _ = io.WriteString(w, "{\"Id\":\"1\"}\n")
			_ = http.NewResponseController(w).Flush()
			<-release
		})
		if err == nil || !strings.Contains(err.Error(), "sent nothing for 1s") {
			t.Fatalf("err = %v, want the server named as silent", err)
		}
		if got != "{\"Id\":\"1\"}\n" {
			t.Errorf("written before the stall: %q", got)
		}
	})
	t.Run("slow but steady", func(t *testing.T) {
		// Longer than the timeout in all, never silent for as long: a
		// line each quarter of it, on a clock the test moves once the
		// line before reached the export, so that a loaded machine's
		// pauses (which made the real clock's pauses of three quarters
		// of the timeout overrun it now and then) count for nothing.
		clock := &fakeTimers{}
		const lines = 6
		w := &lineWriter{got: make(chan int, lines)}
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			for i := range lines {
				_, _ = io.WriteString(rw, "{\"Id\":\""+string(rune('a'+i))+"\"}\n")
				_ = http.NewResponseController(rw).Flush()
				for n := 0; n <= i; {
					select {
					case n = <-w.got:
					case <-time.After(10 * time.Second):
						t.Error("line", i, "never reached the export")
						return
					}
				}
				clock.advance(timeout / 4)
			}
		}))
		defer srv.Close()
		c, err := New(srv.URL, token, WithHTTPClient(&http.Client{Timeout: timeout}))
		if err != nil {
			t.Fatal(err)
		}
		c.afterFunc = clock.afterFunc
		done := make(chan error, 1)
		go func() { done <- c.ExportAudit(context.Background(), AuditQuery{Tenant: "contoso"}, "jsonl", w) }()
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("ExportAudit still runs")
		}
		if got := w.String(); err != nil || strings.Count(got, "\n") != lines {
			t.Fatalf("ExportAudit = %v after %q, want the whole export", err, got)
		}
		if now, started := clock.state(); now <= timeout || started == 0 {
			t.Errorf("the export took %s on the test's clock with %d timers: want more than %s on it", now, started, timeout)
		}
	})
}

// fakeTimers is a clock a test moves: a timer started with afterFunc
// fires when advance moves the clock to its deadline while it runs.
type fakeTimers struct {
	mu     sync.Mutex
	now    time.Duration
	timers []*fakeTimer
}

type fakeTimer struct {
	c        *fakeTimers
	f        func()
	deadline time.Duration
	running  bool
}

func (c *fakeTimers) afterFunc(d time.Duration, f func()) stallTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, f: f, deadline: c.now + d, running: true}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.running
	t.running, t.deadline = true, t.c.now+d
	return was
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.running
	t.running = false
	return was
}

// advance moves the clock by d and runs the timers it ends.
func (c *fakeTimers) advance(d time.Duration) {
	c.mu.Lock()
	c.now += d
	var fire []func()
	for _, t := range c.timers {
		if t.running && t.deadline <= c.now {
			t.running = false
			fire = append(fire, t.f)
		}
	}
	c.mu.Unlock()
	for _, f := range fire {
		f()
	}
}

// state returns the clock's time and how many timers were started.
func (c *fakeTimers) state() (time.Duration, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now, len(c.timers)
}

// lineWriter keeps what it is given and sends on got how many lines it
// holds after each write.
type lineWriter struct {
	mu  sync.Mutex
	b   strings.Builder
	got chan int
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.b.Write(p)
	n := strings.Count(w.b.String(), "\n")
	w.mu.Unlock()
	select {
	case w.got <- n:
	default:
		// The server reads the latest count; an older one may go.
		select {
		case <-w.got:
		default:
		}
		w.got <- n
	}
	return len(p), nil
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestDefaultClientKeepsTheTokenOnItsServer: net/http sends Authorization
// on through a redirect to any port and scheme of the same host name (and
// to its subdomains), so the default client, followed such a redirect,
// handed the bearer token to another server on that host, or in clear
// text to the network after https. It follows no redirect that leaves the
// API's scheme, host and port; one within them it still follows.
func TestDefaultClientKeepsTheTokenOnItsServer(t *testing.T) {
	other := &fake{body: `{"approvers":["x@contoso.example"]}`}
	otherSrv := httptest.NewServer(other)
	defer otherSrv.Close()
	api := &fake{body: `{"approvers":[]}`}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/tenants/away/approvers", func(w http.ResponseWriter, r *http.Request) {
		// Another port of the same host, 127.0.0.1.
		http.Redirect(w, r, otherSrv.URL+"/v1/tenants/contoso/approvers", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/v1/tenants/moved/approvers", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/v1/tenants/contoso/approvers", http.StatusTemporaryRedirect)
	})
	mux.Handle("/v1/tenants/contoso/approvers", api)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, err := New(srv.URL, token)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := c.Approvers(context.Background(), "away"); err == nil {
		t.Error("a redirect to another port of the host was followed")
	} else if !strings.Contains(err.Error(), otherSrv.URL) {
		t.Errorf("err = %v, want it to name where the redirect pointed", err)
	}
	other.mu.Lock()
	for _, c := range other.calls {
		if c.Auth != "" {
			t.Errorf("the other server got the token: %+v", c)
		}
	}
	other.mu.Unlock()

	if _, err := c.Approvers(context.Background(), "moved"); err != nil {
		t.Fatalf("a redirect within the API's address: %v", err)
	}
	if got := api.last(t); got.Auth != "Bearer "+token {
		t.Errorf("after a redirect within the API's address, Authorization = %q", got.Auth)
	}
}

// TestPlainHTTPKeepsTheToken: a client that would send its bearer token
// over plain http to a server that is not loopback is refused at New,
// with an *InsecureHTTPError naming AllowInsecureHTTP, before anything is
// sent; anyone on the path could read and replay the token. Loopback
// http (lockbox dev's, a port-forward's) and https stay allowed, and
// AllowInsecureHTTP sends the token anyway.
func TestPlainHTTPKeepsTheToken(t *testing.T) {
	for _, base := range []string{"http://lockbox.example.com", "HTTP://LOCKBOX.EXAMPLE.COM:8080/prefix", "http://10.1.2.3:8080", "http://[2001:db8::1]:8080"} {
		t.Run(base, func(t *testing.T) {
			c, err := New(base, token)
			var insecure *InsecureHTTPError
			if !errors.As(err, &insecure) {
				t.Fatalf("New(%q) = %v (client %t): want an *InsecureHTTPError", base, err, c != nil)
			}
			if !strings.Contains(err.Error(), "AllowInsecureHTTP") || strings.Contains(err.Error(), token) {
				t.Errorf("err = %q: want it to name AllowInsecureHTTP and not show the token", err)
			}
			// The option lets the token go, and it does.
			var auth []string
			hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				auth = append(auth, r.Header.Get("Authorization"))
				return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{"approvers":[]}`)), Request: r}, nil
			})}
			c, err = New(base, token, AllowInsecureHTTP(), WithHTTPClient(hc))
			if err != nil {
				t.Fatalf("New(%q, AllowInsecureHTTP()) = %v", base, err)
			}
			if _, err := c.Approvers(context.Background(), "contoso"); err != nil {
				t.Fatal(err)
			}
			if len(auth) != 1 || auth[0] != "Bearer "+token {
				t.Errorf("with AllowInsecureHTTP the server got Authorization %q, want the token", auth)
			}
		})
	}
	// Loopback, a listen address (which dials this machine), https, and
	// no token at all (nothing to leak) need no option.
	for _, tt := range []struct{ base, token string }{
		{"http://127.0.0.1:8080", token}, {"http://127.9.9.9", token}, {"http://localhost:8080", token},
		{"http://LOCALHOST", token}, {"http://[::1]:8080", token}, {"http://:8080", token}, {"http://0.0.0.0:8080", token},
		{"https://lockbox.example.com", token}, {"http://lockbox.example.com", ""},
	} {
		if _, err := New(tt.base, tt.token); err != nil {
			t.Errorf("New(%q, %q) = %v", tt.base, tt.token, err)
		}
	}
}

// TestRedirectKeepsThePlainHTTPRule: the rule of New, no token over plain
// http off loopback without AllowInsecureHTTP, holds for where a redirect
// points too, whatever the redirect policy of WithHTTPClient's client:
// net/http sends Authorization on to the same host name over plain
// http, so an https API (or a proxy in front of it) answering 307 to
// http:// had the token cross the network in the clear. AllowInsecureHTTP
// allows a plain http address, not a redirect off https: that is another
// origin, which no redirect is followed to either
// (TestGivenClientKeepsTheTokenOnItsServer).
func TestRedirectKeepsThePlainHTTPRule(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []Option
	}{
		{"by default", nil},
		{"with AllowInsecureHTTP", []Option{AllowInsecureHTTP()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var plain []string
			hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if r.URL.Scheme == "https" {
					h := http.Header{"Location": {"http://lockbox.example.com" + r.URL.RequestURI()}}
					return &http.Response{StatusCode: http.StatusTemporaryRedirect, Header: h, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
				}
				plain = append(plain, r.Header.Get("Authorization"))
				return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{"approvers":[]}`)), Request: r}, nil
			})}
			c, err := New("https://lockbox.example.com", token, append(tt.opts, WithHTTPClient(hc))...)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Approvers(context.Background(), "contoso")
			if slices.Contains(plain, "Bearer "+token) {
				t.Errorf("the token went over plain http (err %v)", err)
			}
			var insecure *InsecureHTTPError
			if tt.opts == nil && !errors.As(err, &insecure) {
				t.Errorf("err = %v, want an *InsecureHTTPError", err)
			}
			if tt.opts != nil && (err == nil || !strings.Contains(err.Error(), "another server")) {
				t.Errorf("err = %v, want the redirect refused as leaving the API's server", err)
			}
		})
	}
}

// TestGivenClientKeepsTheTokenOnItsServer: the rule of the default client,
// no redirect followed off the API's scheme, host and port, holds for
// WithHTTPClient's client too, whatever its own redirect policy. A client
// given only for TLS (an httptest server's, one with a private CA) has
// none, so net/http's applied: it sends Authorization on to the same host
// name at another port (and to subdomains), and an https API answering
// 307 to https://its-host:other-port handed the token to that server. A
// redirect within the API's address is still followed, and the caller's
// own refusal is still the one returned (lockboxctl names it so).
func TestGivenClientKeepsTheTokenOnItsServer(t *testing.T) {
	other := &fake{body: `{"approvers":["x@contoso.example"]}`}
	otherSrv := httptest.NewTLSServer(other)
	defer otherSrv.Close()
	api := &fake{body: `{"approvers":[]}`}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/tenants/away/approvers", func(w http.ResponseWriter, r *http.Request) {
		// Another port of the same host, 127.0.0.1.
		http.Redirect(w, r, otherSrv.URL+"/v1/tenants/contoso/approvers", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/v1/tenants/moved/approvers", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/v1/tenants/contoso/approvers", http.StatusTemporaryRedirect)
	})
	mux.Handle("/v1/tenants/contoso/approvers", api)
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()

	errCallers := errors.New("the caller's own refusal")
	for _, tt := range []struct {
		name   string
		policy func(*http.Request, []*http.Request) error
		want   error // the error the refused redirect matches; nil: the client's own
	}{
		{"no policy of its own", nil, nil},
		{"a policy following everything", func(*http.Request, []*http.Request) error { return nil }, nil},
		{"a policy refusing it", func(*http.Request, []*http.Request) error { return errCallers }, errCallers},
	} {
		t.Run(tt.name, func(t *testing.T) {
			other.mu.Lock()
			other.calls = nil
			other.mu.Unlock()
			api.mu.Lock()
			api.calls = nil
			api.mu.Unlock()
			hc := *srv.Client() // trusts both servers: httptest has one certificate
			hc.CheckRedirect = tt.policy
			c, err := New(srv.URL, token, WithHTTPClient(&hc))
			if err != nil {
				t.Fatal(err)
			}

			_, err = c.Approvers(context.Background(), "away")
			switch {
			case err == nil:
				t.Error("a redirect to another port of the API's host was followed")
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Errorf("err = %v, want the caller's policy's", err)
			case tt.want == nil && (!strings.Contains(err.Error(), otherSrv.URL) || !strings.Contains(err.Error(), "another server")):
				t.Errorf("err = %v, want it to say the redirect to %s leaves the API's server", err, otherSrv.URL)
			}
			other.mu.Lock()
			for _, c := range other.calls {
				if c.Auth != "" {
					t.Errorf("the other server got the token: %+v", c)
				}
			}
			other.mu.Unlock()

			if tt.want != nil {
				return // the caller's policy refuses every redirect
			}
			if _, err := c.Approvers(context.Background(), "moved"); err != nil {
				t.Fatalf("a redirect within the API's address: %v", err)
			}
			if got := api.last(t); got.Auth != "Bearer "+token {
				t.Errorf("after a redirect within the API's address, Authorization = %q", got.Auth)
			}
		})
	}
}

// TestExportRefusesAPage: a 200 answer of HTML to an export is not the
// audit log but a page of something in front of the API (a sign-in
// proxy, a captive portal). ExportAudit fails with an error naming it
// and writes none of it, rather than leave an "export" of HTML and
// report success; the JSON calls already fail on such a body.
func TestExportRefusesAPage(t *testing.T) {
	for _, ct := range []string{"text/html; charset=utf-8", "TEXT/HTML", "application/xhtml+xml"} {
		t.Run(ct, func(t *testing.T) {
			page := "<!doctype html><html><body>Sign in to continue</body></html>"
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ct)
				_, _ = io.WriteString(w, page)
			}))
			defer srv.Close()
			c, err := New(srv.URL, token)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			err = c.ExportAudit(context.Background(), AuditQuery{Tenant: "contoso"}, "csv", &b)
			if err == nil || !strings.Contains(err.Error(), "not an audit export") {
				t.Errorf("err = %v, want the answer named as no audit export", err)
			}
			if b.Len() != 0 {
				t.Errorf("the export got %q", b.String())
			}
		})
	}
	// What the API sends, and a server that names no type, are written.
	for _, ct := range []string{"text/csv; charset=utf-8", "application/jsonl", ""} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = nil // no sniffing: the header as given
			if ct != "" {
				w.Header().Set("Content-Type", ct)
			}
			_, _ = io.WriteString(w, "CreationDate,UserIds,Operations,AuditData\n")
		}))
		c, err := New(srv.URL, token)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := c.ExportAudit(context.Background(), AuditQuery{}, "csv", &b); err != nil || b.Len() == 0 {
			t.Errorf("Content-Type %q: err = %v, wrote %q", ct, err, b.String())
		}
		srv.Close()
	}
}

// TestPageIsNoAnswer: a 200 page from something in front of the API (a
// sign-in proxy, a default backend) is no answer of the API's, to the
// JSON calls as to the export: a call that expects no body (adding or
// removing an approver) returned nil, as if the change were made, and one
// that expects JSON failed on the '<' without naming the page.
func TestPageIsNoAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!doctype html><html><body>Sign in to continue</body></html>")
	}))
	defer srv.Close()
	c, err := New(srv.URL, token)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"AddApprover":    func() error { return c.AddApprover(ctx, "contoso", "alice@contoso.com") },
		"RemoveApprover": func() error { return c.RemoveApprover(ctx, "contoso", "alice@contoso.com") },
		"ListRequests":   func() error { _, err := c.ListRequests(ctx, ListOptions{}); return err },
	} {
		if err := call(); err == nil || !strings.Contains(err.Error(), "HTML page") || !strings.Contains(err.Error(), srv.URL) {
			t.Errorf("%s: err = %v, want the answer named as a page and the address", name, err)
		}
	}
}

// TestOffboardIfMatch: OffboardIfMatch sends the ETag TenantETag returned
// as If-Match and returns the server's 412 as an *APIError with
// CodeTenantChanged; Offboard sends none, and an empty ETag is refused
// before anything is sent rather than offboard unconditionally.
func TestOffboardIfMatch(t *testing.T) {
	ctx := context.Background()
	const offboarded = `{"id":"contoso","state":"offboarded","offboarded":{"at":"2026-03-04T10:00:00Z","by":"lara@provider.example","reason":"r"}}`
	f := &fake{body: offboarded}
	c := newClient(t, f)
	out, err := c.OffboardIfMatch(ctx, "contoso", "r", `"3"`)
	if err != nil || out.Offboarded == nil {
		t.Fatalf("OffboardIfMatch = %+v, %v", out, err)
	}
	if got := f.last(t); got.Method != "POST" || got.Path != "/v1/tenants/contoso/offboard" || got.IfMatch != `"3"` || got.Body != `{"reason":"r"}` {
		t.Fatalf("POST = %+v", got)
	}

	f = &fake{status: http.StatusPreconditionFailed, body: `{"error":{"code":"tenant_changed","message":"read it again"}}`}
	c = newClient(t, f)
	_, err = c.OffboardIfMatch(ctx, "contoso", "r", `"3"`)
	if apiErr, ok := errors.AsType[*APIError](err); !ok || apiErr.Status != http.StatusPreconditionFailed || apiErr.Code != CodeTenantChanged {
		t.Fatalf("412 = %v, want an *APIError with %s", err, CodeTenantChanged)
	}

	f = &fake{body: offboarded}
	c = newClient(t, f)
	if _, err := c.Offboard(ctx, "contoso", "r"); err != nil || f.last(t).IfMatch != "" {
		t.Fatalf("Offboard sent If-Match %q (%v)", f.last(t).IfMatch, err)
	}
	if _, err := c.OffboardIfMatch(ctx, "contoso", "r", ""); err == nil || len(f.calls) != 1 {
		t.Fatalf("an empty ETag was sent as an unconditional offboarding: %v", err)
	}
}

// TestListenAddressDialsLoopback: a plain http address that names no host
// (a listen address copied from LOCKBOX_API_ADDR) takes the token without
// AllowInsecureHTTP because it dials this machine, so it must be called as
// loopback: net/http hands any other host to HTTP_PROXY, and the call,
// Authorization and all, crossed the network in the clear to the proxy
// (cli's TestTokenNeverReachesAProxyInTheClear shows that with a real one).
// The environment's proxy rule is httpproxy's, which net/http uses.
func TestListenAddressDialsLoopback(t *testing.T) {
	proxyOf := (&httpproxy.Config{HTTPProxy: "http://proxy.example:3128"}).ProxyFunc()
	for _, tt := range []struct{ base, host string }{
		{"http://:8080", "127.0.0.1:8080"}, {"http://0.0.0.0:8080", "127.0.0.1:8080"},
		{"http://0.0.0.0", "127.0.0.1"}, {"http://[::]:8080", "[::1]:8080"}, {"http://[::]", "[::1]"},
		{"http://[::ffff:0.0.0.0]:8080", "127.0.0.1:8080"},
		// Named hosts stay as given.
		{"http://localhost:8080", "localhost:8080"}, {"http://127.0.0.2:8080", "127.0.0.2:8080"},
		{"https://0.0.0.0:8443", "0.0.0.0:8443"},
	} {
		var got []string
		hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if p, err := proxyOf(r.URL); err != nil || p != nil {
				got = append(got, fmt.Sprintf("to proxy %v (%v)", p, err))
			}
			got = append(got, r.URL.Host)
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{"approvers":[]}`)), Request: r}, nil
		})}
		c, err := New(tt.base, token, WithHTTPClient(hc))
		if err != nil {
			t.Errorf("New(%q) = %v", tt.base, err)
			continue
		}
		if _, err := c.Approvers(context.Background(), "contoso"); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != tt.host {
			t.Errorf("New(%q): the call went %q, want only to host %q", tt.base, got, tt.host)
		}
	}
}

// TestRequestActivityReadsEveryPage: the API answers a request's trail a
// page at a time, newest first; RequestActivity follows the cursors to the
// end and gives every record, oldest first, naming each unreadable one
// once.
func TestRequestActivityReadsEveryPage(t *testing.T) {
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.RawQuery)
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Query().Get("cursor") {
		case "":
			_, _ = io.WriteString(w, `{"records":[{"Id":"r4"},{"Id":"r3"}],"next_cursor":"c1","unreadable":[{"stream_id":"9-0","tenant":"contoso","error":"cannot be read"}]}`)
		case "c1":
			_, _ = io.WriteString(w, `{"records":[],"next_cursor":"c2","prev_cursor":"p1","unreadable":[{"stream_id":"9-0","tenant":"contoso","error":"cannot be read"}]}`)
		case "c2":
			_, _ = io.WriteString(w, `{"records":[{"Id":"r2"},{"Id":"r1"}],"prev_cursor":"p2"}`)
		default:
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, token)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.RequestActivity(context.Background(), "r1")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range got.Records {
		ids = append(ids, r.Id)
	}
	if strings.Join(ids, " ") != "r1 r2 r3 r4" || len(got.Unreadable) != 1 {
		t.Errorf("records %v, unreadable %+v; want r1 to r4, oldest first, and the unreadable one once", ids, got.Unreadable)
	}
	if want := []string{"limit=1000", "cursor=c1&limit=1000", "cursor=c2&limit=1000"}; !slices.Equal(queries, want) {
		t.Errorf("queries %q, want %q", queries, want)
	}
}
