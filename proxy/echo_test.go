package proxy

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEcho(t *testing.T) {
	exact := strings.Repeat("a", maxEcho)
	tests := []struct {
		name, in, want string
	}{
		{"short", "/tenants/contoso", "/tenants/contoso"},
		{"at the limit", exact, exact},
		{"one over", exact + "b", exact + "…"},
		{"long", strings.Repeat("x", 16<<10), strings.Repeat("x", maxEcho) + "…"},
		// "é" is two bytes; the cut must not split it.
		{"rune boundary", strings.Repeat("a", maxEcho-1) + "éé", strings.Repeat("a", maxEcho-1) + "…"},
	}
	for _, tt := range tests {
		got := echo(tt.in)
		if got != tt.want {
			t.Errorf("%s: echo = %q (%d bytes), want %q", tt.name, got, len(got), tt.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("%s: echo split a rune: %q", tt.name, got)
		}
	}
}

// A denial repeats at most maxEcho bytes of what the client sent, in its
// answer and in its log line, however long the target: 16 KiB in must not
// mean 16 KiB out.
func TestDenialsDoNotEchoLongInput(t *testing.T) {
	long := strings.Repeat("a", 16<<10)
	tests := []struct {
		name, method, target string
		status               int
		code                 string
	}{
		{"unknown activity, long path", "GET", mailboxes + "/" + long, http.StatusForbidden, string(ReasonUnknownActivity)},
		{"unknown activity, long method", strings.Repeat("M", 16<<10), mailboxes, http.StatusForbidden, string(ReasonUnknownActivity)},
		{"no tenant id, long tenant", "GET", "/exchange/tenants/" + long + "/mailboxes", http.StatusForbidden, string(ReasonNoGrant)},
		{"not canonical", "GET", mailboxes + "/" + long + "/..", http.StatusBadRequest, string(ReasonBadRequest)},
		{"unknown service", "GET", "/" + long + "/tenants", http.StatusNotFound, string(ReasonUnknownService)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			res := e.send(as(alice, tt.method, tt.target)(e))
			if res.status != tt.status || res.errorCode(t) != tt.code {
				t.Fatalf("status %d, code %q; want %d %q: %.300s", res.status, res.errorCode(t), tt.status, tt.code, res.body)
			}
			if len(res.body) > 512 {
				t.Errorf("answer is %d bytes: %.300s…", len(res.body), res.body)
			}
			lines := e.logLines("proxy call denied")
			if len(lines) != 1 {
				t.Fatalf("%d denial log lines", len(lines))
			}
			b, _ := json.Marshal(lines[0])
			if len(b) > 2048 {
				t.Errorf("log line is %d bytes: %.300s…", len(b), b)
			}
			if e.upstreamCalls() != 0 {
				t.Error("a denied call reached the upstream")
			}
		})
	}
	// What is echoed still says which call it was.
	e := newTestEnv(t)
	res := e.send(as(alice, "GET", mailboxes+"/"+long)(e))
	var body struct{ Error struct{ Message string } }
	if err := json.Unmarshal(res.body, &body); err != nil {
		t.Fatal(err)
	}
	if want := "GET /tenants/contoso/mailboxes/aaaa"; !strings.HasPrefix(body.Error.Message, want) || !strings.Contains(body.Error.Message, "…") {
		t.Errorf("message %q does not start with %q and mark the cut", body.Error.Message, want)
	}
	line := e.logLines("proxy call denied")[0]
	if p, _ := line["path"].(string); !strings.HasPrefix(p, "/tenants/contoso/mailboxes/aaaa") || len(p) > maxEcho+len("…") {
		t.Errorf("logged path = %.300q (%d bytes)", p, len(p))
	}
}

// A denial of a call's body repeats at most maxEcho bytes of the client's
// Content-Type or body too: a form's media type can be as long as the
// header allows, and a multipart part's header line as long as the body.
func TestBodyDenialsDoNotEchoLongInput(t *testing.T) {
	long := strings.Repeat("a", 64<<10)
	tests := []struct {
		name              string
		contentType, body string
	}{
		{"long multipart type without a boundary", formMultipart + long, "x"},
		{"long multipart type with two boundaries", formMultipart + long + "; boundary=b; boundary=c", "x"},
		{"long multipart type in a charset", formMultipart + long + "; boundary=b; charset=utf-16le", "x"},
		{"long multipart type with charset outside it", formMultipart + long + "; boundary=b; x-charset=utf-8", "x"},
		{"long part header line", formMultipart + "; boundary=b",
			"--b\r\n" + long + "\r\n\r\nindex\r\n--b--\r\n"},
		{"long part header name", formMultipart + "; boundary=b",
			"--b\r\n" + long + " : x\r\n\r\nindex\r\n--b--\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			repairOnContoso(e)
			res := e.send(formPOST(tt.contentType, tt.body, false)(e))
			if res.status != http.StatusBadRequest || res.errorCode(t) != string(ReasonBadRequest) {
				t.Fatalf("status %d; want 400 %s: %.300s", res.status, ReasonBadRequest, res.body)
			}
			if len(res.body) > 512 {
				t.Errorf("answer is %d bytes: %.300s…", len(res.body), res.body)
			}
			lines := e.logLines("proxy call denied")
			if len(lines) != 1 {
				t.Fatalf("%d denial log lines", len(lines))
			}
			b, _ := json.Marshal(lines[0])
			if len(b) > 2048 {
				t.Errorf("log line is %d bytes: %.300s…", len(b), b)
			}
		})
	}
}
