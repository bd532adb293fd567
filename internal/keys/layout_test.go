package keys

import (
	"strings"
	"testing"
)

// hashTag is the part of key Redis Cluster hashes: the text between the
// first "{" and the first "}" after it when that is not empty, else the
// whole key.
func hashTag(key string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return key
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return key
	}
	return key[i+1 : i+1+j]
}

// TestTenantKeysShareTheTenantsSlot: every key of a tenant hashes by the
// tenant alone, whatever the operator, service, request or recipient in
// it, so a transaction over them stays in one slot on Redis Cluster; the
// provider-wide keys carry no tag (each in a slot of its own, never in a
// tenant's transaction).
func TestTenantKeysShareTheTenantsSlot(t *testing.T) {
	const tenant, op, svc, id = "contoso", "alice@provider.example", "exchange", "0195a000-0000-7000-8000-000000000001"
	tenantKeys := map[string]string{
		"Request": Request(tenant, id), "TenantRequests": TenantRequests(tenant), "Grant": Grant(tenant, op, svc),
		"Tenant": Tenant(tenant), "Settings": Settings(tenant), "Approvers": Approvers(tenant), "Audit": Audit(tenant),
		"Open": Open(tenant, op, svc), "TenantDeadlines": TenantDeadlines(tenant), "TenantPending": TenantPending(tenant),
		"TenantActive": TenantActive(tenant), "AuditHead": AuditHead(tenant), "AuditAnchor": AuditAnchor(tenant),
		"Outbox": Outbox(tenant), "OutboxDead": OutboxDead(tenant), "OutboxRetry": OutboxRetry(tenant),
		"OutboxSent": OutboxSent(tenant, id+"-0", "gina@contoso.example"), "OutboxWarned": OutboxWarned(tenant, id),
		"OutboxAsked": OutboxAsked(tenant, id),
	}
	for name, k := range tenantKeys {
		if !strings.HasPrefix(k, "lockbox:{contoso}:") || hashTag(k) != tenant {
			t.Errorf("%s = %q: hashes by %q, want the tenant", name, k, hashTag(k))
		}
	}
	global := map[string]string{
		"RequestIndex": RequestIndex(id), "AllRequests": AllRequests(), "Tenants": Tenants(),
		"OperatorRequests": OperatorRequests(op), "OperatorRequestsBuilt": OperatorRequestsBuilt(),
		"ConsoleSession": ConsoleSession("ab12"), "ConsoleReverify": ConsoleReverify("ab12"), "ConsoleLoginKey": ConsoleLoginKey(682),
		"Due": Due("sweep"), "DueRescan": DueRescan(), "ReadyProbe": ReadyProbe(),
	}
	for name, k := range global {
		if !strings.HasPrefix(k, "lockbox:") || strings.ContainsAny(k, "{}") {
			t.Errorf("%s = %q: a provider-wide key must carry no hash tag", name, k)
		}
	}
}

func TestTenantOfEntry(t *testing.T) {
	for key, want := range map[string]string{
		Tenant("contoso"): "contoso", Tenant("a-1"): "a-1", Settings("contoso"): "", "lockbox:{a}:x}:tenant": "",
		"lockbox:tenants": "", "lockbox:{Contoso}:tenant": "", "other:{contoso}:tenant": "",
	} {
		got, ok := TenantOfEntry(key)
		if got != want || ok != (want != "") {
			t.Errorf("TenantOfEntry(%q) = %q, %t; want %q", key, got, ok, want)
		}
	}
}
