package notify_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/notify"
)

// TestAddressWithoutMailDomainIsNotMailed: a tenant's address whose domain
// is no mail domain on the Internet (an address literal, an IP address, a
// single name that the relay's resolver completes with the provider's own
// search domains), stored before the tenant's settings refused one, is
// never handed to the provider's mail relay, which would deliver to that
// host from inside the provider's network. Its message is a dead letter
// after its first attempt, saying what to fix; the tenant's other
// recipients are asked as usual.
func TestAddressWithoutMailDomainIsNotMailed(t *testing.T) {
	bad := []string{"soc@[127.0.0.1]", "ops@localhost", "it@169.254.169.254"}
	e := newEnv(t)
	storeNotificationAddresses(t, e, append([]string{"security@contoso.example"}, bad...)...)
	srv := startSMTP(t)
	reg := prometheus.NewRegistry()
	w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", Registerer: reg,
		SMTP: &notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example", StartTLS: notify.StartTLSNone, Timeout: 10 * time.Second}})
	r := e.create(t, operator(0))
	e.act(t, r.ID, grants.ActionApprove, manager) // the tenant is asked
	ctx := context.Background()
	for range 3 {
		if _, err := w.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Hour)
	}
	var asked []string
	for _, m := range srv.messages() {
		if slices.Contains(bad, m.To) {
			t.Errorf("mailed %s through the relay: %q", m.To, m.Subject)
		}
		if strings.Contains(m.Subject, "awaits your decision") {
			asked = append(asked, m.To)
		}
	}
	slices.Sort(asked)
	if !slices.Equal(asked, tenantAudience) {
		t.Errorf("asked %v, want %v", asked, tenantAudience)
	}
	if n, err := w.Depth(ctx); err != nil || n != 0 {
		t.Errorf("outbox depth = %d, %v; want nothing left to retry", n, err)
	}
	dead, err := e.rdb.XRange(ctx, notify.DeadKey("contoso"), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var gone []string
	for _, d := range dead {
		if d.Values["attempts"] != "1" || !strings.Contains(d.Values["error"].(string), "mail domain") {
			t.Errorf("dead letter %v: want 1 attempt and an error saying the address names no mail domain", d.Values)
		}
		gone = append(gone, d.Values["recipients"].(string))
	}
	slices.Sort(gone)
	want := []string{"mail:" + bad[2], "mail:" + bad[1], "mail:" + bad[0]}
	slices.Sort(want)
	if !slices.Equal(gone, want) {
		t.Errorf("dead letters for %v, want %v", gone, want)
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "smtp", "dead")); got != float64(len(bad)) {
		t.Errorf("smtp dead = %v, want %d", got, len(bad))
	}
}
