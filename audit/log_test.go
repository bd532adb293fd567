package audit_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// registryReads counts the commands that read a tenant registry entry.
type registryReads struct{ n atomic.Int64 }

func (h *registryReads) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *registryReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "get" && len(cmd.Args()) > 1 && strings.HasSuffix(cmd.Args()[1].(string), "}:tenant") {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *registryReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestOrganizationIdFromTheRegistry: a record's OrganizationId is its
// tenant's GUID, read from the registry once per tenant and process (the
// proxy's hot path gains no Redis round trip per call), and a tenant
// without a registry entry gets no record at all.
func TestOrganizationIdFromTheRegistry(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	reads := &registryReads{}
	rdb.AddHook(reads)
	log := audit.NewLog(rdb, clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)).Now)
	onboard(t, rdb, "contoso")
	rec := record.Record{Operation: "Get-Mailbox", LockboxTenant: "contoso", RecordType: record.RecordTypeDataCenterSecurityCmdlet,
		UserType: record.UserTypeDcAdmin, UserId: record.OperatorUserID, Workload: "exchange"}
	for range 5 {
		got, err := log.Append(ctx, rec)
		if err != nil {
			t.Fatal(err)
		}
		if got.OrganizationId != orgID("contoso") || got.LockboxTenant != "contoso" || got.UserKey != record.OperatorUserID || got.Version != 1 {
			t.Fatalf("appended %+v", got)
		}
	}
	if n := reads.n.Load(); n != 1 {
		t.Errorf("the registry was read %d times for 5 records of one tenant, want once", n)
	}

	// Not onboarded: refused, nothing written.
	unknown := rec
	unknown.LockboxTenant = "northwind"
	if _, err := log.Append(ctx, unknown); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("record of a tenant without a registry entry: %v", err)
	}
	if n := rdb.XLen(ctx, keys.Audit("northwind")).Val(); n != 0 {
		t.Fatalf("%d records written for a tenant that is not onboarded", n)
	}
	// The writer may not name another GUID than a GUID, nor leave out
	// what the schema requires.
	for name, mut := range map[string]func(*record.Record){
		"short name as OrganizationId": func(r *record.Record) { r.OrganizationId = "contoso" },
		"no RecordType":                func(r *record.Record) { r.RecordType = 0 },
		"unknown UserType":             func(r *record.Record) { r.UserType = 42 },
		"no UserId":                    func(r *record.Record) { r.UserId = "" },
		"no tenant":                    func(r *record.Record) { r.LockboxTenant = "" },
	} {
		bad := rec
		mut(&bad)
		if _, err := log.Append(ctx, bad); err == nil {
			t.Errorf("%s: written", name)
		}
	}
}

// TestLegacyRecordsInTheStream: records stored before the common schema
// still verify and read back with the tenant's GUID and short name.
func TestLegacyRecordsInTheStream(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	log := newLog(rdb, clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)).Now)
	onboard(t, rdb, "contoso")
	// Appended as the old writer did: the same script, the old JSON.
	legacy := `{"Id":"0190a4b4-1c2d-7e3f-8a9b-0c1d2e3f4a5b","CreationTime":"2026-11-23T08:59:59.5Z","Operation":"Get-Mailbox",` +
		`"OrganizationId":"contoso","Workload":"exchange","UserId":"Microsoft Operator","UserType":"DcAdmin","ClientIP":"192.0.2.10",` +
		`"ResultStatus":"Succeeded","LockboxRequestId":"r1","LockboxApprover":"mary@provider.example","Method":"GET",` +
		`"Path":"/tenants/contoso/mailboxes","ProviderUserId":"alice@provider.example"}`
	if err := redis.NewScript(`
local prev = redis.call('GET', KEYS[2]) or ''
local h = redis.sha1hex(prev .. '\n' .. ARGV[1])
redis.call('XADD', KEYS[1], '*', 'r', ARGV[1], 'p', prev, 'h', h)
redis.call('SET', KEYS[2], h)
return 1`).Run(ctx, rdb, []string{keys.Audit("contoso"), keys.AuditHead("contoso")}, legacy).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := log.Append(ctx, record.Record{Operation: record.OpAddApprover, LockboxTenant: "contoso", RecordType: record.RecordTypeExchangeAdmin,
		UserType: record.UserTypeAdmin, UserId: "gina@contoso.example", Workload: record.WorkloadLockbox, ObjectId: "adam@contoso.example"}); err != nil {
		t.Fatal(err)
	}
	if v, err := log.Verify(ctx, auditor, "contoso"); err != nil || !v.OK || v.Records != 2 {
		t.Fatalf("mixed chain: %+v %v", v, err)
	}
	for _, who := range []identity.Principal{auditor, tenantAuditor} {
		pg, err := log.Search(ctx, who, audit.Query{Tenant: "contoso"})
		if err != nil || len(pg.Records) != 2 {
			t.Fatalf("%s: %d records, %v", who.Subject, len(pg.Records), err)
		}
		old := pg.Records[1]
		if old.OrganizationId != orgID("contoso") || old.LockboxTenant != "contoso" || old.RecordType != record.RecordTypeDataCenterSecurityCmdlet ||
			old.UserType != record.UserTypeDcAdmin || old.LockboxMethod != "GET" || old.ObjectId != "exchange/tenants/contoso/mailboxes" {
			t.Errorf("%s: legacy record read as %+v", who.Subject, old)
		}
		if who.TenantID != "" && (old.LockboxApprover != "" || old.ProviderUserId != "" || old.ClientIP != "192.0.2.10") {
			t.Errorf("tenant view of a legacy operator action: %+v", old)
		}
	}
}
