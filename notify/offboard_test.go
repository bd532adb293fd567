package notify_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/notify"
)

// TestOffboardingToldAsTheProvidersDoing: when offboarding ends a tenant's
// requests, the tenant's people who were asked about them hear, once per
// request, that the provider ended each one ("Microsoft Support"), never
// that its engineer withdrew it ("Microsoft Operator"), and why: the
// provider offboarded the tenant. Webhooks carry the same label and the
// cause. A request the tenant was never asked about (awaiting the
// manager) mails the tenant nothing; its engineer hears why too.
func TestOffboardingToldAsTheProvidersDoing(t *testing.T) {
	e := newEnv(t)
	mb := &mailbox{}
	secret := []byte("k")
	hook := startHook(t, e.clock.Now, secret, 0)
	w := mailWorker(t, e, mb, notify.Config{Webhooks: []notify.WebhookConfig{{URL: hook.URL, Secret: secret}}})
	asked := e.create(t, operator(0))
	e.act(t, asked.ID, grants.ActionApprove, manager)
	granted := e.create(t, operator(1))
	e.act(t, granted.ID, grants.ActionApprove, manager)
	// The tenant is asked about both before adam approves one.
	drain(t, w)
	e.act(t, granted.ID, grants.ActionApprove, adam)
	atManager := e.create(t, operator(2))
	drain(t, w)
	mb.reset()
	hook.mu.Lock()
	hook.bodies, hook.raw = nil, nil
	hook.mu.Unlock()

	e.clock.Advance(time.Minute)
	if _, err := e.tenants.Offboard(context.Background(), tenanttest.Admin, "192.0.2.9", "contoso", "contract ended"); err != nil {
		t.Fatal(err)
	}
	drain(t, w)

	for _, a := range tenantAudience {
		var subjects []string
		for _, m := range mb.to(a) {
			subjects = append(subjects, m.Subject)
			if strings.Contains(m.Body, atManager.ID) {
				t.Errorf("%s told of %s, which never awaited the tenant", a, atManager.ID)
			}
			for _, p := range append(providerNames, "Microsoft Operator", "lara") {
				if strings.Contains(m.Subject+m.Body, p) {
					t.Errorf("e-mail to %s names %q:\n%s\n%s", a, p, m.Subject, m.Body)
				}
			}
			if !strings.Contains(m.Body, "by Microsoft Support at 2026-11-23 09:01 UTC") {
				t.Errorf("e-mail to %s does not say the provider ended it:\n%s", a, m.Body)
			}
			if !strings.Contains(m.Body, "\n"+offboardedWhy+"\n") {
				t.Errorf("e-mail to %s does not say why:\n%s", a, m.Body)
			}
		}
		slices.Sort(subjects)
		want := []string{
			"Lockbox request " + asked.ID + " no longer needs your decision (contoso, exchange)",
			"Lockbox request " + granted.ID + ": access ended early (contoso, exchange)",
		}
		slices.Sort(want)
		if !slices.Equal(subjects, want) {
			t.Errorf("%s got\n %q\nwant\n %q", a, subjects, want)
		}
	}

	if got := mb.to("alice2@provider.example"); len(got) != 1 || !strings.Contains(got[0].Body, grants.OffboardComment) {
		t.Errorf("the engineer of %s got %+v", atManager.ID, got)
	}

	hook.mu.Lock()
	defer hook.mu.Unlock()
	ended := map[string]notify.WebhookPayload{}
	raw := map[string]string{}
	for i, p := range hook.bodies {
		if p.State == grants.StateCanceled || p.State == grants.StateRevoked {
			if _, ok := ended[p.RequestID]; ok {
				t.Errorf("webhook told twice of the end of %s", p.RequestID)
			}
			ended[p.RequestID], raw[p.RequestID] = p, hook.raw[i]
		}
	}
	if len(ended) != 3 {
		t.Fatalf("webhooks told of %d ended requests, want 3: %+v", len(ended), hook.bodies)
	}
	for id, p := range ended {
		if p.Actor != "Microsoft Support" || !strings.HasSuffix(p.Summary, "by Microsoft Support: the tenant was offboarded") ||
			!strings.Contains(raw[id], `"cause":"tenant_offboarded"`) {
			t.Errorf("webhook of the end of %s: %s", id, raw[id])
		}
	}
}

// offboardedWhy is the line the tenant's e-mails give as why offboarding
// ended a request.
const offboardedWhy = "The service provider offboarded tenant contoso: Lockbox ended all of its access and open requests."
