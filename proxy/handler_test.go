package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/policy"
	"github.com/lockbox-oss/lockbox/tenants"
)

const mailboxes = "/exchange/tenants/contoso/mailboxes"

// as returns a request by p with the given method, target and extra
// headers.
func as(p identity.Principal, method, target string, extra ...[2]string) func(*testEnv) rawRequest {
	return func(e *testEnv) rawRequest {
		return rawRequest{method: method, target: target, header: append([][2]string{{"Authorization", e.bearer(p)}}, extra...)}
	}
}

// Setups shared by the denial cases.
var (
	// readsOnContoso approves alice's request for exchange on contoso,
	// naming no activities: every read, no write.
	readsOnContoso = func(e *testEnv) { e.grantFor(alice, "contoso", "exchange", 2*time.Hour) }
	// readsEverywhere also approves fabrikam, so a target that escapes
	// from one tenant to the other would find a grant there too.
	readsEverywhere = func(e *testEnv) {
		e.grantFor(alice, "contoso", "exchange", 2*time.Hour)
		e.grantFor(alice, "fabrikam", "exchange", 2*time.Hour)
	}
)

// repairOnContoso approves alice's request for New-MailboxRepairRequest,
// the POST of exchange's catalog.
func repairOnContoso(e *testEnv) {
	e.grantFor(alice, "contoso", "exchange", 2*time.Hour, "New-MailboxRepairRequest")
}

// formPOST returns alice's POST of body with Content-Type contentType to
// New-MailboxRepairRequest, with Content-Length or chunked: a form, or a
// body of any other type.
func formPOST(contentType, body string, chunked bool) func(*testEnv) rawRequest {
	return func(e *testEnv) rawRequest {
		q := as(alice, "POST", mailboxes+"/alice/repair", [2]string{"Content-Type", contentType})(e)
		q.body, q.chunked = body, chunked
		return q
	}
}

// utf16LE is s, ASCII, in UTF-16LE.
func utf16LE(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(s[i])
		b.WriteByte(0)
	}
	return b.String()
}

// deadClient returns a go-redis client that fails every command at once.
func deadClient(e *testEnv) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: e.rdb.Options().Addr, DB: e.rdb.Options().DB})
	c.Close()
	return c
}

// refusingClient returns a client for a port nothing listens on.
func refusingClient(t testing.TB) *redis.Client {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// hangingClient returns a client for a server that accepts connections and
// never answers: a Redis stuck on a slow disk, or a black-holed network.
// The client honours context deadlines, as the production wiring must.
func hangingClient(t testing.TB) *redis.Client {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	c := redis.NewClient(&redis.Options{Addr: l.Addr().String(), ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

func grantStoreOn(t testing.TB, e *testEnv, rdb *redis.Client) *grants.Store {
	s, err := grants.NewStore(grants.Config{Redis: rdb, Audit: audit.NewLog(rdb, e.clk.Now), Tenants: e.tenants, Catalog: e.catalog, Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writeGrantRow stores g as the grant of (tenant, operator, service), as a
// buggy store or someone with write access to Redis could.
func writeGrantRow(e *testEnv, tenant, operator, service string, g grants.Grant) {
	b, err := json.Marshal(g)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.rdb.Set(context.Background(), keys.Grant(tenant, operator, service), b, time.Hour).Err(); err != nil {
		e.t.Fatal(err)
	}
}

func TestDenials(t *testing.T) {
	tests := []struct {
		name   string
		config envOption
		setup  func(e *testEnv)
		req    func(e *testEnv) rawRequest
		status int
		reason Reason
		// label is the service label the denial is counted under.
		label string
		// within bounds the answer's latency, for dependencies that hang.
		within time.Duration
		// message is part of the error message the client must read.
		message string
		// logError, when set, is the denial log line's error, whole.
		logError string
		// noPolicy: no policy version was loaded, so the denial logs an
		// empty policy_revision rather than ruleRevision.
		noPolicy bool
		// recordWritten: the refusal came after the audit write, so the
		// call's record is in the stream (over-reporting, by design).
		recordWritten bool
	}{
		// 1. Requests the proxy does not judge at all.
		{name: "dot segments escaping to another tenant", setup: readsEverywhere,
			req: as(alice, "GET", "/exchange/tenants/contoso/../fabrikam/mailboxes"), status: 400, reason: ReasonBadRequest, label: "exchange"},
		{name: "encoded slash", setup: readsEverywhere,
			req: as(alice, "GET", "/exchange/tenants/contoso%2fmailboxes"), status: 400, reason: ReasonBadRequest, label: "exchange"},
		{name: "encoded dot segments", setup: readsEverywhere,
			req: as(alice, "GET", "/exchange/tenants/contoso/%2e%2e/fabrikam/mailboxes"), status: 400, reason: ReasonBadRequest, label: "exchange"},
		{name: "double slash", setup: readsOnContoso,
			req: as(alice, "GET", "/exchange//tenants/contoso/mailboxes"), status: 400, reason: ReasonBadRequest, label: "exchange"},
		{name: "matrix parameter", setup: readsOnContoso,
			req: as(alice, "GET", "/exchange/tenants/contoso;v=1/mailboxes"), status: 400, reason: ReasonBadRequest, label: "exchange"},
		{name: "trailing slash", setup: readsOnContoso,
			req: as(alice, "GET", mailboxes+"/"), status: 400, reason: ReasonBadRequest, label: "exchange"},
		{name: "method override header", setup: readsOnContoso,
			req: as(alice, "GET", mailboxes, [2]string{"X-HTTP-Method-Override", "DELETE"}), status: 400, reason: ReasonBadRequest, label: "exchange"},
		{name: "method override parameter", setup: readsOnContoso,
			req: as(alice, "GET", mailboxes+"?_method=DELETE"), status: 400, reason: ReasonBadRequest, label: "exchange"},
		{name: "encoded method override parameter", setup: readsOnContoso,
			req: as(alice, "GET", mailboxes+"?%5Fmethod=DELETE"), status: 400, reason: ReasonBadRequest, label: "exchange"},
		{name: "method override parameter after 10,000 empty parameters", setup: readsOnContoso,
			req: as(alice, "GET", mailboxes+"?"+strings.Repeat("&", 10000)+"_method=DELETE"), status: 400, reason: ReasonBadRequest, label: "exchange"},
		{name: "method override parameter after a +", setup: readsOnContoso,
			req: as(alice, "GET", mailboxes+"?+_method=DELETE"), status: 400, reason: ReasonBadRequest, label: "exchange"},
		{name: "method override parameter after %20", setup: readsOnContoso,
			req: as(alice, "GET", mailboxes+"?%20_method=DELETE"), status: 400, reason: ReasonBadRequest, label: "exchange"},
		{name: "method override parameter cut by NUL", setup: readsOnContoso,
			req: as(alice, "GET", mailboxes+"?_method%00x=DELETE"), status: 400, reason: ReasonBadRequest, label: "exchange"},
		{name: "method override parameter as an array", setup: readsOnContoso,
			req: as(alice, "GET", mailboxes+"?_METHOD[]=DELETE"), status: 400, reason: ReasonBadRequest, label: "exchange"},
		{name: "method override in a urlencoded form", setup: repairOnContoso,
			req:    formPOST(formURLEncoded, "kind=index&_method=DELETE", false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "form field _method"},
		{name: "method override in a chunked urlencoded form", setup: repairOnContoso,
			req:    formPOST(formURLEncoded+"; charset=utf-8", "kind=index&+_method=DELETE", true),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "form field _method"},
		{name: "method override in a multipart form", setup: repairOnContoso,
			req:    formPOST(formMultipart+"; boundary=b", multipartBody(`form-data; name="kind"`, `form-data; name="_method"`), false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "form field _method"},
		// Tomcat, Jetty and ASP.NET split a urlencoded body on the bytes
		// "&" and "=" and decode each name in the Content-Type's charset:
		// these bytes are "_method=DELETE" to them in UTF-16LE, and a
		// name cut short by a NUL to the proxy.
		{name: "method override in a UTF-16 urlencoded form", setup: repairOnContoso,
			req:    formPOST(formURLEncoded+"; charset=utf-16le", utf16LE("_method")+"="+utf16LE("DELETE"), false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "charset"},
		// Tomcat takes the charset from the first "charset=" anywhere in
		// the Content-Type (coyote Request.getCharsetFromContentType), so
		// to it this form is UTF-16LE too, although its charset parameter
		// is none.
		{name: "method override in a urlencoded form whose charset hides in another parameter", setup: repairOnContoso,
			req:    formPOST(formURLEncoded+"; x-charset=UTF-16LE", utf16LE("_method")+"="+utf16LE("DELETE"), false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "charset"},
		{name: "multipart form in EBCDIC", setup: repairOnContoso,
			req:    formPOST(formMultipart+"; boundary=b; charset=IBM037", multipartBody(`form-data; name="kind"`), false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "charset"},
		{name: "malformed urlencoded form", setup: repairOnContoso,
			req:    formPOST(formURLEncoded, "kind=%zz", false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "malformed form body"},
		{name: "multipart form cut short", setup: repairOnContoso,
			req:    formPOST(formMultipart+"; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nindex", false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "malformed multipart"},
		{name: "multipart form without a boundary", setup: repairOnContoso,
			req:    formPOST(formMultipart, multipartBody(`form-data; name="_method"`), false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "without a boundary"},
		{name: "method override in a POST without a Content-Type", setup: repairOnContoso,
			req: func(e *testEnv) rawRequest {
				q := as(alice, "POST", mailboxes+"/alice/repair")(e)
				q.body, q.chunked = "_method=DELETE", true
				return q
			},
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "form field _method"},
		{name: "method override in a POST with an empty Content-Type", setup: repairOnContoso,
			req:    formPOST("", "_method=DELETE", false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "form field _method"},
		{name: "urlencoded form type followed by a space", setup: repairOnContoso,
			req:    formPOST(formURLEncoded+" x", "_method=DELETE", false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "can't be read exactly"},
		{name: "multipart form type with a boundary but no ;", setup: repairOnContoso,
			req:    formPOST(formMultipart+" boundary=b", multipartBody(`form-data; name="_method"`), false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "can't be read exactly"},
		{name: "method override in a multipart/mixed body", setup: repairOnContoso,
			req:    formPOST("multipart/mixed; boundary=b", multipartBody(`form-data; name="_method"`), false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "form field _method"},
		{name: "multipart name* beside name", setup: repairOnContoso,
			req:    formPOST(formMultipart+"; boundary=b", multipartBody(`form-data; name="_method"; name*=UTF-8''x`), false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "RFC 2231"},
		// Tomcat's and Commons FileUpload's Content-Disposition parser
		// decodes RFC 2047 encoded-words: this name is "_method" to it.
		{name: "multipart RFC 2047 name", setup: repairOnContoso,
			req:    formPOST(formMultipart+"; boundary=b", multipartBody(`form-data; name="=?UTF-8?B?X21ldGhvZA==?="`), false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "RFC 2047"},
		// PHP ends a part at "\n--b" whatever follows, so to Laravel
		// this body has a second part, "_method"; to Go "--bX" is text.
		{name: "method override in a multipart part only PHP sees", setup: repairOnContoso,
			req: formPOST(formMultipart+"; boundary=b",
				"--b\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nindex\r\n--bX\r\n"+
					"Content-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b--\r\n", false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "delimiter"},
		// Tomcat and Commons FileUpload trim a part header's name, so
		// this part is "_method" to them; Go keeps the name with its
		// space, which is no Content-Disposition.
		{name: "method override in a part whose Content-Disposition has a space before its colon", setup: repairOnContoso,
			req: formPOST(formMultipart+"; boundary=b",
				"--b\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nindex\r\n--b\r\n"+
					"Content-Disposition : form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b--\r\n", false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "space"},
		// Go ends the header line at the bare LF, Tomcat does not: to it
		// the part's Content-Disposition ends in name="_method".
		{name: "method override in a part whose headers have a bare LF", setup: repairOnContoso,
			req: formPOST(formMultipart+"; boundary=b",
				"--b\r\nContent-Disposition: form-data; name=\"kind\"\nX-Note: a; name=\"_method\"\r\n\r\nDELETE\r\n--b--\r\n", false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "bare CR or LF"},
		{name: "multipart boundary twice", setup: repairOnContoso,
			req:    formPOST(formMultipart+"; boundary=b; x=\"boundary=c\"", multipartBody(`form-data; name="kind"`), false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "more than once"},
		{name: "two Content-Types, one a form", setup: repairOnContoso,
			req: func(e *testEnv) rawRequest {
				q := formPOST("application/json", "_method=DELETE", false)(e)
				q.header = append(q.header, [2]string{"Content-Type", formURLEncoded})
				return q
			},
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "more than one Content-Type"},
		// A header the client names in Connection is not forwarded, so the
		// upstream gets a POST without a Content-Type, which Rack reads as
		// a urlencoded form: the screen must read it as that too.
		{name: "method override in a POST whose Content-Type is hop-by-hop", setup: repairOnContoso,
			req: func(e *testEnv) rawRequest {
				q := formPOST("text/plain", "_method=DELETE", false)(e)
				q.header = append(q.header, [2]string{"Connection", "Content-Type"})
				return q
			},
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "form field _method"},
		{name: "method override in a JSON POST whose Content-Type is hop-by-hop", setup: repairOnContoso,
			req: func(e *testEnv) rawRequest {
				q := formPOST("application/json", `{"note":"&_method=DELETE&"}`, true)(e)
				q.header = append(q.header, [2]string{"Connection", "keep-alive, content-type"})
				return q
			},
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "form field _method"},
		{name: "compressed form", setup: repairOnContoso,
			req: func(e *testEnv) rawRequest {
				q := formPOST(formURLEncoded, "\x1f\x8b\x08\x00not-inflated", false)(e)
				q.header = append(q.header, [2]string{"Content-Encoding", "gzip"})
				return q
			},
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "Content-Encoding"},
		{name: "chunked form over the limit", setup: repairOnContoso,
			config: func(_ *testEnv, c *Config) { c.MaxBodyBytes = 1024 },
			req:    formPOST(formURLEncoded, "kind="+strings.Repeat("x", 2048), true),
			status: 413, reason: ReasonBadRequest, label: "exchange"},
		{name: "method override in a JSON POST", setup: repairOnContoso,
			req:    formPOST("application/json", `{"kind":"index","_method":"DELETE"}`, false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "JSON body key _method"},
		{name: "escaped method override in a chunked JSON POST", setup: repairOnContoso,
			req:    formPOST("application/json; charset=utf-8", `{"\u005fmethod":"DELETE"}`, true),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "JSON body key _method"},
		{name: "spaced, upper-case method override in a JSON POST", setup: repairOnContoso,
			req:    formPOST("application/json", `{" _METHOD":"DELETE"}`, false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "JSON body key _method"},
		{name: "method override in a +json POST", setup: repairOnContoso,
			req:    formPOST("application/vnd.api+json", `{"data":{},"_method":"DELETE"}`, false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "JSON body key _method"},
		{name: "method override in a POST Laravel reads as JSON", setup: repairOnContoso,
			req:    formPOST("text/plain; x=/JSON", `{"_method":"DELETE"}`, false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "JSON body key _method"},
		{name: "method override in a JSON POST with a form type", setup: repairOnContoso,
			req:    formPOST(formURLEncoded+`; x="/json"`, `{"_method":"DELETE"}`, false),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "JSON body key _method"},
		{name: "invalid JSON POST", setup: repairOnContoso,
			req:    formPOST("application/json", `{"kind":"index",}`, true),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "malformed JSON body"},
		{name: "compressed JSON POST", setup: repairOnContoso,
			req: func(e *testEnv) rawRequest {
				q := formPOST("application/json", "\x1f\x8b\x08\x00not-inflated", false)(e)
				q.header = append(q.header, [2]string{"Content-Encoding", "gzip"})
				return q
			},
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "Content-Encoding"},
		{name: "chunked JSON POST over the limit", setup: repairOnContoso,
			config: func(_ *testEnv, c *Config) { c.MaxBodyBytes = 1024 },
			req:    formPOST("application/json", `{"kind":"`+strings.Repeat("x", 2048)+`"}`, true),
			status: 413, reason: ReasonBadRequest, label: "exchange"},
		{name: "CONNECT", setup: readsOnContoso,
			req: as(alice, "CONNECT", "exchange.internal:443"), status: 400, reason: ReasonBadRequest, label: unknownService},
		{name: "Upgrade: websocket", setup: readsOnContoso,
			req: as(alice, "GET", mailboxes, [2]string{"Connection", "Upgrade"}, [2]string{"Upgrade", "websocket"},
				[2]string{"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}, [2]string{"Sec-WebSocket-Version", "13"}),
			status: 400, reason: ReasonBadRequest, label: "exchange"},
		{name: "h2c upgrade", setup: readsOnContoso,
			req: as(alice, "GET", mailboxes, [2]string{"Connection", "Upgrade, HTTP2-Settings"}, [2]string{"Upgrade", "h2c"},
				[2]string{"HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"}),
			status: 400, reason: ReasonBadRequest, label: "exchange"},
		// Either half of an h2c upgrade alone is refused too: a server
		// behind the proxy may act on the one it sees.
		{name: "HTTP2-Settings without Upgrade", setup: readsOnContoso,
			req:    as(alice, "GET", mailboxes, [2]string{"HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"}),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "protocol upgrades"},
		{name: "Connection: Upgrade without Upgrade", setup: readsOnContoso,
			req:    as(alice, "GET", mailboxes, [2]string{"Connection", "keep-alive, upgrade"}),
			status: 400, reason: ReasonBadRequest, label: "exchange", message: "protocol upgrades"},
		{name: "h2c prior knowledge preface as a request", setup: readsOnContoso,
			req: as(alice, "PRI", mailboxes), status: 400, reason: ReasonBadRequest, label: "exchange"},
		{name: "asterisk-form target", setup: readsOnContoso,
			req: as(alice, "GET", "*"), status: 400, reason: ReasonBadRequest, label: unknownService},
		{name: "absolute-form target naming another host", setup: readsOnContoso,
			req: as(alice, "GET", "http://sharepoint.internal"+mailboxes), status: 400, reason: ReasonBadRequest, label: unknownService},
		{name: "absolute-form target", setup: readsOnContoso,
			req: as(alice, "GET", "http://exchange.internal"+mailboxes), status: 400, reason: ReasonBadRequest, label: unknownService},
		{name: "body over the limit", setup: func(e *testEnv) { e.grantFor(alice, "contoso", "exchange", 2*time.Hour, "New-MailboxRepairRequest") },
			config: func(_ *testEnv, c *Config) { c.MaxBodyBytes = 1024 },
			req: func(e *testEnv) rawRequest {
				q := as(alice, "POST", mailboxes+"/alice/repair", [2]string{"Content-Type", "application/json"})(e)
				q.body = strings.Repeat("x", 2048)
				return q
			},
			status: 413, reason: ReasonBadRequest, label: "exchange"},

		// 2. Authentication.
		{name: "no token", setup: readsOnContoso,
			req: func(*testEnv) rawRequest { return rawRequest{method: "GET", target: mailboxes} }, status: 401, reason: ReasonUnauthenticated, label: "exchange"},
		{name: "bad token", setup: readsOnContoso,
			req: func(*testEnv) rawRequest {
				return rawRequest{method: "GET", target: mailboxes, header: [][2]string{{"Authorization", "Bearer not.a.token"}}}
			}, status: 401, reason: ReasonUnauthenticated, label: "exchange"},
		{name: "token of another audience", setup: readsOnContoso,
			req: func(e *testEnv) rawRequest {
				tok, err := identity.Mint(e.idKey, testIssuer, "another-app", identity.Claims{Subject: alice.Subject, Roles: alice.Roles}, e.clk.Now())
				if err != nil {
					e.t.Fatal(err)
				}
				return rawRequest{method: "GET", target: mailboxes, header: [][2]string{{"Authorization", "Bearer " + tok}}}
			}, status: 401, reason: ReasonUnauthenticated, label: "exchange"},
		{name: "expired token", setup: readsOnContoso,
			req: func(e *testEnv) rawRequest {
				tok, err := identity.Mint(e.idKey, testIssuer, testAudience, identity.Claims{Subject: alice.Subject, Roles: alice.Roles, TTL: time.Minute}, e.clk.Now().Add(-time.Hour))
				if err != nil {
					e.t.Fatal(err)
				}
				return rawRequest{method: "GET", target: mailboxes, header: [][2]string{{"Authorization", "Bearer " + tok}}}
			}, status: 401, reason: ReasonUnauthenticated, label: "exchange"},
		{name: "two Authorization headers", setup: readsOnContoso,
			req: func(e *testEnv) rawRequest {
				return rawRequest{method: "GET", target: mailboxes, header: [][2]string{{"Authorization", e.bearer(alice)}, {"Authorization", e.bearer(alice)}}}
			}, status: 401, reason: ReasonUnauthenticated, label: "exchange"},
		// A token anywhere but the Authorization header is not read.
		{name: "token in the query and a cookie", setup: readsOnContoso,
			req: func(e *testEnv) rawRequest {
				return rawRequest{method: "GET", target: mailboxes + "?access_token=" + e.token(alice),
					header: [][2]string{{"Cookie", "access_token=" + e.token(alice)}, {"Proxy-Authorization", e.bearer(alice)}}}
			}, status: 401, reason: ReasonUnauthenticated, label: "exchange"},
		{name: "Basic scheme", setup: readsOnContoso,
			req: func(*testEnv) rawRequest {
				return rawRequest{method: "GET", target: mailboxes, header: [][2]string{{"Authorization", "Basic YWxpY2U6cHc="}}}
			}, status: 401, reason: ReasonUnauthenticated, label: "exchange"},
		{name: "identity headers instead of a token", setup: readsOnContoso,
			req: func(*testEnv) rawRequest {
				return rawRequest{method: "GET", target: mailboxes, header: [][2]string{{"X-User", alice.Subject}, {"X-Lockbox-User", alice.Subject}, {"X-Forwarded-User", alice.Subject}}}
			}, status: 401, reason: ReasonUnauthenticated, label: "exchange"},
		{name: "provider identity without the operator role", setup: readsOnContoso,
			req: as(manager, "GET", mailboxes), status: 403, reason: ReasonUnauthenticated, label: "exchange"},
		{name: "tenant user claiming the operator role", setup: readsOnContoso,
			req: as(eve, "GET", mailboxes), status: 403, reason: ReasonUnauthenticated, label: "exchange"},
		// An Authenticator that fails to reach a verdict (its identity
		// provider unreachable): the cause stays in the log.
		{name: "verification failing for want of the issuer", setup: readsOnContoso,
			config: func(_ *testEnv, c *Config) {
				c.Auth = authFunc(func(context.Context, string) (identity.Principal, error) {
					return identity.Principal{}, errors.New("jwks: dial tcp 127.0.0.1:8443: connection refused")
				})
			},
			req: as(alice, "GET", mailboxes), status: 401, reason: ReasonUnauthenticated, label: "exchange",
			message: "the bearer token could not be verified"},
		// An Authenticator other than identity.Verifier may not check the
		// subject, which becomes part of a Redis key.
		{name: "operator whose subject is no user id", setup: readsOnContoso,
			config: func(_ *testEnv, c *Config) {
				c.Auth = authFunc(func(context.Context, string) (identity.Principal, error) {
					return identity.Principal{Subject: "alice}:{contoso", Roles: alice.Roles}, nil
				})
			},
			req: as(alice, "GET", mailboxes), status: 401, reason: ReasonUnauthenticated, label: "exchange",
			message: "not a valid user id"},

		// 3. Routing.
		{name: "unknown service", setup: readsOnContoso,
			req: as(alice, "GET", "/teams/tenants/contoso/channels"), status: 404, reason: ReasonUnknownService, label: unknownService},
		{name: "root", req: as(alice, "GET", "/"), status: 404, reason: ReasonUnknownService, label: unknownService},
		{name: "service alone", req: as(alice, "GET", "/exchange"), status: 404, reason: ReasonUnknownService, label: unknownService},

		// 4. Classification.
		{name: "path no activity has", setup: readsOnContoso,
			req: as(alice, "GET", "/exchange/tenants/contoso/calendars"), status: 403, reason: ReasonUnknownActivity, label: "exchange"},
		// The catalog refuses a route without {tenant}; the proxy does not
		// count on it, so a snapshot classifying a call without one
		// can't have it judged under no tenant.
		{name: "activity whose route names no tenant", setup: readsOnContoso,
			config: func(e *testEnv, c *Config) {
				p := tenantlessPolicy{goPolicy{catalog: e.catalog, decider: ruleDecider{catalog: e.catalog}}}
				c.Policy = PolicyFunc(func() PolicySnapshot { return p })
			},
			req: as(alice, "GET", mailboxes), status: 403, reason: ReasonUnknownActivity, label: "exchange", message: "names no tenant"},
		{name: "method no activity has", setup: readsOnContoso,
			req: as(alice, "PUT", mailboxes), status: 403, reason: ReasonUnknownActivity, label: "exchange"},
		{name: "another service's path", setup: readsOnContoso,
			req: as(alice, "GET", "/exchange/tenants/contoso/sites"), status: 403, reason: ReasonUnknownActivity, label: "exchange"},

		// 5. Grant.
		{name: "no grant", req: as(alice, "GET", mailboxes), status: 403, reason: ReasonNoGrant, label: "exchange"},
		{name: "request awaiting the tenant", setup: func(e *testEnv) {
			r, err := e.grants.Create(context.Background(), grants.Actor{Principal: alice}, grants.CreateInput{
				Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1", Reason: "r", Duration: grants.Duration(time.Hour)})
			if err != nil {
				e.t.Fatal(err)
			}
			if _, err := e.grants.Act(context.Background(), r.ID, grants.ActionApprove, grants.Actor{Principal: manager}, ""); err != nil {
				e.t.Fatal(err)
			}
		}, req: as(alice, "GET", mailboxes), status: 403, reason: ReasonNoGrant, label: "exchange"},
		{name: "grant expired exactly now", setup: func(e *testEnv) {
			r := e.grantFor(alice, "contoso", "exchange", time.Hour)
			// The key is still in Redis (its TTL is in real seconds); only
			// the absolute expiry can refuse the call.
			e.clk.Set(*r.ExpiresAt)
		}, req: as(alice, "GET", mailboxes), status: 403, reason: ReasonGrantExpired, label: "exchange", message: "expired at 2025-03-01T10:00:00Z"},
		{name: "grant expired within the second the policy sees", setup: func(e *testEnv) {
			// The policy's input.now is truncated to the second, which is
			// still before this grant's expiry; the proxy's own check is
			// exact.
			e.clk.Advance(300 * time.Millisecond)
			r := e.grantFor(alice, "contoso", "exchange", time.Hour)
			e.clk.Set(r.ExpiresAt.Add(200 * time.Millisecond))
		}, req: as(alice, "GET", mailboxes), status: 403, reason: ReasonGrantExpired, label: "exchange"},
		{name: "grant revoked", setup: func(e *testEnv) {
			r := e.grantFor(alice, "contoso", "exchange", time.Hour)
			if _, err := e.grants.Act(context.Background(), r.ID, grants.ActionRevoke, grants.Actor{Principal: tenantAdmin("contoso")}, "done"); err != nil {
				e.t.Fatal(err)
			}
		}, req: as(alice, "GET", mailboxes), status: 403, reason: ReasonNoGrant, label: "exchange"},
		// The assertion can't end after the grant does, nor when it is
		// issued: a grant ending within the second the call is judged in
		// refuses it when the assertion is signed, before the audit write.
		{name: "grant ending within the second the assertion is issued", setup: func(e *testEnv) {
			e.clk.Advance(500 * time.Millisecond)
			r := e.grantFor(alice, "contoso", "exchange", time.Hour)
			e.clk.Set(r.ExpiresAt.Add(-300 * time.Millisecond))
		}, req: as(alice, "GET", mailboxes), status: 403, reason: ReasonGrantExpired, label: "exchange", message: "ends at"},
		// The grant's window is judged again on a fresh reading of the
		// clock before the record is written: a grant that ended while the
		// policy decided refuses the call, and no record describes it.
		{name: "grant ending while the policy decides", setup: readsOnContoso,
			config: func(e *testEnv, c *Config) {
				rule := ruleDecider{catalog: e.catalog}
				withDecider(deciderFunc(func(ctx context.Context, in policy.Input) (policy.Decision, error) {
					d, err := rule.Decide(ctx, in)
					e.clk.Advance(2 * time.Hour)
					return d, err
				}))(e, c)
			},
			req: as(alice, "GET", mailboxes), status: 403, reason: ReasonGrantExpired, label: "exchange", message: "expired at"},
		{name: "grant for another tenant", setup: readsOnContoso,
			req: as(alice, "GET", "/exchange/tenants/fabrikam/mailboxes"), status: 403, reason: ReasonNoGrant, label: "exchange"},
		{name: "grant for another service", setup: readsOnContoso,
			req: as(alice, "GET", "/sharepoint/tenants/contoso/sites"), status: 403, reason: ReasonNoGrant, label: "sharepoint"},
		{name: "grant of another operator", setup: func(e *testEnv) { e.grantFor(bob, "contoso", "exchange", time.Hour) },
			req: as(alice, "GET", mailboxes), status: 403, reason: ReasonNoGrant, label: "exchange"},
		{name: "tenant no grant can name", setup: readsOnContoso,
			req: as(alice, "GET", "/exchange/tenants/Contoso/mailboxes"), status: 403, reason: ReasonNoGrant, label: "exchange"},
		{name: "grant row naming another tenant", setup: func(e *testEnv) {
			writeGrantRow(e, "contoso", alice.Subject, "exchange", grants.Grant{
				RequestID: "0195a000-0000-7000-8000-000000000001", Tenant: "fabrikam", Operator: alice.Subject, Service: "exchange",
				Activities: []string{}, Approver: "admin@fabrikam.example", ApprovedAt: testStart, ExpiresAt: testStart.Add(time.Hour)})
		}, req: as(alice, "GET", mailboxes), status: 403, reason: ReasonTenantMismatch, label: "exchange"},
		{name: "grant row naming another operator", setup: func(e *testEnv) {
			writeGrantRow(e, "contoso", alice.Subject, "exchange", grants.Grant{
				RequestID: "0195a000-0000-7000-8000-000000000002", Tenant: "contoso", Operator: bob.Subject, Service: "exchange",
				Activities: []string{}, Approver: "admin@contoso.example", ApprovedAt: testStart, ExpiresAt: testStart.Add(time.Hour)})
		}, req: as(alice, "GET", mailboxes), status: 403, reason: ReasonTenantMismatch, label: "exchange"},
		{name: "grant row naming no request", setup: func(e *testEnv) {
			writeGrantRow(e, "contoso", alice.Subject, "exchange", grants.Grant{
				Tenant: "contoso", Operator: alice.Subject, Service: "exchange",
				Activities: []string{}, Approver: "admin@contoso.example", ApprovedAt: testStart, ExpiresAt: testStart.Add(time.Hour)})
		}, req: as(alice, "GET", mailboxes), status: 503, reason: ReasonStoreUnavailable, label: "exchange"},
		{name: "Redis client closed", setup: readsOnContoso,
			config: func(e *testEnv, c *Config) { c.Grants = grantStoreOn(e.t, e, deadClient(e)) },
			req:    as(alice, "GET", mailboxes), status: 503, reason: ReasonStoreUnavailable, label: "exchange", within: time.Second},
		{name: "Redis refusing connections", setup: readsOnContoso,
			config: func(e *testEnv, c *Config) { c.Grants = grantStoreOn(e.t, e, refusingClient(e.t)) },
			req:    as(alice, "GET", mailboxes), status: 503, reason: ReasonStoreUnavailable, label: "exchange", within: time.Second},
		{name: "Redis hanging", setup: readsOnContoso,
			config: func(e *testEnv, c *Config) {
				c.Grants = grantStoreOn(e.t, e, hangingClient(e.t))
				c.GrantTimeout = 100 * time.Millisecond
			},
			req: as(alice, "GET", mailboxes), status: 503, reason: ReasonStoreUnavailable, label: "exchange", within: time.Second},
		{name: "tenant settings unreadable", setup: readsOnContoso,
			config: func(e *testEnv, c *Config) { c.Tenants = tenants.NewStore(deadClient(e), e.audit, e.clk.Now) },
			req:    as(alice, "GET", mailboxes), status: 503, reason: ReasonStoreUnavailable, label: "exchange", within: time.Second},

		// 6. Policy.
		// The client reads which activity the call was: "activity_not_requested"
		// alone left the engineer to guess it. The log, which has it as a
		// field, keeps the reasons alone as its error.
		{name: "write the request did not name", setup: readsOnContoso,
			req: as(alice, "DELETE", mailboxes+"/alice/messages/42"), status: 403, reason: ReasonPolicyDenied, label: "exchange",
			message: `"message":"the policy denied this call: write_not_requested (the call is Remove-MailboxMessage)"`},
		{name: "read the request did not name", setup: func(e *testEnv) { e.grantFor(alice, "contoso", "exchange", time.Hour, "Get-Mailbox") },
			req: as(alice, "GET", mailboxes+"/alice/messages"), status: 403, reason: ReasonPolicyDenied, label: "exchange",
			message:  `"message":"the policy denied this call: activity_not_requested (the call is Get-MailboxMessage)"`,
			logError: "the policy denied this call: activity_not_requested"},
		{name: "policy says no without reasons", setup: readsOnContoso,
			config: withDecider(deciderFunc(func(context.Context, policy.Input) (policy.Decision, error) { return policy.Decision{}, nil })),
			req:    as(alice, "GET", mailboxes), status: 403, reason: ReasonPolicyDenied, label: "exchange"},
		{name: "policy evaluation error", setup: readsOnContoso,
			config: withDecider(deciderFunc(func(context.Context, policy.Input) (policy.Decision, error) {
				return policy.Decision{Allow: true}, errors.New("eval_conflict_error: functions must not produce multiple outputs")
			})),
			req: as(alice, "GET", mailboxes), status: 403, reason: ReasonPolicyError, label: "exchange"},
		{name: "policy evaluation past its deadline", setup: readsOnContoso,
			config: withDecider(deciderFunc(func(context.Context, policy.Input) (policy.Decision, error) {
				return policy.Decision{}, fmt.Errorf("data.lockbox.authz.decision: %w", context.DeadlineExceeded)
			})),
			req: as(alice, "GET", mailboxes), status: 503, reason: ReasonPolicyError, label: "exchange",
			message: publicMessage[ReasonPolicyError]},
		{name: "policy decision undefined", setup: readsOnContoso,
			config: withDecider(deciderFunc(func(context.Context, policy.Input) (policy.Decision, error) {
				return policy.Decision{}, errors.New("data.lockbox.authz.decision is undefined")
			})),
			req: as(alice, "GET", mailboxes), status: 403, reason: ReasonPolicyError, label: "exchange"},
		{name: "no policy loaded", setup: readsOnContoso,
			config: func(_ *testEnv, c *Config) { c.Policy = PolicyFunc(func() PolicySnapshot { return nil }) },
			req:    as(alice, "GET", mailboxes), status: 403, reason: ReasonPolicyError, label: "exchange", noPolicy: true},
		{name: "engine without a policy", setup: readsOnContoso,
			// A nil *policy.Snapshot in the interface: not nil, but no
			// version either.
			config: func(_ *testEnv, c *Config) {
				var engine policy.Engine
				c.Policy = PolicyFunc(func() PolicySnapshot { return engine.Snapshot() })
			},
			req: as(alice, "GET", mailboxes), status: 403, reason: ReasonPolicyError, label: "exchange", noPolicy: true},

		// 7. Audit.
		{name: "audit sink failing", setup: readsOnContoso,
			config: func(_ *testEnv, c *Config) {
				c.Auditor = auditorFunc(func(context.Context, record.Record) (record.Record, error) {
					return record.Record{}, errors.New("disk full")
				})
			},
			req: as(alice, "GET", mailboxes), status: 503, reason: ReasonAuditUnavailable, label: "exchange"},
		{name: "audit stream unwritable in Redis", setup: func(e *testEnv) {
			e.grantFor(alice, "contoso", "exchange", time.Hour)
			// XADD on a string fails with WRONGTYPE.
			ctx := context.Background()
			if err := e.rdb.Set(ctx, keys.Audit("contoso"), "not a stream", 0).Err(); err != nil {
				e.t.Fatal(err)
			}
		}, req: as(alice, "GET", mailboxes), status: 503, reason: ReasonAuditUnavailable, label: "exchange"},
		// The record landed under another id than the assertion names.
		{name: "audit record written under another id",
			setup:  readsOnContoso,
			config: func(e *testEnv, c *Config) { c.Auditor = renamingAuditor{e.audit} },
			req:    as(alice, "GET", mailboxes), status: 503, reason: ReasonAuditUnavailable, label: "exchange",
			recordWritten: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []envOption
			if tt.config != nil {
				opts = append(opts, tt.config)
			}
			e := newTestEnv(t, opts...)
			if tt.setup != nil {
				tt.setup(e)
			}
			records := auditEntries(t, e)
			start := time.Now()
			res := e.send(tt.req(e))
			elapsed := time.Since(start)
			wantRecords := records
			if tt.recordWritten {
				wantRecords++
			}
			if n := auditEntries(t, e); n != wantRecords {
				t.Errorf("the audit streams hold %d entries after the call, want %d", n, wantRecords)
			}

			if res.status != tt.status {
				t.Errorf("status = %d, want %d (body %s)", res.status, tt.status, res.body)
			}
			if code := res.errorCode(t); code != string(tt.reason) {
				t.Errorf("code = %q, want %q", code, tt.reason)
			}
			if !strings.Contains(string(res.body), tt.message) {
				t.Errorf("message %s lacks %q", res.body, tt.message)
			}
			for _, internal := range []string{"redis", "dial", "127.0.0.1", "WRONGTYPE", "disk full", "eval_conflict", "data.lockbox"} {
				if strings.Contains(string(res.body), internal) {
					t.Errorf("message %s shows an internal detail (%s)", res.body, internal)
				}
			}
			if n := e.upstreamCalls(); n != 0 {
				t.Errorf("upstreams received %d requests, want none", n)
			}
			if tt.within > 0 && elapsed > tt.within {
				t.Errorf("answered in %s, want within %s", elapsed, tt.within)
			}
			if tt.status == http.StatusUnauthorized && res.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if got := testutil.ToFloat64(e.h.metrics.denials.WithLabelValues(tt.label, string(tt.reason))); got != 1 {
				t.Errorf("denials{service=%q,reason=%q} = %v, want 1", tt.label, tt.reason, got)
			}
			if got := sumMetric(t, e, "lockbox_proxy_denials_total"); got != 1 {
				t.Errorf("denials in all = %v, want 1", got)
			}
			if got := testutil.ToFloat64(e.h.metrics.requests.WithLabelValues(tt.label, decisionDenied)); got != 1 {
				t.Errorf("requests{service=%q,decision=denied} = %v, want 1", tt.label, got)
			}
			wantAuditErrors := 0.0
			if tt.reason == ReasonAuditUnavailable {
				wantAuditErrors = 1
			}
			if got := testutil.ToFloat64(e.h.metrics.auditErrors); got != wantAuditErrors {
				t.Errorf("audit write errors = %v, want %v", got, wantAuditErrors)
			}
			lines := e.logLines("proxy call denied")
			if len(lines) != 1 {
				t.Fatalf("%d denial log lines, want 1:\n%s", len(lines), e.logs.String())
			}
			if l := lines[0]; l["reason"] != string(tt.reason) || l["decision_id"] != res.header.Get(HeaderDecisionID) || l["decision_id"] == "" {
				t.Errorf("log line %v: want reason %s and decision id %s", l, tt.reason, res.header.Get(HeaderDecisionID))
			}
			if l := lines[0]; tt.logError != "" && l["error"] != tt.logError {
				t.Errorf("log line error = %v, want %q", l["error"], tt.logError)
			}
			// The snapshot is taken before the first check, so even a call
			// refused before classification names the policy serving.
			wantRevision := ruleRevision
			if tt.noPolicy {
				wantRevision = ""
			}
			if got, ok := lines[0]["policy_revision"]; !ok || got != wantRevision {
				t.Errorf("log line policy_revision = %v (present %v), want %q", got, ok, wantRevision)
			}
		})
	}
}

// auditEntries counts the entries of every audit stream in Redis: a
// refused call must add none, in its own tenant's stream or another's. A
// key the test made something other than a stream is not counted.
func auditEntries(t testing.TB, e *testEnv) int64 {
	t.Helper()
	ctx := context.Background()
	var n int64
	iter := e.rdb.Scan(ctx, 0, keys.Audit("*"), 0).Iterator()
	for iter.Next(ctx) {
		typ, err := e.rdb.Type(ctx, iter.Val()).Result()
		if err != nil {
			t.Fatal(err)
		}
		if typ != "stream" {
			continue
		}
		l, err := e.rdb.XLen(ctx, iter.Val()).Result()
		if err != nil {
			t.Fatal(err)
		}
		n += l
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// sumMetric adds up every series of the named metric family.
func sumMetric(t testing.TB, e *testEnv, name string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// hostileHeaders are what a client might send to impersonate someone, to
// steer a path-based router behind the proxy, or to smuggle a header past
// it. None may reach an upstream.
var hostileHeaders = [][2]string{
	{"Cookie", "session=alice"},
	{"X-Forwarded-For", "203.0.113.99"},
	{"X-Forwarded-Host", "admin.internal"},
	{"X-Forwarded-Proto", "https"},
	{"Forwarded", "for=203.0.113.99;host=admin.internal"},
	{"X-Real-IP", "203.0.113.99"},
	{"X-Original-URL", "/exchange/tenants/fabrikam/mailboxes"},
	{"X-Rewrite-URL", "/exchange/tenants/fabrikam/mailboxes"},
	{"X-User", "root"},
	{"X-Lockbox-User", "alice@provider.example"},
	// nginx (underscores_in_headers) and CGI read these as the names
	// with dashes.
	{"X_Lockbox_User", "alice@provider.example"},
	{"x_forwarded_for", "203.0.113.99"},
	{"X_Real_IP", "203.0.113.99"},
	{"X-Lockbox-Grant", "forged.signature"},
	{"X-Lockbox-Request-Id", "0195a000-0000-7000-8000-00000000dead"},
	{"Via", "1.1 evil"},
	{"Proxy-Authorization", "Basic cm9vdDpwdw=="},
	// A header named in Connection is hop-by-hop, even one that is on the
	// allow-list.
	// Naming the proxy's own headers removes none of them.
	{"Connection", "keep-alive, X-Secret, Accept-Language, X-Lockbox-User, X-Lockbox-Grant, X-Lockbox-Request-Id"},
	{"X-Secret", "1"},
	{"Accept-Language", "de-CH"},
	// End-to-end content headers pass.
	{"Accept", "application/json"},
	{"User-Agent", "support-console/1.0"},
	{"If-None-Match", `"v1"`},
}

func TestAllowed(t *testing.T) {
	tests := []struct {
		name       string
		lockboxOff bool
		activities []string
		method     string
		target     string
		body       string
		// clockAt moves the clock relative to the grant's expiry.
		beforeExpiry time.Duration
		activity     string
	}{
		{name: "read, lockbox on", method: "GET", target: mailboxes + "/alice/messages?top=10&skip=0&q=a%20b", activity: "Get-MailboxMessage"},
		{name: "read, lockbox off", lockboxOff: true, method: "GET", target: mailboxes + "/alice/messages", activity: "Get-MailboxMessage"},
		// A nanosecond before: TestGrantEndCutsTheCall, since the call's
		// answer then can't beat the grant's end.
		{name: "read a minute before expiry", beforeExpiry: time.Minute, method: "GET", target: mailboxes, activity: "Get-Mailbox"},
		{name: "named write with a body", activities: []string{"New-MailboxRepairRequest"}, method: "POST",
			target: mailboxes + "/alice/repair", body: `{"kind":"index"}`, activity: "New-MailboxRepairRequest"},
		{name: "named delete", lockboxOff: true, activities: []string{"Remove-MailboxMessage"}, method: "DELETE",
			target: mailboxes + "/alice/messages/AAMk-42", activity: "Remove-MailboxMessage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu     sync.Mutex // the decider runs on the server's goroutine
				inputs []policy.Input
			)
			e := newTestEnv(t, func(e *testEnv, c *Config) {
				rule := ruleDecider{catalog: e.catalog}
				withDecider(deciderFunc(func(ctx context.Context, in policy.Input) (policy.Decision, error) {
					mu.Lock()
					inputs = append(inputs, in)
					mu.Unlock()
					return rule.Decide(ctx, in)
				}))(e, c)
			})
			if tt.lockboxOff {
				e.setLockbox("contoso", false)
			}
			req := e.grantFor(alice, "contoso", "exchange", 2*time.Hour, tt.activities...)
			if tt.beforeExpiry > 0 {
				e.clk.Set(req.ExpiresAt.Add(-tt.beforeExpiry))
			} else {
				e.clk.Advance(10 * time.Minute)
			}
			now := e.clk.Now()

			q := as(alice, tt.method, tt.target, hostileHeaders...)(e)
			if tt.body != "" {
				q.header = append(q.header, [2]string{"Content-Type", "application/json"})
				q.body = tt.body
			}
			res := e.send(q)
			if res.status != http.StatusOK {
				t.Fatalf("status = %d, body %s", res.status, res.body)
			}

			// What the upstream received.
			got := e.up["exchange"].requests()
			if len(got) != 1 {
				t.Fatalf("upstream received %d requests, want 1", len(got))
			}
			up := got[0]
			canonical := strings.TrimPrefix(tt.target, "/exchange")
			path, query, _ := strings.Cut(canonical, "?")
			if want := "/api/exchange" + canonical; up.RequestURI != want {
				t.Errorf("upstream RequestURI = %q, want %q", up.RequestURI, want)
			}
			if up.Method != tt.method || string(up.Body) != tt.body || up.BodyErr != nil {
				t.Errorf("upstream got %s with body %q (%v), want %s %q", up.Method, up.Body, up.BodyErr, tt.method, tt.body)
			}
			if want := e.up["exchange"].srv.Listener.Addr().String(); up.Host != want {
				t.Errorf("upstream Host = %q, want %q", up.Host, want)
			}
			checkOutboundHeaders(t, e, up.Header, req, now, tt.method, "/api/exchange"+path, tt.activity)
			if tt.body != "" && up.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type = %q", up.Header.Get("Content-Type"))
			}

			// What the client received.
			if string(res.body) != fmt.Sprintf(`{"ok":true,"path":%q}`+"\n", "/api/exchange"+path) {
				t.Errorf("body = %s", res.body)
			}
			if res.header.Get("Set-Cookie") != "" || res.header.Get("X-Upstream") != "yes" || res.header.Get("Cache-Control") != "no-store" {
				t.Errorf("response headers %v: want Set-Cookie dropped, X-Upstream kept, no-store", res.header)
			}
			for _, k := range upstreamCacheHeaders {
				if v, ok := res.header[k]; ok {
					t.Errorf("response header %s: %q passed; want every cache directive but Cache-Control dropped", k, v)
				}
			}
			if ids := res.header.Values(HeaderDecisionID); len(ids) != 1 || ids[0] == "forged-by-upstream" {
				t.Errorf("decision id %q: want exactly the proxy's", ids)
			}

			// What the policy judged: a POSTed JSON body, read whole, is
			// judged before it is read and again once it is in.
			mu.Lock()
			defer mu.Unlock()
			decisions := 1
			if tt.body != "" && tt.method == "POST" {
				decisions = 2
			}
			if len(inputs) != decisions {
				t.Fatalf("decider called %d times, want %d", len(inputs), decisions)
			}
			if decisions == 2 && !reflect.DeepEqual(inputs[0], inputs[1]) {
				t.Errorf("the call was judged on %+v before its body, on %+v after", inputs[0], inputs[1])
			}
			in := inputs[len(inputs)-1]
			if in.Call.Path != path || in.Call.Tenant != "contoso" || in.Call.Service != "exchange" || in.Call.Activity != tt.activity ||
				in.Call.ClientIP != "127.0.0.1" || in.Grant == nil || in.Grant.RequestID != req.ID || in.Tenant.LockboxEnabled == tt.lockboxOff ||
				in.Now != now.Truncate(time.Second).Format(time.RFC3339Nano) || in.Operator.ID != alice.Subject {
				t.Errorf("policy input %+v", in)
			}

			// What the audit log holds.
			recs, err := e.audit.List(context.Background(), "contoso", 1)
			if err != nil || len(recs) != 1 {
				t.Fatalf("audit: %v %v", recs, err)
			}
			approvedAt := record.TimeOf(*req.ApprovedAt)
			tn, err := e.tenants.Get(context.Background(), "contoso")
			if err != nil {
				t.Fatal(err)
			}
			// Lockbox off, the manager's approval was final: the record
			// names "Microsoft Support", the manager only in the
			// provider-only field.
			approver, providerApprover := tenantAdmin("contoso").Subject, ""
			if tt.lockboxOff {
				approver, providerApprover = record.ProviderUserID, manager.Subject
			}
			want := record.Record{
				CreationTime:          record.TimeOf(now),
				Id:                    recs[0].Id,
				Operation:             tt.activity,
				OrganizationId:        tn.OrganizationID,
				RecordType:            record.RecordTypeDataCenterSecurityCmdlet,
				ResultStatus:          "Succeeded",
				UserKey:               "Microsoft Operator",
				UserType:              record.UserTypeDcAdmin,
				Version:               1,
				Workload:              "exchange",
				ClientIP:              "127.0.0.1",
				ObjectId:              "exchange" + path,
				UserId:                "Microsoft Operator",
				LockboxTenant:         "contoso",
				LockboxRequestId:      req.ID,
				LockboxApprover:       approver,
				LockboxApprovalTime:   &approvedAt,
				LockboxMethod:         tt.method,
				LockboxPath:           path,
				LockboxQuery:          query,
				LockboxPolicyRevision: ruleRevision,
				ProviderUserId:        alice.Subject,
				ProviderApproverId:    providerApprover,
			}
			gotJSON, _ := json.Marshal(recs[0])
			wantJSON, _ := json.Marshal(want)
			if string(gotJSON) != string(wantJSON) || !record.IsGUID(recs[0].Id) {
				t.Errorf("audit record\n got %s\nwant %s", gotJSON, wantJSON)
			}

			if lines := e.logLines("proxy call forwarded"); len(lines) != 1 || lines[0]["policy_revision"] != ruleRevision ||
				lines[0]["audit_id"] != recs[0].Id {
				t.Errorf("forward log lines %v: want one naming revision %s and the audit record", lines, ruleRevision)
			}
			if got := testutil.ToFloat64(e.h.metrics.requests.WithLabelValues("exchange", decisionAllowed)); got != 1 {
				t.Errorf("requests{exchange,allowed} = %v", got)
			}
			if got := sumMetric(t, e, "lockbox_proxy_denials_total"); got != 0 {
				t.Errorf("denials = %v", got)
			}
		})
	}
}

// checkOutboundHeaders asserts the upstream saw exactly the proxy's header
// set: allow-listed client headers, and the proxy's identity headers with a
// grant assertion that verifies for this call (method and the path the
// upstream received) and names the call's audit record, the newest of the
// tenant's.
func checkOutboundHeaders(t *testing.T, e *testEnv, h http.Header, req grants.Request, now time.Time, method, path, activity string) {
	t.Helper()
	allowed := append(ForwardedHeaders(), HeaderUser, HeaderRequestID, grantsig.Header, "Te", "Content-Length")
	for k := range h {
		if !slices.Contains(allowed, k) {
			t.Errorf("upstream received header %s: %q", k, h[k])
		}
	}
	for _, k := range []string{"Authorization", "Cookie", "X-Forwarded-For", "Forwarded", "X-Real-Ip", "X-Original-Url",
		"X-User", "X-Secret", "Accept-Language", "Via", "Proxy-Authorization", "Connection"} {
		if v, ok := h[k]; ok {
			t.Errorf("upstream received %s: %q", k, v)
		}
	}
	if h.Get("Accept") != "application/json" || h.Get("User-Agent") != "support-console/1.0" || h.Get("If-None-Match") != `"v1"` {
		t.Errorf("allow-listed headers lost: %v", h)
	}
	if v := h.Values(HeaderUser); len(v) != 1 || v[0] != "Microsoft Operator" {
		t.Errorf("%s = %q", HeaderUser, v)
	}
	if v := h.Values(HeaderRequestID); len(v) != 1 || v[0] != req.ID {
		t.Errorf("%s = %q, want %s", HeaderRequestID, v, req.ID)
	}
	assertion := h.Values(grantsig.Header)
	if len(assertion) != 1 {
		t.Fatalf("%s = %q", grantsig.Header, assertion)
	}
	claims, err := grantsig.Verify(e.grantKeys, assertion[0],
		grantsig.Expect{Issuer: DefaultAssertionIssuer, Audience: "exchange", Method: method, Path: path}, now)
	if err != nil {
		t.Fatalf("grant assertion does not verify: %v", err)
	}
	recs, err := e.audit.List(context.Background(), "contoso", 1)
	if err != nil || len(recs) != 1 {
		t.Fatalf("audit: %v %v", recs, err)
	}
	want := grantsig.Claims{
		Issuer: DefaultAssertionIssuer, Subject: "Microsoft Operator", Audience: "exchange",
		Tenant: "contoso", Service: "exchange", RequestID: req.ID, AuditID: recs[0].Id, Activity: activity,
		Method: method, Path: path,
		IssuedAt: now.Unix(), ExpiresAt: min(now.Add(DefaultAssertionTTL).Unix(), req.ExpiresAt.Unix()),
	}
	if claims != want {
		t.Errorf("assertion claims\n got %+v\nwant %+v", claims, want)
	}
}

// TestKeepAlive sends two calls on one connection: each is judged on its
// own, so a revocation between them denies the second.
func TestKeepAlive(t *testing.T) {
	e := newTestEnv(t)
	req := e.grantFor(alice, "contoso", "exchange", time.Hour)
	c := e.dial()
	call := as(alice, "GET", mailboxes)(e)
	if res := c.do(call); res.status != http.StatusOK {
		t.Fatalf("first call: %d %s", res.status, res.body)
	}
	if _, err := e.grants.Act(context.Background(), req.ID, grants.ActionRevoke, grants.Actor{Principal: tenantAdmin("contoso")}, "fixed"); err != nil {
		t.Fatal(err)
	}
	res := c.do(call)
	if res.status != http.StatusForbidden || res.errorCode(t) != string(ReasonNoGrant) {
		t.Fatalf("second call: %d %s", res.status, res.body)
	}
	if n := len(e.up["exchange"].requests()); n != 1 {
		t.Errorf("upstream received %d requests, want 1", n)
	}
}

// TestUpstreamUnavailable: a permitted call whose upstream is down is
// audited, answered 502, and counted as an error, not a denial.
func TestUpstreamUnavailable(t *testing.T) {
	e := newTestEnv(t, func(e *testEnv, c *Config) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		u := &url.URL{Scheme: "http", Host: l.Addr().String()}
		l.Close()
		c.Upstreams["exchange"] = u
	})
	e.grantFor(alice, "contoso", "exchange", time.Hour)
	res := e.send(as(alice, "GET", mailboxes)(e))
	if res.status != http.StatusBadGateway || res.errorCode(t) != string(ReasonUpstreamUnavailable) {
		t.Fatalf("%d %s", res.status, res.body)
	}
	if got := testutil.ToFloat64(e.h.metrics.requests.WithLabelValues("exchange", decisionError)); got != 1 {
		t.Errorf("requests{exchange,error} = %v", got)
	}
	if got := sumMetric(t, e, "lockbox_proxy_denials_total"); got != 0 {
		t.Errorf("denials = %v, want 0", got)
	}
	recs, err := e.audit.List(context.Background(), "contoso", 1)
	if err != nil || len(recs) != 1 || recs[0].Operation != "Get-Mailbox" {
		t.Errorf("audit record of the attempted call: %v %v", recs, err)
	}
	if lines := e.logLines("proxy call failed upstream"); len(lines) != 1 || lines[0]["audit_id"] != recs[0].Id {
		t.Errorf("log lines %v", lines)
	}
}

// TestStreamedBodyOverLimit: a chunked body has no length to check up
// front; it is cut off at the limit while streaming, and the client gets
// 413.
func TestStreamedBodyOverLimit(t *testing.T) {
	e := newTestEnv(t, func(_ *testEnv, c *Config) { c.MaxBodyBytes = 1024 })
	e.grantFor(alice, "contoso", "exchange", time.Hour, "New-MailboxRepairRequest")
	// Not a form: a POST without a Content-Type would be read whole.
	q := as(alice, "POST", mailboxes+"/alice/repair", [2]string{"Transfer-Encoding", "chunked"},
		[2]string{"Content-Type", "application/octet-stream"})(e)
	raw := string(q.bytes())
	chunk := strings.Repeat("x", 4096)
	raw += fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(chunk), chunk)
	c := e.dial()
	if _, err := c.c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", res.StatusCode)
	}
	for _, r := range e.up["exchange"].requests() {
		if r.BodyErr == nil || len(r.Body) > 1024 {
			t.Errorf("upstream read %d bytes of the body, error %v: want it cut off", len(r.Body), r.BodyErr)
		}
	}
	if got := testutil.ToFloat64(e.h.metrics.requests.WithLabelValues("exchange", decisionError)); got != 1 {
		t.Errorf("requests{exchange,error} = %v", got)
	}
}

// TestMalformedStreamedBody: a streamed body whose chunked framing breaks
// midway (Go's server reads it only as the call is forwarded) is the
// client's failure, not the upstream's: the client gets 400 bad_request,
// as the call is logged (canceled by the client), never a 502 saying the
// service did not answer.
func TestMalformedStreamedBody(t *testing.T) {
	for name, chunks := range map[string]string{
		"bare LF after the size":     "5\nhello\r\n0\r\n\r\n",
		"size not hex":               "5\r\nhello\r\nzz\r\n",
		"data longer than its chunk": "5\r\nhello!\r\n0\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t, patientStore)
			e.grantFor(alice, "contoso", "exchange", time.Hour, "New-MailboxRepairRequest")
			q := as(alice, "POST", mailboxes+"/alice/repair", [2]string{"Transfer-Encoding", "chunked"},
				[2]string{"Content-Type", "application/octet-stream"})(e)
			c := e.dial()
			if _, err := c.c.Write(append(q.bytes(), chunks...)); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(c.br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			got := response{status: res.StatusCode, header: res.Header, body: body}
			if got.status != http.StatusBadRequest || got.errorCode(t) != string(ReasonBadRequest) {
				t.Errorf("%d %s, want 400 bad_request", got.status, body)
			}
			if n := len(e.logLines("proxy call canceled by the client")); n != 1 {
				t.Errorf("%d log lines of the client canceling, want 1", n)
			}
			for _, r := range e.up["exchange"].requests() {
				if r.BodyErr == nil {
					t.Errorf("the upstream read a whole body %q", r.Body)
				}
			}
		})
	}
}

// TestUpstreamAnswersBeforeTheBody: an upstream may refuse an upload
// from its header alone and stop reading (here 413, as a service with a
// smaller limit than the proxy's does). Its answer reaches the client,
// rather than a 502 for the body it never read.
func TestUpstreamAnswersBeforeTheBody(t *testing.T) {
	var reached atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.Header().Set("Connection", "close")
		http.Error(w, "too large for this service", http.StatusRequestEntityTooLarge)
	}))
	t.Cleanup(up.Close)
	e := newTestEnv(t, func(_ *testEnv, c *Config) {
		u, err := url.Parse(up.URL)
		if err != nil {
			t.Fatal(err)
		}
		c.Upstreams["exchange"] = u
	})
	e.grantFor(alice, "contoso", "exchange", time.Hour, "New-MailboxRepairRequest")
	const size = 8 << 20 // under the proxy's limit, far over what a socket buffers
	q := as(alice, "POST", mailboxes+"/alice/repair", [2]string{"Content-Length", fmt.Sprint(size)})(e)
	c := e.dial()
	// The body is written while the answer is read: a client too may be
	// answered before it has sent everything.
	go func() {
		_, _ = c.c.Write(q.bytes())
		_, _ = c.c.Write(bytes.Repeat([]byte("x"), size))
	}()
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "too large for this service") {
		t.Fatalf("%d %s: want the upstream's own 413", res.StatusCode, body)
	}
	if reached.Load() != 1 {
		t.Errorf("upstream reached %d times, want 1", reached.Load())
	}
	if got := testutil.ToFloat64(e.h.metrics.requests.WithLabelValues("exchange", decisionAllowed)); got != 1 {
		t.Errorf("requests{exchange,allowed} = %v", got)
	}
}

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewRejects(t *testing.T) {
	e := newTestEnv(t)
	valid := func() Config {
		key, _ := identity.GenerateDevKey()
		u, _ := url.Parse("http://exchange.internal:8080/api")
		return Config{
			Upstreams: map[string]*url.URL{"exchange": u}, Auth: e.h.cfg.Auth, Grants: e.grants, Tenants: e.tenants,
			Policy: goPolicy{catalog: e.catalog, decider: ruleDecider{}}, Auditor: e.audit, SigningKey: key,
		}
	}
	mustURL := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	secret32 := []byte("0123456789abcdef0123456789abcdef")
	tests := []struct {
		name   string
		change func(c *Config)
		want   string
	}{
		{"no upstreams", func(c *Config) { c.Upstreams = nil }, "Upstreams"},
		{"no authenticator", func(c *Config) { c.Auth = nil }, "Auth"},
		{"no grants", func(c *Config) { c.Grants = nil }, "Grants"},
		{"no tenants", func(c *Config) { c.Tenants = nil }, "Tenants"},
		{"no policy", func(c *Config) { c.Policy = nil }, "Policy"},
		{"no auditor", func(c *Config) { c.Auditor = nil }, "Auditor"},
		{"no signing key", func(c *Config) { c.SigningKey = nil }, "SigningKey"},
		{"RSA signing key", func(c *Config) { c.SigningKey = rsaKey(t) }, "SigningKey"},
		{"assertion secret of no service", func(c *Config) { c.AssertionSecrets = map[string][]byte{"teams": secret32} }, `assertion secret of "teams": not a configured service`},
		{"short assertion secret", func(c *Config) { c.AssertionSecrets = map[string][]byte{"exchange": secret32[:31]} }, "assertion secret of exchange: grantsig: not a usable HS256 secret"},
		{"one assertion secret for two services", func(c *Config) {
			c.Upstreams["sharepoint"] = mustURL("http://sharepoint.internal")
			c.AssertionSecrets = map[string][]byte{"exchange": secret32, "sharepoint": secret32}
		}, "two services share an assertion secret: exchange and sharepoint"},
		{"assertion TTL too long", func(c *Config) { c.AssertionTTL = grantsig.MaxTTL + time.Second }, "AssertionTTL"},
		{"assertion TTL too short", func(c *Config) { c.AssertionTTL = 500 * time.Millisecond }, "AssertionTTL"},
		{"no registerer", func(c *Config) { c.Registerer = nil }, "Registerer"},
		{"negative timeout", func(c *Config) { c.GrantTimeout = -1 }, "negative"},
		{"negative body budget", func(c *Config) { c.BodyBufferBytes = -1 }, "negative"},
		{"body budget under the body limit", func(c *Config) { c.MaxBodyBytes = 2048; c.BodyBufferBytes = 2047 }, "BodyBufferBytes (2047) must be at least MaxBodyBytes (2048)"},
		{"body budget under the default body limit", func(c *Config) { c.BodyBufferBytes = DefaultMaxBodyBytes - 1 }, "BodyBufferBytes"},
		{"bad service name", func(c *Config) { c.Upstreams = map[string]*url.URL{"Exchange": mustURL("http://x")} }, "service name"},
		{"nil URL", func(c *Config) { c.Upstreams = map[string]*url.URL{"exchange": nil} }, "no URL"},
		{"ftp", func(c *Config) { c.Upstreams = map[string]*url.URL{"exchange": mustURL("ftp://x")} }, "scheme"},
		{"no host", func(c *Config) { c.Upstreams = map[string]*url.URL{"exchange": mustURL("http:///api")} }, "host"},
		{"credentials", func(c *Config) { c.Upstreams = map[string]*url.URL{"exchange": mustURL("http://u:p@x")} }, "credentials"},
		{"query", func(c *Config) { c.Upstreams = map[string]*url.URL{"exchange": mustURL("http://x/?a=b")} }, "query"},
		{"non-canonical base path", func(c *Config) { c.Upstreams = map[string]*url.URL{"exchange": mustURL("http://x/a/../b")} }, "canonical"},
		{"escaped base path", func(c *Config) { c.Upstreams = map[string]*url.URL{"exchange": mustURL("http://x/a%2fb")} }, "canonical"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			c.Registerer = e.reg // a second registration fails later; these must fail first
			tt.change(&c)
			_, err := New(c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error naming %q", err, tt.want)
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		c := valid()
		c.Registerer = prometheus.NewRegistry()
		if _, err := New(c); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("body budget defaults", func(t *testing.T) {
		for _, tt := range []struct{ max, budget, want int64 }{
			{0, 0, DefaultBodyBufferBytes},
			{1024, 0, DefaultBodyBufferBytes},
			{DefaultBodyBufferBytes * 2, 0, DefaultBodyBufferBytes * 2}, // never under the body limit
			{1024, 1024, 1024},                                          // one body at the limit: allowed
		} {
			c := valid()
			c.Registerer = prometheus.NewRegistry()
			c.MaxBodyBytes, c.BodyBufferBytes = tt.max, tt.budget
			h, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			if h.cfg.BodyBufferBytes != tt.want || h.bodies.limit != tt.want {
				t.Errorf("MaxBodyBytes %d, BodyBufferBytes %d: budget %d (%d), want %d", tt.max, tt.budget, h.cfg.BodyBufferBytes, h.bodies.limit, tt.want)
			}
		}
	})
}

// TestGrantAssertionPerCall: every call carries an assertion of its own,
// naming its own audit record, method and path, which does not verify for
// another call; calls of the next grant name that grant.
func TestGrantAssertionPerCall(t *testing.T) {
	e := newTestEnv(t)
	req := e.grantFor(alice, "contoso", "exchange", time.Hour)
	targets := []string{mailboxes, mailboxes + "/alice/messages", mailboxes + "/alice/messages"}
	var sent []time.Time
	for _, target := range targets {
		sent = append(sent, e.clk.Now())
		if res := e.send(as(alice, "GET", target)(e)); res.status != http.StatusOK {
			t.Fatalf("call: %d %s", res.status, res.body)
		}
		e.clk.Advance(time.Second)
	}
	seen := e.up["exchange"].requests()
	recs, err := e.audit.List(context.Background(), "contoso", int64(len(targets)))
	if err != nil || len(recs) != len(targets) {
		t.Fatalf("audit: %d records, %v", len(recs), err)
	}
	slices.Reverse(recs) // oldest first, like seen
	ids := map[string]bool{}
	for i, r := range seen {
		path := "/api" + targets[i]
		a := r.Header.Get(grantsig.Header)
		claims, err := grantsig.Verify(e.grantKeys, a, grantsig.Expect{Issuer: "lockbox", Audience: "exchange", Method: "GET", Path: path}, sent[i])
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if claims.AuditID != recs[i].Id || claims.RequestID != req.ID || claims.IssuedAt != sent[i].Unix() {
			t.Errorf("call %d: claims %+v, want audit record %s of request %s issued at %s", i, claims, recs[i].Id, req.ID, sent[i])
		}
		ids[claims.AuditID] = true
		// The same assertion replayed for another call is refused.
		for _, other := range []grantsig.Expect{
			{Issuer: "lockbox", Audience: "exchange", Method: "DELETE", Path: path},
			{Issuer: "lockbox", Audience: "exchange", Method: "GET", Path: "/api" + mailboxes + "/bob/messages"},
			{Issuer: "lockbox", Audience: "sharepoint", Method: "GET", Path: path},
		} {
			if _, err := grantsig.Verify(e.grantKeys, a, other, sent[i]); !errors.Is(err, grantsig.ErrInvalid) {
				t.Errorf("call %d replayed as %+v: err = %v", i, other, err)
			}
		}
	}
	if len(ids) != len(targets) {
		t.Errorf("%d calls named %d audit records", len(targets), len(ids))
	}
	if seen[1].Header.Get(grantsig.Header) == seen[2].Header.Get(grantsig.Header) {
		t.Error("two calls to one path carry the same assertion")
	}

	if _, err := e.grants.Act(context.Background(), req.ID, grants.ActionRevoke, grants.Actor{Principal: tenantAdmin("contoso")}, ""); err != nil {
		t.Fatal(err)
	}
	next := e.grantFor(alice, "contoso", "exchange", time.Hour)
	if res := e.send(as(alice, "GET", mailboxes)(e)); res.status != http.StatusOK {
		t.Fatalf("call under the next grant: %d %s", res.status, res.body)
	}
	seen = e.up["exchange"].requests()
	claims, err := grantsig.Verify(e.grantKeys, seen[len(seen)-1].Header.Get(grantsig.Header),
		grantsig.Expect{Issuer: "lockbox", Audience: "exchange", Method: "GET", Path: "/api" + mailboxes}, e.clk.Now())
	if err != nil || claims.RequestID != next.ID {
		t.Fatalf("the next grant's assertion names %+v, %v", claims, err)
	}
}

// TestAssertionLifetime: an assertion lives AssertionTTL, never past its
// grant's end; in a grant's last fraction of a second, when no assertion
// can end after it is issued and by the grant's end, the call is refused
// before anything is audited or forwarded.
func TestAssertionLifetime(t *testing.T) {
	e := newTestEnv(t, func(_ *testEnv, c *Config) { c.AssertionIssuer = "lockbox-eu"; c.AssertionTTL = 5 * time.Second })
	// Approved mid-second, the grant ends mid-second.
	e.clk.Advance(300 * time.Millisecond)
	req := e.grantFor(alice, "contoso", "exchange", time.Hour)
	expect := grantsig.Expect{Issuer: "lockbox-eu", Audience: "exchange", Method: "GET", Path: "/api" + mailboxes}
	call := func(at time.Time) (response, grantsig.Claims, error) {
		e.clk.Set(at)
		n := len(e.up["exchange"].requests())
		res := e.send(as(alice, "GET", mailboxes)(e))
		seen := e.up["exchange"].requests()
		if len(seen) == n {
			return res, grantsig.Claims{}, nil
		}
		c, err := grantsig.Verify(e.grantKeys, seen[n].Header.Get(grantsig.Header), expect, at)
		return res, c, err
	}

	start := e.clk.Now()
	_, c, err := call(start)
	if err != nil || c.ExpiresAt != start.Unix()+5 || c.IssuedAt != start.Unix() || c.Issuer != "lockbox-eu" {
		t.Errorf("a call early in the window: %+v, %v; want 5s from %d", c, err, start.Unix())
	}
	end := *req.ExpiresAt
	_, c, err = call(end.Add(-2 * time.Second))
	if err != nil || c.ExpiresAt != end.Unix() {
		t.Errorf("a call 2s before the grant ends: %+v, %v; want exp %d", c, err, end.Unix())
	}

	// The grant's end is mid-second (it counts from the approval's
	// nanosecond): a call in its last fraction of a second can't get an
	// assertion that ends after it is issued and by the grant's end.
	if end.Truncate(time.Second).Equal(end) {
		t.Fatalf("the grant ends on a whole second (%s); the test needs a fraction", end)
	}
	records := len(mustList(t, e, 20))
	res, _, _ := call(end.Truncate(time.Second).Add(time.Nanosecond))
	if res.status != http.StatusForbidden || res.errorCode(t) != string(ReasonGrantExpired) {
		t.Errorf("a call in the grant's last fraction of a second: %d %s", res.status, res.body)
	}
	if n := len(mustList(t, e, 20)); n != records {
		t.Errorf("the refused call left %d audit records", n-records)
	}
}

func mustList(t *testing.T, e *testEnv, n int64) []record.Record {
	t.Helper()
	recs, err := e.audit.List(context.Background(), "contoso", n)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// renamingAuditor writes records under an id of its own choosing, which the
// call's assertion does not name.
type renamingAuditor struct{ *audit.Log }

func (a renamingAuditor) Append(ctx context.Context, r record.Record) (record.Record, error) {
	r.Id = ""
	return a.Log.Append(ctx, r)
}

// TestAssertionNamesTheWrittenRecord: a call whose record was written under
// another id than its assertion names is refused, not forwarded with an
// assertion pointing at no record, and counted as an audit write error
// like every other audit_unavailable refusal (the RUNBOOK's
// LockboxAuditUnavailable reads both as the same failures).
func TestAssertionNamesTheWrittenRecord(t *testing.T) {
	e := newTestEnv(t, func(e *testEnv, c *Config) { c.Auditor = renamingAuditor{e.audit} })
	e.grantFor(alice, "contoso", "exchange", time.Hour)
	res := e.send(as(alice, "GET", mailboxes)(e))
	if res.status != http.StatusServiceUnavailable || res.errorCode(t) != string(ReasonAuditUnavailable) {
		t.Fatalf("status %d %s", res.status, res.body)
	}
	if n := e.upstreamCalls(); n != 0 {
		t.Fatalf("%d calls forwarded", n)
	}
	if got := testutil.ToFloat64(e.h.metrics.auditErrors); got != 1 {
		t.Errorf("audit write errors = %v, want 1", got)
	}
}

// tenantlessPolicy classifies calls as goPolicy does but finds no tenant in
// any of them: a snapshot whose catalog did not come from policy.Catalog,
// which refuses a route without {tenant}.
type tenantlessPolicy struct{ goPolicy }

func (p tenantlessPolicy) Classify(service, method, path string) (policy.Activity, string, bool) {
	a, _, ok := p.goPolicy.Classify(service, method, path)
	return a, "", ok
}

// TestMalformedFormBody: a form body, read whole to be checked for method
// overrides, whose chunked framing breaks is refused before its grant is
// looked up: 400 bad_request, counted and logged as a denial, nothing
// forwarded or audited. (A streamed body that breaks once the call is
// forwarded is TestMalformedStreamedBody's.)
func TestMalformedFormBody(t *testing.T) {
	for name, chunks := range map[string]string{
		"bare LF after the size":     "5\nkind=\r\n0\r\n\r\n",
		"size not hex":               "5\r\nkind=\r\nzz\r\n",
		"data longer than its chunk": "5\r\nkind=x\r\n0\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t)
			repairOnContoso(e)
			records := auditEntries(t, e)
			q := as(alice, "POST", mailboxes+"/alice/repair", [2]string{"Transfer-Encoding", "chunked"},
				[2]string{"Content-Type", formURLEncoded})(e)
			c := e.dial()
			if _, err := c.c.Write(append(q.bytes(), chunks...)); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(c.br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			got := response{status: res.StatusCode, header: res.Header, body: body}
			if got.status != http.StatusBadRequest || got.errorCode(t) != string(ReasonBadRequest) ||
				!strings.Contains(string(body), "could not be read") {
				t.Errorf("%d %s, want 400 bad_request, the body could not be read", got.status, body)
			}
			if n := e.upstreamCalls(); n != 0 {
				t.Errorf("upstreams received %d requests, want none", n)
			}
			if n := auditEntries(t, e); n != records {
				t.Errorf("the audit streams hold %d entries after the call, want %d", n, records)
			}
			if got := testutil.ToFloat64(e.h.metrics.denials.WithLabelValues("exchange", string(ReasonBadRequest))); got != 1 {
				t.Errorf("denials{exchange,bad_request} = %v, want 1", got)
			}
			if got := sumMetric(t, e, "lockbox_proxy_denials_total"); got != 1 {
				t.Errorf("denials in all = %v, want 1", got)
			}
			lines := e.logLines("proxy call denied")
			if len(lines) != 1 || lines[0]["reason"] != string(ReasonBadRequest) || lines[0]["decision_id"] != res.Header.Get(HeaderDecisionID) {
				t.Errorf("denial log lines %v, want one with reason bad_request and the answer's decision id", lines)
			}
			if used := e.h.bodies.inUse(); used != 0 {
				t.Errorf("the body budget holds %d bytes after the call", used)
			}
		})
	}
}

// registryReads counts the commands that read a tenant's registry entry.
type registryReads struct{ n atomic.Int64 }

func (h *registryReads) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *registryReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "get" && len(cmd.Args()) > 1 && strings.HasSuffix(fmt.Sprint(cmd.Args()[1]), "}:tenant") {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *registryReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestAuditReadsTheRegistryOncePerTenant: the operator-action record
// carries the tenant's GUID, which the audit log reads from the registry
// on the first call for a tenant only: the hot path gains no Redis round
// trip per call.
func TestAuditReadsTheRegistryOncePerTenant(t *testing.T) {
	reads := &registryReads{}
	var auditor *audit.Log
	e := newTestEnv(t, func(e *testEnv, c *Config) {
		rdb := redis.NewClient(e.rdb.Options())
		t.Cleanup(func() { rdb.Close() })
		rdb.AddHook(reads)
		auditor = audit.NewLog(rdb, e.clk.Now)
		c.Auditor = auditor
	})
	e.grantFor(alice, "contoso", "exchange", 2*time.Hour)
	for range 5 {
		if res := e.send(as(alice, "GET", mailboxes)(e)); res.status != http.StatusOK {
			t.Fatalf("call: %d %s", res.status, res.body)
		}
	}
	if n := reads.n.Load(); n != 1 {
		t.Errorf("5 calls read the tenant registry %d times, want once", n)
	}
	tn, err := e.tenants.Get(context.Background(), "contoso")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := auditor.List(context.Background(), "contoso", 5)
	if err != nil || len(recs) != 5 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	for _, r := range recs {
		if r.OrganizationId != tn.OrganizationID || !r.Operator() {
			t.Errorf("record %+v: want an operator action of organization %s", r, tn.OrganizationID)
		}
	}
}

// TestHeaderNamesCanonical: the proxy sets its headers straight into the
// outbound map, which is only right for canonical names.
func TestHeaderNamesCanonical(t *testing.T) {
	for _, h := range []string{HeaderUser, HeaderRequestID, HeaderDecisionID, grantsig.Header} {
		if c := textproto.CanonicalMIMEHeaderKey(h); c != h {
			t.Errorf("%q is not canonical (%q)", h, c)
		}
	}
}

// slowAuth is an Authenticator whose verification takes until the clock
// reads until (once set): as a verification that waits for the issuer's
// keys to load again (a token naming a key the proxy does not know yet)
// takes as long as that fetch does.
type slowAuth struct {
	Authenticator
	clk   interface{ Set(time.Time) }
	until atomic.Pointer[time.Time]
}

func (a *slowAuth) Verify(ctx context.Context, raw string) (identity.Principal, error) {
	p, err := a.Authenticator.Verify(ctx, raw)
	if t := a.until.Load(); t != nil {
		a.clk.Set(*t)
	}
	return p, err
}

// TestGrantJudgedAfterAuthentication: a call whose authentication lasted
// until the grant's end is refused. Its grant is judged at a reading of
// the clock taken once the operator is known, not when the call arrived.
func TestGrantJudgedAfterAuthentication(t *testing.T) {
	auth := &slowAuth{}
	e := newTestEnv(t, func(e *testEnv, c *Config) {
		auth.Authenticator, auth.clk = c.Auth, e.clk
		c.Auth = auth
	})
	req := e.grantFor(alice, "contoso", "exchange", time.Hour)
	end := *req.ExpiresAt
	e.clk.Set(end.Add(-time.Second))
	auth.until.Store(&end)
	res := e.send(as(alice, "GET", mailboxes)(e))
	if res.status != http.StatusForbidden || res.errorCode(t) != string(ReasonGrantExpired) {
		t.Fatalf("%d %s: want 403 %s", res.status, res.body, ReasonGrantExpired)
	}
	if n := e.upstreamCalls(); n != 0 {
		t.Errorf("upstream received %d requests after the grant ended", n)
	}
}

// authFunc adapts a function to Authenticator.
type authFunc func(context.Context, string) (identity.Principal, error)

func (f authFunc) Verify(ctx context.Context, raw string) (identity.Principal, error) {
	return f(ctx, raw)
}
