package notify_test

import (
	"context"
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
