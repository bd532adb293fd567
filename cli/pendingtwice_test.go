package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/internal/clock"
)

// TestPendingListShowsARequestOnce: "get requests --state pending" is two
// listings, one of each pending state, read page after page. A request
// the first listing has read that a manager approves before the second
// listing reads past it is in both: lockboxctl printed it twice, and a
// script acting on each id it printed acted on that request twice. Each
// request is printed once.
//
// The approval is made, against a real Lockbox, just before lockboxctl's
// n-th read of the pending_customer listing reaches the server, so the
// interleaving is the same on every run.
func TestPendingListShowsARequestOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		// before is the read of pending_customer (1 for the first) the
		// approval comes just before.
		before int
	}{
		// A page of each listing, merged: W is in the first
		// (pending_manager), then in the second (pending_customer).
		{"one page", []string{"--limit", "10"}, 1},
		// Every page, a request a page: the second listing has read b1,
		// and reads on after it once b1 is printed.
		{"every page", []string{"--all", "--limit", "1"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
			addr, tokens := startLockboxAt(t, t.Cleanup, clk.Now)
			ctx := context.Background()
			op, err := client.New(addr, tokens["operator"])
			if err != nil {
				t.Fatal(err)
			}
			mgr, err := client.New(addr, tokens["manager"])
			if err != nil {
				t.Fatal(err)
			}
			file := func(tenant, service string) wire.Request {
				t.Helper()
				clk.Advance(time.Second)
				r, err := op.CreateRequest(ctx, wire.CreateRequest{Tenant: tenant, Service: service, ServiceRequest: "SR-1",
					Reason: "repair", Duration: wire.Duration(time.Hour)})
				if err != nil {
					t.Fatalf("file %s %s: %v", tenant, service, err)
				}
				return r
			}
			approve := func(id string) {
				t.Helper()
				if _, err := mgr.Approve(ctx, id, ""); err != nil {
					t.Fatalf("approve %s: %v", id, err)
				}
			}
			// Oldest first: b2 awaits the tenant, W the manager, b1 the
			// tenant.
			b2 := file("contoso", "exchange")
			approve(b2.ID)
			w := file("contoso", "sharepoint")
			b1 := file("fabrikam", "exchange")
			approve(b1.ID)

			// In front of the API: approves W before the chosen read.
			target, err := url.Parse(addr)
			if err != nil {
				t.Fatal(err)
			}
			rp := httputil.NewSingleHostReverseProxy(target)
			var mu sync.Mutex
			reads, approved := 0, false
			front := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet && r.URL.Path == "/v1/requests" && r.URL.Query().Get("state") == "pending_customer" {
					mu.Lock()
					if reads++; reads == tc.before && !approved {
						approved = true
						if _, err := mgr.Approve(r.Context(), w.ID, ""); err != nil {
							t.Errorf("approve W: %v", err)
						}
					}
					mu.Unlock()
				}
				rp.ServeHTTP(rw, r)
			}))
			t.Cleanup(front.Close)

			env := map[string]string{EnvAddr: front.URL, EnvToken: tokens["manager"], EnvConfigDir: t.TempDir()}
			var stdout, stderr bytes.Buffer
			args := append([]string{"get", "requests", "--state", "pending", "-o", "id"}, tc.args...)
			if code := Run(ctx, args, func(k string) string { return env[k] }, &stdout, &stderr); code != exitOK {
				t.Fatalf("%q: exit %d\nstderr: %s", args, code, stderr.String())
			}
			mu.Lock()
			if !approved {
				t.Fatalf("W was not approved while listing: %d reads of pending_customer", reads)
			}
			mu.Unlock()
			got := strings.Fields(stdout.String())
			want := []string{b1.ID, w.ID, b2.ID}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("%q printed\n%q\nwant b1, W, b2 once each\n%q", args, got, want)
			}
		})
	}
}
