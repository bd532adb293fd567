package cli

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
)

// TestPendingListKeepsTheServersOrderWithinAMillisecond: against a real
// Lockbox whose clock stands still, so that every request is created in
// one millisecond, "get requests --state pending" (two listings, merged)
// prints the requests in the order one listing of the server has them.
// Within a millisecond the server orders the provider-wide listing by
// "tenant/id", and '-' sorts before '/': newest first, contoso's requests
// come before contoso-eu's, where comparing the tenants alone would put
// contoso-eu's first.
func TestPendingListKeepsTheServersOrderWithinAMillisecond(t *testing.T) {
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Millisecond))
	addr, tokens := startLockboxAt(t, t.Cleanup, clk.Now)
	ctx := context.Background()
	admin, err := client.New(addr, tokens["lockbox-admin"])
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"contoso-eu", "contoso-a"} {
		if _, err := admin.Onboard(ctx, wire.Onboarding{ID: id, DisplayName: id, Domains: []string{tenanttest.Domain(id)}, GlobalAdmins: []string{"admin@" + tenanttest.Domain(id)}}); err != nil {
			t.Fatalf("onboard %s: %v", id, err)
		}
	}
	op, err := client.New(addr, tokens["operator"])
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := client.New(addr, tokens["manager"])
	if err != nil {
		t.Fatal(err)
	}
	// A request of each tenant in each pending state: the two listings
	// of --state pending each hold one of every tenant.
	for _, tenant := range []string{"contoso", "contoso-eu", "contoso-a"} {
		for _, service := range []string{"exchange", "sharepoint"} {
			r, err := op.CreateRequest(ctx, wire.CreateRequest{Tenant: tenant, Service: service, ServiceRequest: "SR-1",
				Reason: "repair", Duration: wire.Duration(time.Hour)})
			if err != nil {
				t.Fatalf("file %s %s: %v", tenant, service, err)
			}
			if service == "sharepoint" {
				if _, err := mgr.Approve(ctx, r.ID, ""); err != nil {
					t.Fatalf("approve %s: %v", r.ID, err)
				}
			}
		}
	}

	env := map[string]string{EnvAddr: addr, EnvToken: tokens["manager"], EnvConfigDir: t.TempDir()}
	ids := func(args ...string) []string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := Run(ctx, append([]string{"get", "requests", "-o", "id"}, args...), func(k string) string { return env[k] }, &stdout, &stderr); code != exitOK {
			t.Fatalf("%q: exit %d\nstderr: %s", args, code, stderr.String())
		}
		return strings.Fields(stdout.String())
	}
	// Every request is pending: one listing has them all, in the
	// server's order.
	want := ids()
	if len(want) != 6 {
		t.Fatalf("one listing has %d requests, want 6: %q", len(want), want)
	}
	for _, args := range [][]string{{"--state", "pending"}, {"--state", "pending", "--all"}} {
		if got := ids(args...); !slices.Equal(got, want) {
			t.Errorf("%q:\n%q\nwant the server's order\n%q", args, got, want)
		}
	}
}
