package audit_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// TestLogBeforeQueriesStillVerifies: a log whose operator actions were
// written before records named the query (their stored bytes, as Lockbox
// wrote them then, chained as the append script chains them) still
// verifies once records with LockboxQuery follow, and a tenant's search
// reads the old records without a query and the new one with it.
func TestLogBeforeQueriesStillVerifies(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	onboard(t, rdb, "contoso")
	log := newLog(rdb, clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)).Now)
	if _, err := log.Append(ctx, operatorRecord("contoso", 0)); err != nil {
		t.Fatal(err)
	}
	org := orgID("contoso")
	old := []string{
		`{"CreationTime":"2026-11-23T09:00:01","Id":"0196f3a0-7c2e-7000-8000-000000000101","Operation":"Get-MailboxMessage","OrganizationId":"` + org +
			`","RecordType":10,"ResultStatus":"Succeeded","UserKey":"Microsoft Operator","UserType":3,"Version":1,"Workload":"exchange","ClientIP":"192.0.2.10",` +
			`"ObjectId":"exchange/tenants/contoso/mailboxes/megan/messages","UserId":"Microsoft Operator","LockboxTenant":"contoso",` +
			`"LockboxRequestId":"0196f3a0-7c2e-7000-8000-00000000000a","LockboxMethod":"GET","LockboxPath":"/tenants/contoso/mailboxes/megan/messages",` +
			`"LockboxPolicyRevision":"5997","ProviderUserId":"alice@provider.example"}`,
		`{"CreationTime":"2026-11-23T09:00:02","Id":"0196f3a0-7c2e-7000-8000-000000000102","Operation":"Get-Mailbox","OrganizationId":"` + org +
			`","RecordType":10,"ResultStatus":"Succeeded","UserKey":"Microsoft Operator","UserType":3,"Version":1,"Workload":"exchange","ClientIP":"192.0.2.10",` +
			`"ObjectId":"exchange/tenants/contoso/mailboxes","UserId":"Microsoft Operator","LockboxTenant":"contoso","LockboxMethod":"GET",` +
			`"LockboxPath":"/tenants/contoso/mailboxes","ProviderUserId":"alice@provider.example"}`,
	}
	head := rdb.Get(ctx, keys.AuditHead("contoso")).Val()
	for _, r := range old {
		sum := sha1.Sum([]byte(head + "\n" + r))
		h := hex.EncodeToString(sum[:])
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.Audit("contoso"), Values: []string{"r", r, "p", head, "h", h}}).Err(); err != nil {
			t.Fatal(err)
		}
		head = h
	}
	if err := rdb.Set(ctx, keys.AuditHead("contoso"), head, 0).Err(); err != nil {
		t.Fatal(err)
	}
	withQuery := operatorRecord("contoso", 3)
	withQuery.LockboxMethod, withQuery.LockboxPath = "GET", "/tenants/contoso/mailboxes/megan/messages"
	withQuery.LockboxQuery = "search=ceo+salary&top=10"
	if _, err := log.Append(ctx, withQuery); err != nil {
		t.Fatal(err)
	}
	if v, err := log.Verify(ctx, auditor, "contoso"); err != nil || !v.OK || v.Records != 4 {
		t.Fatalf("verification = %+v, %v; want 4 records intact", v, err)
	}
	tenantAuditor := identity.Principal{Subject: "tom@contoso.example", TenantID: "contoso", Roles: []identity.Role{identity.RoleAuditReader}}
	page, err := log.Search(ctx, tenantAuditor, audit.Query{Limit: 10})
	if err != nil || len(page.Records) != 4 {
		t.Fatalf("search: %d records, %v", len(page.Records), err)
	}
	// Newest first: the record with the query, then the two old ones.
	if got := page.Records[0]; got.LockboxQuery != withQuery.LockboxQuery || got.LockboxQueryLength != 0 {
		t.Errorf("new record: LockboxQuery %q, LockboxQueryLength %d", got.LockboxQuery, got.LockboxQueryLength)
	}
	for i, r := range page.Records[1:3] {
		if r.LockboxQuery != "" || r.LockboxQueryLength != 0 || r.LockboxPath == "" || r.Id != "0196f3a0-7c2e-7000-8000-00000000010"+string(rune('2'-i)) {
			t.Errorf("old record %d read back as %+v", i, r)
		}
	}
}
