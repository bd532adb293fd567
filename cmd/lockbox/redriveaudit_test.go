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
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestNotifyRedriveIsAudited: re-driving a dead letter is a provider
// action on a tenant's notifications, and it left no audit record of who
// re-drove what. Each letter re-driven writes Resume-CustomerLockboxNotification
// to the tenant's log with the re-drive: the account that ran the command
// (user@host) in the provider-only ProviderUserId, "Microsoft Support" in
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
	by := u.Username + "@" + host
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
