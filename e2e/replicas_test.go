package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/server"
)

// gaugeOf reads the value of the unlabelled gauge name from reg.
func gaugeOf(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// waitFor polls cond until it holds, failing t after patience (which only
// bounds a failure).
func waitFor(t *testing.T, what string, patience time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, patience)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// siemIDs reads the SIEM sink file of w and returns how many lines have
// each record Id, and how many lines are of operation op.
func siemIDs(t *testing.T, w *world, op string) (map[string]int, int) {
	t.Helper()
	b, err := os.ReadFile(w.siem)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	ids, n := map[string]int{}, 0
	for line := range strings.Lines(string(b)) {
		var rec record.Record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			continue // a line still being written
		}
		ids[rec.Id]++
		if rec.Operation == op {
			n++
		}
	}
	return ids, n
}

// TestReplicasAfterRedisRestarts: the one Redis of two replicas is
// restarted (killed and started again on its append-only file, as its
// supervisor would), and neither replica is. Both serve the grant again
// by themselves, and once each has subscribed again, a revocation made on
// one is refused by the other as soon as its event arrives, with the
// caches' clock standing still: the invalidation subscription came back,
// not only the age limit. The jobs carry on too: the revocation's e-mail
// goes out and its record reaches the SIEM sink, and no record from before
// the restart is forwarded again.
func TestReplicasAfterRedisRestarts(t *testing.T) {
	rs := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	w := startOn(t, map[string]string{"LOCKBOX_REDIS_URL": rs.URL}, nil)
	b := w.replica(t, nil, "LOCKBOX_SERVE", "proxy")
	const path = "/exchange/tenants/contoso/mailboxes"
	const subscribed = "lockbox_proxy_cache_events_subscribed"

	r := w.create("operator")
	w.ok("manager", nil, "request", "approve", r.ID)
	w.ok("admin", nil, "request", "approve", r.ID)
	both := map[string]*world{"A": w, "B": b}
	for name, p := range both {
		if status, code := p.judged("operator", path); status != 200 {
			t.Fatalf("replica %s before the restart: %d %s", name, status, code)
		}
	}

	// Every record of contoso's from before the restart has reached the
	// SIEM sink and been acknowledged: none is in flight as Redis dies,
	// so none may be forwarded again after it.
	rdb := goredis.NewClient(mustParse(t, rs.URL))
	defer rdb.Close()
	ctx := context.Background()
	stream := keys.Audit("contoso")
	var before map[string]int
	waitFor(t, "contoso's records reach the SIEM sink", eventPatience, func() bool {
		before, _ = siemIDs(t, w, "")
		for _, id := range recordsOf(t, rs.URL, "contoso", "") {
			if before[id] == 0 {
				return false
			}
		}
		p, err := rdb.XPending(ctx, stream, audit.SIEMGroup).Result()
		return err == nil && p.Count == 0
	})
	rs.Stop()
	for name, p := range both {
		waitFor(t, "replica "+name+" sees its subscription lost", eventPatience, func() bool {
			return gaugeOf(t, p.srv.Registry, subscribed) == 0
		})
	}
	if err := rs.Restart(); err != nil {
		t.Fatal(err)
	}
	for name, p := range both {
		waitFor(t, "replica "+name+" subscribes again", eventPatience, func() bool {
			return gaugeOf(t, p.srv.Registry, subscribed) == 1
		})
		if status, code := p.judged("operator", path); status != 200 {
			t.Fatalf("replica %s after the restart: %d %s", name, status, code)
		}
	}
	// B's cache holds the grant (read after it subscribed again); only
	// the revocation's event can make it refuse while the clock stands
	// still.
	w.ok("admin", nil, "request", "revoke", r.ID, "--comment", "done")
	b.refusedOnEvent(t, "operator", path, "replica B after Redis restarted")

	mailTo(t, w.mail, "alice@provider.example", r.ID, "was revoked")
	waitFor(t, "the revocation reaches the SIEM sink", eventPatience, func() bool {
		_, n := siemIDs(t, w, record.OpRevokeAccess)
		return n >= 1
	})
	after, n := siemIDs(t, w, record.OpRevokeAccess)
	if n != 1 {
		t.Errorf("the revocation is in the SIEM sink %d times", n)
	}
	for id, k := range after {
		if k != 1 {
			t.Errorf("record %s is in the SIEM sink %d times (%d before the restart)", id, k, before[id])
		}
	}
}

// TestReplicasSettleExpiryOnce: two replicas run the background jobs (each
// with a SIEM consumer name and a mail directory of its own) when two
// requests awaiting the tenant pass their 12 hours at the same instant:
// both sweeps find them due at once. Each request is expired once (one
// history event, one audit record), its engineer is told once, and each
// record reaches the SIEM sink once.
func TestReplicasSettleExpiryOnce(t *testing.T) {
	rs := redistest.StartServer(t)
	w := startOn(t, map[string]string{"LOCKBOX_REDIS_URL": rs.URL}, nil, "LOCKBOX_SIEM_CONSUMER", "a")
	bMail := t.TempDir()
	w.replica(t, func(o *server.Options) { o.DevMailDir = bMail }, "LOCKBOX_SIEM_CONSUMER", "b")

	var reqs []grants.Request
	for _, op := range []string{"operator", "operator2"} {
		var r grants.Request
		w.ok(op, &r, "request", "create", "--tenant", "contoso", "--service", "exchange",
			"--service-request", "SR-7", "--reason", "r", "--duration", "1h")
		w.ok("manager", nil, "request", "approve", r.ID)
		reqs = append(reqs, r)
	}
	w.clock.Advance(12 * time.Hour)

	rdb := goredis.NewClient(mustParse(t, rs.URL))
	defer rdb.Close()
	ctx := context.Background()
	// Both replicas' sweeps and deliveries have run once the outbox is
	// empty: a delivered entry is removed.
	waitFor(t, "the expiries are settled and their e-mails delivered", eventPatience, func() bool {
		for _, r := range reqs {
			if w.state("manager", r.ID) != grants.StateExpired {
				return false
			}
		}
		n, err := rdb.XLen(ctx, keys.Outbox("contoso")).Result()
		return err == nil && n == 0
	})
	for i, r := range reqs {
		var got grants.Request
		w.ok("manager", &got, "request", "show", r.ID)
		expiries := 0
		for _, ev := range got.History {
			if ev.To == grants.StateExpired {
				expiries++
			}
		}
		if expiries != 1 {
			t.Errorf("request %d: %d expiries in its history: %+v", i, expiries, got.History)
		}
		to := users[[]string{"operator", "operator2"}[i]].Subject
		var mails []string
		for _, dir := range []string{w.mail, bMail} {
			files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
			for _, f := range files {
				b, _ := os.ReadFile(f)
				if strings.Contains(string(b), "\r\nTo: "+to+"\r\n") && strings.Contains(string(b), r.ID) &&
					strings.Contains(string(b), "expired without a decision") {
					mails = append(mails, f)
				}
			}
		}
		if len(mails) != 1 {
			t.Errorf("request %d: its engineer was told of the expiry %d times: %q", i, len(mails), mails)
		}
	}
	expired := recordsOf(t, rs.URL, "contoso", record.OpExpireRequest)
	if len(expired) != len(reqs) {
		t.Errorf("%d expiry records for %d requests", len(expired), len(reqs))
	}
	stream := recordsOf(t, rs.URL, "contoso", "")
	waitFor(t, "contoso's records reach the SIEM sink", eventPatience, func() bool {
		ids, _ := siemIDs(t, w, "")
		for _, id := range stream {
			if ids[id] == 0 {
				return false
			}
		}
		p, err := rdb.XPending(ctx, keys.Audit("contoso"), audit.SIEMGroup).Result()
		return err == nil && p.Count == 0
	})
	ids, _ := siemIDs(t, w, "")
	for _, id := range stream {
		if ids[id] != 1 {
			t.Errorf("record %s is in the SIEM sink %d times", id, ids[id])
		}
	}
}

// TestApprovedOnOneReplicaUsedOnAnother: the engineer's call reaches a
// proxy replica before the approval (refused, no_grant, and that answer
// cached), then the request is approved through another replica, and the
// engineer calls the first one again at once. It lets the call through as
// soon as the approval's event arrives, with the caches' clock standing
// still: the answer "no grant" it cached is dropped like a grant is, not
// served for the rest of its second.
func TestApprovedOnOneReplicaUsedOnAnother(t *testing.T) {
	w := start(t, "LOCKBOX_SERVE", "api,jobs")
	b := w.replica(t, nil, "LOCKBOX_SERVE", "proxy")
	const path = "/exchange/tenants/contoso/mailboxes"

	r := w.create("operator")
	w.ok("manager", nil, "request", "approve", r.ID)
	if status, code := b.judged("operator", path); status != 403 || code != "no_grant" {
		t.Fatalf("before the tenant's approval: %d %s", status, code)
	}
	w.ok("admin", nil, "request", "approve", r.ID)
	at, start := w.clock.Now(), time.Now()
	for {
		status, code := b.judged("operator", path)
		if now := w.clock.Now(); !now.Equal(at) {
			t.Fatalf("the clock moved from %s to %s while waiting for the event", at, now)
		}
		if status == 200 {
			t.Logf("let through %s after the approval (wall time), the clock stopped", time.Since(start))
			break
		}
		if status != 403 || code != "no_grant" {
			t.Fatalf("after the approval: %d %s", status, code)
		}
		if time.Since(start) > eventPatience {
			t.Fatalf("still refused %s after the approval with the clock stopped: the approval's event never emptied the replica's cache", eventPatience)
		}
		time.Sleep(time.Millisecond)
	}
	// The approval's record and the call's are both in contoso's log.
	if ids := recordsOf(t, w.redis["LOCKBOX_REDIS_URL"], "contoso", "Get-Mailbox"); len(ids) != 1 {
		t.Fatalf("Get-Mailbox records: %q, want the one call let through", ids)
	}
}
