package proxy

import (
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// TestFormForwarded: a form body without an override field reaches the
// upstream byte for byte, with a Content-Length even when the client sent
// it chunked; other bodies still stream as they came.
func TestFormForwarded(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		chunked     bool
		// streamed: the body is not a form, so it keeps its framing.
		streamed bool
	}{
		{name: "urlencoded", contentType: formURLEncoded, body: "kind=index&method=full&note=a+b%21"},
		{name: "urlencoded, chunked", contentType: formURLEncoded + "; charset=utf-8", body: "kind=index&note=%E2%9C%93", chunked: true},
		{name: "multipart, chunked", contentType: formMultipart + `; boundary="b"`,
			body: multipartBody(`form-data; name="kind"`, `form-data; name="log"; filename="_method.txt"`), chunked: true},
		{name: "JSON, chunked", contentType: "application/json", body: `{"_method":"DELETE"}`, chunked: true, streamed: true},
		{name: "no Content-Type, chunked", body: "_method=DELETE", chunked: true, streamed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			repairOnContoso(e)
			q := as(alice, "POST", mailboxes+"/alice/repair")(e)
			if tt.contentType != "" {
				q.header = append(q.header, [2]string{"Content-Type", tt.contentType})
			}
			q.body, q.chunked = tt.body, tt.chunked
			if res := e.send(q); res.status != http.StatusOK {
				t.Fatalf("status %d, body %s", res.status, res.body)
			}
			got := e.up["exchange"].requests()
			if len(got) != 1 {
				t.Fatalf("upstream received %d requests", len(got))
			}
			up := got[0]
			if string(up.Body) != tt.body || up.BodyErr != nil {
				t.Errorf("upstream body %q (%v), want %q", up.Body, up.BodyErr, tt.body)
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
