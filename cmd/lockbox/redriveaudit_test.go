package main

import (
	"context"
	"encoding/json"
	"os"
	"os/user"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/notify"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestNotifyRedriveIsAudited: re-driving a dead letter is a provider
// action on a tenant's notifications, and it left no audit record of who
// re-drove what. Each letter re-driven writes Resume-CustomerLockboxNotification
// to the tenant's log with the re-drive: the account that ran the command
// (os:user@host) in the provider-only ProviderUserId, "Microsoft Support" in
// every field the tenant reads.
func TestNotifyRedriveIsAudited(t *testing.T) {
	url := redistest.URL(t)
	rdb := redis.NewClient(mustParseURL(t, url))
	defer rdb.Close()
	ctx := context.Background()
	tenanttest.Onboard(t, tenants.NewStore(rdb, audit.NewLog(rdb, nil), nil), "contoso")
	env := map[string]string{"LOCKBOX_REDIS_URL": url}
	before, err := rdb.XLen(ctx, keys.Audit("contoso")).Result()
	if err != nil {
		t.Fatal(err)
	}
	one := deadLetter(t, rdb, "contoso", askEvent, "mail:eve@contoso.example,mail:alice@provider.example", "no such user")
	if r := runLockbox(t, env, "notify", "redrive", "--tenant", "contoso", "--id", one); r.code != 0 {
		t.Fatalf("redrive: %+v", r)
	}
	msgs, err := rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(msgs)) != before+1 {
		t.Fatalf("%d audit records written by the re-drive, want 1", int64(len(msgs))-before)
	}
	var rec record.Record
	if err := json.Unmarshal([]byte(msgs[len(msgs)-1].Values["r"].(string)), &rec); err != nil {
		t.Fatal(err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	by := "os:" + u.Username + "@" + host
	if rec.Operation != "Resume-CustomerLockboxNotification" || rec.UserId != record.ProviderUserID ||
		rec.UserType != record.UserTypeDcAdmin || rec.ProviderUserId != by || rec.ObjectId != one ||
		rec.LockboxRequestId != "r-1" || rec.LockboxTenant != "contoso" {
		t.Errorf("record %+v; want %s's re-drive of %s", rec, by, one)
	}
	tv, err := json.Marshal(rec.TenantView())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{by, "alice@provider.example", "provider.example"} {
		if strings.Contains(string(tv), s) {
			t.Errorf("the tenant's view of the record shows %q: %s", s, tv)
		}
	}
}

// TestNotifyRedriveNamesAnUnverifiedAccountAndAReason: the command holds
// Redis credentials, not a token, so the account it names is the one the
// operating system says ran it, which nothing verified; its record named
// it "user@host", as records name the verified identities of the API and
// the admin center, and had no room for why the letters were put back.
// ProviderUserId now says "os:user@host", and --reason is each record's
// Comment. A reason that would break a line of the log or of a CSV export
// (a control character) is refused before anything connects, and nothing
// is re-driven.
func TestNotifyRedriveNamesAnUnverifiedAccountAndAReason(t *testing.T) {
	url := redistest.URL(t)
	rdb := redis.NewClient(mustParseURL(t, url))
	defer rdb.Close()
	ctx := context.Background()
	tenanttest.Onboard(t, tenants.NewStore(rdb, audit.NewLog(rdb, nil), nil), "contoso")
	env := map[string]string{"LOCKBOX_REDIS_URL": url}
	one := deadLetter(t, rdb, "contoso", askEvent, "mail:eve@contoso.example", "no such user")

	bad := runLockbox(t, env, "notify", "redrive", "--tenant", "contoso", "--id", one, "--reason", "INC-4711\nBcc: x")
	if bad.code != 2 || !strings.Contains(bad.stderr, "--reason") {
		t.Errorf("a reason with a line break: %+v; want a usage error naming --reason", bad)
	}
	if n, err := rdb.XLen(ctx, notify.DeadKey("contoso")).Result(); err != nil || n != 1 {
		t.Fatalf("dead letters after a refused reason: %d, %v; want the letter left", n, err)
	}

	const reason = "INC-4711: relay credentials rotated"
	if r := runLockbox(t, env, "notify", "redrive", "--tenant", "contoso", "--id", one, "--reason", reason); r.code != 0 {
		t.Fatalf("redrive: %+v", r)
	}
	msgs, err := rdb.XRevRangeN(ctx, keys.Audit("contoso"), "+", "-", 1).Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("audit log: %v, %v", msgs, err)
	}
	var rec record.Record
	if err := json.Unmarshal([]byte(msgs[0].Values["r"].(string)), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Operation != notify.OpRedrive || !strings.HasPrefix(rec.ProviderUserId, "os:") || !strings.Contains(rec.ProviderUserId, "@") {
		t.Errorf("record %s by %q; want the re-drive by os:<user>@<host>", rec.Operation, rec.ProviderUserId)
	}
	if rec.Comment != reason {
		t.Errorf("record's Comment %q, want the reason %q", rec.Comment, reason)
	}
	if tv := rec.TenantView(); tv.ProviderUserId != "" || tv.Comment != reason {
		t.Errorf("the tenant's view: ProviderUserId %q, Comment %q; want none, and the reason", tv.ProviderUserId, tv.Comment)
	}
}
