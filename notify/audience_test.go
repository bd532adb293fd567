package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/notify"
	"github.com/lockbox-oss/lockbox/tenants"
)

// mailbox is a Mailer that keeps what it is given, shared by the workers
// of one test.
type mailbox struct {
	mu   sync.Mutex
	msgs []notify.Message
}

func (m *mailbox) Name() string { return "dev" }
func (m *mailbox) Send(_ context.Context, _ string, msg notify.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = append(m.msgs, msg)
	return nil
}

// to returns the messages to addr, in delivery order.
func (m *mailbox) to(addr string) []notify.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []notify.Message
	for _, msg := range m.msgs {
		if msg.To == addr {
			out = append(out, msg)
		}
	}
	return out
}

// recipients lists who got messages, sorted, each once.
func (m *mailbox) recipients() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, msg := range m.msgs {
		if !slices.Contains(out, msg.To) {
			out = append(out, msg.To)
		}
	}
	slices.Sort(out)
	return out
}

func (m *mailbox) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = nil
}

// mailWorker returns a worker delivering e-mail into mb.
func mailWorker(t *testing.T, e *env, mb *mailbox, cfg notify.Config) *notify.Worker {
	t.Helper()
	if cfg.Redis == nil {
		cfg.Redis = e.rdb
	}
	cfg.Now = e.clock.Now
	if cfg.Consumer == "" {
		cfg.Consumer = "a"
	}
	return newWorker(t, notify.WithMailer(cfg, mb))
}

func (e *env) setLockbox(t *testing.T, on bool) {
	t.Helper()
	if _, err := e.tenants.PutSettings(context.Background(), globalAdmin.Principal, "203.0.113.1", "contoso", tenants.Settings{
		LockboxEnabled: on, NotificationAddresses: []string{"security@contoso.example"},
	}); err != nil {
		t.Fatal(err)
	}
}

func (e *env) createWith(t *testing.T, op grants.Actor, d time.Duration, activities ...string) grants.Request {
	t.Helper()
	r, err := e.store.Create(context.Background(), op, grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-8", Reason: "repair", Duration: grants.Duration(d), Activities: activities,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPendingCustomerRecipients: a request awaiting the tenant is mailed to
// the tenant's global administrators (registry contacts), its assigned
// approvers that still count, and its notification addresses, each once.
func TestPendingCustomerRecipients(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// olga was assigned while contoso-old.example was one of contoso's
	// domains; without it she is no longer a user of the tenant.
	domains := []string{"contoso.example", "contoso-old.example"}
	if _, err := e.tenants.UpdateTenant(ctx, tenanttest.Admin, "192.0.2.250", "contoso", tenants.TenantUpdate{Domains: &domains}); err != nil {
		t.Fatal(err)
	}
	if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", "olga@contoso-old.example"); err != nil {
		t.Fatal(err)
	}
	domains = []string{"contoso.example"}
	admins := []string{"admin@contoso.example", "adam@contoso.example", "gina@contoso.example"}
	if _, err := e.tenants.UpdateTenant(ctx, tenanttest.Admin, "192.0.2.250", "contoso", tenants.TenantUpdate{Domains: &domains, GlobalAdmins: &admins}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.tenants.PutSettings(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", tenants.Settings{
		LockboxEnabled: true, NotificationAddresses: []string{"security@contoso.example", "Gina@contoso.example", "eve@contoso.example"},
	}); err != nil {
		t.Fatal(err)
	}
	r := e.create(t, operator(0))
	e.act(t, r.ID, grants.ActionApprove, manager)
	mb := &mailbox{}
	drain(t, mailWorker(t, e, mb, notify.Config{}))

	want := []string{"adam@contoso.example", "admin@contoso.example", "alice0@provider.example", "eve@contoso.example", "gina@contoso.example", "security@contoso.example"}
	if got := mb.recipients(); !slices.Equal(got, want) {
		t.Fatalf("recipients = %v, want %v", got, want)
	}
	for _, a := range want {
		msgs := mb.to(a)
		if len(msgs) != 1 {
			t.Errorf("%s got %d messages", a, len(msgs))
		}
		if a != "alice0@provider.example" && !strings.Contains(msgs[0].Subject, "awaits your decision") {
			t.Errorf("%s got %q", a, msgs[0].Subject)
		}
	}
	if len(mb.to("Gina@contoso.example")) != 0 || len(mb.to("olga@contoso-old.example")) != 0 {
		t.Errorf("mailed a duplicate spelling or an approver outside the tenant's domains: %v", mb.recipients())
	}
}

// TestManagersHearOfNewRequests: a new request is mailed to the configured
// manager addresses (the provider's view, naming the engineer) and posted
// to webhooks as request.created (the tenant's view, naming nobody).
func TestManagersHearOfNewRequests(t *testing.T) {
	e := newEnv(t)
	secret := []byte("k")
	hook := startHook(t, e.clock.Now, secret, 0)
	mb := &mailbox{}
	w := mailWorker(t, e, mb, notify.Config{
		ManagerAddresses: []string{"mary@provider.example", "support-leads@provider.example"},
		Webhooks:         []notify.WebhookConfig{{URL: hook.URL, Secret: secret}},
	})
	r := e.createWith(t, operator(0), 90*time.Minute, "Get-Mailbox", "Get-InboxRule")
	drain(t, w)
	if got := mb.recipients(); !slices.Equal(got, []string{"mary@provider.example", "support-leads@provider.example"}) {
		t.Fatalf("recipients = %v", got)
	}
	m := mb.to("mary@provider.example")[0]
	if !strings.Contains(m.Subject, "awaits a support manager") || !strings.Contains(m.Subject, r.ID) {
		t.Errorf("subject = %q", m.Subject)
	}
	for _, s := range []string{"alice0@provider.example filed", "Requested activities:    Get-Mailbox, Get-InboxRule\n",
		"Requested duration:      1h30m\n", "SR-8", r.ID} {
		if !strings.Contains(m.Body, s) {
			t.Errorf("manager e-mail lacks %q:\n%s", s, m.Body)
		}
	}
	if urlRE.MatchString(m.Subject + m.Body) {
		t.Errorf("manager e-mail has a link:\n%s", m.Body)
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if len(hook.bodies) != 1 {
		t.Fatalf("webhook deliveries = %d", len(hook.bodies))
	}
	p := hook.bodies[0]
	if p.Event != notify.KindCreated || p.State != grants.StatePendingManager || p.Actor != "Microsoft Operator" ||
		p.Duration != "1h30m" || !slices.Equal(p.Activities, []string{"Get-Mailbox", "Get-InboxRule"}) {
		t.Errorf("webhook = %+v", p)
	}
	if strings.Contains(hook.raw[0], "provider.example") {
		t.Errorf("webhook names provider staff: %s", hook.raw[0])
	}

	// Without manager addresses nobody is mailed, and the entry is done.
	e2 := newEnv(t)
	mb2 := &mailbox{}
	e2.create(t, operator(1))
	drain(t, mailWorker(t, e2, mb2, notify.Config{}))
	if got := mb2.recipients(); len(got) != 0 {
		t.Errorf("mailed without manager addresses: %v", got)
	}
}

// TestEngineerHearsOfEveryDecision: the requester is mailed every decision,
// revocation (whoever's, including the one turning Customer Lockbox on
// causes), expiry and completion, in the provider's view.
func TestEngineerHearsOfEveryDecision(t *testing.T) {
	for _, c := range []struct {
		name    string
		steps   func(t *testing.T, e *env, id string)
		subject string
		body    string
	}{
		{"manager approves, lockbox on", func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionApprove, manager)
		}, "awaits the tenant's approvers", "By:                      mary@provider.example"},
		{"manager approves, lockbox off", func(t *testing.T, e *env, id string) {
			e.setLockbox(t, false)
			e.act(t, id, grants.ActionApprove, manager)
		}, "was approved (", "Access ends:             2026-11-23 11:00 UTC"},
		{"manager denies", func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionDeny, manager)
		}, "was denied (", "By:                      mary@provider.example"},
		{"tenant approves", func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionApprove, manager)
			e.act(t, id, grants.ActionApprove, adam)
		}, "was approved (", "By:                      adam@contoso.example"},
		{"tenant denies", func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionApprove, manager)
			e.act(t, id, grants.ActionDeny, globalAdmin)
		}, "was denied (", "By:                      gina@contoso.example"},
		{"tenant revokes", func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionApprove, manager)
			e.act(t, id, grants.ActionApprove, adam)
			e.act(t, id, grants.ActionRevoke, adam)
		}, "was revoked (", "By:                      adam@contoso.example"},
		{"manager revokes", func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionApprove, manager)
			e.act(t, id, grants.ActionApprove, adam)
			e.act(t, id, grants.ActionRevoke, manager)
		}, "was revoked (", "By:                      mary@provider.example"},
		{"turning Customer Lockbox on revokes", func(t *testing.T, e *env, id string) {
			e.setLockbox(t, false)
			e.act(t, id, grants.ActionApprove, manager)
			e.setLockbox(t, true)
		}, "was revoked (", grants.LockboxOnComment},
		{"expires undecided", func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionApprove, manager)
			e.clock.Advance(grants.DecisionWindow)
			if _, err := e.store.Sweep(context.Background()); err != nil {
				t.Fatal(err)
			}
		}, "expired without a decision (", "By:                      Lockbox"},
		{"completes", func(t *testing.T, e *env, id string) {
			e.act(t, id, grants.ActionApprove, manager)
			e.act(t, id, grants.ActionApprove, adam)
			e.clock.Advance(2 * time.Hour)
			if _, err := e.store.Sweep(context.Background()); err != nil {
				t.Fatal(err)
			}
		}, "ended: its access window is over (", "State:                   completed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			mb := &mailbox{}
			w := mailWorker(t, e, mb, notify.Config{})
			r := e.create(t, operator(0))
			drain(t, w)
			c.steps(t, e, r.ID)
			drain(t, w)
			msgs := mb.to("alice0@provider.example")
			if len(msgs) == 0 {
				t.Fatal("the engineer heard nothing")
			}
			last := msgs[len(msgs)-1]
			if !strings.Contains(last.Subject, c.subject) || !strings.Contains(last.Body, c.body) {
				t.Errorf("last of %d messages to the engineer:\n%s\n%s\nwant subject with %q and body with %q", len(msgs), last.Subject, last.Body, c.subject, c.body)
			}
			if !strings.Contains(last.Body, "Requested duration:      2h\n") {
				t.Errorf("duration not short:\n%s", last.Body)
			}
		})
	}
}

// TestExpiryWarning: the engineer is warned once, ExpiryWarning before the
// window ends, however many replicas run; not when the grant ended before,
// not for a window no longer than the lead time, and not when disabled.
func TestExpiryWarning(t *testing.T) {
	// approved returns an approved request of d and when its window ends.
	approved := func(t *testing.T, e *env, d time.Duration) (grants.Request, time.Time) {
		r := e.createWith(t, operator(0), d)
		e.act(t, r.ID, grants.ActionApprove, manager)
		e.act(t, r.ID, grants.ActionApprove, adam)
		return r, e.clock.Now().Add(d)
	}
	warnings := func(mb *mailbox) []notify.Message {
		var out []notify.Message
		for _, m := range mb.to("alice0@provider.example") {
			if strings.Contains(m.Subject, "your access ends in") {
				out = append(out, m)
			}
		}
		return out
	}

	t.Run("once, on time, across two replicas", func(t *testing.T) {
		e := newEnv(t)
		secret := []byte("k")
		hook := startHook(t, e.clock.Now, secret, 0)
		mb := &mailbox{}
		var ws []*notify.Worker
		for i := range 2 {
			rdb := redistest.Clone(t, e.rdb)
			ws = append(ws, mailWorker(t, e, mb, notify.Config{Redis: rdb, Consumer: fmt.Sprintf("replica-%d", i),
				ExpiryWarning: 15 * time.Minute, Webhooks: []notify.WebhookConfig{{URL: hook.URL, Secret: secret}}}))
		}
		r, ends := approved(t, e, time.Hour)
		// Both replicas run rounds at the same time (each one round at a
		// time, as Run does), until the outbox is empty.
		rounds := func() {
			for i := range 50 {
				var wg sync.WaitGroup
				for _, w := range ws {
					wg.Go(func() {
						if _, err := w.Tick(context.Background()); err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
				if n, err := ws[0].Depth(context.Background()); err != nil || (n == 0 && i >= 2) {
					return
				}
			}
			t.Fatal("outbox never drained")
		}
		e.clock.Set(ends.Add(-15*time.Minute - time.Second))
		rounds()
		if n := len(warnings(mb)); n != 0 {
			t.Fatalf("%d warnings 15m01s before the end", n)
		}
		e.clock.Advance(time.Second)
		rounds()
		e.clock.Advance(10 * time.Minute)
		rounds()
		got := warnings(mb)
		if len(got) != 1 {
			t.Fatalf("%d warnings, want 1", len(got))
		}
		for _, s := range []string{"ends at 2026-11-23 10:00 UTC,\nin 15m.", "Requested activities:    all read activities\n", "Requested duration:      1h\n", r.ID} {
			if !strings.Contains(got[0].Body, s) {
				t.Errorf("warning lacks %q:\n%s", s, got[0].Body)
			}
		}
		if !strings.Contains(got[0].Subject, "your access ends in 15m") || urlRE.MatchString(got[0].Subject+got[0].Body) {
			t.Errorf("warning:\n%s\n%s", got[0].Subject, got[0].Body)
		}
		// The window ends: completed, and still one warning.
		e.clock.Set(ends)
		if _, err := e.store.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		rounds()
		if n := len(warnings(mb)); n != 1 {
			t.Errorf("%d warnings after the end", n)
		}
		hook.mu.Lock()
		defer hook.mu.Unlock()
		n := 0
		for _, p := range hook.bodies {
			if p.Event == notify.KindExpiring {
				n++
				if p.Actor != "Lockbox" || p.ExpiresAt == nil || !p.ExpiresAt.Equal(ends) {
					t.Errorf("warning webhook = %+v", p)
				}
			}
		}
		if n != 1 {
			t.Errorf("%d request.expiring webhooks", n)
		}
	})

	t.Run("not for a grant revoked before", func(t *testing.T) {
		e := newEnv(t)
		mb := &mailbox{}
		w := mailWorker(t, e, mb, notify.Config{ExpiryWarning: 15 * time.Minute})
		r, ends := approved(t, e, time.Hour)
		e.clock.Set(ends.Add(-20 * time.Minute))
		e.act(t, r.ID, grants.ActionRevoke, manager)
		for _, at := range []time.Duration{-15 * time.Minute, -time.Minute} {
			e.clock.Set(ends.Add(at))
			drain(t, w)
		}
		if n := len(warnings(mb)); n != 0 {
			t.Errorf("%d warnings for a revoked grant", n)
		}
	})

	t.Run("the setting", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			lead   time.Duration
			window time.Duration
			// when is the time left at which the warning first goes out;
			// 0 means never.
			when time.Duration
		}{
			{"30m before", 30 * time.Minute, 2 * time.Hour, 30 * time.Minute},
			{"disabled", 0, 2 * time.Hour, 0},
			{"a 30m window gets one at 15m", 15 * time.Minute, 30 * time.Minute, 15 * time.Minute},
			{"a 10m window gets none", 15 * time.Minute, 10 * time.Minute, 0},
			{"a window of exactly the lead gets none", 15 * time.Minute, 15 * time.Minute, 0},
		} {
			t.Run(c.name, func(t *testing.T) {
				e := newEnv(t)
				mb := &mailbox{}
				w := mailWorker(t, e, mb, notify.Config{ExpiryWarning: c.lead})
				_, ends := approved(t, e, c.window)
				drain(t, w)
				for left := c.window; left > 0; left -= time.Minute {
					e.clock.Set(ends.Add(-left))
					drain(t, w)
					if n := len(warnings(mb)); (n == 1) != (c.when != 0 && left <= c.when) || n > 1 {
						t.Fatalf("with %s left: %d warnings", left, n)
					}
				}
			})
		}
	})
}

// TestTenantViewsNameNoProviderStaff: what the tenant's people see of a
// request (their e-mails, and webhooks) never names the engineer or the
// manager, even for a request the manager alone approved while the
// tenant's lockbox was off and later revoked; the provider's own people
// see who did what.
func TestTenantViewsNameNoProviderStaff(t *testing.T) {
	e := newEnv(t)
	secret := []byte("k")
	hook := startHook(t, e.clock.Now, secret, 0)
	mb := &mailbox{}
	w := mailWorker(t, e, mb, notify.Config{ManagerAddresses: []string{"support-leads@provider.example"},
		Webhooks: []notify.WebhookConfig{{URL: hook.URL, Secret: secret}}})
	provider := []string{"alice0", "mary@", "provider.example"}

	// Lockbox off: the manager's approval is final; then the manager
	// revokes. Every entry of it, rendered for the tenant.
	e.setLockbox(t, false)
	off := e.create(t, operator(0))
	e.act(t, off.ID, grants.ActionApprove, manager)
	e.act(t, off.ID, grants.ActionRevoke, manager)
	// Lockbox on: the tenant is asked (by e-mail), decides, and the
	// manager revokes.
	// The worker delivers while the tenant is asked: the "awaits your
	// decision" e-mails go out only while the request awaits it. What it
	// delivered is kept to be rendered below.
	var entries []redis.XMessage
	deliver := func() {
		xs, err := e.rdb.XRange(context.Background(), notify.OutboxKey("contoso"), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, xs...)
		drain(t, w)
	}
	e.setLockbox(t, true)
	on := e.create(t, operator(1))
	e.act(t, on.ID, grants.ActionApprove, manager)
	deliver()
	e.act(t, on.ID, grants.ActionApprove, adam)
	e.act(t, on.ID, grants.ActionRevoke, manager)
	deliver()

	if len(entries) != 7 {
		t.Fatalf("outbox = %d entries", len(entries))
	}
	for _, x := range entries {
		var ev notify.Event
		if err := json.Unmarshal([]byte(x.Values["event"].(string)), &ev); err != nil {
			t.Fatal(err)
		}
		for _, tmpl := range []notify.Template{notify.TemplatePendingCustomer, notify.TemplateAlreadyDecided,
			notify.TemplateNoLongerPending, notify.TemplateAccessEnded} {
			m, err := notify.Render(ev, tmpl, "gina@contoso.example")
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range provider {
				if strings.Contains(m.Subject+m.Body, p) {
					t.Errorf("%s rendered as %s for the tenant names %q:\n%s\n%s", ev.Kind, tmpl, p, m.Subject, m.Body)
				}
			}
		}
		b, err := notify.WebhookBody(ev)
		if err != nil {
			t.Fatal(err)
		}
		tv, _ := json.Marshal(notify.TenantView(ev))
		for _, p := range provider {
			if strings.Contains(string(b), p) || strings.Contains(string(tv), p) {
				t.Errorf("%s: tenant view names %q:\n%s\n%s", ev.Kind, p, b, tv)
			}
		}
	}

	for _, a := range mb.recipients() {
		if strings.HasSuffix(a, "@provider.example") {
			continue
		}
		for _, m := range mb.to(a) {
			for _, p := range provider {
				if strings.Contains(m.Subject+m.Body, p) {
					t.Errorf("e-mail to %s names %q:\n%s\n%s", a, p, m.Subject, m.Body)
				}
			}
		}
	}
	// eve: asked, told adam approved, told the manager revoked.
	if len(mb.to("adam@contoso.example")) == 0 || len(mb.to("eve@contoso.example")) != 3 {
		t.Errorf("tenant recipients: %v", mb.recipients())
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if len(hook.raw) != 7 {
		t.Fatalf("%d webhook deliveries, want 7", len(hook.raw))
	}
	actors := map[notify.Kind][]string{}
	for i, raw := range hook.raw {
		for _, p := range provider {
			if strings.Contains(raw, p) {
				t.Errorf("webhook names %q: %s", p, raw)
			}
		}
		actors[hook.bodies[i].Event] = append(actors[hook.bodies[i].Event], hook.bodies[i].Actor)
	}
	want := map[notify.Kind][]string{
		notify.KindCreated:         {"Microsoft Operator", "Microsoft Operator"},
		notify.KindApproved:        {"Microsoft Support", "adam@contoso.example"},
		notify.KindRevoked:         {"Microsoft Support", "Microsoft Support"},
		notify.KindPendingCustomer: {"Microsoft Support"},
	}
	if fmt.Sprint(actors) != fmt.Sprint(want) {
		t.Errorf("webhook actors = %v, want %v", actors, want)
	}
	// The provider's own people see who did what.
	if m := mb.to("alice0@provider.example"); len(m) != 2 || !strings.Contains(m[1].Body, "By:                      mary@provider.example") {
		t.Errorf("engineer's e-mails = %+v", m)
	}
	if m := mb.to("support-leads@provider.example"); len(m) != 2 || !strings.Contains(m[0].Body, "alice0@provider.example filed") {
		t.Errorf("managers' e-mails = %+v", m)
	}
}

// TestLegacyEntriesDeliveredOnce: entries an older version queued, one per
// audience, still reach their audience, and webhooks get each event once.
func TestLegacyEntriesDeliveredOnce(t *testing.T) {
	e := newEnv(t)
	r := e.create(t, operator(0))
	e.act(t, r.ID, grants.ActionApprove, manager)
	ctx := context.Background()
	cur, err := e.store.Get(ctx, manager.Principal, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Del(ctx, notify.OutboxKey("contoso")).Err(); err != nil {
		t.Fatal(err)
	}
	approval := cur.History[1]
	for _, kind := range []string{"pending_customer", "requester_update"} {
		b, _ := json.Marshal(map[string]any{"kind": kind, "request": cur, "event": approval})
		e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: notify.OutboxKey("contoso"), Values: []any{"event", b}})
	}
	secret := []byte("k")
	hook := startHook(t, e.clock.Now, secret, 0)
	mb := &mailbox{}
	drain(t, mailWorker(t, e, mb, notify.Config{Webhooks: []notify.WebhookConfig{{URL: hook.URL, Secret: secret}}}))
	want := []string{"adam@contoso.example", "admin@contoso.example", "alice0@provider.example", "eve@contoso.example", "security@contoso.example"}
	if got := mb.recipients(); !slices.Equal(got, want) {
		t.Errorf("recipients = %v", got)
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if len(hook.bodies) != 1 || hook.bodies[0].Event != notify.KindPendingCustomer {
		t.Errorf("webhooks = %+v", hook.bodies)
	}
}

// TestMessagesListActivitiesAndShortDurations: every e-mail names the
// requested activities, or all read activities, and the duration as people
// write it.
func TestMessagesListActivitiesAndShortDurations(t *testing.T) {
	at := t0.Add(time.Hour)
	exp := t0.Add(3 * time.Hour)
	base := grants.Request{ID: "0193a5b0-0000-7000-8000-000000000001", Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1",
		Reason: "r", Requester: "alice@provider.example", State: grants.StateApproved, DecideBy: &at, ExpiresAt: &exp}
	for _, c := range []struct {
		d    time.Duration
		acts []string
		want string
	}{
		{5 * time.Hour, nil, "Requested activities:    all read activities\nRequested duration:      5h\n"},
		{90 * time.Minute, []string{"Get-Mailbox"}, "Requested activities:    Get-Mailbox\nRequested duration:      1h30m\n"},
		{45 * time.Minute, []string{"Get-Mailbox", "Get-InboxRule"}, "Requested activities:    Get-Mailbox, Get-InboxRule\nRequested duration:      45m\n"},
	} {
		r := base
		r.Duration, r.Activities = grants.Duration(c.d), c.acts
		ev := notify.Event{Kind: notify.KindApproved, Request: r, Event: grants.Event{
			Action: grants.ActionApprove, Actor: "adam@contoso.example", ActorKind: grants.KindTenant,
			From: grants.StatePendingCustomer, To: grants.StateApproved, At: t0}}
		for _, tmpl := range notify.Templates {
			m, err := notify.Render(ev, tmpl, "x@contoso.example")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(m.Body, c.want) || strings.Contains(m.Body+m.Subject, "0m0s") {
				t.Errorf("%s for %s %v:\n%s", tmpl, c.d, c.acts, m.Body)
			}
		}
		if s := notify.Summary(ev); !strings.Contains(s, grants.Duration(c.d).String()) {
			t.Errorf("summary %q", s)
		}
	}
}

// setReads counts the reads of one Redis set (SMEMBERS of key), alone or
// in a pipeline.
type setReads struct {
	key string
	n   atomic.Int64
}

func (h *setReads) count(cmds ...redis.Cmder) {
	for _, c := range cmds {
		if redistest.Command("smembers", h.key)(c) {
			h.n.Add(1)
		}
	}
}

func (h *setReads) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *setReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, c redis.Cmder) error { h.count(c); return next(ctx, c) }
}
func (h *setReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.count(cmds...); return next(ctx, cmds) }
}

// TestApproverSetReadOncePerEvent: the worker reads a tenant's approver
// set once for the recipients of an event, however many approvers it
// holds. Reading it again for each approver it lists to ask whether they
// still count made an event's cost the square of their number: a global
// admin assigning a few thousand approvers (any user@ the tenant's
// domains) turned each of the tenant's notifications into gigabytes read
// from the Redis every tenant's calls share.
func TestApproverSetReadOncePerEvent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const assigned = 40
	for i := range assigned {
		if err := e.tenants.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", fmt.Sprintf("user%02d@contoso.example", i)); err != nil {
			t.Fatal(err)
		}
	}
	r := e.create(t, operator(0))
	e.act(t, r.ID, grants.ActionApprove, manager)

	rdb := redistest.Clone(t, e.rdb)
	reads := &setReads{key: keys.Approvers("contoso")}
	rdb.AddHook(reads)
	mb := &mailbox{}
	drain(t, mailWorker(t, e, mb, notify.Config{Redis: rdb}))

	// adam, eve and the forty, each mailed that the request awaits them.
	for _, a := range []string{"adam@contoso.example", "user00@contoso.example", fmt.Sprintf("user%02d@contoso.example", assigned-1)} {
		if len(mb.to(a)) != 1 {
			t.Fatalf("%s got %d messages; recipients %v", a, len(mb.to(a)), mb.recipients())
		}
	}
	// Two events (created, pending_customer), at most one read each.
	if n := reads.n.Load(); n > 2 {
		t.Fatalf("the approver set of %d was read %d times for two events", assigned+2, n)
	}
}
