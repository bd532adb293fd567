package notify_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/notify"
)

// authSession is a session that requires SMTP AUTH PLAIN.
type authSession struct {
	session
	authed bool
}

func (a *authSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (a *authSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "lockbox" || pass != "pa55" {
			return errors.New("bad credentials")
		}
		a.authed = true
		return nil
	}), nil
}
func (a *authSession) Mail(from string, o *smtp.MailOptions) error {
	if !a.authed {
		return &smtp.SMTPError{Code: 530, Message: "authentication required"}
	}
	return a.session.Mail(from, o)
}

func TestSMTPAuth(t *testing.T) {
	e := newEnv(t)
	r := e.create(t, operator(0))
	e.act(t, r.ID, grants.ActionApprove, manager)
	srv := startSMTP(t)
	srv.stop()
	srv.session = func() smtp.Session { return &authSession{session: session{s: srv}} }
	srv.insecureAuth = true
	srv.start()
	w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a",
		SMTP: &notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example", Username: "lockbox", Password: "pa55"}})
	drain(t, w)
	if n := len(srv.messages()); n != 5 { // 4 pending (global admin, 2 approvers, security@) + 1 requester
		t.Fatalf("delivered %d, want 5", n)
	}
}

func TestSMTPMandatoryStartTLSNeverSendsInClear(t *testing.T) {
	e := newEnv(t)
	r := e.create(t, operator(0))
	e.act(t, r.ID, grants.ActionApprove, manager)
	srv := startSMTP(t) // offers no STARTTLS
	w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a",
		SMTP: &notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example", StartTLS: notify.StartTLSMandatory}})
	if _, err := w.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.messages()); n != 0 {
		t.Fatalf("%d messages sent without TLS", n)
	}
}

func TestSMTPConfigChecks(t *testing.T) {
	for _, c := range []notify.SMTPConfig{
		{Addr: "mail.example", From: "a@b.example"},
		{Addr: "mail.example:25"},
		{Addr: "mail.example:25", From: "a@b.example", StartTLS: "sometimes"},
		{Addr: "mail.example:25", From: "a@b.example", Username: "u"},
		{Addr: "mail.example:25", From: "a@b.example", Password: "p"},
		// A sender that is no address fails every e-mail at go-mail's
		// parse, long after start-up.
		{Addr: "mail.example:25", From: "lockbox"},
		{Addr: "mail.example:25", From: "a@b.example, c@b.example"},
		{Addr: "mail.example:25", From: "lockbox@prövider.example"},
	} {
		if err := c.CheckAndSetDefaults(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	for _, from := range []string{"lockbox@provider.example", "Lockbox <lockbox@provider.example>"} {
		c := notify.SMTPConfig{Addr: "mail.example:25", From: from}
		if err := c.CheckAndSetDefaults(); err != nil {
			t.Errorf("From %q: %v", from, err)
		}
	}
}

func TestRenderSanitizes(t *testing.T) {
	at := t0.Add(12 * time.Hour)
	ev := notify.Event{Kind: notify.KindPendingCustomer, Request: grants.Request{
		ID: "0193a5b0-0000-7000-8000-000000000001", Tenant: "contoso", Service: "exchange",
		ServiceRequest: "SR-1\r\nX-Evil: 1", Reason: "go to HTTPS://x.example or http:/y or ftp://z or WWW.w.example",
		Duration: grants.Duration(time.Hour), Requester: "alice@provider.example", DecideBy: &at,
	}}
	m, err := notify.Render(ev, notify.TemplatePendingCustomer, "adam@contoso.example\r\nBcc: x@y.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{m.To, m.Subject, m.Body} {
		if urlRE.MatchString(s) {
			t.Errorf("link left in %q", s)
		}
	}
	if strings.ContainsAny(m.To+m.Subject, "\r\n") || strings.Contains(m.Body, "\nX-Evil") {
		t.Errorf("line break kept: %+v", m)
	}
	if !strings.Contains(m.Body, "2026-11-23 21:00 UTC") {
		t.Errorf("decide_by missing:\n%s", m.Body)
	}
}
