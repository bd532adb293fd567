package notify_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/notify"
	"github.com/lockbox-oss/lockbox/tenants"
)

// flakyMailbox fails every Send while down, as a mail server that is out.
type flakyMailbox struct {
	mailbox
	dmu  sync.Mutex
	down bool
}

func (f *flakyMailbox) Send(ctx context.Context, id string, m notify.Message) error {
	f.dmu.Lock()
	d := f.down
	f.dmu.Unlock()
	if d {
		return errors.New("421 try again later")
	}
	return f.mailbox.Send(ctx, id, m)
}

func (f *flakyMailbox) setDown(d bool) {
	f.dmu.Lock()
	defer f.dmu.Unlock()
	f.down = d
}

// logBuffer collects a worker's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) lines(substr string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for line := range strings.Lines(l.b.String()) {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return out
}

func droppedTotal(t *testing.T, reg *prometheus.Registry, template notify.Template) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "lockbox_notification_recipients_dropped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "template" && l.GetValue() == string(template) {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no lockbox_notification_recipients_dropped_total{template=%q}", template)
	return 0
}

func opaqueOperator(email string) grants.Actor {
	op := who("00u1a2b3c4d5e6f7g8h9", "", identity.RoleOperator)
	op.Principal.Email = email
	return op
}

// An engineer whose subject is no address is e-mailed at the address
// their token carried when they filed the request.
func TestRequesterMailedAtTokenAddress(t *testing.T) {
	e := newEnv(t)
	r := e.createWith(t, opaqueOperator("alice@provider.example"), time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)
	mb := &mailbox{}
	w := mailWorker(t, e, mb, notify.Config{})
	drain(t, w)
	e.act(t, r.ID, grants.ActionApprove, adam)
	drain(t, w)
	got := mb.to("alice@provider.example")
	if len(got) != 2 || !strings.Contains(got[0].Subject, "awaits the tenant") || !strings.Contains(got[1].Subject, "was approved") {
		var subjects []string
		for _, m := range got {
			subjects = append(subjects, m.Subject)
		}
		t.Errorf("the engineer got %q, want the manager's and the tenant's approval; recipients %v", subjects, mb.recipients())
	}
}

// An engineer with neither an address subject nor an email claim can't be
// e-mailed: each such recipient is logged at warn with the request and the
// event, and counted, once per event however often its other recipients
// are retried.
func TestRequesterWithoutAddressIsLoggedAndCounted(t *testing.T) {
	e := newEnv(t)
	r := e.createWith(t, opaqueOperator(""), time.Hour)
	mb := &flakyMailbox{down: true}
	logs := &logBuffer{}
	reg := prometheus.NewRegistry()
	w := newWorker(t, notify.WithMailer(notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", Registerer: reg,
		Logger: slog.New(slog.NewJSONHandler(logs, nil))}, mb))
	// The tenant's e-mails of each event fail and are retried, then go
	// out: the ask, then adam's decision, which follows it.
	for _, by := range []grants.Actor{manager, adam} {
		e.act(t, r.ID, grants.ActionApprove, by)
		mb.setDown(true)
		for range 3 {
			if _, err := w.Tick(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		mb.setDown(false)
		drain(t, w)
	}
	lines := logs.lines("notification recipient has no e-mail address")
	if len(lines) != 2 {
		t.Fatalf("%d warnings of the dropped engineer, want 2 (pending_customer, approved):\n%s", len(lines), strings.Join(lines, ""))
	}
	for i, kind := range []notify.Kind{notify.KindPendingCustomer, notify.KindApproved} {
		for _, s := range []string{`"level":"WARN"`, `"request_id":"` + r.ID + `"`, `"kind":"` + string(kind) + `"`, `"recipient":"00u1a2b3c4d5e6f7g8h9"`} {
			if !strings.Contains(lines[i], s) {
				t.Errorf("warning %d lacks %s: %s", i, s, lines[i])
			}
		}
	}
	if got := droppedTotal(t, reg, notify.TemplateRequesterUpdate); got != 2 {
		t.Errorf("dropped requester updates = %v, want 2", got)
	}
	if len(mb.to("eve@contoso.example")) != 2 {
		t.Errorf("the tenant's e-mails were not delivered: %v", mb.recipients())
	}
}

// The tenant's "awaits your decision" goes out only while the request
// awaits it: delivered late, after the request was canceled, denied or ran
// out of time (even before a sweep wrote the expiry), it is left out. The
// engineer still hears of the manager's approval, and webhooks get the
// event, as a record of what happened.
func TestNoAskOnceTheRequestMovedOn(t *testing.T) {
	for _, tc := range []struct {
		name  string
		moved func(e *env, id string)
	}{
		{"canceled", func(e *env, id string) { e.act(t, id, grants.ActionCancel, operator(0)) }},
		{"denied", func(e *env, id string) { e.act(t, id, grants.ActionDeny, adam) }},
		{"expired unswept", func(e *env, id string) { e.clock.Advance(grants.DecisionWindow + time.Minute) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.create(t, operator(0))
			e.act(t, r.ID, grants.ActionApprove, manager)
			mb := &flakyMailbox{down: true}
			secret := []byte("k")
			hook := startHook(t, e.clock.Now, secret, 503)
			w := newWorker(t, notify.WithMailer(notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a",
				Webhooks: []notify.WebhookConfig{{URL: hook.URL, Secret: secret}}}, mb))
			if _, err := w.Tick(context.Background()); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(time.Minute)
			tc.moved(e, r.ID)
			mb.setDown(false)
			hook.mu.Lock()
			hook.status = 0
			hook.mu.Unlock()
			drain(t, w)
			for _, a := range mb.recipients() {
				for _, m := range mb.to(a) {
					if strings.Contains(m.Subject, "awaits your decision") {
						t.Errorf("%s asked to decide a request that is %s: %q", a, tc.name, m.Subject)
					}
				}
			}
			if got := mb.to("alice0@provider.example"); len(got) == 0 || !strings.Contains(got[0].Subject, "awaits the tenant") {
				t.Errorf("the engineer did not hear of the manager's approval: %v", mb.recipients())
			}
			hook.mu.Lock()
			defer hook.mu.Unlock()
			if !slicesHasKind(hook.bodies, notify.KindPendingCustomer) {
				t.Errorf("webhooks lack %s: %+v", notify.KindPendingCustomer, hook.bodies)
			}
		})
	}
}

// The expiry warning goes out only while the grant is still due to end
// then: delivered late, after a revocation, it is left out; delivered late
// while the grant still runs, it goes out.
func TestNoExpiryWarningOnceTheGrantEnded(t *testing.T) {
	for _, revoke := range []bool{true, false} {
		e := newEnv(t)
		r := e.createWith(t, operator(0), time.Hour)
		e.act(t, r.ID, grants.ActionApprove, manager)
		e.act(t, r.ID, grants.ActionApprove, adam)
		mb := &flakyMailbox{}
		secret := []byte("k")
		hook := startHook(t, e.clock.Now, secret, 0)
		w := newWorker(t, notify.WithMailer(notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a",
			ExpiryWarning: 15 * time.Minute, Webhooks: []notify.WebhookConfig{{URL: hook.URL, Secret: secret}}}, mb))
		drain(t, w)
		mb.reset()
		mb.setDown(true)
		e.clock.Advance(46 * time.Minute)
		if _, err := w.Tick(context.Background()); err != nil { // queues the warning; the mail fails
			t.Fatal(err)
		}
		e.clock.Advance(time.Minute)
		if revoke {
			e.act(t, r.ID, grants.ActionRevoke, globalAdmin)
		}
		mb.setDown(false)
		drain(t, w)
		var warned bool
		for _, m := range mb.to("alice0@provider.example") {
			warned = warned || strings.Contains(m.Subject, "your access ends in")
		}
		if warned == revoke {
			t.Errorf("revoked %v: the engineer warned %v; got %v", revoke, warned, mb.recipients())
		}
		hook.mu.Lock()
		if !slicesHasKind(hook.bodies, notify.KindExpiring) {
			t.Errorf("revoked %v: webhooks lack %s", revoke, notify.KindExpiring)
		}
		hook.mu.Unlock()
	}
}

func slicesHasKind(ps []notify.WebhookPayload, k notify.Kind) bool {
	for _, p := range ps {
		if p.Event == k {
			return true
		}
	}
	return false
}

// TestRecipientListedUnderAnotherSpellingIsMailedOnce: recipients are read
// again at each attempt, and an address may come from another list, in
// another case, at the retry than at the attempt that mailed it (a
// notification address "Security@" the tenant then also assigns as an
// approver, stored "security@"). It is still one recipient, mailed once.
func TestRecipientListedUnderAnotherSpellingIsMailedOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.tenants.PutSettings(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", tenants.Settings{
		LockboxEnabled: true, NotificationAddresses: []string{"Security@contoso.example"},
	}); err != nil {
		t.Fatal(err)
	}
	r := e.create(t, operator(0))
	e.act(t, r.ID, grants.ActionApprove, manager)
	mb := &mailbox{}
	// The first e-mail (the engineer's) fails, so the entry is retried.
	w := newWorker(t, notify.WithMailer(notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a"}, &downFirst{mailbox: mb, down: true}))
	if _, err := w.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(mb.to("Security@contoso.example")); got != 1 {
		t.Fatalf("the notification address got %d e-mails at the first attempt, want 1: %v", got, mb.recipients())
	}
	if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", "security@contoso.example"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	drain(t, w)
	var got []string
	for _, a := range mb.recipients() {
		if strings.EqualFold(a, "security@contoso.example") {
			for range mb.to(a) {
				got = append(got, a)
			}
		}
	}
	if len(got) != 1 {
		t.Errorf("security@contoso.example got %d e-mails, want 1: %v", len(got), got)
	}
	if got := len(mb.to("alice0@provider.example")); got != 1 {
		t.Errorf("the engineer got %d e-mails, want 1 (the retry)", got)
	}
}
