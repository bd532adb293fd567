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
		"TenantActive": TenantActive(tenant), "AuditHead": AuditHead(tenant), "AuditAnchor": AuditAnchor(tenant), "AuditSeal": AuditSeal(tenant),
		"AuditSeals": AuditSeals(tenant), "AuditAnchorRecord": AuditAnchorRecord(tenant),
		"Outbox": Outbox(tenant), "OutboxDead": OutboxDead(tenant), "OutboxRetry": OutboxRetry(tenant),
		"OutboxSent": OutboxSent(tenant, id+"-0", "gina@contoso.example"), "OutboxWarned": OutboxWarned(tenant, id),
		"OutboxAsked": OutboxAsked(tenant, id), "RequestsDeleting": RequestsDeleting(tenant),
		"Filing": Filing(tenant, "ab12"),
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
		"Due": Due("sweep"), "DueRescan": DueRescan(), "ReadyProbe": ReadyProbe(), "NotifyHold": NotifyHold("ab12"),
		"FilingClaim":  FilingClaim("ab12"),
		"SIEMConsumer": SIEMConsumer("lockbox-control-7d9f-x2"),
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

// TestSlot holds Slot to the Redis Cluster specification's examples: the
// CRC16 check value of "123456789" is 0x31C3, and a key with a hash tag
// hashes by the tag alone (an empty tag, by the whole key).
func TestSlot(t *testing.T) {
	for key, want := range map[string]int{
		"123456789":                0x31C3,
		"{123456789}:x":            0x31C3,
		"a{123456789}{other}":      0x31C3,
		"":                         0,
		"lockbox:{contoso}:tenant": Slot("contoso"),
	} {
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
	if Slot("{}123456789") == Slot("123456789") {
		t.Error("an empty hash tag hashed as no key at all")
	}
}

// TestSlotTag: every slot has a tag, and the probe key built on it is in
// that slot and no tenant's.
func TestSlotTag(t *testing.T) {
	for slot := range Slots {
		tag := SlotTag(slot)
		k := ReadyProbeIn(tag)
		if tag == "" || Slot(k) != slot {
			t.Fatalf("SlotTag(%d) = %q: %q is in slot %d", slot, tag, k, Slot(k))
		}
		if _, ok := TenantOfEntry(k); ok || strings.HasPrefix(k, "lockbox:{") {
			t.Fatalf("probe key %q is in a tenant's key space", k)
		}
	}
}
