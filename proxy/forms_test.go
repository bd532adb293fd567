package proxy

import (
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"
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
			e := newTestEnv(t)
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
