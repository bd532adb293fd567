package notify_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/notify"
)

// pendingMessage renders the tenant's "awaits your decision" e-mail of a
// request whose reason is reason.
func pendingMessage(t *testing.T, reason string) notify.Message {
	t.Helper()
	at := t0.Add(grants.DecisionWindow)
	ev := notify.Event{Kind: notify.KindPendingCustomer, Request: grants.Request{
		ID: "0193a5b0-0000-7000-8000-000000000001", Tenant: "contoso", Service: "exchange",
		ServiceRequest: "SR-1", Reason: reason, Duration: grants.Duration(time.Hour),
		Requester: "alice@provider.example", State: grants.StatePendingCustomer, DecideBy: &at,
	}, Event: grants.Event{Action: grants.ActionApprove, Actor: "mary@provider.example", ActorKind: grants.KindProvider,
		From: grants.StatePendingManager, To: grants.StatePendingCustomer, At: t0}}
	m, err := notify.Render(ev, notify.TemplatePendingCustomer, "adam@contoso.example")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSMTPMessageCarriesNoLinkAnywhere: "no e-mail has a link at all"
// holds for the message as sent, headers included, not only for the
// subject and body a reader sees first: no header advertises the mail
// library's web site (or its version) to every recipient.
func TestSMTPMessageCarriesNoLinkAnywhere(t *testing.T) {
	srv := startSMTP(t)
	cfg := notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example", StartTLS: notify.StartTLSNone, Timeout: 10 * time.Second}
	if err := cfg.CheckAndSetDefaults(); err != nil {
		t.Fatal(err)
	}
	if err := notify.NewSMTP(cfg).Send(context.Background(), "1-0.0123456789abcdef", pendingMessage(t, "repair")); err != nil {
		t.Fatal(err)
	}
	got := srv.messages()
	if len(got) != 1 {
		t.Fatalf("%d messages", len(got))
	}
	head, _, _ := strings.Cut(got[0].Raw, "\r\n\r\n")
	if urlRE.MatchString(got[0].Raw) {
		t.Errorf("the message sent has a link:\n%s", head)
	}
}

// TestDevSinkWritesAMIMEMessage: the .eml files of `lockbox dev` are
// messages a mail client reads as they are meant: RFC 5322 (CRLF line
// ends, no line over 998 octets, an ASCII header with Date and From) and
// MIME (MIME-Version, and a body whose encoding is said, so that a reason
// in any language, however long, arrives whole).
func TestDevSinkWritesAMIMEMessage(t *testing.T) {
	for name, reason := range map[string]string{
		"short":                      "réparation de la boîte aux lettres",
		"longer than a message line": strings.Repeat("réparation de la boîte aux lettres ", 54), // 1,944 bytes, within the 2,000 a reason may have
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			r, err := e.store.Create(context.Background(), operator(0), grants.CreateInput{
				Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-9", Reason: reason, Duration: grants.Duration(time.Hour),
			})
			if err != nil {
				t.Fatal(err)
			}
			e.act(t, r.ID, grants.ActionApprove, manager)
			dir := filepath.Join(t.TempDir(), "mail")
			drain(t, newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "dev", DevDir: dir}))
			files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
			if len(files) != 5 { // the global admin, adam, eve, security@ and the requester
				t.Fatalf("files = %v", files)
			}
			for _, f := range files {
				checkMIME(t, f, strings.TrimSpace(reason))
			}
		})
	}
}

// checkMIME checks that the .eml file f is a well-formed text/plain
// message whose decoded body contains want.
func checkMIME(t *testing.T, f, want string) {
	t.Helper()
	raw, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(raw), "\r\n") {
		if strings.ContainsAny(l, "\r\n") {
			t.Errorf("%s: line %d ends without CRLF", f, i+1)
		}
		if len(l) > 998 {
			t.Errorf("%s: line %d has %d octets, more than RFC 5322's 998", f, i+1, len(l))
		}
	}
	head, _, _ := strings.Cut(string(raw), "\r\n\r\n")
	if strings.IndexFunc(head, func(c rune) bool { return c > 0x7e }) >= 0 {
		t.Errorf("%s: header is not ASCII:\n%s", f, head)
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v", f, err)
	}
	for _, h := range []string{"Date", "From", "To", "Subject", "Message-ID"} {
		if m.Header.Get(h) == "" {
			t.Errorf("%s: no %s header:\n%s", f, h, head)
		}
	}
	if _, err := m.Header.Date(); err != nil {
		t.Errorf("%s: Date: %v", f, err)
	}
	if v := m.Header.Get("MIME-Version"); v != "1.0" {
		t.Errorf("%s: MIME-Version %q", f, v)
	}
	if mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type")); err != nil || mt != "text/plain" || !strings.EqualFold(params["charset"], "utf-8") {
		t.Errorf("%s: Content-Type %q", f, m.Header.Get("Content-Type"))
	}
	var body []byte
	switch cte := strings.ToLower(m.Header.Get("Content-Transfer-Encoding")); cte {
	case "quoted-printable":
		body, err = io.ReadAll(quotedprintable.NewReader(m.Body))
	case "base64":
		body, err = io.ReadAll(base64.NewDecoder(base64.StdEncoding, m.Body))
	case "8bit":
		body, err = io.ReadAll(m.Body)
	default: // 7bit, said or implied: ASCII only
		body, err = io.ReadAll(m.Body)
		if bytes.IndexFunc(body, func(c rune) bool { return c > 0x7e }) >= 0 {
			t.Errorf("%s: 8-bit body under Content-Transfer-Encoding %q", f, cte)
		}
	}
	if err != nil {
		t.Fatalf("%s: %v", f, err)
	}
	if !strings.Contains(string(body), want) {
		t.Errorf("%s: the reason did not arrive whole:\n%s", f, body)
	}
}
