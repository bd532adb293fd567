package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// TestAuditVerifySaysWhereRetentionCutTheChain: once retention has
// removed a tenant's oldest records, the chain verifies from its anchor,
// and the answer says so: trimmed_through names the last record removed,
// so "ok" over the records after it is not read as every record since
// the tenant was onboarded. The answer said only ok and how many records,
// as for a log nothing was ever removed from. A log retention never cut
// has no trimmed_through.
func TestAuditVerifySaysWhereRetentionCutTheChain(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	log := audit.NewLog(e.rdb, e.clk.Now)
	add := func(n int) {
		for range n {
			e.clk.Advance(time.Second)
			if _, err := log.Append(ctx, record.Record{Operation: record.OpSetSettings, LockboxTenant: "contoso", Workload: record.WorkloadLockbox,
				RecordType: record.RecordTypeExchangeAdmin, UserType: record.UserTypeAdmin, UserId: "gina@contoso.example"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(3)
	v := decode[map[string]any](t, e.do(auditor, "GET", "/v1/audit/verify?tenant=contoso", nil), 200)
	if v["ok"] != true {
		t.Fatalf("verification of the whole log = %v", v)
	}
	if got, ok := v["trimmed_through"]; ok {
		t.Fatalf("a log retention never cut: trimmed_through %v", got)
	}

	cut := e.clk.Now().Add(time.Second) // everything so far
	e.clk.Advance(time.Hour)
	add(2)
	msgs, err := e.rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	last := msgs[len(msgs)-3].ID // the newest record before the cut
	if n, err := log.Trim(ctx, "contoso", cut); err != nil || n != len(msgs)-2 {
		t.Fatalf("trim: %d removed, %v; want %d", n, err, len(msgs)-2)
	}
	for _, who := range []struct {
		name string
		p    user
	}{{"the provider's auditor", auditor}, {"the tenant's admin", contosoAdmin}} {
		v := decode[map[string]any](t, e.do(who.p, "GET", "/v1/audit/verify?tenant=contoso", nil), 200)
		if v["ok"] != true || v["records"] != float64(2) || v["trimmed_through"] != last {
			t.Errorf("%s: verification after retention = %v; want ok, 2 records, trimmed_through %s", who.name, v, last)
		}
	}
}
