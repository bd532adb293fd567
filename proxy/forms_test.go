package proxy

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/identity"
)

// TestBodyForwarded: a form body, or a POSTed JSON body, without an
// override field reaches the upstream byte for byte, with a Content-Length
// even when the client sent it chunked; other bodies (a JSON body of
// another method included) still stream as they came.
func TestBodyForwarded(t *testing.T) {
	const site = "/sharepoint/tenants/contoso/sites/s1"
	tests := []struct {
		name        string
		method      string // POST to New-MailboxRepairRequest unless set
		contentType string
		body        string
		chunked     bool
		// streamed: the body is not read, so it keeps its framing.
		streamed bool
	}{
		{name: "urlencoded", contentType: formURLEncoded, body: "kind=index&method=full&note=a+b%21"},
		{name: "urlencoded, chunked", contentType: formURLEncoded + "; charset=utf-8", body: "kind=index&note=%E2%9C%93", chunked: true},
		{name: "urlencoded, ISO-8859-1", contentType: formURLEncoded + "; charset=ISO-8859-1", body: "kind=index&note=caf%E9"},
		{name: "multipart, chunked", contentType: formMultipart + `; boundary="b"`,
			body: multipartBody(`form-data; name="kind"`, `form-data; name="log"; filename="_method.txt"`), chunked: true},
		{name: "JSON", contentType: "application/json", body: `{"kind":"index","method":"full"}`},
		{name: "JSON, chunked", contentType: "application/json; charset=utf-8", body: `{"kind":"index","note":"\u005fmethod"}`, chunked: true},
		{name: "JSON, _method nested", contentType: "application/json", body: `{"kind":"index","options":{"_method":"DELETE"}}`},
		{name: "JSON, top-level array", contentType: "application/json", body: `[{"_method":"DELETE"}]`, chunked: true},
		{name: "JSON:API, chunked", contentType: "application/vnd.api+json", body: `{"data":{"type":"repair","attributes":{"kind":"index"}}}`, chunked: true},
		{name: "JSON PATCH with _method, chunked", method: "PATCH", contentType: "application/json", body: `{"_method":"DELETE"}`, chunked: true, streamed: true},
		{name: "text with _method, chunked", contentType: "text/plain", body: `{"_method":"DELETE"}`, chunked: true, streamed: true},
		{name: "no Content-Type, chunked", body: "kind=index&note=x", chunked: true},
		{name: "multipart/mixed, chunked", contentType: `multipart/mixed; boundary="b"`, body: multipartBody(`form-data; name="kind"`), chunked: true},
		{name: "PATCH without Content-Type, chunked", method: "PATCH", body: "_method=DELETE", chunked: true, streamed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// About bodies, not the store: a Redis slowed by a loaded
			// machine past the 300 ms grant timeout is not down here.
			e := newTestEnv(t, patientStore)
			repairOnContoso(e)
			e.grantFor(alice, "contoso", "sharepoint", 2*time.Hour, "Set-SPOSite")
			method, target, service := "POST", mailboxes+"/alice/repair", "exchange"
			if tt.method == "PATCH" {
				method, target, service = "PATCH", site, "sharepoint"
			}
			q := as(alice, method, target)(e)
			if tt.contentType != "" {
				q.header = append(q.header, [2]string{"Content-Type", tt.contentType})
			}
			q.body, q.chunked = tt.body, tt.chunked
			if res := e.send(q); res.status != http.StatusOK {
				t.Fatalf("status %d, body %s", res.status, res.body)
			}
			got := e.up[service].requests()
			if len(got) != 1 {
				t.Fatalf("upstream received %d requests", len(got))
			}
			up := got[0]
			if up.Method != method || string(up.Body) != tt.body || up.BodyErr != nil {
				t.Errorf("upstream got %s with body %q (%v), want %s %q", up.Method, up.Body, up.BodyErr, method, tt.body)
			}
			if up.Header.Get("Content-Type") != tt.contentType {
				t.Errorf("upstream Content-Type %q, want %q", up.Header.Get("Content-Type"), tt.contentType)
			}
			if tt.streamed {
				if !slices.Equal(up.TransferEncoding, []string{"chunked"}) || up.ContentLength != -1 {
					t.Errorf("upstream framing %q, length %d: want the body streamed, chunked", up.TransferEncoding, up.ContentLength)
				}
				return
			}
			if up.ContentLength != int64(len(tt.body)) || len(up.TransferEncoding) != 0 {
				t.Errorf("upstream framing %q, length %d: want Content-Length %d", up.TransferEncoding, up.ContentLength, len(tt.body))
			}
		})
	}
}

// TestFormJudgedWhenComplete: a call whose form body is read is judged at
// the time the body was complete, so a grant that ended while it arrived
// refuses it.
func TestFormJudgedWhenComplete(t *testing.T) {
	var (
		readings atomic.Int32
		end      time.Time
	)
	e := newTestEnv(t, func(e *testEnv, c *Config) {
		c.Now = func() time.Time {
			if readings.Add(1) == 1 {
				return e.clk.Now()
			}
			// The second reading: the body took until the grant's end.
			return end
		}
	})
	req := e.grantFor(alice, "contoso", "exchange", time.Hour, "New-MailboxRepairRequest")
	end = *req.ExpiresAt
	res := e.send(formPOST(formURLEncoded, "kind=index", false)(e))
	if res.status != http.StatusForbidden || res.errorCode(t) != string(ReasonGrantExpired) {
		t.Fatalf("%d %s: want 403 %s", res.status, res.body, ReasonGrantExpired)
	}
	if n := e.upstreamCalls(); n != 0 {
		t.Errorf("upstream received %d requests", n)
	}
}

// TestFormTokenCheckedWhenComplete: a call whose form body is read is
// judged once the body is complete, and so is its operator's token: a
// token that expired while the body arrived (slowly, as a client may send
// it for as long as it keeps it moving) refuses the call, as it would have
// had the call been sent then.
func TestFormTokenCheckedWhenComplete(t *testing.T) {
	judging := make(chan struct{})
	var once sync.Once
	e := newTestEnv(t, func(e *testEnv, c *Config) {
		c.Now = func() time.Time {
			// The first reading is taken once the token was verified, before
			// the body is read.
			once.Do(func() { close(judging) })
			return e.clk.Now()
		}
	})
	e.grantFor(alice, "contoso", "exchange", 4*time.Hour, "New-MailboxRepairRequest")
	tok, err := identity.Mint(e.idKey, testIssuer, testAudience,
		identity.Claims{Subject: alice.Subject, Roles: alice.Roles, TTL: 10 * time.Minute}, e.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	records := len(mustList(t, e, 50))
	const body = "kind=index"
	q := rawRequest{method: "POST", target: mailboxes + "/alice/repair", header: [][2]string{
		{"Authorization", "Bearer " + tok},
		{"Content-Type", formURLEncoded},
		{"Content-Length", strconv.Itoa(len(body))},
	}}
	c := e.dial()
	if _, err := c.c.Write(q.bytes()); err != nil {
		t.Fatal(err)
	}
	<-judging
	// The body takes an hour to arrive: well within the grant, well past
	// the token's expiry and the verifier's leeway.
	e.clk.Advance(time.Hour)
	if _, err := c.c.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	got := response{status: res.StatusCode, header: res.Header, body: b}
	if got.status != http.StatusUnauthorized || got.errorCode(t) != string(ReasonUnauthenticated) {
		t.Fatalf("%d %s: want 401 %s", got.status, got.body, ReasonUnauthenticated)
	}
	if n := e.upstreamCalls(); n != 0 {
		t.Errorf("upstream received %d requests", n)
	}
	if n := len(mustList(t, e, 50)); n != records {
		t.Errorf("the refused call left %d audit records", n-records)
	}
}

// turncoatAuth is an Authenticator that, from its second verification on,
// says the token names bob: an Authenticator whose mapping of a token
// changed while a call's body arrived.
type turncoatAuth struct {
	Authenticator
	calls atomic.Int32
}

func (a *turncoatAuth) Verify(ctx context.Context, raw string) (identity.Principal, error) {
	p, err := a.Authenticator.Verify(ctx, raw)
	if err == nil && a.calls.Add(1) > 1 {
		p.Subject = bob.Subject
	}
	return p, err
}

// TestFormOperatorCheckedWhenComplete: a token verified again once its
// call's body is complete must name the operator it named when the call
// arrived, in whose name the body was buffered; a call whose token now
// names another is refused, and the body budget it took is returned to the
// operator who took it.
func TestFormOperatorCheckedWhenComplete(t *testing.T) {
	auth := &turncoatAuth{}
	e := newTestEnv(t, func(_ *testEnv, c *Config) {
		auth.Authenticator = c.Auth
		c.Auth = auth
	})
	repairOnContoso(e)
	e.grantFor(bob, "contoso", "exchange", 2*time.Hour, "New-MailboxRepairRequest")
	res := e.send(formPOST(formURLEncoded, "kind=index", false)(e))
	if res.status != http.StatusUnauthorized || res.errorCode(t) != string(ReasonUnauthenticated) {
		t.Fatalf("%d %s: want 401 %s", res.status, res.body, ReasonUnauthenticated)
	}
	if n := e.upstreamCalls(); n != 0 {
		t.Errorf("upstream received %d requests", n)
	}
	if used, holders := e.h.bodies.inUse(), e.h.bodies.holders(); used != 0 || holders != 0 {
		t.Errorf("the body budget holds %d bytes for %d operators after the call", used, holders)
	}
}
